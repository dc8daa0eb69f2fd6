//! kcpx against a real kcp-go master peer (the v5.6.72 / v5.7 wire: AES-GCM
//! and out-of-band messages) over UDP on 127.0.0.1, in both roles.
//!
//! The peer is `interop/go-master-peer`, built by
//! `interop/build-go-master-peer.sh` from the kcp-go master tree that
//! `KCPGO_MASTER_SRC` names. Nothing installs that tree (CI has no network
//! to fetch it), so without it these tests skip loudly, CI or not (the
//! `optional` rule of `tests/support/skip.rs`); CI relies on the known
//! answers of `tests/gcm_kat.rs` instead. Run them locally with
//!
//! ```sh
//! KCPGO_MASTER_SRC=/path/to/kcp-go cargo test --test interop_master -- --nocapture
//! ```
//!
//! Each run echoes 4 MiB byte-exact with FEC 10/3 for `aes-128-gcm`,
//! `aes-256-gcm` and the CFB `aes-128`, directly and through a relay that
//! drops 10% each way, while both ends send out-of-band messages every
//! 20 ms: every message that arrives is intact, most arrive, none reaches
//! the stream.

#[path = "support/echo.rs"]
mod echo;
#[path = "support/relay.rs"]
mod relay;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/skip.rs"]
mod skip;

use echo::EchoServer;
use kcpx::error::Error;
use kcpx::net::{Config, Dialer};
use relay::{Relay, RelayConfig};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const METHODS: [&str; 3] = ["aes-128-gcm", "aes-256-gcm", "aes-128"];
const BYTES: usize = 4 << 20;
const LOSSES: [f64; 2] = [0.0, 0.10];

/// The peer, built once per test process; None after the loud skip.
fn peer() -> Option<&'static Path> {
    static PEER: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PEER.get_or_init(|| {
        let Some(src) = std::env::var_os("KCPGO_MASTER_SRC") else {
            skip::optional(
                "interop_master",
                "KCPGO_MASTER_SRC is unset (a kcp-go master source tree, e.g. v5.6.72; see the README of interop/)",
            );
            return None;
        };
        let out = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .join("go-master-peer");
        let run = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/build-go-master-peer.sh"))
            .arg(&out)
            .env("KCPGO_MASTER_SRC", src)
            .output()
            .expect("run bash");
        assert!(
            run.status.success(),
            "the kcp-go master peer does not build:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        Some(out.join("go-master-peer"))
    })
    .as_deref()
}

fn key_len(method: &str) -> usize {
    if method.contains("256") {
        32
    } else {
        16
    }
}

/// The peer's settings (its `tune`): stream mode, nodelay 1/10/2/1,
/// windows 256, FEC 10/3, the method with bytes of 0x42 as its key.
fn config(method: &str) -> Config {
    let mut cfg = Config::default();
    let c = &mut cfg.endpoint.conn;
    c.set_nodelay(1, 10, 2, 1);
    c.set_window(256, 256).unwrap();
    c.set_stream(true);
    c.set_fec(10, 3).unwrap();
    c.set_crypt(Some(method), &vec![0x42; key_len(method)]).unwrap();
    cfg
}

fn go(peer: &Path, mode: &str, addr: &str, method: &str, extra: &[&str]) -> Child {
    Command::new(peer)
        .args([mode, "-addr", addr, "-crypt", method, "-ds", "10", "-ps", "3"])
        .args(["-timeout", "120s", "-oob-interval", "20ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "go-master-peer failed:\n{text}");
    text
}

/// The out-of-band payloads the peer printed (`oob-msg HEX` lines).
fn peer_messages(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .filter_map(|l| l.strip_prefix("oob-msg "))
        .map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// `loss` each way, 1% duplication, reordering; None for a direct path.
fn relay(to: SocketAddr, loss: f64, seed: u64) -> Option<Relay> {
    let cfg = RelayConfig {
        loss,
        duplicate: 0.01,
        reorder_window: 3,
        seed,
        ..Default::default()
    };
    (loss > 0.0).then(|| Relay::start(to, cfg).unwrap())
}

/// Most of `sent` messages arrived: all of them on a direct path (loopback
/// drops nothing at this rate), more than half at 10% loss each way.
fn most(arrived: usize, sent: usize, loss: f64, what: &str) {
    let floor = if loss > 0.0 { sent / 2 } else { sent * 9 / 10 };
    assert!(arrived >= floor.max(1), "{what}: {arrived} of {sent} messages arrived");
}

/// A kcpx listener (echoing bytes and unreliable messages) serves a kcp-go
/// master client that sends 4 MiB and, while it does, up to 100 out-of-band
/// messages.
#[test]
fn kcpx_listener_serves_a_kcpgo_master_client() {
    let Some(peer) = peer() else { return };
    for method in METHODS {
        for loss in LOSSES {
            let what = format!("{method} at {loss} loss");
            let server = EchoServer::start("127.0.0.1:0", &config(method));
            let relay = relay(server.addr, loss, 0x6c);
            let addr = relay.as_ref().map_or(server.addr, |r| r.local_addr());
            let client = go(
                peer,
                "client",
                &addr.to_string(),
                method,
                &["-bytes", &BYTES.to_string(), "-oob", "100"],
            );
            let text = finish(client);
            let stats = server.stop();
            eprintln!(
                "{what}: {}\nkcpx listener: {stats:?}",
                text.lines().last().unwrap_or("")
            );
            assert!(text.contains(&format!("result ok bytes={BYTES}")), "{what}:\n{text}");
            // The client's own messages, echoed by kcpx: intact and distinct.
            let back = peer_messages(&text);
            let mut seen = std::collections::BTreeSet::new();
            for m in &back {
                let s = std::str::from_utf8(m).unwrap_or_else(|_| panic!("{what}: {m:?}"));
                let i: u32 = s
                    .strip_prefix("oob ")
                    .and_then(|i| i.parse().ok())
                    .unwrap_or_else(|| panic!("{what}: {s}"));
                assert!(i < 100, "{what}: {s}");
                // The relay duplicates 1% of datagrams; a direct path none.
                assert!(seen.insert(i) || loss > 0.0, "{what}: message {s} twice");
            }
            // The client sends while its stream runs: fewer than 100 when it ends first.
            let sent = text
                .lines()
                .find_map(|l| l.strip_prefix("oob sent=")?.split(' ').next()?.parse().ok())
                .unwrap_or_else(|| panic!("{what}: no oob line:\n{text}"));
            most(seen.len(), sent, loss, &what);
        }
    }
}

/// A kcpx dialer against a kcp-go master listener that echoes the stream and
/// sends 100 out-of-band messages; the dialer sends its own every 20 ms.
#[test]
fn kcpx_dialer_talks_to_a_kcpgo_master_listener() {
    let Some(peer) = peer() else { return };
    for method in METHODS {
        for loss in LOSSES {
            let what = format!("{method} at {loss} loss");
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let server = go(peer, "server", &server_addr.to_string(), method, &["-oob", "100"]);
            std::thread::sleep(Duration::from_millis(300));
            let relay = relay(server_addr, loss, 0x6d);
            let addr = relay.as_ref().map_or(server_addr, |r| r.local_addr());
            let (up, got) = dial_and_echo(addr, &config(method), &what);
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
            let text = finish(server);
            let mine = peer_messages(&text);
            eprintln!("{what}: sent {up}, kcp-go got {}; kcp-go's: {got} arrived", mine.len());
            for m in &mine {
                assert!(m.starts_with(b"kcpx ") && m.len() == 64, "{what}: {m:?}");
            }
            most(mine.len(), up, loss, &what);
            most(got, 100, loss, &what);
        }
    }
}

/// Sends 4 MiB and an unreliable message every 20 ms through a dialer, reads
/// the echo byte-exact and the peer's messages; returns (messages sent,
/// messages of the peer's that arrived, each checked).
fn dial_and_echo(to: SocketAddr, cfg: &Config, what: &str) -> (usize, usize) {
    let data = sim::Rng::new(0x4d).bytes(BYTES);
    let mut client = Dialer::connect(to, cfg).unwrap();
    assert!(client.datagram_max().unwrap() >= 64);
    let (mut sent, mut echoed, mut up, mut got) = (0, Vec::with_capacity(BYTES), 0usize, 0usize);
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut next = Instant::now();
    while echoed.len() < BYTES || up < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what}: {} of {BYTES} bytes",
            echoed.len()
        );
        if Instant::now() >= next {
            next += Duration::from_millis(20);
            let mut m = format!("kcpx {up}").into_bytes();
            m.resize(64, b'.');
            assert_eq!(client.send_datagram(&m), Ok(64), "{what}");
            up += 1;
        }
        while sent < BYTES {
            match client.send(&data[sent..(sent + 65536).min(BYTES)]) {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => panic!("{what}: send: {e}"),
            }
        }
        client.wait(5).unwrap();
        while client.poll_event().is_some() {}
        while let Ok(n) = client.recv(&mut buf) {
            echoed.extend_from_slice(&buf[..n]);
        }
        assert!(
            data.starts_with(&echoed),
            "{what}: the stream corrupted at {}",
            echoed.len()
        );
        while let Ok(n) = client.recv_datagram(&mut buf) {
            let s = std::str::from_utf8(&buf[..n]).unwrap_or_else(|_| panic!("{what}: {:?}", &buf[..n]));
            assert!(
                s.strip_prefix("oob ")
                    .is_some_and(|i| i.parse::<u32>().is_ok_and(|i| i < 100)),
                "{what}: {s}"
            );
            got += 1;
        }
    }
    // The peer's last messages, still on their way.
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        client.wait(5).unwrap();
        while let Ok(n) = client.recv_datagram(&mut buf) {
            assert!(buf[..n].starts_with(b"oob "), "{what}");
            got += 1;
        }
    }
    let s = client.endpoint().session_stats(client.id()).unwrap();
    assert_eq!(s.datagrams_foreign, 0, "{what}");
    client.close(300);
    (up, got)
}
