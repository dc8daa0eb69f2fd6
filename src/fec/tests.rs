//! Unit tests of the FEC encoder and decoder. Every randomised test uses a seeded
//! generator and names its seed in the failure message.
#![forbid(unsafe_code)]

use super::decoder::Shard;
use super::wire::{read_u16, read_u32};
use super::*;

/// The tests' one seeded generator (`tests/support/sim.rs`).
pub(super) use crate::sim::Rng;

const OFFSET: usize = 20; // as if a crypto header were in front
const MTU: usize = 1400;

fn config(ds: usize, ps: usize) -> FecConfig {
    FecConfig::new(ds, ps).unwrap()
}

/// A datagram with `offset` bytes of crypto-header space and the FEC header
/// space in front of `kcp`.
fn datagram(offset: usize, kcp: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; offset + FEC_DATA_OVERHEAD];
    d.extend_from_slice(kcp);
    d
}

/// Encodes `payloads`, returning every datagram (without the crypto space) in
/// send order.
fn encode_all(encoder: &mut FecEncoder, payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let offset = encoder.header_offset;
    let mut out = Vec::new();
    for p in payloads {
        let mut d = datagram(offset, p);
        let parity: Vec<Vec<u8>> = encoder
            .encode(&mut d, 0)
            .unwrap()
            .iter()
            .map(|p| p[offset..].to_vec())
            .collect();
        out.push(d[offset..].to_vec());
        out.extend(parity);
    }
    out
}

fn payloads(rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let len = 24 + rng.index(MTU - OFFSET - FEC_DATA_OVERHEAD - 24);
            rng.bytes(len)
        })
        .collect()
}

#[test]
fn config_is_validated() {
    assert!(FecConfig::new(0, 3).is_err());
    assert!(FecConfig::new(10, 0).is_err());
    assert!(FecConfig::new(200, 57).is_err());
    assert_eq!(FecConfig::new(200, 56).unwrap().total_shards(), 256);
    assert_eq!(config(10, 3).seqid_wrap(), u32::MAX / 13 * 13);
}

#[test]
#[cfg_attr(miri, ignore = "the crate's encoder is UB under Stacked Borrows (see matrix.rs)")]
fn encoder_writes_kcpgo_headers_and_parity() {
    let mut rng = Rng::new(1);
    let cfg = config(3, 2);
    let mut encoder = FecEncoder::new(cfg, OFFSET, MTU);
    let input = payloads(&mut rng, 6);
    let wire = encode_all(&mut encoder, &input);
    assert_eq!(wire.len(), 10);
    for (seqid, d) in wire.iter().enumerate() {
        assert_eq!(read_u32(d, 0), seqid as u32);
        let kind = read_u16(d, 4);
        assert_eq!(
            kind,
            if cfg.is_data_seqid(seqid as u32) {
                TYPE_DATA
            } else {
                TYPE_PARITY
            }
        );
    }
    // Data: size field = 2 + KCP bytes; parity = RS over zero-padded shards,
    // checked against the reed-solomon-erasure crate's own encoder.
    let codec = reed_solomon_erasure::galois_8::ReedSolomon::new(3, 2).unwrap();
    for group in 0..2 {
        let data = &wire[group * 5..group * 5 + 3];
        for (d, p) in data.iter().zip(&input[group * 3..]) {
            assert_eq!(usize::from(read_u16(d, 6)), 2 + p.len());
            assert_eq!(&d[8..], &p[..]);
        }
        let max = data.iter().map(|d| d.len()).max().unwrap();
        let mut shards: Vec<Vec<u8>> = data
            .iter()
            .map(|d| {
                let mut s = d[6..].to_vec();
                s.resize(max - 6, 0);
                s
            })
            .collect();
        shards.extend([vec![0; max - 6], vec![0; max - 6]]);
        codec.encode(&mut shards).unwrap();
        for j in 0..2 {
            let parity = &wire[group * 5 + 3 + j];
            assert_eq!(parity.len(), max, "parity as long as the longest data datagram");
            assert_eq!(&parity[6..], &shards[3 + j][..]);
        }
    }
}

#[test]
fn encoder_wraps_seqid_after_parity() {
    let cfg = config(10, 3);
    let mut encoder = FecEncoder::new(cfg, 0, MTU);
    encoder.next = cfg.seqid_wrap() - 13;
    let mut last = 0;
    for _ in 0..10 {
        let mut d = vec![0u8; 40];
        for p in encoder.encode(&mut d, 0).unwrap() {
            last = read_u32(p, 0);
        }
    }
    assert_eq!(last, cfg.seqid_wrap() - 1);
    assert_eq!(encoder.next_seqid(), 0);
}

#[test]
fn a_group_completed_after_a_pause_gets_no_parity() {
    let mut encoder = FecEncoder::new(config(3, 2), 0, MTU);
    let parity_at = |encoder: &mut FecEncoder, now: u32| {
        let mut d = vec![0u8; 40];
        encoder.encode(&mut d, now).unwrap().len()
    };
    // Steady traffic: parity after each group.
    assert_eq!([0, 10, 20].map(|t| parity_at(&mut encoder, t)), [0, 0, 2]);
    // The last shard after a pause of the gap: none, its seqids skipped.
    let gap = PARITY_SKIP_GAP_MS;
    assert_eq!([30, 40, 40 + gap].map(|t| parity_at(&mut encoder, t)), [0, 0, 0]);
    assert_eq!(encoder.next_seqid(), 10);
    // A gap before the group's first shard alone does not count.
    assert_eq!(
        [2 * gap + 40, 2 * gap + 41, 2 * gap + 42].map(|t| parity_at(&mut encoder, t)),
        [0, 0, 2]
    );
    // A clock that goes back, and wrapping times, skip nothing.
    assert_eq!([10, 5, 0].map(|t| parity_at(&mut encoder, t)), [0, 0, 2]);
    assert_eq!(
        [u32::MAX - 1, u32::MAX, 3].map(|t| parity_at(&mut encoder, t)),
        [0, 0, 2]
    );
    assert_eq!(encoder.next_seqid(), 25);
}

#[test]
fn encoder_rejects_bad_lengths() {
    let mut encoder = FecEncoder::new(config(2, 1), OFFSET, 100);
    assert_eq!(
        encoder.encode(&mut [0u8; OFFSET + 7], 0).unwrap_err(),
        FecError::TooShort
    );
    assert_eq!(encoder.encode(&mut [0u8; 101], 0).unwrap_err(), FecError::TooLong);
    assert_eq!(encoder.next_seqid(), 0);
}

/// What a receiver got: each payload delivered (regular or recovered) at most
/// counted, and recovered payloads checked against the originals.
#[derive(Default, Debug)]
struct Received {
    regular: usize,
    recovered: usize,
}

fn feed(
    decoder: &mut FecDecoder,
    wire: &[Vec<u8>],
    keep: impl Fn(usize) -> bool,
    originals: &[Vec<u8>],
    seed: u64,
) -> Received {
    let mut got = Received::default();
    for (i, d) in wire.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        match decoder.decode(d, i as u32) {
            FecInput::Data(kcp) => {
                assert!(
                    originals.iter().any(|o| o[..] == *kcp),
                    "seed {seed}: data shard altered"
                );
                got.regular += 1;
            }
            FecInput::Parity => {}
            // A parity shard of a peer with other shard counts can fall into
            // a group of ours whose data is longer: dropped as truncated.
            FecInput::Inconsistent if read_u16(d, 4) == TYPE_PARITY => {}
            other => panic!("seed {seed}: unexpected {other:?}"),
        }
        for r in decoder.recovered() {
            assert!(originals.iter().any(|o| o[..] == *r), "seed {seed}: recovered garbage");
            got.recovered += 1;
        }
    }
    got
}

#[test]
fn round_trip_with_seeded_random_loss() {
    let mut total_recovered = 0;
    for seed in 0..40u64 {
        let mut rng = Rng::new(seed);
        let (ds, ps) = [(10, 3), (3, 2), (1, 1), (5, 5), (20, 10)][seed as usize % 5];
        let cfg = config(ds, ps);
        let mut encoder = FecEncoder::new(cfg, 0, MTU);
        let input = payloads(&mut rng, 40 * ds);
        let wire = encode_all(&mut encoder, &input);
        let loss = [0, 5, 10, 20, 30][(seed / 5) as usize % 5];
        let lost: Vec<bool> = (0..wire.len()).map(|_| rng.percent(loss)).collect();
        let mut decoder = FecDecoder::new(cfg, MTU);
        let got = feed(&mut decoder, &wire, |i| !lost[i], &input, seed);
        assert!(got.regular + got.recovered <= input.len(), "seed {seed}");
        // Every group after the sync threshold with <= ps losses is fully recovered.
        let n = cfg.total_shards();
        let mut expect = 0;
        let mut seen = 0;
        for g in 0..wire.len() / n {
            let group = &lost[g * n..(g + 1) * n];
            let lost_data = group[..ds].iter().filter(|&&l| l).count();
            let lost_all = group.iter().filter(|&&l| l).count();
            let received_before = seen;
            seen += n - lost_all;
            if lost_data > 0 && lost_all <= ps && received_before >= decoder.sync_threshold() {
                expect += lost_data;
            }
        }
        assert!(
            got.recovered >= expect,
            "seed {seed} {ds}/{ps} loss {loss}%: {got:?} expected >= {expect}"
        );
        assert_eq!(decoder.stats().recovered as usize, got.recovered);
        assert_eq!(decoder.stats().inconsistent, 0, "seed {seed}: intact shards refused");
        assert!(decoder.queued() <= 3 * n);
        total_recovered += got.recovered;
    }
    assert!(total_recovered > 100, "only {total_recovered} recovered");
}

#[test]
fn tolerates_seqid_gaps_and_parity_less_groups() {
    let seed = 77;
    let mut rng = Rng::new(seed);
    let cfg = config(4, 2);
    let mut encoder = FecEncoder::new(cfg, 0, MTU);
    let input = payloads(&mut rng, 200);
    let mut wire = Vec::new();
    for (k, p) in input.iter().enumerate() {
        let mut d = datagram(0, p);
        let d = &mut d[..];
        let parity: Vec<Vec<u8>> = encoder.encode(d, 0).unwrap().iter().map(|p| p.to_vec()).collect();
        wire.push(d.to_vec());
        // Newer kcp-go: some groups go without parity (seqids still advance).
        if (k / 4) % 3 != 1 {
            wire.extend(parity);
        }
        // Occasionally a jump of whole groups in seqid (a restarted encoder side).
        if k % 50 == 49 {
            encoder.next = encoder.next.wrapping_add(6 * 7);
        }
    }
    let lost: Vec<bool> = (0..wire.len()).map(|_| rng.percent(10)).collect();
    let mut decoder = FecDecoder::new(cfg, MTU);
    let got = feed(&mut decoder, &wire, |i| !lost[i], &input, seed);
    assert!(got.recovered > 0, "seed {seed}: {got:?}");
    assert_eq!(decoder.stats().pattern_mismatches, 0);
}

#[test]
fn refuses_to_reconstruct_with_other_shard_counts() {
    // kcp-go 5.6.1 corrupts the stream here; we must never hand out a shard.
    let pairs = [
        ((3, 2), (10, 3)),
        ((10, 3), (3, 2)),
        ((10, 3), (10, 4)),
        ((10, 4), (10, 3)),
        ((11, 3), (10, 3)),
        ((1, 1), (1, 2)),
        ((128, 128), (127, 129)),
    ];
    for (k, ((eds, eps), (dds, dps))) in pairs.into_iter().enumerate() {
        for loss in [0, 10, 30] {
            let seed = 1000 + k as u64 * 100 + loss;
            let mut rng = Rng::new(seed);
            let mut encoder = FecEncoder::new(config(eds, eps), 0, 400);
            let input = (0..600)
                .map(|_| {
                    let l = 24 + rng.index(300);
                    rng.bytes(l)
                })
                .collect::<Vec<_>>();
            let wire = encode_all(&mut encoder, &input);
            let lost: Vec<bool> = (0..wire.len()).map(|_| rng.percent(loss)).collect();
            let mut decoder = FecDecoder::new(config(dds, dps), 400);
            let got = feed(&mut decoder, &wire, |i| !lost[i], &input, seed);
            assert_eq!(got.recovered, 0, "seed {seed}: {eds}/{eps} -> {dds}/{dps}");
            assert!(decoder.stats().pattern_mismatches > 0);
            assert!(!decoder.in_sync() || loss > 0);
        }
    }
}

#[test]
fn oob_and_foreign_datagrams_are_reported() {
    let mut decoder = FecDecoder::new(config(2, 1), MTU);
    let mut oob = vec![0u8; 30];
    frame_oob(&mut oob, 0);
    oob[8..12].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(
        &oob[..8],
        [0xff, 0xff, 0xff, 0xff, 0xf3, 0, 24, 0],
        "kcp-go master's layout"
    );
    assert_eq!(decoder.decode(&oob, 0), FecInput::Oob(&oob[8..]));
    // An out-of-band message too short for its conv, or whose size field
    // disagrees with its length, is refused like a data shard.
    let mut short_oob = oob[..11].to_vec();
    assert_eq!(classify(&short_oob), FecInput::Malformed);
    short_oob.extend_from_slice(&[0; 3]);
    assert_eq!(classify(&short_oob), FecInput::Inconsistent);
    assert_eq!(decoder.decode(&[1, 2, 3], 0), FecInput::NotFec);
    let mut kcp = vec![0u8; 24];
    kcp[4] = 81; // IKCP_CMD_PUSH at offset 4: never an FEC type
    assert_eq!(decoder.decode(&kcp, 0), FecInput::NotFec);
    let mut short = vec![0u8; 7];
    short[4..6].copy_from_slice(&TYPE_DATA.to_le_bytes());
    assert_eq!(decoder.decode(&short, 0), FecInput::Malformed);
    let s = decoder.stats();
    assert_eq!((s.oob_ignored, s.malformed), (1, 1));
    assert_eq!(classify(&oob), FecInput::Oob(&oob[8..]));
    assert_eq!(classify(&kcp), FecInput::NotFec);
    assert_eq!(classify(&short), FecInput::Malformed);
    assert_eq!(decoder.queued(), 0);
}

#[test]
fn late_parity_of_complete_group_is_not_recovered_again() {
    let cfg = config(1, 1);
    let mut encoder = FecEncoder::new(cfg, 0, MTU);
    let mut rng = Rng::new(5);
    let input = payloads(&mut rng, 20);
    let wire = encode_all(&mut encoder, &input);
    let mut decoder = FecDecoder::new(cfg, MTU);
    let got = feed(&mut decoder, &wire, |_| true, &input, 5);
    assert_eq!((got.regular, got.recovered), (20, 0));
    assert_eq!(decoder.stats().short_shards, 0);
}

#[test]
fn shards_expire_after_sixty_seconds() {
    let cfg = config(3, 1);
    let mut encoder = FecEncoder::new(cfg, 0, MTU);
    let mut d = datagram(0, &[7; 30]);
    encoder.encode(&mut d, 0).unwrap();
    let mut decoder = FecDecoder::new(cfg, MTU);
    decoder.decode(&d, u32::MAX - 10);
    assert_eq!(decoder.queued(), 1);
    let mut other = vec![0u8; 10];
    other[0] = 1;
    other[4..6].copy_from_slice(&TYPE_DATA.to_le_bytes());
    other[6] = 4; // size field: the shard's length
    decoder.decode(&other, 59_000);
    assert_eq!(decoder.queued(), 2, "59 s later (across the clock wrap): still kept");
    other[0] = 2;
    decoder.decode(&other, 60_000);
    assert_eq!(decoder.queued(), 2, "the first shard expired");
}

#[test]
fn hostile_input_never_panics_and_memory_stays_bounded() {
    for seed in 0..20u64 {
        let mut rng = Rng::new(seed);
        let (ds, ps) = [(10, 3), (1, 1), (60, 20), (3, 2)][seed as usize % 4];
        let cfg = config(ds, ps);
        let mut encoder = FecEncoder::new(cfg, 0, MTU);
        let input = payloads(&mut rng, 300);
        let mut wire = encode_all(&mut encoder, &input);
        let mut decoder = FecDecoder::new(cfg, 600);
        for (i, d) in wire.iter_mut().enumerate() {
            match rng.index(6) {
                0 => d.truncate(rng.index(d.len() + 1)),
                1 => {
                    let at = rng.index(d.len());
                    d[at] ^= 1 << rng.index(8);
                }
                2 => {
                    let len = rng.index(1600);
                    *d = rng.bytes(len);
                }
                3 => {
                    let at = rng.index(d.len().min(8));
                    d[at] = rng.next_u64() as u8; // header damage
                }
                _ => {}
            }
            let _ = decoder.decode(d, (i as u32).wrapping_mul(997));
            for r in decoder.recovered() {
                assert!(r.len() <= 600, "seed {seed}");
            }
            assert!(decoder.queued() <= 3 * cfg.total_shards(), "seed {seed}");
            let spare = decoder.spare.as_ref();
            let (pool, recovered) = spare.map_or((0, 0), |s| (s.pool.len(), s.recovered.len()));
            let buffers = decoder.queue.len() + pool + recovered;
            assert!(
                buffers <= 3 * cfg.total_shards() + 1 + ds,
                "seed {seed}: {buffers} buffers"
            );
            let mut pool = spare.iter().flat_map(|s| s.pool.iter());
            assert!(pool.all(|b| b.capacity() <= 4096), "seed {seed}");
        }
    }
}

#[test]
fn duplicates_are_ignored_but_still_delivered() {
    let cfg = config(2, 1);
    let mut encoder = FecEncoder::new(cfg, 0, MTU);
    let wire = encode_all(&mut encoder, &[vec![1; 30], vec![2; 40]]);
    let mut decoder = FecDecoder::new(cfg, MTU);
    assert_eq!(decoder.decode(&wire[0], 0), FecInput::Data(&[1; 30]));
    assert_eq!(decoder.decode(&wire[0], 0), FecInput::Data(&[1; 30]));
    assert_eq!(decoder.queued(), 1);
}

/// One group of 3 data + 2 parity shards, with the data shards' lengths
/// given; returns the KCP payloads and the wire (offset 0).
fn one_group(seed: u64, lens: [usize; 3]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = Rng::new(seed);
    let input: Vec<Vec<u8>> = lens.iter().map(|&n| rng.bytes(n)).collect();
    let mut encoder = FecEncoder::new(config(3, 2), 0, MTU);
    let wire = encode_all(&mut encoder, &input);
    assert_eq!(wire.len(), 5);
    (input, wire)
}

fn synced_decoder() -> FecDecoder {
    let mut decoder = FecDecoder::new(config(3, 2), MTU);
    decoder.set_sync_threshold(0);
    decoder
}

#[test]
fn truncated_data_shard_never_enters_reconstruction() {
    // Shard 0 arrives cut short (a receive buffer shorter than the datagram,
    // no CRC to catch it), shard 1 is lost: the two parity shards and shard
    // 2 must rebuild both exactly. Zero-padding the truncated shard instead
    // rebuilds shard 1 with wrong bytes that pass KCP's checks.
    for seed in 0..20u64 {
        let (input, wire) = one_group(seed, [400, 300, 200]);
        let mut decoder = synced_decoder();
        let cut = 8 + Rng::new(seed).index(300);
        assert_eq!(
            decoder.decode(&wire[0][..cut], 0),
            FecInput::Inconsistent,
            "seed {seed}"
        );
        let mut recovered = Vec::new();
        for d in &wire[2..] {
            decoder.decode(d, 0);
            recovered.extend(decoder.recovered().map(<[u8]>::to_vec));
        }
        recovered.sort_by_key(Vec::len);
        assert_eq!(recovered, [input[1].clone(), input[0].clone()], "seed {seed}");
        assert_eq!(decoder.stats().inconsistent, 1, "seed {seed}");
        // Bytes appended after the size field's end are as suspect.
        let mut padded = wire[0].clone();
        padded.push(0);
        assert_eq!(classify(&padded), FecInput::Inconsistent);
    }
}

#[test]
fn truncated_parity_shard_never_enters_reconstruction() {
    for seed in 0..20u64 {
        let (input, wire) = one_group(seed, [400, 300, 200]);
        let mut decoder = synced_decoder();
        // Shard 0 (the longest) lost; parity 0 cut below shard 1's length.
        let cut = 6 + Rng::new(seed).index(300);
        decoder.decode(&wire[1], 0);
        assert_eq!(
            decoder.decode(&wire[3][..cut], 0),
            FecInput::Inconsistent,
            "seed {seed}"
        );
        assert_eq!(decoder.recovered().count(), 0, "seed {seed}");
        decoder.decode(&wire[2], 0);
        assert_eq!(
            decoder.recovered().count(),
            0,
            "seed {seed}: rebuilt from a truncated parity"
        );
        assert_eq!(decoder.decode(&wire[4], 0), FecInput::Parity);
        let recovered: Vec<Vec<u8>> = decoder.recovered().map(<[u8]>::to_vec).collect();
        assert_eq!(recovered, [input[0].clone()], "seed {seed}");

        // Truncated parity first: dropped as soon as a longer shard of its
        // group shows it was cut, whatever the arrival order.
        let mut decoder = synced_decoder();
        assert_eq!(decoder.decode(&wire[3][..cut], 0), FecInput::Parity, "seed {seed}");
        decoder.decode(&wire[1], 0);
        decoder.decode(&wire[2], 0);
        assert_eq!(decoder.recovered().count(), 0, "seed {seed}");
        decoder.decode(&wire[4], 0);
        let recovered: Vec<Vec<u8>> = decoder.recovered().map(<[u8]>::to_vec).collect();
        assert_eq!(recovered, [input[0].clone()], "seed {seed}");
        assert_eq!(decoder.stats().inconsistent, 1, "seed {seed}");
    }
}

/// Shedding at any point of a group changes no byte the encoder produces.
/// Compacting ends the incomplete group: its parity is never sent, the
/// next datagram starts the next group (seqid at a group boundary), and
/// every group that does get its parity rebuilds a lost data shard
/// exactly. A decoder that sheds its incomplete groups still decodes (and
/// rebuilds from shards received afterwards).
#[test]
fn shed_and_compact_leave_the_wire_bytes_alone() {
    for seed in 1..=20u64 {
        let mut rng = Rng::new(seed);
        let data = payloads(&mut rng, 57);
        let mut plain = FecEncoder::new(config(10, 3), OFFSET, MTU);
        let expected = encode_all(&mut plain, &data);
        let mut encoder = FecEncoder::new(config(10, 3), OFFSET, MTU);
        let mut got = Vec::new();
        for p in &data {
            if rng.index(2) == 0 {
                encoder.shed();
            }
            got.extend(encode_all(&mut encoder, core::slice::from_ref(p)));
        }
        assert_eq!(got, expected, "seed {seed}");

        // Compacted at random points: seqids jump to the next group, and
        // a group's parity covers exactly the data shards sent in it.
        let mut encoder = FecEncoder::new(config(10, 3), OFFSET, MTU);
        let (mut wire, mut model, mut in_group) = (Vec::new(), 0u32, 0u32);
        for p in &data {
            if rng.index(4) == 0 {
                let ended = encoder.compact();
                assert_eq!(ended, in_group != 0, "seed {seed}");
                if ended {
                    model += 13 - in_group;
                    in_group = 0;
                }
                assert_eq!((encoder.heap_bytes(), encoder.next_seqid()), (0, model), "seed {seed}");
            }
            for d in encode_all(&mut encoder, core::slice::from_ref(p)) {
                assert_eq!(read_u32(&d, 0), model, "seed {seed}");
                (model, in_group) = (model + 1, (in_group + 1) % 13);
                wire.push(d);
            }
        }
        let mut decoder = FecDecoder::new(config(10, 3), MTU);
        decoder.set_sync_threshold(0);
        let (mut dropped, mut rebuilt) = (None, 0);
        for d in &wire {
            if read_u32(d, 0) % 13 == 0 {
                dropped = Some(d[8..].to_vec());
                continue;
            }
            decoder.decode(d, 0);
            for r in decoder.recovered() {
                assert_eq!(Some(r), dropped.as_deref(), "seed {seed}: a wrong shard was rebuilt");
                rebuilt += 1;
            }
        }
        let complete = wire.iter().filter(|d| read_u32(d, 0) % 13 == 10).count();
        assert_eq!(
            rebuilt, complete,
            "seed {seed}: every group with parity rebuilds its lost shard"
        );

        // The decoder forgets the incomplete groups it holds at random
        // points; every data shard still comes out once, regular or rebuilt.
        let mut decoder = FecDecoder::new(config(10, 3), MTU);
        decoder.set_sync_threshold(0);
        let mut delivered = Vec::new();
        for (i, d) in expected.iter().enumerate() {
            if rng.index(6) == 0 {
                decoder.shed_all();
                assert_eq!(decoder.queued(), 0);
            }
            if i % 13 == 4 {
                continue; // lost: one data shard per group
            }
            if let FecInput::Data(kcp) = decoder.decode(d, 0) {
                delivered.push(kcp.to_vec());
            }
            delivered.extend(decoder.recovered().map(<[u8]>::to_vec));
        }
        let lost = data.len() - delivered.len();
        assert!(lost <= data.len() / 10 + 1, "seed {seed}: {lost} never delivered");
        for kcp in &delivered {
            assert!(data.contains(kcp), "seed {seed}: a wrong shard was rebuilt");
        }
    }
}

/// Issue 17 item 4: the bytes of kept shards are counted as they come and
/// go, and a byte cap drops the oldest (counted), never what KCP needs.
#[test]
fn kept_bytes_are_counted_and_capped() {
    let cfg = config(10, 3);
    let mut encoder = FecEncoder::new(cfg, 0, MTU);
    let mut rng = Rng::new(41);
    let input = payloads(&mut rng, 60);
    let wire = encode_all(&mut encoder, &input);
    // Every group complete: nothing stays.
    let mut whole = FecDecoder::new(cfg, MTU);
    for d in &wire {
        whole.decode(d, 0);
    }
    assert_eq!(whole.kept_bytes(), 0, "complete groups are forgotten");
    // The first data shard of each group withheld, parity dropped: every
    // group stays incomplete and its shards are kept.
    let hostile: Vec<&Vec<u8>> = wire
        .iter()
        .filter(|d| {
            let seqid = u32::from_le_bytes(d[..4].try_into().unwrap());
            cfg.is_data_seqid(seqid) && seqid % 13 != 0
        })
        .collect();
    let mut open = FecDecoder::new(cfg, MTU);
    let mut capped = FecDecoder::new(cfg, MTU);
    let cap = 8 << 10;
    capped.set_keep_cap(Some(cap));
    for d in &hostile {
        open.decode(d, 0);
        capped.decode(d, 0);
        assert!(capped.kept_bytes() <= cap, "the cap holds: {}", capped.kept_bytes());
    }
    let per_shard = core::mem::size_of::<Shard>();
    let expected: usize = hostile
        .iter()
        .rev()
        .take(open.queued())
        .map(|d| d.len() - FEC_HEADER_LEN + per_shard)
        .sum();
    assert_eq!(open.kept_bytes(), expected, "kept bytes match the kept shards");
    assert!(capped.stats().capped > 0 && capped.kept_bytes() > cap / 2);
    open.drop_kept();
    assert_eq!((open.kept_bytes(), open.queued()), (0, 0));
    assert!(open.stats().capped > 0, "dropped shards are counted");
}
