//! Unreliable (out-of-band) messages through endpoints, on the virtual
//! clock: beside the stream under loss, edge-triggered events, a bounded
//! queue, and datagrams that never open, replace or close a session.

use super::tests::{addr, config, World};
use super::*;
use crate::sim::{LinkConfig, Rng};

/// A message: its index, then bytes derived from it (checkable on arrival).
fn message(i: u32, len: usize) -> Vec<u8> {
    let mut m = i.to_le_bytes().to_vec();
    m.extend((0..len.saturating_sub(4)).map(|k| (i as usize * 31 + k) as u8));
    m
}

/// Steps the world for `ms` of virtual time.
fn run(w: &mut World, ms: u64) {
    let end = w.t + ms;
    while w.t < end {
        w.step(end - w.t);
    }
}

fn check(m: &[u8]) -> u32 {
    let i = u32::from_le_bytes(m[..4].try_into().unwrap());
    assert_eq!(m, message(i, m.len()), "message {i} arrived intact");
    i
}

/// The stream runs byte-exact under 10% loss while both ends exchange
/// unreliable messages every 20 ms of virtual time (a game's 50 Hz state):
/// every message that arrives is intact, most arrive, none disturbs the
/// stream, with every combination of FEC and cipher.
#[test]
fn messages_flow_both_ways_beside_the_stream() {
    let link = LinkConfig {
        loss: 0.10,
        ..LinkConfig::default()
    };
    for (seed, fec, crypt) in [
        (41, true, true),
        (42, true, false),
        (43, false, true),
        (44, false, false),
    ] {
        let cfg = config(fec, crypt);
        let mut w = World::new(seed, link);
        let server = w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
        let (ep, id) = Endpoint::dialer(cfg, addr(1), w.now()).unwrap();
        let client = w.add(addr(2), ep);
        let data = Rng::new(seed).bytes(256 * 1024);
        let (mut sent, mut echoed) = (0, Vec::new());
        let (mut up, mut down) = (0u32, 0u32);
        let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; 4096];
        let mut next_tick = 0;
        while (echoed.len() < data.len() || up < 300) && w.t < 600_000 {
            let now = w.now();
            while sent < data.len() {
                match w.ep(client).send(id, &data[sent..(sent + 4096).min(data.len())], now) {
                    Ok(n) => sent += n,
                    Err(Error::Again) => break,
                    Err(e) => panic!("seed {seed}: {e:?}"),
                }
            }
            if w.t >= next_tick {
                next_tick = w.t + 20;
                let len = 4 + (up as usize * 37) % 1000;
                assert_eq!(w.ep(client).send_datagram(id, &message(up, len), now), Ok(len));
                up += 1;
            }
            w.step(20);
            while let Some(ev) = w.ep(server).poll_event() {
                match ev {
                    Event::Readable(sid) => {
                        while let Ok(n) = w.ep(server).recv(sid, &mut buf) {
                            let now = w.now();
                            assert_eq!(w.ep(server).send(sid, &buf[..n], now), Ok(n));
                        }
                    }
                    Event::Datagram(sid) => {
                        while let Ok(n) = w.ep(server).recv_datagram(sid, &mut buf) {
                            got_up.push(check(&buf[..n]));
                            let reply = message(down, 4 + (down as usize * 53) % 1300);
                            assert!(reply.len() <= w.ep(server).datagram_max(sid).unwrap());
                            let now = w.now();
                            w.ep(server).send_datagram(sid, &reply, now).unwrap();
                            down += 1;
                        }
                    }
                    Event::Accept(_) | Event::Writable(_) => {}
                    Event::Closed(sid, r) => panic!("seed {seed}: {sid:?} closed: {r:?}"),
                }
            }
            while let Ok(n) = w.ep(client).recv(id, &mut buf) {
                echoed.extend_from_slice(&buf[..n]);
            }
            while let Ok(n) = w.ep(client).recv_datagram(id, &mut buf) {
                got_down.push(check(&buf[..n]));
            }
        }
        run(&mut w, 1000);
        while let Ok(n) = w.ep(client).recv_datagram(id, &mut buf) {
            got_down.push(check(&buf[..n]));
        }
        assert!(
            echoed == data,
            "seed {seed}: the stream came back byte-exact ({} bytes)",
            echoed.len()
        );
        // 10% loss each way, nothing retransmitted: most, not all, arrive.
        assert!(
            got_up.len() as u32 >= up * 7 / 10,
            "seed {seed}: {} of {up} up",
            got_up.len()
        );
        assert!(
            got_down.len() as u32 >= down * 7 / 10,
            "seed {seed}: {} of {down} down",
            got_down.len()
        );
        let stats = w.ep(client).session_stats(id).unwrap();
        assert_eq!(stats.datagrams_in, got_down.len() as u64, "seed {seed}");
        assert_eq!(
            (stats.datagrams_out, stats.datagrams_dropped),
            (u64::from(up), 0),
            "seed {seed}"
        );
        let s = w.ep(server).stats();
        assert_eq!(s.kcp_in_errors + s.in_errs, 0, "seed {seed}: {s:?}");
    }
}

/// The Datagram event is edge-triggered: one per batch, the next only after
/// `recv_datagram` returned `Again`; messages that arrive before the
/// session is accepted are announced once it is.
#[test]
fn datagram_events_are_edge_triggered() {
    let cfg = config(true, true);
    let mut w = World::new(45, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
    let (ep, id) = Endpoint::dialer(cfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let now = w.now();
    w.ep(client).send(id, b"hello", now).unwrap();
    for i in 0..3 {
        {
            let now = w.now();
            w.ep(client).send_datagram(id, &message(i, 40), now).unwrap();
        }
    }
    run(&mut w, 100);
    let events = |w: &mut World| core::iter::from_fn(|| w.ep(server).poll_event()).collect::<Vec<_>>();
    let first = events(&mut w);
    let sid = first[0].session();
    assert_eq!(first[0], Event::Accept(sid));
    assert_eq!(
        first.iter().filter(|e| **e == Event::Datagram(sid)).count(),
        1,
        "{first:?}"
    );
    let mut buf = [0u8; 64];
    // Reading only some: no new event for the rest, nor for more arrivals.
    assert_eq!(
        w.ep(server).recv_datagram(sid, &mut buf).map(|n| check(&buf[..n])),
        Ok(0)
    );
    {
        let now = w.now();
        w.ep(client).send_datagram(id, &message(3, 40), now).unwrap();
    }
    run(&mut w, 50);
    assert!(!events(&mut w).contains(&Event::Datagram(sid)));
    assert_eq!(
        w.ep(server).recv_datagram(sid, &mut [0u8; 10]),
        Err(Error::BufferTooSmall)
    );
    let mut rest = Vec::new();
    while let Ok(n) = w.ep(server).recv_datagram(sid, &mut buf) {
        rest.push(check(&buf[..n]));
    }
    assert_eq!(rest, [1, 2, 3]);
    assert_eq!(w.ep(server).recv_datagram(sid, &mut buf), Err(Error::Again));
    // Drained: the next arrival is announced again.
    {
        let now = w.now();
        w.ep(client).send_datagram(id, &message(4, 40), now).unwrap();
    }
    run(&mut w, 50);
    assert_eq!(events(&mut w), [Event::Datagram(sid)]);
}

/// The receive queue is bounded: an application that never reads keeps at
/// most [`crate::conn::DATAGRAM_QUEUE_MESSAGES`]; the oldest go first, and
/// are counted. Too long a message is refused at the sender.
#[test]
fn the_receive_queue_drops_the_oldest() {
    let cfg = config(true, false);
    let mut w = World::new(46, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
    let (ep, id) = Endpoint::dialer(cfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let now = w.now();
    w.ep(client).send(id, b"hello", now).unwrap();
    run(&mut w, 50);
    let sid = w.ep(server).accept().unwrap();
    let max = w.ep(client).datagram_max(id).unwrap();
    assert_eq!(max, 1400 - 8 - 4, "MTU − FEC header − conv");
    let now = w.now();
    assert_eq!(
        w.ep(client).send_datagram(id, &vec![0; max + 1], now),
        Err(Error::TooLarge)
    );
    let total = 3 * crate::conn::DATAGRAM_QUEUE_MESSAGES as u32;
    for i in 0..total {
        {
            let now = w.now();
            w.ep(client).send_datagram(id, &message(i, 100), now).unwrap();
        }
        run(&mut w, 1);
    }
    run(&mut w, 50);
    let s = w.ep(server).session_stats(sid).unwrap();
    let kept = crate::conn::DATAGRAM_QUEUE_MESSAGES as u64;
    assert_eq!(
        (s.datagrams_in, s.datagrams_dropped),
        (u64::from(total), u64::from(total) - kept)
    );
    let mut buf = [0u8; 200];
    let first = w.ep(server).recv_datagram(sid, &mut buf).map(|n| check(&buf[..n]));
    assert_eq!(first, Ok(total - kept as u32), "the newest stay");
}

/// An out-of-band datagram never opens, replaces or closes a session: not
/// from an unknown address, not with another conv from a session's
/// address (kcp-go master's listener lets one replace a session there), and
/// its bytes never reach KCP.
#[test]
fn a_message_never_opens_replaces_or_closes_a_session() {
    for crypt in [false, true] {
        let cfg = config(true, crypt);
        let mut w = World::new(47, LinkConfig::default());
        let server = w.add(addr(1), Endpoint::listener(cfg.clone()).unwrap());
        let (ep, id) = Endpoint::dialer_with_conv(cfg.clone(), addr(1), 7, w.now()).unwrap();
        let client = w.add(addr(2), ep);
        let now = w.now();
        w.ep(client).send(id, b"hello", now).unwrap();
        run(&mut w, 50);
        let sid = w.ep(server).accept().unwrap();
        // Forged messages of another conversation, from the client's
        // address and from a new one, made by a connection of that conv.
        let mut forger = Conn::new(0, &cfg.conn).unwrap();
        let mut out = crate::conn::Outbox::default();
        forger.send_datagram(&[0; 32], &mut out).unwrap();
        let mut forged = out.get(0).unwrap().to_vec();
        let before = w.ep(server).stats();
        let now = w.now();
        w.ep(server).handle(now, addr(2), &mut forged.clone());
        w.ep(server).handle(now, addr(3), &mut forged);
        let s = w.ep(server).stats();
        assert_eq!(s.dropped_unknown, before.dropped_unknown + 1, "crypt {crypt}");
        assert_eq!((s.passive_opens, s.replaced, s.curr_estab), (1, 0, 1), "crypt {crypt}");
        let conn = w.ep(server).session_stats(sid).unwrap();
        assert_eq!((conn.datagrams_foreign, conn.datagrams_in), (1, 0), "crypt {crypt}");
        assert!(core::iter::from_fn(|| w.ep(server).poll_event()).all(|e| !matches!(e, Event::Closed(..))));
        // The session carries on.
        let now = w.now();
        w.ep(client).send(id, b" again", now).unwrap();
        run(&mut w, 100);
        let mut buf = [0u8; 64];
        let n = w.ep(server).recv(sid, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello again", "crypt {crypt}");
    }
}
