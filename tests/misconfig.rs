//! Misconfiguration is visible (issue 17 item 12): the README's
//! `kcpx_udp_echo` command pair transfers, and the C examples, run with
//! mismatched keys or ciphers, fail with a hint naming the counter that
//! shows it (docs/troubleshooting.md). Every run talks to 127.0.0.1 only and
//! is bounded by the programs' `--timeout`.
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it
#![cfg(target_os = "linux")]

#[path = "support/cprog.rs"]
mod cprog;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Programs {
    udp_echo: PathBuf,
    server: PathBuf,
    client: PathBuf,
}

fn programs() -> &'static Programs {
    static P: std::sync::OnceLock<Programs> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let (work, lib_dir) = cprog::work_dir("misconfig");
        Programs {
            udp_echo: cprog::compile("kcpx_udp_echo", &work, &lib_dir),
            server: cprog::compile("kcpx_echo_server", &work, &lib_dir),
            client: cprog::compile("kcpx_echo_client", &work, &lib_dir),
        }
    })
}

fn free_addr() -> String {
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

fn spawn(program: &PathBuf, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Exit status and stdout + stderr.
fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `kcpx_udp_echo server ...` and `client ...` commands the README
/// gives (inline code, possibly wrapped over lines), as argument lists.
fn readme_pair() -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(cprog::root().join("README.md")).unwrap();
    let text = readme.replace("\n  ", " ").replace('\n', " ");
    let find = |role: &str| -> Vec<String> {
        let start = format!("`kcpx_udp_echo {role} ");
        let at = text
            .find(&start)
            .unwrap_or_else(|| panic!("README.md has no {start}...` command"));
        let rest = &text[at + 1..];
        let end = rest.find('`').unwrap();
        rest[..end].split_whitespace().skip(1).map(str::to_string).collect()
    };
    (find("server"), find("client"))
}

/// Runs a kcpx_udp_echo pair on a free port; returns (server, client).
fn udp_pair(server: &[String], client: &[String]) -> ((bool, String), (bool, String)) {
    let p = programs();
    let addr = free_addr();
    let with_addr = |args: &[String]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|a| a.replace("127.0.0.1:9000", &addr)).collect();
        assert!(v.contains(&addr), "the README's commands use 127.0.0.1:9000: {args:?}");
        if !v.iter().any(|a| a == "--timeout") {
            v.extend(["--timeout".to_string(), "20".to_string()]);
        }
        v
    };
    let (s, c) = (with_addr(server), with_addr(client));
    let server = spawn(&p.udp_echo, &s.iter().map(String::as_str).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(200));
    let client = spawn(&p.udp_echo, &c.iter().map(String::as_str).collect::<Vec<_>>());
    let client = finish(client);
    (finish(server), client)
}

/// The README's pair, as written (but on a free port), echoes byte-exact.
#[test]
fn the_readme_udp_echo_pair_transfers() {
    let (server, client) = readme_pair();
    assert_eq!(server[0], "server");
    assert_eq!(client[0], "client");
    assert_eq!(server[2..], client[2..], "both ends with the same options");
    let (s, c) = udp_pair(&server, &client);
    assert!(c.0 && c.1.contains("\"ok\":true"), "client: {}\nserver: {}", c.1, s.1);
    assert!(s.0, "server: {}", s.1);
    assert!(!c.1.contains("hint:"), "{}", c.1);
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// A cipher at the client only (the README's old pair): nothing transfers,
/// and both ends say why. Another password at the server: the server counts
/// checksum failures and says so.
#[test]
fn mismatched_udp_echo_pairs_print_a_hint() {
    const QUICK: [&str; 4] = ["--bytes", "4096", "--timeout", "3"];
    let plain = args(&[&["server", "127.0.0.1:9000"], &QUICK[..]].concat());
    let aes = |role: &str, password: &str| {
        let mut v = args(&[role, "127.0.0.1:9000", "--crypt", "aes-128", "--password", password]);
        v.extend(args(&QUICK));
        v
    };
    let client = aes("client", "a");
    let cipher_at_client_only = std::thread::spawn(move || udp_pair(&plain, &client));
    let (s, c) = udp_pair(&aes("server", "b"), &aes("client", "a"));
    assert!(!c.0 && c.1.contains("hint: nothing was received"), "client: {}", c.1);
    assert!(!s.0 && s.1.contains("hint: in_csum_errors"), "server: {}", s.1);

    let (s, c) = cipher_at_client_only.join().unwrap();
    assert!(!c.0 && c.1.contains("hint: nothing was received"), "client: {}", c.1);
    assert!(!s.0 && s.1.contains("hint: in_errs + kcp_in_errors"), "server: {}", s.1);
}

/// Sessions: a listener with another key counts the client's datagrams as
/// checksum failures and says so at exit; the client, which hears nothing,
/// says that.
#[test]
fn a_session_listener_with_another_key_reports_it() {
    use std::io::{BufRead, Read};
    let p = programs();
    let mut server = spawn(&p.server, &["127.0.0.1:0", "--crypt", "aes-128", "--password", "b"]);
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("listening on ").unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    let client = finish(spawn(
        &p.client,
        &[
            &addr,
            "--crypt",
            "aes-128",
            "--password",
            "a",
            "--bytes",
            "4096",
            "--timeout",
            "3",
        ],
    ));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let mut err = String::new();
    server.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(server.wait().unwrap().success());
    assert!(
        !client.0 && client.1.contains("hint: nothing was received"),
        "client: {}",
        client.1
    );
    assert!(
        text.contains("\"passive_opens\":0,") && !text.contains("\"in_csum_errors\":0,"),
        "server: {text}"
    );
    assert!(err.contains("hint: in_csum_errors"), "server: {err}");
}
