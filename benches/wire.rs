//! Throughput of the kcp-go wire transforms, printed as MB/s of payload.
//!
//! Run with `cargo bench --bench wire` (add `-- quick` for a short run). Absolute
//! figures drift on a shared machine: compare ratios from one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kcpx::crypt::{CryptMethod, PacketCrypt};

/// Runs `step` (which processes `bytes` bytes) repeatedly for about `budget` and
/// returns MB/s (10^6 bytes per second), best of three rounds.
fn mbps(budget: Duration, bytes: usize, mut step: impl FnMut()) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut iterations = 0u64;
        while start.elapsed() < budget / 3 {
            for _ in 0..64 {
                step();
            }
            iterations += 64;
        }
        let rate = (iterations as f64 * bytes as f64) / start.elapsed().as_secs_f64() / 1e6;
        best = best.max(rate);
    }
    best
}

fn report(name: &str, rate: f64) {
    println!("{name:<58} {rate:>9.0} MB/s");
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let aes128 = PacketCrypt::new(CryptMethod::Aes128, &[0x42; 16]).unwrap();

    // kcp-go's BenchmarkAES128 counts 2 x 1500 bytes per encrypt+decrypt pair.
    let mut dgram = vec![0x5au8; 1500];
    report(
        "AES-128 seal+open 1500 B, counted as kcp-go (2x bytes)",
        mbps(budget, 2 * 1500, || {
            aes128.seal(black_box(&mut dgram)).unwrap();
            let _ = black_box(aes128.open(&mut dgram));
        }),
    );
    report("AES-128 seal 1400 B (one datagram at a time)", mbps(budget, 1400, || {
        aes128.seal(black_box(&mut dgram[..1400])).unwrap()
    }));
    let mut batch = vec![vec![0x5au8; 1400]; 64];
    report("AES-128 seal_many 64 x 1400 B", mbps(budget, 64 * 1400, || {
        aes128.seal_many(black_box(&mut batch)).unwrap()
    }));
    report("AES-128 open 1400 B", mbps(budget, 1400, || {
        let _ = black_box(aes128.open(black_box(&mut dgram[..1400])));
    }));
}
