//! The suite's one skip policy: what a test does when something it needs
//! is not there. Every test file applies it through these functions.
//!
//! * **A required tool or privilege** (Go and kcp-go's sources, nginx and
//!   its stream module, cmake/pkg-config/g++/python3, root or `CAP_NET_RAW`
//!   for raw sockets): [`unavailable`]. Under CI (`CI` set to anything but
//!   empty, `0` or `false`; `.ci/run` exports `CI=true`) it is a failure: a
//!   check that passes where it never ran proves nothing, and CI installs
//!   all of them (`scripts/install-deps.sh`). On a developer's machine the
//!   test passes after a loud banner on stderr saying it did NOT run, what
//!   is missing and how to install it. Each area has a variable that lets a
//!   missing tool skip on purpose, also under CI, with the same banner: `KCPX_SKIP_GO`,
//!   `KCPX_SKIP_NGINX`, `KCPX_SKIP_SPOOF`, `KCPX_SKIP_PACKAGING`, `KCPX_SKIP_CXX`.
//! * **An optional peer or environment** (a kcp-go master tree named by
//!   `KCPGO_MASTER_SRC`, an IPv6 loopback): [`optional`] always skips, loudly,
//!   CI or not; nothing installs it.
//! * **Anything committed to the repository** (`include/ikcp.h`, the C
//!   tests, the examples) is never missing: its absence fails the test. So
//!   does a tool that is present but fails (a build error is a bug).
//! * The C toolchain (`cc`, binutils' `ar`/`nm`/`readelf`) and `bash` are
//!   not checked: `cargo test` needs a linker already, and a test that
//!   cannot run them fails.
//!
//! Include with `#[path = "support/skip.rs"] mod skip;`.
#![allow(dead_code)]

/// Whether this is a CI run: `CI` set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A required tool or privilege is missing: `what` cannot run because of
/// `why` (say what is missing and how to install it). Panics under CI
/// unless `skip_var` is set to something other than `0`; otherwise prints
/// the banner and returns (the caller then returns without testing).
pub fn unavailable(what: &str, why: &str, skip_var: &str) {
    let asked = std::env::var_os(skip_var).is_some_and(|v| v != "0");
    if asked {
        banner(what, why, &format!("skipped on purpose: {skip_var} is set"));
        return;
    }
    if in_ci() {
        panic!("{what} cannot run: {why}\n(CI is set; set {skip_var}=1 to skip it on purpose)");
    }
    banner(
        what,
        why,
        &format!("under CI this is a failure; set {skip_var}=1 to skip it on purpose"),
    );
}

/// An optional peer or environment is missing: always skips, loudly.
pub fn optional(what: &str, why: &str) {
    banner(what, why, "optional: skipped in CI too");
}

/// Whether `tool --version` runs and succeeds.
pub fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Straight to the process's stderr, which the test harness does not capture.
fn banner(what: &str, why: &str, note: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** {what} SKIPPED: {why} ***\n*** it did NOT run ({note}) ***\n"
    );
}
