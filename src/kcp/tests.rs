//! Behaviour tests of the core on a virtual clock. The byte-for-byte
//! comparison with pristine ikcp.c lives in c_tests/ (differential harness).

use super::*;

use crate::sim::{LinkConfig, Rng, SimNet};

/// Where the two endpoints sit on the simulated network.
fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Two endpoints joined by a lossy, delaying, reordering network
/// (`tests/support/sim.rs`) on a virtual clock.
struct Pair {
    a: Kcp,
    b: Kcp,
    now: u32,
    rng: Rng,
    net: SimNet,
}

impl Pair {
    fn new(seed: u64, loss_percent: u64) -> Pair {
        let link = LinkConfig {
            delay_ms: 5,
            jitter_ms: 19, // 5..=24 ms: datagrams overtake each other
            loss: loss_percent as f64 / 100.0,
            duplicate: 0.0,
        };
        Pair {
            a: Kcp::new(1),
            b: Kcp::new(1),
            now: 0,
            rng: Rng::new(!seed), // not the network's sequence
            net: SimNet::new(seed, link),
        }
    }

    /// Advances the clock by `ms`, updating both ends and delivering.
    fn step(&mut self, ms: u32) {
        self.now = self.now.wrapping_add(ms);
        let now = self.now;
        let mut out = vec![];
        self.a.update(now, |d| out.push((addr(1), addr(2), d.to_vec())));
        self.b.update(now, |d| out.push((addr(2), addr(1), d.to_vec())));
        for (from, to, d) in out {
            self.net.send(u64::from(now), from, to, &d);
        }
        for d in self.net.arrivals(u64::from(now)) {
            let r = if d.to == addr(2) {
                self.b.input(&d.bytes)
            } else {
                self.a.input(&d.bytes)
            };
            assert_eq!(r, Ok(()));
        }
    }
}

fn transfer(seed: u64, loss: u64, stream: bool) {
    let mut p = Pair::new(seed, loss);
    for k in [&mut p.a, &mut p.b] {
        k.set_nodelay(NoDelay::new(1, 10, 2, true));
        k.set_window(NonZeroU32::new(128), NonZeroU32::new(128));
        k.set_stream(stream);
    }
    let mut sent = std::vec::Vec::new();
    let mut got = std::vec::Vec::new();
    let mut buf = vec![0u8; 200_000];
    for i in 0..400u32 {
        let len = p.rng.below(5000) as usize;
        let msg: std::vec::Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
        assert_eq!(p.a.send(&msg), Ok(len), "seed {seed:#x}");
        sent.extend_from_slice(&msg);
        p.step(10);
        while let Ok(n) = p.b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    for _ in 0..5000 {
        if got.len() == sent.len() {
            break;
        }
        p.step(10);
        while let Ok(n) = p.b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert!(
        got == sent,
        "seed {seed:#x}: delivered {} of {} bytes intact",
        got.len(),
        sent.len()
    );
}

#[test]
fn delivers_messages_in_order_under_loss() {
    for seed in [1, 2, 3] {
        transfer(seed, 10, false);
    }
}

#[test]
fn delivers_a_stream_under_loss() {
    for seed in [4, 5] {
        transfer(seed, 10, true);
    }
}

#[test]
fn send_limits_and_codes() {
    let mut k = Kcp::new(9);
    let mss = k.mss() as usize;
    assert_eq!(k.send(&vec![0; mss * 127]), Ok(mss * 127));
    assert_eq!(k.send(&vec![0; mss * 127 + 1]), Err(SendError::TooLarge));
    assert_eq!(k.send(&[]), Ok(0), "an empty message is one empty segment");
    assert_eq!(k.wait_snd(), 128);
    k.set_stream(true);
    assert_eq!(k.send(&[1, 2, 3]), Ok(3), "stream mode tops up the empty tail");
    assert_eq!(k.wait_snd(), 128);
}

#[test]
fn recv_codes() {
    let mut k = Kcp::new(9);
    let mut buf = [0u8; 4];
    assert_eq!(k.recv(&mut buf), Err(RecvError::Empty));
    assert_eq!(k.peek_size(), Err(RecvError::Empty));
    let mut a = Kcp::new(9);
    a.send(b"hello").unwrap();
    let mut out = vec![];
    a.update(0, |d| out.push(d.to_vec()));
    assert!(
        out.is_empty(),
        "ikcp.c starts with cwnd 0: the first flush sends no data"
    );
    a.update(100, |d| out.push(d.to_vec()));
    k.input(&out[0]).unwrap();
    assert_eq!(k.peek_size(), Ok(5));
    assert_eq!(k.recv(&mut buf), Err(RecvError::BufferTooSmall));
    let mut big = [0u8; 8];
    assert_eq!(k.peek(&mut big), Ok(5));
    assert_eq!(k.recv(&mut big), Ok(5));
    assert_eq!(&big[..5], b"hello");
}

#[test]
fn input_errors_keep_earlier_effects() {
    let mut a = Kcp::new(3);
    a.send(b"x").unwrap();
    let mut out = vec![];
    a.update(0, |_| {});
    a.update(100, |d| out.push(d.to_vec()));
    let mut d = out[0].clone();
    let mut bad = d.clone();
    bad[4] = 99; // unknown command
    d.extend_from_slice(&bad);
    let mut b = Kcp::new(3);
    assert_eq!(b.input(&d), Err(InputError::BadCommand));
    assert_eq!(b.peek_size(), Ok(1), "the first, valid segment was accepted");
    let mut other = out[0].clone();
    other[0] ^= 1;
    assert_eq!(b.input(&other), Err(InputError::ConvOrShort));
    let mut long = out[0].clone();
    long[20] = 200;
    assert_eq!(b.input(&long), Err(InputError::BadLength));
    assert_eq!(b.input(&out[0][..23]), Err(InputError::ConvOrShort));
}

#[test]
fn garbage_input_never_panics() {
    let mut rng = Rng::new(0xfeed);
    let mut k = Kcp::new(0);
    k.update(0, |_| {});
    for i in 0..20_000u32 {
        let len = rng.below(200) as usize;
        let mut d: std::vec::Vec<u8> = rng.bytes(len);
        if len >= 24 {
            d[..4].copy_from_slice(&0u32.to_le_bytes());
            d[4] = 81 + (rng.below(4) as u8);
        }
        let _ = k.input(&d);
        if i % 64 == 0 {
            k.update(i, |_| {});
            let mut buf = [0u8; 64];
            let _ = k.recv(&mut buf);
        }
    }
}

#[test]
fn check_is_capped_at_one_interval() {
    let mut k = Kcp::new(1);
    assert_eq!(k.check(5), 5, "before the first update");
    k.update(1000, |_| {});
    assert_eq!(k.check(1000), 1100);
    k.send(b"a").unwrap();
    k.update(1100, |_| {});
    assert!(timediff(k.check(1100), 1100) <= 100);
}

#[test]
fn dead_link_after_repeated_timeouts() {
    let mut k = Kcp::new(1);
    k.set_dead_link(3);
    k.send(b"a").unwrap();
    let mut t = 0u32;
    while !k.is_dead() && t < 1_000_000 {
        k.update(t, |_| {});
        t += 100;
    }
    assert!(k.is_dead());
    assert!(k.xmit() >= 2);
}

#[test]
fn recovered_input_skips_rtt_and_remote_window() {
    let mut a = Kcp::new(5);
    a.send(b"data").unwrap();
    let mut out = vec![];
    a.update(0, |_| {});
    a.update(100, |d| out.push(d.to_vec()));
    let mut b = Kcp::new(5);
    b.update(100, |_| {});
    b.input(&out[0]).unwrap();
    let mut acks = vec![];
    b.flush(|d| acks.push(d.to_vec()));
    let mut ack = acks[0].clone();
    ack[6..8].copy_from_slice(&7u16.to_le_bytes()); // a distinctive window
    a.update(200, |_| {});
    let (srtt, rmt) = (a.srtt(), a.v.rmt_wnd);
    a.input_recovered(&ack).unwrap();
    assert_eq!((a.srtt(), a.v.rmt_wnd), (srtt, rmt), "no RTT sample, no window update");
    assert_eq!(a.wait_snd(), 0, "but the ACK itself counts");
}

/// Sequence numbers wrap past 2^32 mid-transfer (C callers cannot set
/// snd_nxt/rcv_nxt, so the differential harness cannot reach this).
#[test]
fn sequence_numbers_wrap_around() {
    for seed in [7u64, 8] {
        let mut p = Pair::new(seed, 10);
        let start = u32::MAX - 40;
        for k in [&mut p.a, &mut p.b] {
            k.set_nodelay(NoDelay::new(1, 10, 2, true));
            (k.v.snd_una, k.v.snd_nxt, k.v.rcv_nxt) = (start, start, start);
        }
        let mut got = std::vec::Vec::new();
        let mut buf = vec![0u8; 4096];
        for i in 0..200u32 {
            p.a.send(&i.to_le_bytes()).unwrap();
            p.step(10);
            while let Ok(n) = p.b.recv(&mut buf) {
                got.push(u32::from_le_bytes(buf[..n].try_into().unwrap()));
            }
        }
        for _ in 0..2000 {
            p.step(10);
            while let Ok(n) = p.b.recv(&mut buf) {
                got.push(u32::from_le_bytes(buf[..n].try_into().unwrap()));
            }
        }
        assert_eq!(got, (0..200).collect::<std::vec::Vec<_>>(), "seed {seed}");
        assert!(
            timediff(p.a.v.snd_nxt, start) == 200 && p.a.v.snd_nxt < start,
            "wrapped"
        );
    }
}

#[test]
fn set_mtu_bounds() {
    let mut k = Kcp::new(1);
    assert_eq!(k.set_mtu(49), Err(MtuError::OutOfRange));
    assert_eq!(k.set_mtu(50), Ok(()));
    assert_eq!((k.mtu(), k.mss()), (50, 26));
}

#[test]
fn typed_settings_leave_what_is_none() {
    let mut k = Kcp::new(1);
    k.set_window(NonZeroU32::new(64), None);
    assert_eq!((k.snd_wnd(), k.v.rcv_wnd), (64, WND_RCV));
    k.set_window(None, NonZeroU32::new(16));
    assert_eq!(
        (k.snd_wnd(), k.v.rcv_wnd),
        (64, WND_RCV),
        "the receive window is at least 128"
    );
    k.set_window(None, NonZeroU32::new(512));
    assert_eq!((k.snd_wnd(), k.v.rcv_wnd), (64, 512));
    k.set_nodelay(NoDelay::new(1, 10, 2, true));
    k.set_nodelay(NoDelay {
        interval: Some(20),
        ..NoDelay::default()
    });
    let (v, t) = (&*k.v, k.v.tuning());
    assert_eq!((v.nodelay, v.interval, t.fastresend, t.nocwnd), (1, 20, 2, 1));
    assert_eq!(v.rx_minrto, RTO_NDL as i32);
    k.set_nodelay(NoDelay {
        nodelay: Some(0),
        resend: Some(u32::MAX),
        ..NoDelay::default()
    });
    assert_eq!((k.v.rx_minrto, k.v.tuning().fastresend), (RTO_MIN as i32, i32::MAX));
    k.set_interval(1);
    assert_eq!(k.v.interval, 10, "clamped to 10..=5000");
}
