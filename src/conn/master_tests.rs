//! What kcp-go master's sender does that 5.6.1's does not, taken by a kcpx
//! receiver: FEC groups without parity (master skips a group's parity when
//! its data shards are more than 500 ms apart, but still advances the
//! sequence ids past it).

use super::tests::{config, Driven};
use crate::crypt::CryptMethod;
use crate::sim::Rng;

const SEED: u64 = 0x5eed_0f3c;

/// The FEC type of a datagram without a cipher (bytes 4..6).
fn fec_type(d: &[u8]) -> u16 {
    u16::from_le_bytes([d[4], d[5]])
}

/// Sends 256 KB from a to b, leaving out every parity shard when `skip`;
/// returns what b holds after the transfer and a quiet spell.
fn transfer(skip: bool) -> usize {
    println!("seed {SEED:#x}");
    let cfg = config(None, Some((10, 3)));
    let (mut a, mut b) = (Driven::new(9, &cfg).unwrap(), Driven::new(9, &cfg).unwrap());
    let data = Rng::new(SEED).bytes(256 * 1024);
    let (mut sent, mut got, mut skipped) = (0, Vec::new(), 0);
    let mut buf = vec![0u8; 1 << 16];
    for now in (0..20_000).step_by(5) {
        if sent < data.len() && a.kcp().wait_snd() < 256 {
            sent += a.send(&data[sent..(sent + 8000).min(data.len())]).unwrap();
        }
        a.update(now);
        for d in a.take_outbox().iter() {
            // Every parity shard left out, as master's sender does after a
            // gap: the sequence ids of the next group are past it all the same.
            if skip && fec_type(d) == 0xf2 {
                skipped += 1;
                continue;
            }
            b.input(d, now).unwrap();
        }
        b.update(now);
        for d in b.take_outbox().iter() {
            a.input(d, now).unwrap();
        }
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
    }
    assert!(got == data, "seed {SEED:#x}: {} of {} bytes", got.len(), data.len());
    let s = b.stats();
    println!("{skipped} parity shards skipped; receiver {s:?}");
    assert!(skipped > 50 || !skip);
    assert_eq!(
        (s.in_errs, s.fec_errs, s.fec_inconsistent, s.kcp_in_errors),
        (0, 0, 0, 0)
    );
    assert_eq!(s.retrans_segs, 0);
    // Groups that never complete hold nothing once the connection is quiet.
    for now in (20_000..40_000).step_by(100) {
        b.update(now);
        a.update(now);
    }
    b.shed_idle_memory();
    b.heap_bytes()
}

#[test]
fn groups_without_parity_are_taken_as_they_come() {
    let (skipped, whole) = (transfer(true), transfer(false));
    println!("receiver holds {skipped} B after groups without parity, {whole} B after whole groups");
    assert!(skipped <= whole, "incomplete groups pin {} bytes", skipped - whole);
}

#[test]
fn sealed_groups_without_parity_too() {
    let cfg = config(Some((CryptMethod::Aes128Gcm, 16)), Some((4, 2)));
    let (mut a, mut b) = (Driven::new(9, &cfg).unwrap(), Driven::new(9, &cfg).unwrap());
    let msg = Rng::new(SEED).bytes(8 * 1300);
    a.send(&msg).unwrap();
    a.update(0);
    a.update(10);
    let out = a.take_outbox();
    // Two groups of four data shards, each followed by its two parity
    // shards (sealed: the order tells them apart).
    assert_eq!(out.len(), 12);
    for (i, d) in out.iter().enumerate() {
        if i % 6 < 4 {
            b.input(d, 10).unwrap();
        }
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    while let Ok(n) = b.recv(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == msg, "{} of {} bytes", got.len(), msg.len());
    let s = b.stats();
    assert_eq!((s.in_errs, s.in_csum_errors, s.fec_parity_shards), (0, 0, 0));
}
