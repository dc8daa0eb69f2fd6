//! kcpx against a real kcp-go 5.6.1 peer over UDP on 127.0.0.1.
//!
//! The kcpx side is `examples/c/kcpx_udp_echo.c`, a C program that uses only
//! `kcpx.h`; the kcp-go side is `interop/go-peer` (Debian's kcp-go, built
//! offline by `interop/build-go-peer.sh`). Each run echoes 1 MiB of seeded
//! random data in stream mode and checks every byte, with kcp-go as the
//! server and as the client, for every {no cipher, none, aes-128, aes-256}
//! x {FEC off, 10/3, 3/2}; then again with 10% of the datagrams dropped on
//! each side, where FEC must recover datagrams on both ends. Every other
//! kcp-go cipher (aes-192, salsa20, blowfish, twofish, cast5, 3des, tea,
//! xtea, sm4, xor) echoes in both roles with FEC off and 10/3, and once at
//! 10% loss with FEC.
//!
//! `kcpgo_sessions_through_the_relay` checks the harness itself: kcp-go against
//! kcp-go through the lossy relay of `tests/support/relay.rs`, with 20 clients
//! at once and a client restarted on its port (go-peer's `clients` and
//! `restart` modes).
//!
//! Without Go or kcp-go's sources the tests skip loudly, and fail under CI
//! unless `KCPX_SKIP_GO=1` (the skip policy of `tests/support/skip.rs`).
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it
#![cfg(target_os = "linux")]

#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/go_peer.rs"]
mod go_peer;
#[path = "support/relay.rs"]
mod relay;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/skip.rs"]
mod skip;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BYTES: &str = "1048576";

struct Tools {
    go_peer: PathBuf,
    echo: PathBuf,
    /// examples/c/kcpx_echo_server.c and kcpx_echo_client.c (sessions).
    server: PathBuf,
    client: PathBuf,
    lib_dir: PathBuf,
}

/// The Go peer and the C program, built once per test process (the tests
/// run in parallel and share the build directory).
fn tools() -> Option<&'static Tools> {
    static TOOLS: std::sync::OnceLock<Option<Tools>> = std::sync::OnceLock::new();
    TOOLS.get_or_init(build_tools).as_ref()
}

/// Builds the Go peer and the C program, or explains why it cannot.
fn build_tools() -> Option<Tools> {
    let go_peer = go_peer::build("interop_kcpgo", "interop_kcpgo")?;
    let (work, lib_dir) = cprog::work_dir("interop_kcpgo");
    let echo = cprog::compile("kcpx_udp_echo", &work, &lib_dir);
    let server = cprog::compile("kcpx_echo_server", &work, &lib_dir);
    let client = cprog::compile("kcpx_echo_client", &work, &lib_dir);
    Some(Tools {
        go_peer,
        echo,
        server,
        client,
        lib_dir,
    })
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Arguments of both programs for one configuration.
fn args(crypt: Option<&str>, fec: (u8, u8), drop: u8) -> (Vec<String>, Vec<String>) {
    let (mut c, mut go) = (vec![], vec!["-stream".to_string()]);
    if let Some(m) = crypt {
        c.extend(["--crypt".into(), m.into()]);
        go.extend(["-crypt".into(), m.into()]);
    }
    c.extend([
        "--fec".into(),
        fec.0.to_string(),
        fec.1.to_string(),
        "--drop".into(),
        drop.to_string(),
    ]);
    go.extend([
        "-ds".into(),
        fec.0.to_string(),
        "-ps".into(),
        fec.1.to_string(),
        "-drop".into(),
        drop.to_string(),
    ]);
    c.extend(["--bytes".into(), BYTES.into(), "--timeout".into(), "40".into()]);
    go.extend(["-bytes".into(), BYTES.into()]);
    (c, go)
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn finish(child: Child) -> (bool, String) {
    let out: Output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A numeric field of a JSON line (both programs print flat objects).
fn field(json: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let at = json.find(&key).unwrap_or_else(|| panic!("no {name} in {json}")) + key.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// One echo of 1 MiB; returns (kcpx's report, kcp-go's report).
fn echo(t: &'static Tools, go_is_server: bool, crypt: Option<&str>, fec: (u8, u8), drop: u8) -> (String, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let (c_args, go_args) = args(crypt, fec, drop);
    let label = format!(
        "kcp-go {} / {crypt:?} / fec {fec:?} / drop {drop}%",
        if go_is_server { "server" } else { "client" }
    );
    let run_c = |role: &str| {
        let mut cmd = Command::new(&t.echo);
        cmd.arg(role)
            .arg(&addr)
            .args(&c_args)
            .env("LD_LIBRARY_PATH", &t.lib_dir);
        cmd
    };
    let run_go = |role: &str| {
        let mut cmd = Command::new(&t.go_peer);
        cmd.arg(role)
            .arg("-addr")
            .arg(&addr)
            .args(&go_args)
            .args(["-timeout", "40s"]);
        cmd
    };
    let (c_out, go_out) = if go_is_server {
        let go = spawn(&mut run_go("server"));
        std::thread::sleep(Duration::from_millis(300));
        let c = finish(spawn(&mut run_c("client")));
        // The Go server echoes until told to stop, then prints its counters.
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(go.id() as libc::pid_t, libc::SIGTERM) };
        (c, finish(go))
    } else {
        let c = spawn(&mut run_c("server"));
        std::thread::sleep(Duration::from_millis(200));
        let go = finish(spawn(&mut run_go("client")));
        (finish(c), go)
    };
    assert!(
        c_out.0 && c_out.1.contains("\"ok\":true"),
        "{label}: kcpx side failed:\n{}\nkcp-go:\n{}",
        c_out.1,
        go_out.1
    );
    if !go_is_server {
        assert!(
            go_out.0 && go_out.1.contains("\"ok\":true"),
            "{label}: kcp-go client failed:\n{}",
            go_out.1
        );
    }
    assert_eq!(field(&c_out.1, "bytes"), BYTES.parse::<u64>().unwrap(), "{label}");
    assert_eq!(field(&c_out.1, "kcp_in_errors"), 0, "{label}: {}", c_out.1);
    // kcp-go 5.6.1's sm4 (tjfoc/gmsm) keeps scratch buffers in the cipher,
    // which kcp-go shares between its reading and writing goroutines: now
    // and then it sends a datagram its own race garbled. kcpx must reject
    // those by CRC (and KCP resends); any other method must see none.
    if crypt != Some("sm4") {
        assert_eq!(field(&c_out.1, "in_csum_errors"), 0, "{label}: {}", c_out.1);
    }
    eprintln!("ok: {label}");
    (c_out.1, go_out.1)
}

const CRYPTS: [Option<&str>; 4] = [None, Some("none"), Some("aes-128"), Some("aes-256")];
const FECS: [(u8, u8); 3] = [(0, 0), (10, 3), (3, 2)];

#[test]
fn echo_1mib_with_kcpgo_in_both_roles() {
    let Some(t) = tools() else { return };
    for go_is_server in [true, false] {
        for crypt in CRYPTS {
            for fec in FECS {
                echo(t, go_is_server, crypt, fec, 0);
            }
        }
    }
}

#[test]
fn fec_recovers_on_both_ends_at_10_percent_loss() {
    let Some(t) = tools() else { return };
    for go_is_server in [true, false] {
        for fec in [(10, 3), (3, 2)] {
            let (c, go) = echo(t, go_is_server, Some("aes-128"), fec, 10);
            assert!(field(&c, "fec_recovered") > 0, "kcpx recovered nothing: {c}");
            assert!(field(&go, "FECRecovered") > 0, "kcp-go recovered nothing: {go}");
        }
    }
}

#[test]
fn kcpgo_sessions_through_the_relay() {
    let Some(t) = tools() else { return };
    let server_addr = format!("127.0.0.1:{}", free_port());
    let common = ["-crypt", "aes-128", "-ds", "10", "-ps", "3", "-stream"];
    let server = spawn(
        Command::new(&t.go_peer)
            .args(["server", "-addr", &server_addr, "-timeout", "60s"])
            .args(common),
    );
    std::thread::sleep(Duration::from_millis(300));
    let cfg = relay::RelayConfig {
        loss: 0.03,
        duplicate: 0.01,
        reorder_window: 3,
        seed: 0x5e55_1025,
        ..Default::default()
    };
    let r = relay::Relay::start(server_addr.parse().unwrap(), cfg).unwrap();
    let via = r.local_addr().to_string();
    let go = |mode: &str, extra: &[&str]| {
        let mut cmd = Command::new(&t.go_peer);
        cmd.args([mode, "-addr", &via, "-timeout", "40s", "-bytes", "65536"])
            .args(common)
            .args(extra);
        finish(spawn(&mut cmd))
    };
    let clients = go("clients", &["-n", "20"]);
    let lport = free_port().to_string();
    let restart = go("restart", &["-lport", &lport]);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let server = finish(server);
    let st = r.stats();
    eprintln!("relay: {st:?}");
    assert!(
        clients.0 && clients.1.contains("\"sessions_ok\":20"),
        "{}\nserver: {}",
        clients.1,
        server.1
    );
    assert!(
        restart.0 && restart.1.contains("\"ok\":true"),
        "{}\nserver: {}",
        restart.1,
        server.1
    );
    // 20 clients + the restarted one (one address, so one relay client).
    assert_eq!(st.clients, 21);
    assert!(
        st.up.dropped > 0 && st.down.dropped > 0 && st.up.reordered > 0,
        "{st:?}"
    );
    assert_eq!(
        field(&server.1, "PassiveOpens"),
        22,
        "the restart replaced a session: {}",
        server.1
    );
}

// ----- sessions: examples/c/kcpx_echo_server.c and kcpx_echo_client.c -----

/// FEC 10/3 + AES-128, stream mode: the session tests' settings.
const SESSION_GO: [&str; 7] = ["-crypt", "aes-128", "-ds", "10", "-ps", "3", "-stream"];
const SESSION_C: [&str; 5] = ["--crypt", "aes-128", "--fec", "10", "3"];

/// The C echo server, listening on a free port of 127.0.0.1.
struct CServer {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
    port: u16,
}

impl CServer {
    fn start(t: &Tools) -> CServer {
        CServer::start_with(t, &SESSION_C)
    }

    /// [`CServer::start`] with these options.
    fn start_with(t: &Tools, options: &[&str]) -> CServer {
        use std::io::BufRead;
        let mut child = spawn(Command::new(&t.server).arg("127.0.0.1:0").args(options));
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening on ").and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("kcpx_echo_server said {line:?}"));
        CServer { child, out, port }
    }

    /// Stops it (SIGTERM) and returns its counters line.
    fn stop(mut self) -> String {
        use std::io::Read;
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let mut text = String::new();
        self.out.read_to_string(&mut text).unwrap();
        assert!(self.child.wait().unwrap().success(), "kcpx_echo_server failed: {text}");
        text
    }
}

/// Runs the Go peer in `mode` against `addr` with the session settings.
fn go_session(t: &Tools, mode: &str, addr: &str, extra: &[&str]) -> (bool, String) {
    finish(spawn(
        Command::new(&t.go_peer)
            .args([mode, "-addr", addr, "-timeout", "90s"])
            .args(SESSION_GO)
            .args(extra),
    ))
}

/// A lossy relay in front of `to`: `loss` each way, 1% duplication, reordering.
fn lossy(to: SocketAddr, loss: f64, seed: u64) -> relay::Relay {
    let cfg = relay::RelayConfig {
        loss,
        duplicate: 0.01,
        reorder_window: 3,
        seed,
        ..Default::default()
    };
    relay::Relay::start(to, cfg).unwrap()
}

/// A kcpx listener (a C program using only kcpx.h) serves 100 concurrent
/// kcp-go client sessions, each echoing 256 KiB byte-exact; then again with
/// 10% of datagrams dropped each way.
#[test]
fn kcpx_listener_serves_100_kcpgo_sessions() {
    let Some(t) = tools() else { return };
    for (loss, n) in [(0.0, "100"), (0.10, "100")] {
        let server = CServer::start(t);
        let direct = format!("127.0.0.1:{}", server.port);
        let relay = (loss > 0.0).then(|| lossy(direct.parse().unwrap(), loss, 0x100));
        let addr = relay.as_ref().map_or(direct.clone(), |r| r.local_addr().to_string());
        let (ok, clients) = go_session(t, "clients", &addr, &["-n", n, "-bytes", "262144"]);
        let counters = server.stop();
        eprintln!("loss {loss}: {clients}\nserver: {counters}");
        assert!(
            ok && clients.contains("\"sessions_ok\":100"),
            "{clients}\nserver: {counters}"
        );
        assert!(counters.contains("\"passive_opens\":100,"), "{counters}");
        assert!(
            counters.contains("\"in_csum_errors\":0,") && counters.contains("\"kcp_in_errors\":0,"),
            "{counters}"
        );
    }
}

/// A kcpx dialer (the blocking C client) against a kcp-go listener: 4 MiB
/// echoed byte-exact, directly and with 10% loss each way.
#[test]
fn kcpx_dialer_echoes_4mib_with_a_kcpgo_listener() {
    let Some(t) = tools() else { return };
    for loss in [0.0, 0.10] {
        let server_addr = format!("127.0.0.1:{}", free_port());
        let server = spawn(
            Command::new(&t.go_peer)
                .args(["server", "-addr", &server_addr, "-timeout", "90s"])
                .args(SESSION_GO),
        );
        std::thread::sleep(Duration::from_millis(300));
        let relay = (loss > 0.0).then(|| lossy(server_addr.parse().unwrap(), loss, 0x4d1b));
        let addr = relay
            .as_ref()
            .map_or(server_addr.clone(), |r| r.local_addr().to_string());
        let client = finish(spawn(Command::new(&t.client).arg(&addr).args(SESSION_C).args([
            "--bytes",
            "4194304",
            "--timeout",
            "90",
        ])));
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
        let server = finish(server);
        eprintln!("loss {loss}: {}\nserver: {}", client.1, server.1);
        assert!(
            client.0 && client.1.contains("\"ok\":true"),
            "{}\nserver: {}",
            client.1,
            server.1
        );
        if loss > 0.0 {
            assert!(
                field(&server.1, "FECRecovered") > 0,
                "kcp-go rebuilt kcpx's lost datagrams: {}",
                server.1
            );
        }
    }
}

/// kcp-go's sn == 0 rule seen from a kcpx listener: a kcp-go client
/// restarted on the same local port with a new conv replaces its session.
#[test]
fn a_restarted_kcpgo_client_replaces_its_session_at_a_kcpx_listener() {
    let Some(t) = tools() else { return };
    let server = CServer::start(t);
    let addr = format!("127.0.0.1:{}", server.port);
    let lport = free_port().to_string();
    let (ok, restart) = go_session(t, "restart", &addr, &["-lport", &lport, "-bytes", "65536"]);
    let counters = server.stop();
    assert!(ok && restart.contains("\"ok\":true"), "{restart}\nserver: {counters}");
    assert!(
        counters.contains("\"passive_opens\":2,") && counters.contains("\"replaced\":1,"),
        "{counters}"
    );
}

/// Every other kcp-go cipher (kcptun's key length, as kcptun derives it):
/// both roles with FEC off and 10/3, plus one run at 10% loss with FEC 10/3
/// (kcp-go the server for half of the methods, the client for the others).
const OTHER_CRYPTS: [&str; 10] = [
    "aes-192", "salsa20", "blowfish", "twofish", "cast5", "3des", "tea", "xtea", "sm4", "xor",
];

#[test]
fn every_kcpgo_cipher_echoes_in_both_roles_and_under_loss() {
    let Some(t) = tools() else { return };
    // (go_is_server, method, fec, drop %): 50 runs, three at a time (each run
    // is two processes; the machine may have two cores).
    let mut runs = Vec::new();
    for (i, &crypt) in OTHER_CRYPTS.iter().enumerate() {
        for go_is_server in [true, false] {
            for fec in [(0, 0), (10, 3)] {
                runs.push((go_is_server, crypt, fec, 0));
            }
        }
        runs.push((i % 2 == 0, crypt, (10, 3), 10));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while let Some(&(go_is_server, crypt, fec, drop)) =
                    runs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let (c, go) = echo(t, go_is_server, Some(crypt), fec, drop);
                    if drop > 0 {
                        assert!(field(&c, "fec_recovered") > 0, "{crypt}: kcpx recovered nothing: {c}");
                        assert!(
                            field(&go, "FECRecovered") > 0,
                            "{crypt}: kcp-go recovered nothing: {go}"
                        );
                    }
                }
            });
        }
    });
}

/// FEC on the kcp-go side only (kcp-go reads FEC framing whatever its own
/// setting, so kcp-go peers interoperate that way): a kcp-go client with
/// FEC 10/3 at a kcpx listener without FEC, and a kcpx dialer without FEC at
/// a kcp-go listener with FEC 10/3, each echoing byte-exact.
#[test]
fn fec_on_the_kcpgo_side_only_echoes_in_both_roles() {
    let Some(t) = tools() else { return };
    let no_fec = ["--crypt", "aes-128"];
    let server = CServer::start_with(t, &no_fec);
    let addr = format!("127.0.0.1:{}", server.port);
    let (ok, clients) = go_session(t, "clients", &addr, &["-n", "4", "-bytes", "262144"]);
    let counters = server.stop();
    eprintln!("kcp-go clients with FEC: {clients}\nkcpx listener without FEC: {counters}");
    assert!(
        ok && clients.contains("\"sessions_ok\":4"),
        "{clients}\nserver: {counters}"
    );
    assert!(counters.contains("\"passive_opens\":4,"), "{counters}");

    let server_addr = format!("127.0.0.1:{}", free_port());
    let server = spawn(
        Command::new(&t.go_peer)
            .args(["server", "-addr", &server_addr, "-timeout", "60s"])
            .args(SESSION_GO),
    );
    std::thread::sleep(Duration::from_millis(300));
    let client = finish(spawn(Command::new(&t.client).arg(&server_addr).args(no_fec).args([
        "--bytes",
        "1048576",
        "--timeout",
        "60",
    ])));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let server = finish(server);
    eprintln!(
        "kcpx dialer without FEC: {}\nkcp-go listener with FEC: {}",
        client.1, server.1
    );
    assert!(
        client.0 && client.1.contains("\"ok\":true"),
        "{}\nserver: {}",
        client.1,
        server.1
    );
}
