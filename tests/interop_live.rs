//! Live check against a running kcp-go 5.6.1 peer (the Go program in
//! `interop/go-peer`): a kcp-go client sends to a UDP socket of this test, dropping
//! a seeded share of its datagrams; we open and FEC-decode what arrives and check
//! that every segment rebuilt from parity equals the copy of the same segment that
//! kcp-go retransmitted. Nobody answers the client, so it keeps retransmitting.
//!
//! The test builds the peer itself with `interop/build-go-peer.sh` (Go and
//! Debian's kcp-go sources: `apt-get install golang-go
//! golang-github-xtaci-kcp-dev`), or uses the one `KCPX_GO_PEER` names. When
//! Go or kcp-go is missing the test skips loudly, and fails under CI unless
//! `KCPX_SKIP_GO=1` (the skip policy of `tests/support/skip.rs`).
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it

#[path = "support/go_peer.rs"]
mod go_peer;
#[path = "support/skip.rs"]
mod skip;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kcpx::crypt::{key_from_password, CryptMethod, PacketCrypt};
use kcpx::fec::{FecConfig, FecDecoder, FecInput, FecStats};

/// KCP segment identity and content, without the fields a retransmission changes
/// (ts, una, wnd).
type Segment = (u32, u8, u8, Vec<u8>);

/// Splits KCP bytes into segments keyed by sn: (conv, cmd, frg, data).
fn segments(mut kcp: &[u8]) -> Vec<(u32, Segment)> {
    let mut out = Vec::new();
    while kcp.len() >= 24 {
        let u32_at = |at: usize| u32::from_le_bytes(kcp[at..at + 4].try_into().unwrap());
        let len = u32_at(20) as usize;
        if kcp.len() < 24 + len {
            break;
        }
        out.push((u32_at(12), (u32_at(0), kcp[4], kcp[5], kcp[24..24 + len].to_vec())));
        kcp = &kcp[24 + len..];
    }
    out
}

struct Outcome {
    rebuilt: usize,
    compared: usize,
    mismatched: usize,
    stats: FecStats,
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a kcp-go client with FEC `sender` against our socket for `duration`
/// and decodes with `receiver`. Returns the rebuilt segments, how many of them
/// were compared with a retransmitted copy and how many of those differed, and
/// the decoder's counters.
fn run(peer: &Path, sender: (usize, usize), receiver: (usize, usize), duration: Duration) -> Outcome {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let _peer = Peer(
        Command::new(peer)
            .args(["client", "-addr", &addr, "-crypt", "aes-128", "-password", "kcpx-live"])
            .args([
                "-ds",
                &sender.0.to_string(),
                "-ps",
                &sender.1.to_string(),
                "-drop",
                "15",
                "-seed",
                "7",
            ])
            .args(["-bytes", "400000", "-msgsize", "1000", "-timeout", "30s"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start go-peer"),
    );
    let crypt = PacketCrypt::new(CryptMethod::Aes128, &key_from_password(b"kcpx-live", 16)).unwrap();
    let mut decoder = FecDecoder::new(FecConfig::new(receiver.0, receiver.1).unwrap(), 1500);
    let mut direct: HashMap<u32, Segment> = HashMap::new();
    let mut rebuilt: Vec<(u32, Segment)> = Vec::new();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    while start.elapsed() < duration {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(payload) = crypt.open(&mut buf[..n]) else {
            panic!("datagram failed to open")
        };
        if let FecInput::Data(kcp) = decoder.decode(payload, start.elapsed().as_millis() as u32) {
            direct.extend(segments(kcp));
        }
        for kcp in decoder.recovered() {
            rebuilt.extend(segments(kcp));
        }
    }
    let copies: Vec<bool> = rebuilt
        .iter()
        .filter_map(|(sn, s)| direct.get(sn).map(|copy| copy == s))
        .collect();
    Outcome {
        rebuilt: rebuilt.len(),
        compared: copies.len(),
        mismatched: copies.iter().filter(|same| !**same).count(),
        stats: decoder.stats(),
    }
}

#[test]
fn recovers_kcpgo_segments_and_refuses_mismatched_shard_counts() {
    let Some(peer) = go_peer::build("interop_live", "interop_live") else {
        return;
    };
    let same = run(&peer, (10, 3), (10, 3), Duration::from_secs(3));
    eprintln!(
        "same shard counts: {} segments rebuilt, {} compared with a retransmission, {} differ, {:?}",
        same.rebuilt, same.compared, same.mismatched, same.stats
    );
    assert!(same.compared > 0, "nothing recovered and retransmitted to compare");
    assert_eq!(same.mismatched, 0);
    assert_eq!(same.stats.pattern_mismatches, 0);

    let other = run(&peer, (10, 3), (3, 2), Duration::from_secs(2));
    eprintln!("kcp-go 10/3 -> us 3/2: {} rebuilt, {:?}", other.rebuilt, other.stats);
    assert_eq!(other.rebuilt, 0, "reconstructed with the wrong shard counts");
    assert!(other.stats.pattern_mismatches > 0);
}
