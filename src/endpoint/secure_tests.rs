//! Secure endpoints (PSK) on the virtual clock: the handshake, a byte-exact
//! transfer under loss, hello floods, replays, kcp-go datagrams at a secure
//! listener, a remote close with its code, and a wrong key.

use super::tests::{addr, config, echo_all, World};
use super::*;
use crate::secure::{ClientConfig, ServerConfig};
use crate::sim::{LinkConfig, Rng};

const PSK: [u8; 32] = [0x5a; 32];

/// A listener's and a dialer's settings with `psk` (the listener's is
/// always [`PSK`]).
fn secure_configs(fec: bool, dialer_psk: &[u8]) -> (EndpointConfig, EndpointConfig) {
    let mut server = config(fec, false);
    let mut cfg = ServerConfig::default();
    cfg.set_psk(&PSK).unwrap();
    server.secure = Some(SecureSetting::listen(cfg));
    let mut client = config(fec, false);
    client.secure = Some(SecureSetting::dial(ClientConfig::psk(dialer_psk).unwrap()));
    (server, client)
}

fn run(w: &mut World, ms: u64) {
    let end = w.t + ms;
    while w.t < end {
        w.step(end - w.t);
    }
}

/// A dialer sends `bytes` seeded bytes, the listener echoes them; returns
/// the world, the nodes and the dialer's session once the echo is complete
/// (byte-exact) or the time is up.
fn echo(seed: u64, loss: f64, bytes: usize, fec: bool) -> (World, usize, usize, SessionId) {
    echo_with(seed, loss, bytes, fec, |_, _, _| {})
}

/// [`echo`], calling `during(world, server, client)` before each step.
fn echo_with(
    seed: u64,
    loss: f64,
    bytes: usize,
    fec: bool,
    mut during: impl FnMut(&mut World, usize, usize),
) -> (World, usize, usize, SessionId) {
    println!("seed {seed}, loss {loss}, {bytes} bytes, fec {fec}");
    let link = LinkConfig {
        loss,
        ..LinkConfig::default()
    };
    let (scfg, ccfg) = secure_configs(fec, &PSK);
    let mut w = World::new(seed, link);
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (ep, id) = Endpoint::dialer(ccfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let data = Rng::new(seed).bytes(bytes);
    let (mut sent, mut echoed) = (0, Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    while echoed.len() < data.len() && w.t < 600_000 {
        let now = w.now();
        while sent < data.len() {
            match w.ep(client).send(id, &data[sent..(sent + 8192).min(data.len())], now) {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => panic!("seed {seed}: {e:?}"),
            }
        }
        during(&mut w, server, client);
        w.step(10);
        echo_all(&mut w, server, &mut buf);
        while let Ok(n) = w.ep(client).recv(id, &mut buf) {
            echoed.extend_from_slice(&buf[..n]);
        }
    }
    assert!(
        echoed == data,
        "seed {seed}: byte-exact echo ({} of {bytes} bytes)",
        echoed.len()
    );
    (w, server, client, id)
}

#[test]
fn psk_sessions_echo_one_mib_byte_exact_with_and_without_loss() {
    for (seed, loss, fec) in [(1901, 0.0, false), (1902, 0.10, false), (1903, 0.10, true)] {
        let (mut w, server, client, id) = echo(seed, loss, 1 << 20, fec);
        let (s, c) = (w.ep(server).stats(), w.ep(client).stats());
        assert_eq!((s.secure_established, c.secure_established), (1, 1), "seed {seed}");
        assert_eq!(s.refused_kcpgo + c.refused_kcpgo, 0, "seed {seed}");
        assert!(w.ep(client).connection_id(id).unwrap().is_some());
        let st = w.ep(client).session_stats(id).unwrap();
        println!("seed {seed}: client out {} datagrams, server {s:?}", st.out_pkts);
    }
}

/// Sends before the handshake is done say Again; a Writable event follows
/// once it is.
#[test]
fn a_dialer_sends_after_its_handshake() {
    let (_, ccfg) = secure_configs(false, &PSK);
    let (mut ep, id) = Endpoint::dialer(ccfg, addr(1), 0).unwrap();
    assert_eq!(ep.send(id, b"early", 0), Err(Error::Again));
    assert_eq!(ep.send_datagram(id, b"early", 0), Err(Error::Again));
    // The CLIENT_HELLO is the one transmit, padded to 1,200 bytes.
    assert_eq!(ep.transmits().len(), 1);
    assert_eq!(
        ep.transmits().get(0).unwrap().1.len(),
        crate::secure::handshake::HELLO_LEN
    );

    let (scfg, ccfg) = secure_configs(false, &PSK);
    let mut w = World::new(1904, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (ep, id) = Endpoint::dialer(ccfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let now = w.now();
    assert_eq!(w.ep(client).send(id, b"early", now), Err(Error::Again));
    run(&mut w, 200);
    assert_eq!(w.ep(client).poll_event(), Some(Event::Writable(id)));
    let now = w.now();
    assert_eq!(w.ep(client).send(id, b"hello", now), Ok(5));
    run(&mut w, 200);
    let sid = w.ep(server).accept().expect("a session");
    let mut buf = [0u8; 16];
    assert_eq!(w.ep(server).recv(sid, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
}

/// CLIENT_HELLOs from 1,000 spoofed addresses: a CHALLENGE each (no larger
/// than the hello), no session, no state.
#[test]
fn a_hello_flood_from_spoofed_addresses_creates_nothing() {
    let seed = 1905;
    println!("seed {seed}");
    let (scfg, ccfg) = secure_configs(false, &PSK);
    let mut w = World::new(seed, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (mut dialer, _) = Endpoint::dialer(ccfg, addr(1), w.now()).unwrap();
    let hello = dialer.transmits().get(0).unwrap().1.to_vec();
    dialer.clear_transmits();
    let now = w.now();
    for i in 0..1000u32 {
        let from = SocketAddr::from(([10, (i >> 8) as u8, i as u8, 1], 4000 + i as u16));
        let mut d = hello.clone();
        w.ep(server).handle(now, from, &mut d);
    }
    let ep = w.ep(server);
    assert_eq!(ep.sessions_alive(), 0);
    assert_eq!(ep.stats().secure_challenges, 1000);
    assert_eq!(ep.transmits().len(), 1000);
    assert!(ep.transmits().iter().all(|(_, d)| d.len() <= hello.len()));
    assert_eq!(ep.by_cid.len() + ep.by_addr.len() + ep.slots.len(), 0);
    assert_eq!(
        ep.server.as_ref().unwrap().used_entries(),
        0,
        "no handshake state either"
    );
    assert_eq!(ep.poll_event(), None);
}

/// Every datagram of a whole session (handshake, data, close), captured
/// and replayed to its destination afterwards, changes nothing: no session
/// opens, no data is delivered, each is refused and counted.
#[test]
fn every_captured_datagram_replayed_changes_nothing() {
    let seed = 1906;
    println!("seed {seed}");
    let (scfg, ccfg) = secure_configs(false, &PSK);
    let mut w = World::new(seed, LinkConfig::default());
    w.sent = Some(Vec::new());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (ep, id) = Endpoint::dialer(ccfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    run(&mut w, 200);
    let now = w.now();
    w.ep(client).send(id, &Rng::new(seed).bytes(20_000), now).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sid = None;
    for _ in 0..50 {
        w.step(10);
        while let Some(ev) = w.ep(server).poll_event() {
            if let Event::Accept(s) = ev {
                sid = Some(s);
            }
        }
    }
    let sid = sid.expect("accepted");
    let mut got = 0;
    while let Ok(n) = w.ep(server).recv(sid, &mut buf) {
        got += n;
    }
    assert_eq!(got, 20_000);
    let captured = w.sent.take().unwrap();
    assert!(captured.len() > 10, "{} datagrams", captured.len());
    let before = (w.ep(server).stats(), w.ep(client).stats());
    let dups = w.ep(server).handshake_stats().unwrap().duplicates;
    let alive = (w.ep(server).sessions_alive(), w.ep(client).sessions_alive());
    let now = w.now();
    for (from, to, d) in &captured {
        let node = if *to == addr(1) { server } else { client };
        let mut d = d.clone();
        w.ep(node).handle(now, *from, &mut d);
    }
    w.ep(server).flush_received(now);
    w.ep(client).flush_received(now);
    let after = (w.ep(server).stats(), w.ep(client).stats());
    assert_eq!(alive, (w.ep(server).sessions_alive(), w.ep(client).sessions_alive()));
    assert_eq!(
        w.ep(server).recv(sid, &mut buf),
        Err(Error::Again),
        "no data delivered twice"
    );
    assert_eq!(w.ep(client).recv(id, &mut buf), Err(Error::Again));
    assert_eq!(after.0.secure_established, before.0.secure_established);
    assert_eq!(after.1.secure_established, before.1.secure_established);
    let refused = |s: &EndpointStats| s.in_csum_errors + s.secure_refused + s.secure_challenges;
    let counted = refused(&after.0) - refused(&before.0) + refused(&after.1) - refused(&before.1);
    // A repeated echo is a duplicate: its session's SERVER_HELLO is no
    // longer kept (the client's datagrams showed that it has it).
    let counted = counted + w.ep(server).handshake_stats().unwrap().duplicates - dups;
    println!(
        "{} replayed, {counted} refused, re-challenged or duplicate",
        captured.len()
    );
    assert_eq!(counted as usize, captured.len());
    assert_eq!(
        w.ep(server).transmits().len() + w.ep(client).transmits().len(),
        1,
        "one CHALLENGE"
    );
    let rs = w.ep(server).session_stats(sid).unwrap();
    assert!(rs.in_csum_errors > 0);
    assert_eq!(w.ep(server).poll_event(), None);
}

/// A kcp-go datagram (from a kcp-go dialer) at a secure listener is refused
/// and counted; no session.
#[test]
fn a_kcpgo_datagram_at_a_secure_listener_is_refused() {
    let (scfg, _) = secure_configs(false, &PSK);
    let mut w = World::new(1907, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    // conv 0x01020304: its first byte (0x04) is no secure header's.
    let (ep, id) = Endpoint::dialer_with_conv(config(false, false), addr(1), 0x0102_0304, w.now()).unwrap();
    let client = w.add(addr(2), ep);
    let now = w.now();
    w.ep(client).send(id, b"kcp-go", now).unwrap();
    run(&mut w, 100);
    assert!(w.ep(server).stats().refused_kcpgo >= 1);
    assert_eq!(w.ep(server).sessions_alive(), 0);
    assert_eq!(w.ep(server).poll_event(), None);
}

/// A close with an application code on one side: the other side's session
/// closes with `Remote { Application, code }` at once (after the data).
#[test]
fn a_close_gives_the_peer_a_remote_close_with_the_code() {
    for (seed, dialer_closes) in [(1908, true), (1909, false)] {
        println!("seed {seed}");
        let (mut w, server, client, id) = echo(seed, 0.0, 10_000, false);
        let sid = w.ep(server).accept().or_else(|| {
            // Handed out by its Accept event already: the only session.
            let slot = *w.ep(server).by_cid.values().next().unwrap();
            Some(SessionId {
                slot,
                generation: w.ep(server).generations[slot as usize],
            })
        });
        let sid = sid.unwrap();
        let (closer, closer_id, peer, peer_id) = if dialer_closes {
            (client, id, server, sid)
        } else {
            (server, sid, client, id)
        };
        let now = w.now();
        w.ep(closer).close_with_code(closer_id, 4242, now).unwrap();
        run(&mut w, 100);
        let mut closed = None;
        while let Some(ev) = w.ep(peer).poll_event() {
            if let Event::Closed(s, r) = ev {
                closed = Some((s, r));
            }
        }
        let reason = CloseReason::Remote {
            reason: crate::secure::frames::CloseReason::Application,
            code: 4242,
        };
        assert_eq!(closed, Some((peer_id, reason)), "seed {seed}");
        assert_eq!(w.ep(peer).close_reason(peer_id), Ok(Some(reason)));
        assert_eq!(w.ep(closer).sessions_alive(), 0);
    }
}

/// A dialer with another key never connects: its hellos are refused as
/// forged, no session opens, and the dialer gives up (DeadLink) after the
/// handshake timeout.
#[test]
fn a_wrong_psk_never_connects() {
    let seed = 1910;
    println!("seed {seed}");
    let (scfg, ccfg) = secure_configs(false, &[0x33; 32]);
    let mut w = World::new(seed, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (ep, id) = Endpoint::dialer(ccfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    run(&mut w, crate::secure::handshake::HANDSHAKE_TIMEOUT_MS + 3_000);
    assert_eq!(w.ep(server).sessions_alive(), 0);
    assert_eq!(w.ep(server).stats().secure_challenges, 0);
    assert!(w.ep(server).stats().secure_refused >= 3);
    assert_eq!(
        w.ep(server).handshake_stats().unwrap().forged,
        w.ep(server).stats().secure_refused
    );
    assert_eq!(
        w.ep(client).poll_event(),
        Some(Event::Closed(id, CloseReason::DeadLink))
    );
    assert_eq!(w.ep(client).stats().secure_established, 0);
}

/// Connect tokens: a listener with a token key (naming its address) takes
/// a dialer with a backend's token; its session carries the client's ID on
/// both sides. The same token again (another handshake) is refused: no
/// second session. A token for another server's address is refused.
#[test]
fn a_connect_token_dials_once() {
    let seed = 1911;
    println!("seed {seed}");
    let key = [0x17u8; 32];
    let mut cfg = ServerConfig::default();
    cfg.set_token_key(&key).unwrap();
    let mut scfg = config(false, false);
    scfg.secure = Some(SecureSetting::listen_at(cfg, addr(1)));
    let blob = crate::secure::token::make_now(&key, 77, 60, &["127.0.0.1:1"]).unwrap();
    let other = crate::secure::token::make_now(&key, 78, 60, &["127.0.0.1:9"]).unwrap();
    let dial = |blob: &[u8]| {
        let mut c = config(false, false);
        c.secure = Some(SecureSetting::dial(ClientConfig::token(blob).unwrap()));
        c
    };
    let mut w = World::new(seed, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (ep, id) = Endpoint::dialer(dial(&blob), addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    run(&mut w, 300);
    let now = w.now();
    assert_eq!(w.ep(client).send(id, b"token", now), Ok(5));
    run(&mut w, 100);
    let sid = w.ep(server).accept().expect("a token session");
    assert_eq!(w.ep(server).client_id(sid), Ok(Some(77)));
    assert_eq!(w.ep(client).client_id(id), Ok(Some(77)));
    let mut buf = [0u8; 8];
    assert_eq!(w.ep(server).recv(sid, &mut buf), Ok(5));

    let (ep, _) = Endpoint::dialer(dial(&blob), addr(1), w.now()).unwrap();
    let again = w.add(addr(3), ep);
    let (ep, _) = Endpoint::dialer(dial(&other), addr(1), w.now()).unwrap();
    let elsewhere = w.add(addr(4), ep);
    run(&mut w, 1_000);
    assert_eq!(w.ep(server).sessions_alive(), 1);
    assert_eq!(w.ep(server).accept(), None);
    let hs = w.ep(server).handshake_stats().unwrap();
    assert!(hs.token_reused >= 1, "{hs:?}");
    assert!(
        hs.refused > hs.token_reused,
        "the other address's token refused: {hs:?}"
    );
    assert_eq!(w.ep(again).stats().secure_established, 0);
    assert_eq!(w.ep(elsewhere).stats().secure_established, 0);
}

/// A PING from one side draws a PONG from the other's endpoint.
#[test]
fn a_ping_is_answered() {
    let (mut w, server, client, id) = echo(1912, 0.0, 1_000, false);
    let before = w.ep(client).get(id).unwrap().conn.secure_stats().unwrap().controls_in;
    let ep = w.ep(client);
    let s = ep.slots[id.slot as usize].as_mut().unwrap();
    s.conn
        .send_control(crate::secure::frames::Frame::Ping(7), &mut ep.tx.out)
        .unwrap();
    ep.tx.close_run(addr(1), None);
    run(&mut w, 50);
    let after = w.ep(client).get(id).unwrap().conn.secure_stats().unwrap().controls_in;
    assert_eq!(after, before + 1, "one PONG came back");
    assert!(w.ep(server).stats().out_pkts > 0);
}

/// The only session of the listener `server`.
fn only_session(w: &mut World, server: usize) -> SessionId {
    let ep = w.ep(server);
    let slot = *ep.by_cid.values().next().expect("one session");
    SessionId {
        slot,
        generation: ep.generations[slot as usize],
    }
}

/// A dialer whose source port changes mid-transfer (a NAT rebinding) goes
/// on byte-exact: the listener checks the new address and moves there.
#[test]
fn a_rebinding_client_continues_byte_exact() {
    for (seed, loss) in [(1913, 0.0), (1914, 0.05)] {
        let mut rebound = false;
        let (mut w, server, _, _) = echo_with(seed, loss, 2 << 20, false, |w, _, client| {
            if !rebound && w.t >= 20 {
                rebound = true;
                println!("rebind at {}", w.t);
                w.nodes[client].0 = addr(5);
            }
        });
        let st = w.ep(server).stats();
        println!(
            "seed {seed}: {} path checks, {} from a new address",
            st.secure_path_checks, st.secure_addr_changed
        );
        assert_eq!(st.secure_migrated, 1, "seed {seed}");
        let sid = only_session(&mut w, server);
        assert_eq!(w.ep(server).remote_addr(sid), Ok(addr(5)), "seed {seed}");
    }
}

/// An on-path attacker forwards a genuine datagram from another address
/// ahead of the real one: the listener takes its contents once, challenges
/// the other address, which never answers; the session stays where it was
/// and the transfer goes on byte-exact.
#[test]
fn a_spoofed_migration_neither_moves_nor_disturbs_the_session() {
    let seed = 1915;
    let mut forwarded = 0;
    let (mut w, server, _, _) = echo_with(seed, 0.0, 1 << 20, false, |w, server, _| {
        if forwarded < 5 && w.t >= 20 {
            // The dialer's newest datagram, still on its way: delivered
            // now from another address, ahead of the real one.
            let sent = w.sent.get_or_insert_with(Vec::new);
            let newest = sent
                .iter()
                .rev()
                .find(|(from, _, _)| *from == addr(2))
                .map(|x| x.2.clone());
            sent.clear();
            if let Some(mut d) = newest {
                forwarded += 1;
                let now = w.now();
                w.ep(server).handle(now, addr(9), &mut d);
            }
        }
    });
    let st = w.ep(server).stats();
    println!(
        "seed {seed}: {} path checks, {} in_csum_errors",
        st.secure_path_checks, st.in_csum_errors
    );
    assert!(st.secure_path_checks >= 1);
    assert_eq!(st.secure_migrated, 0);
    let sid = only_session(&mut w, server);
    assert_eq!(w.ep(server).remote_addr(sid), Ok(addr(2)));
    assert!(st.in_csum_errors >= 1, "the genuine copies, coming second, are replays");
}

/// With a keepalive, a silent session stays open (PINGs answered by
/// PONGs keep both sides hearing each other, past the idle timeout), and
/// when the link dies both ways the dialer closes with DeadLink 3 periods
/// after it last heard its peer.
#[test]
fn a_keepalive_keeps_a_silent_session_and_finds_a_dead_link() {
    let seed = 1916;
    println!("seed {seed}");
    let (mut scfg, mut ccfg) = secure_configs(false, &PSK);
    for c in [&mut scfg, &mut ccfg] {
        c.keepalive_ms = 1_000;
        c.idle_timeout_ms = 5_000;
    }
    let mut w = World::new(seed, LinkConfig::default());
    let server = w.add(addr(1), Endpoint::listener(scfg).unwrap());
    let (ep, id) = Endpoint::dialer(ccfg, addr(1), w.now()).unwrap();
    let client = w.add(addr(2), ep);
    run(&mut w, 200);
    let now = w.now();
    w.ep(client).send(id, b"hi", now).unwrap();
    run(&mut w, 100);
    let sid = w.ep(server).accept().expect("a session");
    run(&mut w, 20_000);
    assert_eq!(w.ep(client).close_reason(id), Ok(None), "open after 20 s of silence");
    assert_eq!(w.ep(server).close_reason(sid), Ok(None));
    let pongs = w.ep(client).get(id).unwrap().conn.secure_stats().unwrap().controls_in;
    assert!(pongs >= 10, "{pongs} controls in");
    // The link dies both ways.
    w.net.link.loss = 1.0;
    let cut = w.t;
    let mut closed_at = None;
    while w.t < cut + 10_000 && closed_at.is_none() {
        w.step(100);
        while let Some(ev) = w.ep(client).poll_event() {
            if let Event::Closed(_, r) = ev {
                assert_eq!(r, CloseReason::DeadLink);
                closed_at = Some(w.t - cut);
            }
        }
    }
    let after = closed_at.expect("dead link found");
    println!("dead link found {after} ms after the cut");
    // Last heard at most one period before the cut (the PINGs), closed
    // after three periods of silence.
    assert!((2_000..=3_100).contains(&after), "{after} ms");
}
