//! The rate limit on connections over the virtual clock: what leaves
//! follows the rate, data waits, ACKs never do, and a held-back connection
//! sleeps until its tokens.

use super::tests::{config, deliver, wire, Driven};
use super::*;
use crate::crypt::CryptMethod;
use crate::sim::Rng;

const SEED: u64 = 0x5eed_0018;

/// Sends `len` seeded bytes from `a` to `b` in 1 ms steps until all arrive
/// (at most `limit_ms`). Calls `each` after every step with the time and
/// `a`. Returns the time it took.
fn send_all(a: &mut Driven, b: &mut Driven, len: usize, limit_ms: u32, mut each: impl FnMut(u32, &Driven)) -> u32 {
    println!("seed {SEED:#x}");
    let data = Rng::new(SEED).bytes(len);
    let mut net = wire(SEED, 0);
    let (mut sent, mut got, mut buf) = (0, Vec::new(), vec![0u8; 1 << 16]);
    for now in 1..limit_ms {
        if sent < len && a.kcp().wait_snd() < 256 {
            sent += a.send(&data[sent..(sent + 4000).min(len)]).unwrap();
        }
        deliver(a, b, now, &mut net);
        deliver(b, a, now, &mut net);
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        each(now, a);
        if got.len() == len {
            assert!(got == data, "seed {SEED:#x}: bytes differ");
            return now;
        }
    }
    panic!("seed {SEED:#x}: {} of {len} bytes in {limit_ms} ms", got.len());
}

fn cfg() -> ConnConfig {
    config(Some((CryptMethod::Aes128, 16)), Some((10, 3)))
}

#[test]
fn what_leaves_follows_the_rate_and_the_transfer_completes() {
    let (rate, burst) = (100_000u64, 20_000u64);
    let mut limited = cfg();
    limited.set_rate_limit(rate as u32, burst as u32);
    let (mut a, mut b) = (Driven::new(9, &limited).unwrap(), Driven::new(9, &cfg()).unwrap());
    let len = 300_000;
    let mut worst = i64::MIN;
    let took = send_all(&mut a, &mut b, len, 20_000, |now, a| {
        // Beyond the burst and the rate: at most what one flush sends past
        // its data budget (FEC parity of that data, and ACKs).
        let allowed = burst + rate * u64::from(now) / 1000;
        worst = worst.max(a.stats().out_bytes as i64 - allowed as i64);
    });
    println!("took {took} ms, worst overshoot {worst} B");
    assert!(worst <= (burst / 2) as i64, "overshoot {worst} B");
    // 300 KB and its FEC parity (3 of 13) at 100 KB/s, less the burst.
    let floor = ((len as u64 * 13 / 10 - burst) * 1000 / rate) as u32;
    assert!(took >= floor, "the limit did not hold: {took} ms < {floor} ms");
    assert!(took <= floor * 3 / 2, "the limit slowed more than it must: {took} ms");
}

#[test]
fn acks_are_never_held_back() {
    let unlimited = {
        let (mut a, mut b) = (Driven::new(9, &cfg()).unwrap(), Driven::new(9, &cfg()).unwrap());
        send_all(&mut a, &mut b, 200_000, 20_000, |_, _| {})
    };
    // The receiver's cap is far below what its ACKs alone need.
    let mut tiny = cfg();
    tiny.set_rate_limit(1_000, 1);
    let (mut a, mut b) = (Driven::new(9, &cfg()).unwrap(), Driven::new(9, &tiny).unwrap());
    let limited = send_all(&mut a, &mut b, 200_000, 20_000, |_, _| {});
    println!("unlimited receiver {unlimited} ms, limited {limited} ms");
    assert!(
        limited <= unlimited * 2,
        "ACKs waited: {limited} ms against {unlimited} ms"
    );
    // Its burst is one MTU and it earns a byte per millisecond.
    let cap = 1_400 + u64::from(limited);
    assert!(
        b.stats().out_bytes > 2 * cap,
        "the receiver's ACKs were capped: {:?}",
        b.stats()
    );
}

#[test]
fn a_held_back_connection_sleeps_until_its_tokens() {
    let mut limited = cfg();
    limited.set_rate_limit(20_000, 1_400);
    let mut a = Driven::new(9, &limited).unwrap();
    let mut b = Driven::new(9, &cfg()).unwrap();
    let (mut due, mut idle_wakeups) = (0u32, 0u32);
    let data = Rng::new(SEED).bytes(40_000);
    a.send(&data).unwrap();
    let mut net = wire(SEED, 0);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    let mut now: u32 = 0;
    while got < data.len() {
        now += 1;
        assert!(now < 30_000, "seed {SEED:#x}: stalled at {got} bytes");
        if (now.wrapping_sub(due) as i32) >= 0 {
            let before = a.stats().out_pkts;
            deliver(&mut a, &mut b, now, &mut net);
            idle_wakeups += u32::from(a.stats().out_pkts == before);
            due = a.check(now);
        }
        b.update(now);
        for d in b.take_outbox().iter() {
            a.input(d, now).unwrap();
            due = a.check(now);
        }
        while let Ok(n) = b.recv(&mut buf) {
            got += n;
        }
    }
    // 40 KB with parity at 20 KB/s is about 2.6 s: a connection waking
    // every millisecond would have thousands of wakeups with nothing to send.
    println!("{now} ms, {idle_wakeups} wakeups that sent nothing");
    assert!(idle_wakeups <= now / 5, "{idle_wakeups} idle wakeups in {now} ms");
}

#[test]
fn acks_filling_a_datagram_leave_before_the_interval() {
    let mut slow = cfg();
    slow.set_nodelay(0, 1000, 0, 1);
    slow.set_window(512, 512).unwrap();
    let (mut a, mut b) = (Driven::new(9, &slow).unwrap(), Driven::new(9, &slow).unwrap());
    a.update(0);
    b.update(0);
    // The next interval flush is at 1000 ms; everything below happens at 1.
    a.send(&Rng::new(SEED).bytes(200 * 1300)).unwrap();
    a.flush();
    let burst = a.take_outbox();
    let per_datagram = (b.kcp().mtu() / crate::kcp::OVERHEAD) as usize;
    let mut acked_early = false;
    for (i, d) in burst.iter().enumerate() {
        b.input(d, 1).unwrap();
        if b.check(1) == 1 {
            b.update(1);
            let out = b.take_outbox();
            acked_early = !out.is_empty();
            assert!(i + 1 >= per_datagram, "after {} datagrams", i + 1);
            break;
        }
    }
    assert!(acked_early, "no ACK flush before the next interval");
}
