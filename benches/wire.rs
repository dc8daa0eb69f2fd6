//! Throughput of the kcp-go wire transforms, printed as MB/s of payload.
//!
//! Run with `cargo bench --bench wire` (add `-- quick` for a short run, `--
//! ciphers` for the per-cipher rows alone, which `interop/bench-kcpgo.sh
//! ciphers` puts beside kcp-go's own figures). Absolute figures drift on a
//! shared machine: compare ratios from one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kcpx::crypt::{CryptMethod, PacketCrypt, HEADER_LEN};
use kcpx::fec::{FecConfig, FecDecoder, FecEncoder, FecInput, FEC_DATA_OVERHEAD};

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

/// MTU of the pipelines: kcp-go's default, crypto and FEC headers included.
const MTU: usize = 1400;
/// KCP bytes per full datagram with both headers on.
const KCP_BYTES: usize = MTU - HEADER_LEN - FEC_DATA_OVERHEAD;

/// A pseudo-random KCP payload (content does not matter to the transforms).
fn kcp_payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

/// The send path for one group: 10 KCP datagrams -> FEC 10/3 -> CRC -> AES-128-CFB.
/// `batched` seals the whole group (13 datagrams) with one `seal_many` call, as a
/// connection layer flushing several datagrams at once would.
fn encode_group(encoder: &mut FecEncoder, crypt: &PacketCrypt, out: &mut [Vec<u8>], kcp: &[u8], batched: bool) {
    let mut sent = 0;
    for _ in 0..encoder.config().data_shards() {
        let datagram = &mut out[sent];
        datagram[HEADER_LEN + FEC_DATA_OVERHEAD..].copy_from_slice(kcp);
        let parity = encoder.encode(datagram, 0).unwrap();
        if !batched {
            crypt.seal(datagram).unwrap();
            crypt.seal_many(parity).unwrap();
        } else {
            for (slot, p) in out[sent + 1..].iter_mut().zip(parity.iter()) {
                slot.copy_from_slice(p);
            }
        }
        sent += 1 + parity.len();
    }
    if batched {
        crypt.seal_many(&mut out[..sent]).unwrap();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });

    // Every kcp-go cipher as kcp-go's BenchmarkXxx (benchCrypt) measures it:
    // one 1500-byte datagram encrypted and decrypted, counted as 2 x 1500
    // bytes. Here with the nonce and CRC-32 (seal/open) on top.
    let key = [0x42u8; 32];
    for method in CryptMethod::ALL {
        let crypt = PacketCrypt::new(method, &key[..method.key_len()]).unwrap();
        let mut dgram = vec![0x5au8; 1500];
        report(
            &format!(
                "cipher {} seal+open 1500 B, counted as kcp-go (2x bytes)",
                method.name()
            ),
            mbps(budget, 2 * 1500, || {
                crypt.seal(black_box(&mut dgram)).unwrap();
                let _ = black_box(crypt.open(&mut dgram));
            }),
        );
    }
    if std::env::args().any(|a| a == "ciphers") {
        return;
    }
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
    let mut eight = vec![vec![0x5au8; 1500]; 8];
    report(
        "AES-128 seal_many(8)+open 1500 B, counted as kcp-go (2x bytes)",
        mbps(budget, 8 * 2 * 1500, || {
            aes128.seal_many(black_box(&mut eight)).unwrap();
            for d in &mut eight {
                let _ = black_box(aes128.open(d));
            }
        }),
    );
    report(
        "AES-128 seal 1400 B (one datagram at a time)",
        mbps(budget, 1400, || aes128.seal(black_box(&mut dgram[..1400])).unwrap()),
    );
    let mut ack = [0x5au8; HEADER_LEN + FEC_DATA_OVERHEAD + 24];
    report(
        "AES-128 seal 52 B (an ACK-only datagram with FEC)",
        mbps(budget, ack.len(), || aes128.seal(black_box(&mut ack)).unwrap()),
    );
    let mut batch = vec![vec![0x5au8; 1400]; 64];
    report(
        "AES-128 seal_many 64 x 1400 B",
        mbps(budget, 64 * 1400, || aes128.seal_many(black_box(&mut batch)).unwrap()),
    );
    let mut packed = vec![0x5au8; 64 * 1400];
    let ends: Vec<usize> = (1..=64).map(|i| i * 1400).collect();
    report(
        "AES-128 seal_packed 64 x 1400 B in one buffer",
        mbps(budget, 64 * 1400, || {
            aes128.seal_packed(black_box(&mut packed), 0, &ends).unwrap()
        }),
    );
    report(
        "AES-128 open 1400 B",
        mbps(budget, 1400, || {
            let _ = black_box(aes128.open(black_box(&mut dgram[..1400])));
        }),
    );

    // Nonce source: one getrandom call per datagram vs our AES-CTR generator.
    let mut nonce = [0u8; 16];
    report(
        "nonce: getrandom(16 bytes) per datagram (bytes of nonce)",
        mbps(budget, 16, || getrandom::getrandom(black_box(&mut nonce)).unwrap()),
    );
    let none = PacketCrypt::new(CryptMethod::None, &[]).unwrap();
    let mut tiny = [0u8; HEADER_LEN];
    report(
        "nonce: PacketCrypt none-cipher seal of a bare header (bytes of nonce)",
        mbps(budget, 16, || none.seal(black_box(&mut tiny)).unwrap()),
    );

    // FEC alone, as kcp-go's BenchmarkFECEncode: 1500-byte datagrams, 10/3, no crypto.
    let fec = FecConfig::new(10, 3).unwrap();
    let mut encoder = FecEncoder::new(fec, 0, 1500);
    let mut plain = kcp_payload(1500);
    report(
        "FEC 10/3 encode 1500 B (as kcp-go BenchmarkFECEncode)",
        mbps(budget, 1500, || {
            let _ = black_box(encoder.encode(black_box(&mut plain), 0).unwrap().len());
        }),
    );

    // Reed-Solomon alone, as klauspost/reedsolomon's Encode of 10 + 3 shards of
    // 1400 bytes (interop/go-bench's BenchmarkReedSolomonEncode*): 10 datagrams
    // whose shards (from the size field on) are 1400 bytes, counted as 10 x 1400
    // bytes per group; every kernel this CPU has, the default one last.
    let default_kernel = kcpx::fec::gf_kernel();
    for kernel in ["scalar", "avx2", "avx2-gfni", "avx512-gfni"] {
        if !kcpx::fec::select_gf_kernel(kernel) {
            continue;
        }
        let mut encoder = FecEncoder::new(fec, 0, 1406);
        let mut shards: Vec<Vec<u8>> = (0..10).map(|i| kcp_payload(1406 + i)[i..].to_vec()).collect();
        let chosen = if kernel == default_kernel {
            " (chosen at run time)"
        } else {
            ""
        };
        report(
            &format!("Reed-Solomon 10+3 encode, 1400 B shards, {kernel}{chosen}"),
            mbps(budget, 10 * 1400, || {
                for shard in &mut shards {
                    let _ = black_box(encoder.encode(black_box(shard), 0).unwrap().len());
                }
            }),
        );
    }
    kcpx::fec::select_gf_kernel(default_kernel);

    // FEC decode as kcp-go's BenchmarkFECDecode: 1 in 13 datagrams lost at random.
    let mut wire = Vec::new();
    let mut encoder = FecEncoder::new(fec, 0, 1500);
    for _ in 0..10 * 64 {
        let mut d = vec![0u8; FEC_DATA_OVERHEAD];
        d.extend(kcp_payload(1500 - FEC_DATA_OVERHEAD));
        let parity: Vec<Vec<u8>> = encoder.encode(&mut d, 0).unwrap().iter().map(|p| p.to_vec()).collect();
        wire.push(d);
        wire.extend(parity);
    }
    let mut decoder = FecDecoder::new(fec, 1500);
    let (mut seq, mut rng) = (0u32, 0x2545_f491_4f6c_dd1du64);
    let mut scratch = vec![0u8; 1500];
    report(
        "FEC 10/3 decode 1500 B, 1/13 random loss (as kcp-go BenchmarkFECDecode)",
        mbps(budget, 1500, || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            seq = seq.wrapping_add(1);
            if rng % 13 != 0 {
                // Fresh seqids, as kcp-go's benchmark writes seqid = i.
                let datagram = &wire[seq as usize % wire.len()];
                scratch[..datagram.len()].copy_from_slice(datagram);
                scratch[..4].copy_from_slice(&seq.to_le_bytes());
                let _ = black_box(decoder.decode(&scratch[..datagram.len()], seq));
                black_box(decoder.recovered().count());
            }
        }),
    );

    // The whole send path, counted in KCP payload bytes.
    let kcp = kcp_payload(KCP_BYTES);
    let mut out = vec![vec![0u8; MTU]; 13];
    for (name, batched) in [("one by one", false), ("seal_many per group", true)] {
        let mut encoder = FecEncoder::new(fec, HEADER_LEN, MTU);
        report(
            &format!("encode path KCP->FEC 10/3->CRC->AES-128, {name} (KCP bytes)"),
            mbps(budget, 10 * KCP_BYTES, || {
                encode_group(&mut encoder, &aes128, &mut out, &kcp, batched)
            }),
        );
    }

    // The receive path: open + FEC decode, no loss and 1 datagram in 13 lost.
    let mut encoder = FecEncoder::new(fec, HEADER_LEN, MTU);
    let mut sealed = Vec::new();
    for _ in 0..1024 {
        encode_group(&mut encoder, &aes128, &mut out, &kcp, true);
        sealed.extend(out.iter().cloned());
    }
    for (name, lose_every) in [("no loss", usize::MAX), ("1/13 lost", 13)] {
        let mut decoder = FecDecoder::new(fec, MTU);
        let mut scratch = vec![0u8; MTU];
        let (mut i, mut now) = (0usize, 0u32);
        report(
            &format!("decode path AES-128 open->FEC 10/3->KCP bytes, {name} (KCP bytes)"),
            mbps(budget, 10 * KCP_BYTES / 13, || {
                i = (i + 1) % sealed.len();
                now = now.wrapping_add(1);
                if i % lose_every == 5 {
                    return;
                }
                scratch.copy_from_slice(&sealed[i]);
                let payload = aes128.open(&mut scratch).unwrap();
                if let FecInput::Data(kcp) = decoder.decode(payload, now) {
                    black_box(kcp);
                }
                black_box(decoder.recovered().count());
            }),
        );
    }
}
