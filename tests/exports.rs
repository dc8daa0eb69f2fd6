//! Export-list test of the C library: the dynamic symbols of libkcpx.so must
//! be exactly `EXPECTED_EXPORTS` (the version script src/ffi/exports.map
//! hides everything else), its SONAME must be `SONAME`, and libkcpx.a must
//! define every expected function.
//!
//! `cargo test` builds the cdylib and staticlib next to this test binary
//! (target/<profile>/deps/); the test reads them there with `nm` and `readelf`.
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// THE list of exported C functions. Adding a `kcpx_*` function to the C
/// API means adding its name here (keep it sorted).
const EXPECTED_EXPORTS: &[&str] = &[
    // ikcp.c 1.7.1: the 17 functions of ikcp.h, plus ikcp_interval, which
    // ikcp.c exports without declaring it.
    "ikcp_allocator",
    "ikcp_check",
    "ikcp_create",
    "ikcp_flush",
    "ikcp_getconv",
    "ikcp_input",
    "ikcp_interval",
    "ikcp_log",
    "ikcp_nodelay",
    "ikcp_peeksize",
    "ikcp_recv",
    "ikcp_release",
    "ikcp_send",
    "ikcp_setmtu",
    "ikcp_setoutput",
    "ikcp_update",
    "ikcp_waitsnd",
    "ikcp_wndsize",
    // kcpx.h: kcp-go compatible connections and sessions.
    "kcpx_accept",
    "kcpx_config_free",
    "kcpx_config_new",
    "kcpx_config_set_active_window",
    "kcpx_config_set_coalesce",
    "kcpx_config_set_crypt",
    "kcpx_config_set_dead_link_time",
    "kcpx_config_set_fec",
    "kcpx_config_set_flush",
    "kcpx_config_set_idle_timeout",
    "kcpx_config_set_limits",
    "kcpx_config_set_memory_limits",
    "kcpx_config_set_mtu",
    "kcpx_config_set_nodelay",
    "kcpx_config_set_offload",
    "kcpx_config_set_rate_limit",
    "kcpx_config_set_reuseport",
    "kcpx_config_set_sockbuf",
    "kcpx_config_set_stream",
    "kcpx_config_set_window",
    "kcpx_config_validate",
    "kcpx_conn_check",
    "kcpx_conn_datagram_max",
    "kcpx_conn_flush",
    "kcpx_conn_free",
    "kcpx_conn_input",
    "kcpx_conn_new",
    "kcpx_conn_peeksize",
    "kcpx_conn_recv",
    "kcpx_conn_recv_datagram",
    "kcpx_conn_send",
    "kcpx_conn_send_datagram",
    "kcpx_conn_set_rate_limit",
    "kcpx_conn_stats",
    "kcpx_conn_update",
    "kcpx_conn_waitsnd",
    "kcpx_conv_of",
    "kcpx_dial",
    "kcpx_key_from_password",
    "kcpx_listen",
    "kcpx_listener_check",
    "kcpx_listener_close",
    "kcpx_listener_fd",
    "kcpx_listener_flush",
    "kcpx_listener_local_port",
    "kcpx_listener_poll_event",
    "kcpx_listener_stats",
    "kcpx_listener_update",
    "kcpx_listener_wait",
    "kcpx_now_ms",
    "kcpx_session_check",
    "kcpx_session_close",
    "kcpx_session_close_linger",
    "kcpx_session_conv",
    "kcpx_session_datagram_max",
    "kcpx_session_fd",
    "kcpx_session_flush",
    "kcpx_session_peeksize",
    "kcpx_session_poll_event",
    "kcpx_session_recv",
    "kcpx_session_recv_datagram",
    "kcpx_session_remote_addr",
    "kcpx_session_rtt",
    "kcpx_session_send",
    "kcpx_session_send_datagram",
    "kcpx_session_set_rate_limit",
    "kcpx_session_set_user",
    "kcpx_session_socket_stats",
    "kcpx_session_stats",
    "kcpx_session_update",
    "kcpx_session_user",
    "kcpx_session_wait",
    "kcpx_strerror",
    "kcpx_token_make",
];

/// SONAME of the v1 C ABI (set by build.rs). Bump only for a breaking change.
const SONAME: &str = "libkcpx.so.1";

fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe.parent().expect("test binary has a directory").join(name);
    assert!(
        path.is_file(),
        "{} not found: cargo test should have built it",
        path.display()
    );
    path
}

fn tool(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (binutils): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 tool output")
}

/// Names of the symbols `nm --defined-only <args>` lists with one of `types`.
fn defined_symbols(args: &[&str], types: &str, file: &Path) -> Vec<String> {
    let mut names: Vec<String> = tool("nm", &[&["--defined-only"], args].concat(), file)
        .lines()
        .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_addr, ty, name] if types.contains(ty) => Some(name.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn shared_library_exports_exactly_the_c_api() {
    let lib = built("libkcpx.so");
    let exported = defined_symbols(&["-D"], "TtWwDdBbRrVvi", &lib);
    let mut expected: Vec<String> = EXPECTED_EXPORTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let extra: Vec<_> = exported.iter().filter(|s| !expected.contains(s)).collect();
    let missing: Vec<_> = expected.iter().filter(|s| !exported.contains(s)).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "exports of {} differ from EXPECTED_EXPORTS in tests/exports.rs\n  unexpected: {extra:?}\n  missing:    {missing:?}",
        lib.display()
    );
}

#[test]
fn shared_library_soname() {
    let lib = built("libkcpx.so");
    let dynamic = tool("readelf", &["-d"], &lib);
    let sonames: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(SONAME)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert_eq!(sonames, [SONAME], "SONAME of {}", lib.display());
}

#[test]
fn static_library_defines_the_c_api() {
    let lib = built("libkcpx.a");
    let defined = defined_symbols(&["-g"], "T", &lib);
    let missing: Vec<_> = EXPECTED_EXPORTS
        .iter()
        .filter(|s| !defined.iter().any(|d| d == *s))
        .collect();
    assert!(missing.is_empty(), "{} does not define {missing:?}", lib.display());
}
