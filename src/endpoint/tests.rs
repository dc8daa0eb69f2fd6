//! Endpoints on a virtual clock and a simulated network (tests/support/sim.rs).

use super::*;
use crate::conn::ConnConfig;
use std::collections::HashMap;

use crate::sim::{LinkConfig, Rng, SimNet};

/// The virtual clock starts close to the u32 wrap, so every test crosses it.
pub(super) const T0: u32 = u32::MAX - 3_000;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn config(fec: bool, crypt: bool) -> EndpointConfig {
    let mut conn = ConnConfig::default();
    conn.set_nodelay(1, 10, 2, 1);
    conn.set_window(256, 256).unwrap();
    conn.set_stream(true);
    if fec {
        conn.set_fec(10, 3).unwrap();
    }
    if crypt {
        conn.set_crypt(Some("aes-128"), &[0x42; 16]).unwrap();
    }
    EndpointConfig {
        conn,
        ..EndpointConfig::default()
    }
}

/// Endpoints at addresses, on one simulated network.
pub(super) struct World {
    pub(super) net: SimNet,
    pub(super) t: u64,
    pub(super) nodes: Vec<(SocketAddr, Endpoint)>,
    /// Every datagram sent (source, destination, bytes), when recording.
    pub(super) sent: Option<Vec<(SocketAddr, SocketAddr, Vec<u8>)>>,
}

impl World {
    pub(super) fn new(seed: u64, link: LinkConfig) -> World {
        World {
            net: SimNet::new(seed, link),
            t: 0,
            nodes: Vec::new(),
            sent: None,
        }
    }

    pub(super) fn now(&self) -> u32 {
        T0.wrapping_add(self.t as u32)
    }

    pub(super) fn add(&mut self, at: SocketAddr, ep: Endpoint) -> usize {
        self.nodes.push((at, ep));
        self.nodes.len() - 1
    }

    pub(super) fn ep(&mut self, i: usize) -> &mut Endpoint {
        &mut self.nodes[i].1
    }

    /// Moves every endpoint's transmits onto the network.
    fn collect(&mut self) {
        for (at, ep) in &mut self.nodes {
            for (to, d) in ep.transmits().iter() {
                self.net.send(self.t, *at, to, d);
                if let Some(sent) = &mut self.sent {
                    sent.push((*at, to, d.to_vec()));
                }
            }
            ep.clear_transmits();
        }
    }

    /// Advances to the next timer or arrival (at most `max_ms`), delivers
    /// and runs timers.
    pub(super) fn step(&mut self, max_ms: u64) {
        self.collect();
        let now = self.now();
        let mut next = self.t + max_ms;
        for (_, ep) in &mut self.nodes {
            if let Some(d) = ep.poll_timeout() {
                next = next.min(self.t + (d.wrapping_sub(now) as i32).max(0) as u64);
            }
        }
        if let Some(a) = self.net.next_arrival() {
            next = next.min(a);
        }
        self.t = next.max(self.t);
        let now = self.now();
        for mut d in self.net.arrivals(self.t) {
            if let Some((_, ep)) = self.nodes.iter_mut().find(|(a, _)| *a == d.to) {
                ep.handle(now, d.from, &mut d.bytes);
            }
        }
        for (_, ep) in &mut self.nodes {
            ep.handle_timeout(now);
        }
        self.collect();
    }
}

/// A listener echoing every session's bytes, several dialers each sending
/// seeded data and checking the echo, over a lossy, duplicating,
/// reordering network.
fn echo_run(seed: u64, link: LinkConfig, clients: usize, bytes: usize, fec: bool, crypt: bool) -> World {
    echo_run_with(seed, link, clients, bytes, config(fec, crypt), config(fec, crypt))
}

/// [`echo_run`] with the listener's and the dialers' settings.
fn echo_run_with(
    seed: u64,
    link: LinkConfig,
    clients: usize,
    bytes: usize,
    server_config: EndpointConfig,
    client_config: EndpointConfig,
) -> World {
    let mut w = World::new(seed, link);
    let server = w.add(addr(1000), Endpoint::listener(server_config).unwrap());
    let mut rng = Rng::new(seed);
    let mut dialers = Vec::new();
    for c in 0..clients {
        let (ep, id) = Endpoint::dialer(client_config.clone(), addr(1000), w.now()).unwrap();
        let node = w.add(addr(2000 + c as u16), ep);
        dialers.push((node, id, rng.bytes(bytes), 0usize, Vec::new()));
    }
    let mut buf = vec![0u8; 3000];
    let mut accepted = 0;
    for _ in 0..200_000 {
        let now = w.now();
        for (node, id, data, sent, _) in &mut dialers {
            while *sent < data.len() {
                match w.nodes[*node]
                    .1
                    .send(*id, &data[*sent..(*sent + 5000).min(data.len())], now)
                {
                    Ok(n) => *sent += n,
                    Err(Error::Again) => break,
                    Err(e) => panic!("seed {seed}: send {e:?}"),
                }
            }
        }
        while let Some(ev) = w.ep(server).poll_event() {
            match ev {
                Event::Accept(_) => accepted += 1,
                Event::Readable(id) | Event::Writable(id) => {
                    // Echo what fits; the rest waits for the next Writable.
                    while w.ep(server).wait_snd(id).unwrap() < 400 {
                        let Ok(n) = w.ep(server).recv(id, &mut buf) else { break };
                        assert_eq!(w.ep(server).send(id, &buf[..n], now), Ok(n), "seed {seed}");
                    }
                }
                Event::Closed(id, r) => panic!("seed {seed}: {id:?} closed: {r:?}"),
                Event::Datagram(id) => panic!("seed {seed}: {id:?}: no unreliable message was sent"),
            }
        }
        let mut done = true;
        for (node, id, data, _, got) in &mut dialers {
            while let Ok(n) = w.nodes[*node].1.recv(*id, &mut buf[..1234]) {
                got.extend_from_slice(&buf[..n]);
            }
            assert!(data.starts_with(got), "seed {seed}: echo corrupted");
            done &= got.len() == data.len();
        }
        if done {
            assert_eq!(accepted, clients, "seed {seed}: one Accept per client");
            return w;
        }
        w.step(10);
    }
    let progress: Vec<usize> = dialers.iter().map(|d| d.4.len()).collect();
    panic!("seed {seed}: echo stalled at {progress:?} of {bytes}");
}

#[test]
fn listener_echoes_many_dialers_through_loss_duplication_and_reordering() {
    let link = LinkConfig {
        delay_ms: 15,
        jitter_ms: 10,
        loss: 0.10,
        duplicate: 0.01,
    };
    let w = echo_run(1, link, 4, 128 * 1024, true, true);
    let s = w.nodes[0].1.stats();
    assert_eq!(s.passive_opens, 4);
    assert!(s.out_pkts > 0 && s.out_bytes > s.out_pkts * 24, "{s:?}");
    assert_eq!(s.in_csum_errors + s.kcp_in_errors + s.in_errs, 0, "{s:?}");
    assert!(w.net.dropped > 100 && w.net.duplicated > 0);
}

#[test]
fn plain_and_fec_only_endpoints_echo_too() {
    for (seed, fec, crypt) in [(2, false, false), (3, true, false), (4, false, true)] {
        let link = LinkConfig {
            loss: 0.05,
            ..LinkConfig::default()
        };
        echo_run(seed, link, 2, 32 * 1024, fec, crypt);
    }
}

/// Accept hands each session out once, by event or by `accept`.
#[test]
fn sessions_are_handed_out_once() {
    let mut w = World::new(5, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(config(false, true)).unwrap());
    let mut ids = Vec::new();
    for c in 0..3u16 {
        let (mut ep, id) = Endpoint::dialer(config(false, true), addr(1), w.now()).unwrap();
        ep.send(id, b"hi", w.now()).unwrap();
        w.add(addr(100 + c), ep);
        ids.push(id);
    }
    for _ in 0..10 {
        w.step(10);
    }
    let first = w.ep(server).accept().expect("a session");
    let mut from_events = Vec::new();
    while let Some(ev) = w.ep(server).poll_event() {
        if let Event::Accept(id) = ev {
            from_events.push(id);
        }
    }
    assert_eq!(from_events.len(), 2, "the accepted one is not announced again");
    assert!(!from_events.contains(&first));
    assert_eq!(w.ep(server).accept(), None);
    for id in from_events.iter().chain([&first]) {
        let mut buf = [0u8; 8];
        assert_eq!(w.ep(server).recv(*id, &mut buf), Ok(2));
    }
}

/// kcp-go's rule: a known address sending a new conv with sn 0 replaces its
/// session; a new conv with another sn is refused.
#[test]
fn a_restarted_peer_replaces_its_session() {
    let mut w = World::new(6, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(config(true, true)).unwrap());
    let (mut old, old_id) = Endpoint::dialer_with_conv(config(true, true), addr(1), 7, w.now()).unwrap();
    old.send(old_id, b"first life", w.now()).unwrap();
    let client = w.add(addr(50), old);
    for _ in 0..10 {
        w.step(10);
    }
    let a = w.ep(server).accept().unwrap();
    assert_eq!(w.ep(server).conv(a), Ok(7));
    // Same address, new conversation.
    let (mut new, new_id) = Endpoint::dialer_with_conv(config(true, true), addr(1), 8, w.now()).unwrap();
    new.send(new_id, b"second life", w.now()).unwrap();
    w.nodes[client].1 = new;
    // The old session was active: the new conv waits (its retransmissions
    // refused) until it has been silent for the active window.
    let restarted = w.t;
    let mut events = Vec::new();
    while !events.contains(&Event::Closed(a, CloseReason::Replaced)) {
        assert!(w.t < restarted + 10_000, "never replaced: {events:?}");
        w.step(10);
        while let Some(ev) = w.ep(server).poll_event() {
            events.push(ev);
        }
    }
    assert!(w.ep(server).stats().dropped_replace > 0);
    assert!(
        w.t >= restarted + DEFAULT_ACTIVE_MS as u64 - 100,
        "replaced while active"
    );
    let b = w.ep(server).accept().or_else(|| {
        events.iter().find_map(|e| match e {
            Event::Accept(id) => Some(*id),
            _ => None,
        })
    });
    let b = b.expect("the new session");
    assert_eq!(w.ep(server).conv(b), Ok(8));
    let mut buf = [0u8; 32];
    assert_eq!(w.ep(server).recv(b, &mut buf), Ok(11));
    let now = w.now();
    assert_eq!(w.ep(server).send(a, b"x", now), Err(Error::Closed));
    assert_eq!(w.ep(server).stats().replaced, 1);

    // A third conv from that address whose first segment has sn != 0 is
    // refused: the first flush carries sn 0, the second sn 1.
    let before = w.ep(server).stats().kcp_in_errors;
    let mut stray = crate::conn::tests::Driven::new(9, &config(true, true).conn).unwrap();
    stray.send(b"a").unwrap();
    stray.update(0);
    stray.update(100);
    stray.take_outbox();
    stray.send(b"b").unwrap();
    stray.flush();
    let mut second = stray.take_outbox().get(0).unwrap().to_vec();
    let now = w.now();
    w.ep(server).handle(now, addr(50), &mut second);
    assert_eq!(w.ep(server).conv(b), Ok(8), "not replaced");
    assert_eq!(w.ep(server).stats().kcp_in_errors, before + 1);
    assert_eq!(w.ep(server).stats().replaced, 1);
}

/// Garbage, wrong keys, truncations and parity from unknown addresses
/// never create a session; each is counted.
#[test]
fn hostile_datagrams_from_unknown_addresses_open_nothing() {
    let cfg = config(true, true);
    let mut ep = Endpoint::listener(cfg.clone()).unwrap();
    let mut rng = Rng::new(7);
    let mut wrong = cfg.conn.clone();
    wrong.set_crypt(Some("aes-128"), &[1; 16]).unwrap();
    let mut forger = crate::conn::tests::Driven::new(1, &wrong).unwrap();
    let mut honest = crate::conn::tests::Driven::new(1, &cfg.conn).unwrap();
    for i in 0..20 {
        forger.send(&[i; 100]).unwrap();
        honest.send(&[i; 2000]).unwrap();
    }
    forger.update(0);
    forger.update(100);
    honest.update(0);
    honest.update(100);
    let (f, h) = (forger.take_outbox(), honest.take_outbox());
    let mut expected_csum = 0;
    for port in 0..2000u16 {
        let mut d = match port % 4 {
            0 => {
                let n = rng.below(1600) as usize;
                rng.bytes(n)
            }
            1 => f.get(port as usize % f.len()).unwrap().to_vec(),
            2 => {
                let d = h.get(port as usize % h.len()).unwrap();
                d[..rng.below(d.len() as u64) as usize].to_vec()
            }
            _ => {
                let mut d = h.get(port as usize % h.len()).unwrap().to_vec();
                let i = rng.below(d.len() as u64) as usize;
                d[i] ^= 1 << rng.below(8);
                d
            }
        };
        expected_csum += u64::from(port % 4 != 0 && d.len() >= 20);
        ep.handle(port as u32, addr(10_000 + port), &mut d);
    }
    let s = ep.stats();
    assert_eq!(ep.sessions_alive(), 0, "{s:?}");
    assert_eq!(ep.poll_event(), None);
    assert_eq!(s.in_csum_errors + s.in_errs, 2000, "every datagram counted: {s:?}");
    assert!(s.in_csum_errors >= expected_csum - 10);
    // Parity of an honest group from an unknown address: dropped, counted.
    let parity: Vec<Vec<u8>> = h
        .iter()
        .filter(|d| {
            let mut c = d.to_vec();
            let p = PacketCrypt::new(crate::crypt::CryptMethod::Aes128, &[0x42; 16]).unwrap();
            matches!(
                p.open(&mut c).map(|p| crate::fec::classify(p)),
                Ok(crate::fec::FecInput::Parity)
            )
        })
        .map(<[u8]>::to_vec)
        .collect();
    assert!(!parity.is_empty());
    for mut p in parity {
        ep.handle(5000, addr(9), &mut p);
    }
    assert_eq!(ep.sessions_alive(), 0);
    assert!(ep.stats().dropped_unknown > 0);
}

/// A flood of valid first datagrams from many addresses fills the backlog,
/// then the session limit; the rest is dropped and counted, memory stays
/// bounded, and an accepted session keeps working.
#[test]
fn backlog_and_session_limits_bound_a_flood() {
    let mut cfg = config(false, true);
    cfg.backlog = 16;
    cfg.max_sessions = 40;
    let mut ep = Endpoint::listener(cfg.clone()).unwrap();
    let mut client = crate::conn::tests::Driven::new(3, &cfg.conn).unwrap();
    client.send(b"hello").unwrap();
    client.update(0);
    client.update(100);
    let first = client.take_outbox().get(0).unwrap().to_vec();
    for port in 0..100u16 {
        ep.handle(0, addr(port), &mut first.clone());
    }
    // Every one is unproven: each new one evicts the oldest waiting one.
    assert_eq!(ep.sessions_alive(), 16);
    assert_eq!((ep.stats().evicted, ep.stats().dropped_backlog), (84, 0));
    let mut taken = Vec::new();
    while let Some(id) = ep.accept() {
        taken.push(id);
    }
    assert_eq!(taken.len(), 16);
    assert_eq!(ep.recv(taken[0], &mut [0u8; 16]), Ok(5));
    for port in 100..200u16 {
        ep.handle(0, addr(port), &mut first.clone());
        while let Some(id) = ep.accept() {
            taken.push(id);
        }
    }
    // 24 fill the table; 40 more each evict an unproven accepted one (it
    // stays the application's, closed, until it closes it), up to twice
    // the limit alive; the last 36 are refused.
    let s = ep.stats();
    assert_eq!((s.curr_estab, ep.sessions_alive()), (40, 80), "max_sessions");
    assert_eq!((s.evicted, s.dropped_limit), (84 + 40, 36));
    let mut buf = [0u8; 16];
    assert_eq!(ep.close_reason(taken[1]), Ok(Some(CloseReason::Evicted)));
    assert_eq!(ep.recv(taken[1], &mut buf), Ok(5), "read after the close event");
    assert_eq!(ep.recv(taken[1], &mut buf), Err(Error::Closed));
    assert_eq!(ep.recv(taken[0], &mut buf), Err(Error::Closed));
    assert_eq!(ep.recv(*taken.last().unwrap(), &mut buf), Ok(5));
    for id in &taken[..40] {
        ep.close(*id, 0).unwrap();
    }
    assert_eq!(ep.sessions_alive(), 40);
    assert_eq!(ep.stats().curr_estab, 40);
}

#[test]
fn idle_sessions_close_with_a_reason_and_refuse_io() {
    let mut cfg = config(false, false);
    cfg.idle_timeout_ms = 1_000;
    let mut w = World::new(8, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
    let (mut ep, id) = Endpoint::dialer(cfg, addr(1), w.now()).unwrap();
    ep.send(id, b"ping", w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let mut closed = HashMap::new();
    for _ in 0..500 {
        w.step(50);
        for node in [server, client] {
            while let Some(ev) = w.ep(node).poll_event() {
                if let Event::Closed(id, r) = ev {
                    closed.insert(node, (id, r));
                }
            }
        }
    }
    assert_eq!(closed[&client], (id, CloseReason::Idle));
    let (sid, r) = closed[&server];
    assert_eq!(r, CloseReason::Idle);
    let mut buf = [0u8; 8];
    assert_eq!(
        w.ep(server).recv(sid, &mut buf),
        Ok(4),
        "data received before the close stays readable"
    );
    assert_eq!(w.ep(server).recv(sid, &mut buf), Err(Error::Closed));
    let now = w.now();
    assert_eq!(w.ep(client).send(id, b"x", now), Err(Error::Closed));
    assert_eq!(w.ep(client).close_reason(id), Ok(Some(CloseReason::Idle)));
    assert_eq!(w.ep(server).stats().closed_idle, 1);
    w.ep(client).close(id, 0).unwrap();
    assert_eq!(w.ep(client).sessions_alive(), 0);
    assert_eq!(w.ep(client).send(id, b"x", 0), Err(Error::Closed), "a stale id");
}

#[test]
fn a_dead_link_closes_the_session_with_its_reason() {
    let mut w = World::new(9, LinkConfig::default());
    let (mut ep, id) = Endpoint::dialer(config(false, false), addr(1), w.now()).unwrap();
    ep.send(id, &[7; 5000], w.now()).unwrap();
    let client = w.add(addr(2), ep); // nobody at addr(1)
    let mut reason = None;
    for _ in 0..100_000 {
        w.step(1000);
        if let Some(Event::Closed(_, r)) = w.ep(client).poll_event() {
            reason = Some(r);
            break;
        }
    }
    assert_eq!(reason, Some(CloseReason::DeadLink));
    assert_eq!(w.ep(client).stats().closed_dead_link, 1);
}

/// `close` right after `send`: the data still arrives, then the session is
/// freed once acknowledged.
#[test]
fn close_sends_what_was_queued_then_frees() {
    let mut w = World::new(
        10,
        LinkConfig {
            loss: 0.2,
            ..LinkConfig::default()
        },
    );
    let server = w.add(addr(1), Endpoint::listener(config(true, true)).unwrap());
    let (mut ep, id) = Endpoint::dialer(config(true, true), addr(1), w.now()).unwrap();
    let data = Rng::new(10).bytes(100_000);
    assert_eq!(ep.send(id, &data, w.now()), Ok(data.len()));
    ep.close(id, w.now()).unwrap();
    assert_eq!(ep.send(id, b"x", w.now()), Err(Error::Closed));
    let client = w.add(addr(2), ep);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    for _ in 0..20_000 {
        w.step(10);
        if let Some(s) = w.ep(server).accept() {
            assert_eq!(w.ep(server).remote_addr(s), Ok(addr(2)));
        }
        for s in 0..1 {
            let sid = SessionId { slot: s, generation: 0 };
            while let Ok(n) = w.ep(server).recv(sid, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        if got.len() == data.len() && w.ep(client).sessions_alive() == 0 {
            break;
        }
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    assert_eq!(
        w.ep(client).sessions_alive(),
        0,
        "freed after the peer acknowledged everything"
    );
}

/// `send` refuses with Again when the queue is full, and a Writable event
/// follows when the peer's ACKs make room.
#[test]
fn a_full_send_queue_refuses_then_signals_writable() {
    let mut cfg = config(false, false);
    cfg.conn.stream = false;
    let mut w = World::new(11, LinkConfig::default());
    w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
    let (ep, id) = Endpoint::dialer(cfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let now = w.now();
    let mut queued = 0;
    while w.ep(client).send(id, &[1; 1000], now).is_ok() {
        queued += 1;
    }
    assert_eq!(queued, 512, "twice the send window of 256");
    assert_eq!(w.ep(client).send(id, &[1; 10], now), Err(Error::Again));
    let mut writable = false;
    for _ in 0..1000 {
        w.step(10);
        // The server's session acknowledges once it is accepted.
        while w.ep(0).accept().is_some() {}
        while let Some(ev) = w.ep(client).poll_event() {
            writable |= ev == Event::Writable(id);
        }
        if writable {
            break;
        }
    }
    assert!(writable);
    let now = w.now();
    assert!(w.ep(client).send(id, &[1; 10], now).is_ok());
}

/// Idle sessions cost nothing: with no idle timeout and nothing in flight,
/// no timer is armed; the heap stays within two entries per session.
#[test]
fn idle_sessions_arm_no_timer() {
    let mut w = World::new(12, LinkConfig::default());
    let mut cfg = config(true, true);
    cfg.set_idle_timeout(0);
    cfg.set_dead_link_time(0);
    let server = w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
    for c in 0..200u16 {
        let (mut ep, id) = Endpoint::dialer(cfg.clone(), addr(1), w.now()).unwrap();
        ep.send(id, b"one message", w.now()).unwrap();
        w.add(addr(100 + c), ep);
    }
    for _ in 0..300 {
        w.step(10);
        while w.ep(server).accept().is_some() {}
        assert!(w.ep(server).timer_entries() <= 2 * 200 + 1);
    }
    assert_eq!(w.ep(server).stats().passive_opens, 200);
    for i in 0..w.nodes.len() {
        assert_eq!(w.ep(i).poll_timeout(), None, "node {i} sleeps until input");
    }
}

/// An application that reads data but never polls events, or accepts with
/// `accept` only, does not make the event queue grow: it stays within a
/// few events per session.
#[test]
fn the_event_queue_stays_bounded_when_nobody_polls_it() {
    let mut w = World::new(13, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(config(false, false)).unwrap());
    let (ep, id) = Endpoint::dialer(config(false, false), addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let mut buf = [0u8; 256];
    let mut got = 0;
    for i in 0..3000u32 {
        let now = w.now();
        w.ep(client).send(id, &i.to_le_bytes(), now).unwrap();
        w.step(10);
        while let Some(s) = w.ep(server).accept() {
            assert_eq!(w.ep(server).conv(s).ok(), w.ep(client).conv(id).ok());
        }
        // The server side reads every session it knows of, without events.
        for slot in 0..w.ep(server).slots.len() as u32 {
            let sid = SessionId { slot, generation: 0 };
            while let Ok(n) = w.ep(server).recv(sid, &mut buf) {
                got += n;
            }
        }
        assert!(w.ep(server).events.len() <= 5 * w.ep(server).sessions_alive() + 64);
    }
    // The last messages may still be on the wire (a step ends at the next event).
    for _ in 0..100 {
        w.step(10);
        let sid = SessionId { slot: 0, generation: 0 };
        while let Ok(n) = w.ep(server).recv(sid, &mut buf) {
            got += n;
        }
    }
    assert_eq!(got, 3000 * 4);
}

/// Sessions quiet for longer than SHED_AFTER_MS end their FEC encoder's
/// incomplete group (its parity never sent, the seqid skipped to the next
/// group) and free its buffers; woken by new messages, they echo byte for
/// byte over a lossy link, and the parity of every group they complete
/// rebuilds lost data shards exactly: checked by decoding everything the
/// listener sent with decoders that never shed.
#[test]
fn quiet_sessions_end_their_fec_groups_and_wake_intact() {
    use crate::crypt::PacketCrypt;
    use crate::fec::{FecConfig, FecDecoder, FecInput};
    let link = LinkConfig {
        delay_ms: 5,
        loss: 0.05,
        ..LinkConfig::default()
    };
    let mut w = World::new(11, link);
    w.sent = Some(Vec::new());
    let server = w.add(addr(1), Endpoint::listener(config(true, true)).unwrap());
    let mut clients = Vec::new();
    for c in 0..6u16 {
        let (ep, id) = Endpoint::dialer(config(true, true), addr(1), w.now()).unwrap();
        clients.push((w.add(addr(100 + c), ep), id, Vec::new()));
    }
    let mut rng = Rng::new(11);
    let mut buf = vec![0u8; 4096];
    let mut sent: Vec<Vec<u8>> = vec![Vec::new(); clients.len()];
    for round in 0..12 {
        // Messages of up to nine segments (groups end mid-message or at
        // the pause), echoed...
        for (i, (node, id, _)) in clients.iter().enumerate() {
            let len = 20 + rng.index(12_000);
            let msg = rng.bytes(len);
            let now = w.now();
            assert_eq!(w.nodes[*node].1.send(*id, &msg, now), Ok(msg.len()));
            sent[i].extend_from_slice(&msg);
        }
        for _ in 0..500 {
            w.step(10);
            echo_all(&mut w, server, &mut buf);
            for (node, id, got) in &mut clients {
                while let Ok(n) = w.nodes[*node].1.recv(*id, &mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            if clients.iter().zip(&sent).all(|(c, s)| c.2.len() == s.len()) {
                break;
            }
        }
        for ((_, _, got), sent) in clients.iter().zip(&sent) {
            assert_eq!(got, sent, "round {round}: echo");
        }
        // ...then quiet: every session sheds and ends its FEC group.
        let sheds = w.ep(server).stats().sheds;
        for _ in 0..(SHED_AFTER_MS / 10 + 300) {
            w.step(10);
        }
        assert_eq!(
            w.ep(server).stats().sheds,
            sheds + clients.len() as u64,
            "round {round}"
        );
    }

    // Everything the listener sent, per client, decoded with one data shard
    // of every group dropped: parity must rebuild each of them exactly.
    let crypt = PacketCrypt::new(crate::crypt::CryptMethod::Aes128, &[0x42; 16]).unwrap();
    let fec = FecConfig::new(10, 3).unwrap();
    let (mut rebuilt, mut groups_with_parity, mut ended, mut plain) = (0, 0, 0, 0);
    for (node, _, _) in &clients {
        let mut last: Option<u32> = None;
        let to = w.nodes[*node].0;
        let mut decoder = FecDecoder::new(fec, 1500);
        decoder.set_sync_threshold(0);
        let mut dropped = Vec::new();
        for (from, dest, d) in w.sent.as_ref().unwrap() {
            if *from != addr(1) || *dest != to {
                continue;
            }
            let mut d = d.clone();
            let payload = crypt.open(&mut d).unwrap();
            if !matches!(u16::from_le_bytes([payload[4], payload[5]]), 0xf1 | 0xf2) {
                // Without FEC framing: control segments only (pure ACKs).
                assert!(
                    payload.chunks(24).all(|seg| seg[4] != 81),
                    "no data segment (KCP's cmd 81)"
                );
                plain += 1;
                continue;
            }
            let seqid = u32::from_le_bytes(payload[..4].try_into().unwrap());
            if last.is_some_and(|l| seqid != l + 1) {
                // A group ended by a pause: the next one starts afresh.
                assert_eq!(seqid % 13, 0, "a skip lands on a group's start");
                ended += 1;
            }
            last = Some(seqid);
            match seqid % 13 {
                3 => {
                    dropped.push(payload[8..].to_vec());
                    continue;
                }
                12 => groups_with_parity += 1,
                _ => {}
            }
            assert!(!matches!(decoder.decode(payload, 0), FecInput::Inconsistent));
            for r in decoder.recovered() {
                assert_eq!(Some(r), dropped.last().map(|d| &d[..]), "a rebuilt shard differs");
                rebuilt += 1;
            }
        }
        assert_eq!(decoder.stats().errs, 0);
    }
    assert!(groups_with_parity > 10, "{groups_with_parity} groups");
    assert!(ended > 0, "no pause ended a group");
    assert!(plain > 0, "pure ACKs go without FEC framing");
    assert_eq!(rebuilt, groups_with_parity, "every group's dropped shard rebuilt");
}

/// A listener and 40 dialers; for `steps` steps of 10 ms, during the first
/// `sending` of which every dialer sends 4,000 bytes a step, the listener
/// echoing. Returns the world, the listener's node and the largest
/// transmit buffer it had.
fn burst(seed: u64, steps: usize, sending: usize) -> (World, usize, usize) {
    let mut w = World::new(seed, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(config(true, true)).unwrap());
    let mut clients = Vec::new();
    for c in 0..40u16 {
        let (ep, id) = Endpoint::dialer(config(true, true), addr(1), w.now()).unwrap();
        clients.push((w.add(addr(100 + c), ep), id));
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut peak = 0;
    for step in 0..steps {
        if step < sending {
            for (node, id) in &clients {
                let now = w.now();
                let _ = w.nodes[*node].1.send(*id, &[step as u8; 4000], now);
            }
        }
        w.step(10);
        echo_all(&mut w, server, &mut buf);
        for (node, id) in &clients {
            while w.nodes[*node].1.recv(*id, &mut buf).is_ok() {}
        }
        peak = peak.max(w.ep(server).tx.out.byte_capacity());
    }
    (w, server, peak)
}

/// The transmit buffer grows with a burst and follows the load back down
/// within a couple of seconds once it falls.
#[test]
fn transmit_buffer_shrinks_after_a_burst() {
    let (mut w, server, peak) = burst(12, 400, 50);
    let after = w.ep(server).tx.out.byte_capacity();
    assert!(peak >= 64 << 10, "a burst: {peak} bytes");
    assert!(after * 4 <= peak, "{after} bytes kept of {peak}");
}

/// A listener whose sessions all went idle arms no session timer but
/// their idle timeouts, yet wakes once, QUIET_AFTER_MS after the last
/// datagram, to give back what the burst grew (transmit batch, stale
/// timer entries, queues), and says so once (`take_quiet`); after that its
/// next deadline is the first idle timeout.
#[test]
fn a_quiet_listener_wakes_once_to_shrink_its_buffers() {
    let (mut w, server, _) = burst(13, 100, 20);
    let busy = w.ep(server).tx.out.byte_capacity();
    assert!(busy >= 64 << 10, "a burst: {busy} bytes");
    assert_eq!(w.ep(server).stats().quiet_shrinks, 0);
    assert!(!w.ep(server).take_quiet());
    // The clients go away; the listener is driven by its own deadlines only.
    w.nodes.truncate(1);
    let mut wakes = 0;
    while w.ep(server).stats().quiet_shrinks == 0 {
        let now = w.now();
        let due = w.ep(server).poll_timeout().expect("a deadline");
        assert!(wakes < 1000, "never shrank");
        w.t += u64::from(due.wrapping_sub(now).max(1));
        let now = w.now();
        w.ep(server).handle_timeout(now);
        wakes += 1;
    }
    let ep = w.ep(server);
    assert!(ep.take_quiet() && !ep.take_quiet(), "said once");
    assert_eq!(ep.stats().sheds, 40);
    assert_eq!(ep.tx.out.byte_capacity(), 0);
    assert!(ep.timer_entries() <= 40, "{} timer entries", ep.timer_entries());
    let (now, due) = (w.now(), w.ep(server).poll_timeout().expect("idle timeouts"));
    assert!(due.wrapping_sub(now) as u64 > DEFAULT_IDLE_TIMEOUT_MS as u64 - 3 * QUIET_AFTER_MS);
}

/// The listener `server` echoes whatever its sessions received.
pub(super) fn echo_all(w: &mut World, server: usize, buf: &mut [u8]) {
    while let Some(ev) = w.ep(server).poll_event() {
        if let Event::Readable(id) = ev {
            while let Ok(n) = w.ep(server).recv(id, buf) {
                let now = w.now();
                assert_eq!(w.ep(server).send(id, &buf[..n], now), Ok(n));
            }
        }
    }
}

/// FEC on one side only works, both ways, as between kcp-go peers (kcp-go
/// reads FEC framing whatever its own setting): a listener without FEC
/// opens sessions for FEC clients and reads their data shards; a dialer
/// without FEC reads an FEC listener's replies. Counted as
/// `fec_unconfigured` on the side without FEC.
#[test]
fn fec_on_one_side_only_transfers_both_ways() {
    let link = LinkConfig {
        loss: 0.02,
        ..LinkConfig::default()
    };
    for (seed, server_fec) in [(21, false), (22, true)] {
        let w = echo_run_with(
            seed,
            link,
            2,
            64 * 1024,
            config(server_fec, true),
            config(!server_fec, true),
        );
        let s = w.nodes[0].1.stats();
        assert_eq!(s.passive_opens, 2, "seed {seed}: {s:?}");
        // (dropped_unknown may count a client's datagrams that overtook its lost first one.)
        assert_eq!(s.in_errs + s.kcp_in_errors, 0, "seed {seed}: {s:?}");
        // The side without FEC: the listener, or the first dialer.
        let ep = &w.nodes[usize::from(server_fec)].1;
        let unconfigured: u64 = ep
            .slots
            .iter()
            .flatten()
            .map(|session| session.conn.stats().fec_unconfigured)
            .sum();
        assert!(unconfigured > 0, "seed {seed}: FEC datagrams read without FEC");
    }
}

/// Issue 17 item 4: many hostile peers each send full-size segments
/// 1..=127 and withhold sn 0 (or, `unread`, 0..=126 to an application that
/// never reads them) (with FEC: every group short of a data shard,
/// no parity), while a legitimate client uploads over a lossy link to the
/// same listener, which reads whatever it can. What the listener holds stays
/// within its budget (plus the eighth a flood may add between passes), the
/// hostile sessions are evicted (counted), the out-of-order segments beyond
/// the caps dropped (counted), and the upload arrives byte for byte.
fn memory_attack(seed: u64, fec: bool, unread: bool) {
    // A conversation opens only with sn 0: each withholding peer first
    // sends a 16-byte sn 0 (plain KCP, which an FEC listener reads too),
    // then withholds sn 1.
    let first = if unread { 0 } else { 2 };
    const HOSTILE: u32 = 200;
    let budget = 4 << 20;
    let mut cfg = config(fec, false);
    cfg.set_memory_limits(0, budget).unwrap();
    let link = LinkConfig {
        delay_ms: 5,
        jitter_ms: 2,
        loss: 0.02,
        duplicate: 0.0,
    };
    let mut w = World::new(seed, link);
    let server = w.add(addr(1000), Endpoint::listener(cfg).unwrap());
    let (ep, legit) = Endpoint::dialer(config(fec, false), addr(1000), w.now()).unwrap();
    let client = w.add(addr(2000), ep);
    let data = Rng::new(seed).bytes(400 << 10);
    let payload = 1400 - 24 - if fec { 8 } else { 0 };
    let (mut sent, mut got, mut attack) = (0, Vec::new(), 0u32);
    let (mut legit_id, mut peak) = (None, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..50_000 {
        let now = w.now();
        while sent < data.len() {
            match w
                .ep(client)
                .send(legit, &data[sent..(sent + 8000).min(data.len())], now)
            {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => panic!("seed {seed}: send {e:?}"),
            }
        }
        // The attack starts once the legitimate session delivered, round
        // robin over the hostile peers (all grow at once), 100 a step.
        for _ in 0..100 {
            if got.is_empty() || attack == HOSTILE * 127 {
                break;
            }
            let (h, i) = (attack % HOSTILE, attack / HOSTILE);
            if i == 0 && !unread {
                let mut opener = crate::sim::withheld_sn0_datagram(0x5000 + h, 0, 0, 16, false);
                w.ep(server).handle(now, addr(3000 + h as u16), &mut opener);
            }
            let mut d = crate::sim::withheld_sn0_datagram(0x5000 + h, first, i, payload, fec);
            w.ep(server).handle(now, addr(3000 + h as u16), &mut d);
            peak = peak.max(w.ep(server).stats().buffered_bytes);
            attack += 1;
        }
        while let Some(ev) = w.ep(server).poll_event() {
            match ev {
                Event::Accept(id) if w.ep(server).remote_addr(id) == Ok(addr(2000)) => legit_id = Some(id),
                // With `unread`, the hostile sessions deliver in order and
                // the application never reads them.
                Event::Readable(id) if unread && Some(id) != legit_id => {}
                Event::Readable(id) => {
                    while let Ok(n) = w.ep(server).recv(id, &mut buf) {
                        if Some(id) == legit_id {
                            got.extend_from_slice(&buf[..n]);
                        } else {
                            assert!(n <= 16, "seed {seed}: a hostile session delivered beyond its opener");
                        }
                    }
                }
                Event::Closed(id, r) => assert_ne!(Some(id), legit_id, "seed {seed}: legit session closed: {r:?}"),
                _ => {}
            }
        }
        assert!(data.starts_with(&got), "seed {seed}: upload corrupted");
        if got.len() == data.len() && attack == HOSTILE * 127 {
            break;
        }
        w.step(10);
    }
    let s = w.ep(server).stats();
    assert!(
        got == data,
        "seed {seed}: upload stalled at {} of {} ({s:?})",
        got.len(),
        data.len()
    );
    let bound = (budget + budget / 8 + PRESSURE_SESSION_BYTES) as u64;
    assert!(peak <= bound, "seed {seed}: held {peak} bytes, budget {budget} ({s:?})");
    assert!(
        s.mem_pressure > 0 && s.mem_evicted > 0 && s.evicted >= s.mem_evicted,
        "{s:?}"
    );
    assert!(unread || s.mem_dropped_segments > 0, "{s:?}");
    assert!(!fec || s.mem_dropped_shards > 0, "{s:?}");
    println!("seed {seed} fec {fec} unread {unread}: peak {peak} of budget {budget}, {s:?}");
}

#[test]
fn a_withheld_sn0_flood_stays_within_the_budget_and_a_transfer_stays_exact() {
    memory_attack(71, false, false);
}

/// The same with peers that send everything in order, to an application
/// that never reads them (they delivered nothing: evicted first).
#[test]
fn an_in_order_flood_nobody_reads_stays_within_the_budget_too() {
    memory_attack(73, false, true);
}

#[test]
fn a_withheld_sn0_flood_with_fec_stays_within_the_budget_too() {
    memory_attack(72, true, false);
}
