//! Connections speaking the secure wire (`docs/secure-wire.md`, section
//! 15): a real handshake in memory gives both sides' keys; then transfers
//! on the virtual clock, unreliable messages, replays, reflection,
//! tampering and control frames.

use super::tests::{config, deliver, transfer_between, wire, Driven};
use super::*;
use crate::secure::frames::CloseReason;
use crate::secure::handshake::Now;
use crate::secure::{Client, ClientConfig, ClientProgress, SeededEntropy, Server, ServerAction, ServerConfig, Session};
use crate::sim::Rng;

const PSK: &[u8] = b"a pre-shared key of 32 bytes....";
const CONV: u32 = 0x5ec0_0001;

/// A full PSK handshake between a `Client` and a `Server` in memory:
/// (the client's session, the server's).
fn sessions(seed: u64) -> (Session, Session) {
    handshake(seed, false)
}

/// A full handshake in memory, with the PSK or (`token`) a connect token
/// for client 4242.
fn handshake(seed: u64, token: bool) -> (Session, Session) {
    let now = Now {
        ms: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let (client_addr, server_addr) = ("192.0.2.7:40000".parse().unwrap(), "198.51.100.1:7000".parse().unwrap());
    let mut scfg = ServerConfig::default();
    scfg.set_psk(PSK).unwrap();
    scfg.set_token_key(&[0x5A; 32]).unwrap();
    let mut server = Server::new(&scfg).unwrap();
    let mut se = SeededEntropy::new(seed);
    let ccfg = if token {
        let blob = crate::secure::token::make(&[0x5A; 32], 4242, now.unix_s, 60, &[server_addr], &mut se).unwrap();
        ClientConfig::token(&blob).unwrap()
    } else {
        ClientConfig::psk(PSK).unwrap()
    };
    let mut c = Client::new(&ccfg, now.ms, &mut SeededEntropy::new(!seed)).unwrap();
    let taken = |_: &crate::secure::wire::ConnectionId| false;
    let ch = match server.handle(c.message(), client_addr, server_addr, now, &mut se, &taken) {
        Ok(ServerAction::Challenge(ch)) => ch,
        other => panic!("seed {seed}: {other:?}"),
    };
    c.handle(&ch, now.ms).unwrap();
    let accepted = match server.handle(c.message(), client_addr, server_addr, now, &mut se, &taken) {
        Ok(ServerAction::Accept(a)) => a,
        other => panic!("seed {seed}: {other:?}"),
    };
    match c.handle(&accepted.server_hello, now.ms) {
        Ok(ClientProgress::Established(s)) => (*s, accepted.session),
        other => panic!("seed {seed}: {other:?}"),
    }
}

fn secure_pair(seed: u64, cfg: &ConnConfig) -> (Driven, Driven) {
    let (c, s) = sessions(seed);
    let driven = |session| Driven {
        conn: Conn::secure(CONV, cfg, session).unwrap(),
        out: Outbox::default(),
    };
    (driven(c), driven(s))
}

/// Sends `n` datagrams' worth of stream data from a to b (no loss) and
/// returns every datagram a sent that arrived.
fn exchange(a: &mut Driven, b: &mut Driven, bytes: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut net = wire(seed, 0);
    let data = Rng::new(seed).bytes(bytes);
    a.send(&data).unwrap();
    let (mut got, mut captured) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1 << 16];
    for step in 0..2_000u32 {
        let now = step * 10;
        captured.extend(deliver(a, b, now, &mut net));
        deliver(b, a, now, &mut net);
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == bytes && a.wait_snd() == 0 {
            break;
        }
    }
    assert!(got == data, "seed {seed}: {} of {bytes} bytes", got.len());
    captured
}

#[test]
fn one_mib_is_byte_exact_with_fec_at_0_and_10_percent_loss_both_ways() {
    let cfg = config(None, Some((10, 3)));
    for (seed, loss) in [(0x5ec1, 0), (0x5ec2, 10)] {
        eprintln!("seed {seed:#x}, loss {loss}%");
        let (a, b) = secure_pair(seed, &cfg);
        let (a, b) = transfer_between(seed, a, b, &cfg, 1 << 20, loss);
        for (side, c) in [("a", &a), ("b", &b)] {
            let (s, x) = (c.stats(), c.secure_stats().unwrap());
            eprintln!("{side}: {s:?}\n{side}: {x:?}");
            assert_eq!(
                x.forged + x.replayed + x.malformed + x.protocol_errors,
                0,
                "seed {seed}"
            );
            assert_eq!(s.in_errs + s.in_csum_errors + s.kcp_in_errors, 0, "seed {seed}");
            assert_eq!(x.opened, s.in_pkts, "seed {seed}: every datagram opened");
            if loss > 0 {
                assert!(s.fec_recovered > 0, "seed {seed} {side}: FEC rebuilt nothing");
            }
        }
    }
}

#[test]
fn every_datagram_is_one_sealed_short_datagram_within_the_mtu() {
    let cfg = config(None, Some((3, 2)));
    let (mut a, _) = secure_pair(0x5ec3, &cfg);
    // 1400 − 13 (short header) − 1 (KCP frame) − 8 (FEC) − 16 (tag) − 24.
    assert_eq!(a.kcp().mss(), 1338);
    a.send(&[7u8; 10_000]).unwrap();
    a.update(0);
    let out = a.take_outbox();
    let cid = a.connection_id().unwrap();
    for (pn, d) in out.iter().enumerate() {
        assert!(d.len() <= 1400);
        let h = crate::secure::wire::parse_short(d).unwrap();
        assert_eq!((h.cid, h.pn_low), (cid, pn as u32));
        // Nothing of the payload in the clear: FEC's 0xF1/0xF2 type bytes
        // would be at 14 + 4.
        assert!(d[..SECURE_PREFIX_LEN + 8].windows(2).all(|w| w != [0xF1, 0]));
    }
    let lens: Vec<usize> = out.iter().map(<[u8]>::len).collect();
    assert_eq!(lens.iter().max(), Some(&1400), "{lens:?}");
    assert_eq!(a.stats().out_bytes, lens.iter().sum::<usize>() as u64);
    assert!(out.len() > 8, "data and parity shards: {}", out.len());
}

#[test]
fn unreliable_messages_both_ways() {
    for fec in [None, Some((10, 3))] {
        let cfg = config(None, fec);
        let (mut a, mut b) = secure_pair(0x5ec4, &cfg);
        assert_eq!(a.datagram_max(), 1358, "1400 − 30 − 8 − 4");
        let big = vec![0xABu8; a.datagram_max()];
        assert_eq!(a.send_datagram(&big, &mut Outbox::default()), Ok(big.len()));
        assert_eq!(
            a.send_datagram(&[0; 1359], &mut Outbox::default()),
            Err(Error::TooLarge)
        );
        messages(&mut a, &mut b);
        messages(&mut b, &mut a);
    }
}

fn messages(from: &mut Driven, to: &mut Driven) {
    let mut buf = [0u8; 2048];
    let mut out = Outbox::default();
    for i in 0..5u8 {
        from.send_datagram(&[i; 100], &mut out).unwrap();
    }
    assert!(out.iter().all(|d| d.len() == SECURE_PREFIX_LEN + 8 + 4 + 100 + 16));
    for d in out.iter() {
        to.input(d, 0).unwrap();
    }
    for i in 0..5u8 {
        assert_eq!(to.recv_datagram(&mut buf), Ok(100));
        assert_eq!(buf[..100], [i; 100]);
    }
    assert_eq!(to.recv_datagram(&mut buf), Err(Error::Again));
}

#[test]
fn every_captured_datagram_replayed_changes_nothing() {
    let cfg = config(None, Some((10, 3)));
    let seed = 0x5ec5;
    eprintln!("seed {seed:#x}");
    let (mut a, mut b) = secure_pair(seed, &cfg);
    let mut captured = exchange(&mut a, &mut b, 200_000, seed);
    let mut out = Outbox::default();
    a.send_datagram(b"once", &mut out).unwrap();
    captured.extend(out.iter().map(<[u8]>::to_vec));
    b.input(out.get(0).unwrap(), 0).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.recv_datagram(&mut buf), Ok(4));
    let (before, secure_before) = (b.stats(), b.secure_stats().unwrap());
    let (in_order, buffered) = (b.received_in_order(), b.buffered_bytes());
    for d in &captured {
        assert!(b.input(d, 100_000).is_err());
    }
    let (after, secure_after) = (b.stats(), b.secure_stats().unwrap());
    eprintln!("{} datagrams replayed: {secure_after:?}", captured.len());
    assert_eq!(secure_after.replayed - secure_before.replayed, captured.len() as u64);
    assert_eq!(secure_after.opened, secure_before.opened);
    assert_eq!((b.received_in_order(), b.buffered_bytes()), (in_order, buffered));
    assert_eq!(b.recv(&mut buf), Err(Error::Again), "no duplicate delivery");
    assert_eq!(b.recv_datagram(&mut buf), Err(Error::Again), "no duplicate message");
    assert_eq!(after.datagrams_in, before.datagrams_in);
    assert_eq!(after.in_csum_errors - before.in_csum_errors, captured.len() as u64);
    // Nothing was flushed for them: no ACK owed.
    let mut flushed = Outbox::default();
    b.conn.flush(&mut flushed);
    assert!(flushed.is_empty(), "replays made b answer");
}

#[test]
fn a_reflected_or_tampered_datagram_fails_to_open_and_changes_nothing() {
    let cfg = config(None, None);
    let (mut a, mut b) = secure_pair(0x5ec6, &cfg);
    a.send(b"hello, secure wire").unwrap();
    a.update(0);
    let out = a.take_outbox();
    let good = out.get(0).unwrap().to_vec();
    // Reflected back to its sender: the other direction's keys.
    let before = a.stats();
    assert_eq!(a.input(&good, 0), Err(Error::Checksum));
    let s = a.secure_stats().unwrap();
    assert_eq!((s.forged, s.opened), (1, 0));
    assert_eq!(a.stats().in_csum_errors, before.in_csum_errors + 1);
    assert_eq!((a.received_in_order(), a.last_opened()), (0, None));
    // Every byte tampered with, one at a time.
    for i in 0..good.len() {
        let mut d = good.clone();
        d[i] ^= 0x20;
        assert!(b.input(&d, 0).is_err(), "byte {i} tampered");
    }
    // In place, in the caller's buffer, too.
    let mut d = good.clone();
    d[20] ^= 1;
    assert_eq!(b.input_in_place(&mut d, 0), Err(Error::Checksum));
    let s = b.secure_stats().unwrap();
    assert_eq!(s.opened, 0);
    assert_eq!(s.forged + s.malformed, good.len() as u64 + 1);
    assert!(b.input(&good[..good.len() - 1], 0).is_err());
    assert_eq!(b.received_in_order(), 0);
    // The original still opens, once.
    b.input_in_place(&mut good.clone(), 0).unwrap();
    assert_eq!(b.input(&good, 0), Err(Error::Checksum), "a replay");
    assert_eq!(b.secure_stats().unwrap().replayed, 1);
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf), Ok(18));
    assert_eq!(&buf[..18], b"hello, secure wire");
    assert_eq!(b.last_opened(), Some(OpenedInfo { pn: 0, newest: true }));
    // Longer than kcp-go's limit: refused before any work.
    assert_eq!(b.input(&[0x40; 1501], 0), Err(Error::Short));
}

#[test]
fn control_frames_come_out_of_the_peers_queue() {
    let cfg = config(None, Some((10, 3)));
    let (mut a, mut b) = secure_pair(0x5ec7, &cfg);
    let close = Control::Close {
        reason: CloseReason::Application,
        code: 0xC0DE_0042,
    };
    let sent = [
        Control::Ping(7),
        Control::Pong(8),
        Control::PathChallenge([1; 8]),
        Control::PathResponse([2; 8]),
        close,
    ];
    let mut out = Outbox::default();
    for c in sent {
        a.send_control(c, &mut out).unwrap();
    }
    assert_eq!(out.get(0).unwrap().len(), 13 + 5 + 16);
    for d in out.iter() {
        b.input(d, 0).unwrap();
    }
    let got: Vec<Control> = core::iter::from_fn(|| b.poll_control()).collect();
    assert_eq!(got, sent);
    assert_eq!(b.secure_stats().unwrap().controls_in, 5);
    assert_eq!(b.stats().in_pkts, 5);
    assert_eq!(b.received_in_order(), 0, "no KCP from a control datagram");
    // Bounded: beyond CONTROL_QUEUE the oldest go, counted.
    let mut out = Outbox::default();
    for id in 0..CONTROL_QUEUE as u32 + 4 {
        b.send_control(Control::Ping(id), &mut out).unwrap();
    }
    for d in out.iter() {
        a.input(d, 0).unwrap();
    }
    assert_eq!(a.secure_stats().unwrap().controls_dropped, 4);
    assert_eq!(a.poll_control(), Some(Control::Ping(4)));
    assert_eq!(core::iter::from_fn(|| a.poll_control()).count(), CONTROL_QUEUE - 1);
    assert!(a.heap_bytes() > 0);
    let queued = a.heap_bytes();
    a.compact_idle_memory();
    assert!(a.heap_bytes() < queued, "the empty control queue is freed");
}

#[test]
fn a_datagram_that_opens_with_bad_frames_is_a_protocol_error() {
    let cfg = config(None, None);
    let (c, s) = sessions(0x5ec8);
    let mut sender = c.sender;
    let mut b = Conn::secure(CONV, &cfg, s).unwrap();
    // An unknown frame type, sealed with the right keys.
    let mut d = vec![0u8; 13 + 2 + 16];
    d[13] = 0x07;
    sender.seal(&mut d).unwrap();
    assert_eq!(b.input(&d, 0), Err(Error::Short));
    let x = b.secure_stats().unwrap();
    assert_eq!((x.opened, x.protocol_errors), (1, 1));
    assert_eq!(b.stats().in_errs, 1);
    assert_eq!(b.poll_control(), None);
}

#[test]
fn the_kcp_go_api_is_unchanged_and_the_wires_do_not_mix() {
    let cfg = config(None, Some((10, 3)));
    let mut plain = Conn::new(CONV, &cfg).unwrap();
    assert!(!plain.is_secure());
    assert_eq!(plain.poll_control(), None);
    assert_eq!(plain.secure_stats(), None);
    assert_eq!((plain.connection_id(), plain.last_opened()), (None, None));
    assert_eq!(
        plain.send_control(Control::Ping(1), &mut Outbox::default()),
        Err(Error::Invalid)
    );
    let (c, _) = sessions(0x5ecc);
    let mut secure = Conn::secure(CONV, &cfg, c).unwrap();
    assert_eq!(
        secure.send_control(Control::Kcp(b"no"), &mut Outbox::default()),
        Err(Error::Invalid)
    );
    assert_eq!(plain.kcp().mss(), 1400 - 8 - 24);
    // A secure connection needs the session's keys, not kcp-go's cipher.
    let (c, _) = sessions(0x5ec9);
    let mut with_cipher = config(Some((crate::crypt::CryptMethod::Aes128, 16)), None);
    assert_eq!(Conn::secure(CONV, &with_cipher, c).err(), Some(Error::Key));
    // Too small an MTU for the 30 bytes of the secure wire.
    with_cipher.crypt = None;
    with_cipher.mtu = 50 + 29;
    let (c, _) = sessions(0x5eca);
    assert_eq!(Conn::secure(CONV, &with_cipher, c).err(), Some(Error::Mtu));
    // A kcp-go datagram given to a secure connection does not open; an
    // `Incoming` read without its keys is refused outright.
    let (mut a, _) = secure_pair(0x5ecb, &cfg);
    plain.send(b"plain").unwrap();
    let mut out = Outbox::default();
    plain.update(0, &mut out);
    let mut d = out.get(0).unwrap().to_vec();
    assert!(a.input(&d, 0).is_err());
    let incoming = Incoming::open(None, &mut d).unwrap();
    assert_eq!(a.input_incoming(incoming, 0), Err(Error::Key));
    assert_eq!(a.received_in_order(), 0);
}

/// A link that loses, reorders and duplicates: byte-exact, and every
/// duplicate the network made is refused as a replay (exactly one count
/// each), nothing forged.
#[test]
fn duplicates_on_the_wire_are_refused_as_replays_one_each() {
    use crate::sim::{LinkConfig, SimNet};
    let seed = 0x5ecd;
    eprintln!("seed {seed:#x}");
    let cfg = config(None, Some((10, 3)));
    let (mut a, mut b) = secure_pair(seed, &cfg);
    let link = LinkConfig {
        delay_ms: 20,
        jitter_ms: 15,
        loss: 0.05,
        duplicate: 0.1,
    };
    let (mut ab, mut ba) = (SimNet::new(seed, link), SimNet::new(!seed, link));
    let (pa, pb) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
    let len = 256 * 1024;
    let data = Rng::new(seed).bytes(len);
    a.send(&data).unwrap();
    b.send(&data[..len / 4]).unwrap();
    let (mut got, mut back, mut buf) = (Vec::new(), Vec::new(), vec![0u8; 1 << 16]);
    let mut now = 0u32;
    while (got.len() < len || back.len() < len / 4 || ab.in_flight() + ba.in_flight() > 0) && now < 200_000 {
        now += 5;
        for (from, net, src, dst) in [(&mut a, &mut ab, pa, pb), (&mut b, &mut ba, pb, pa)] {
            from.update(now);
            let out = from.take_outbox();
            for d in out.iter() {
                net.send(u64::from(now), src, dst, d);
            }
            from.restore_outbox(out);
        }
        for d in ab.arrivals(u64::from(now)) {
            let _ = b.input(&d.bytes, now);
        }
        for d in ba.arrivals(u64::from(now)) {
            let _ = a.input(&d.bytes, now);
        }
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        while let Ok(n) = a.recv(&mut buf) {
            back.extend_from_slice(&buf[..n]);
        }
    }
    assert!(got == data, "seed {seed}: {} of {len} bytes", got.len());
    assert!(back == data[..len / 4], "seed {seed}: {} bytes back", back.len());
    for (side, c, net) in [("b", &b, &ab), ("a", &a, &ba)] {
        let x = c.secure_stats().unwrap();
        eprintln!("{side}: {} duplicated by the link, {x:?}", net.duplicated);
        assert!(net.duplicated > 0);
        assert_eq!(x.replayed, net.duplicated, "seed {seed} {side}");
        assert_eq!(x.forged + x.malformed + x.protocol_errors, 0, "seed {seed} {side}");
        assert_eq!(x.opened + x.replayed, c.stats().in_pkts, "seed {seed} {side}");
    }
}

#[test]
fn a_token_sessions_conn_knows_its_client_and_carries_data() {
    let cfg = config(None, None);
    let (c, s) = handshake(0x5ece, true);
    let (mut a, mut b) = (
        Conn::secure(CONV, &cfg, c).unwrap(),
        Conn::secure(CONV, &cfg, s).unwrap(),
    );
    assert_eq!((a.client_id(), b.client_id()), (Some(4242), Some(4242)));
    assert_eq!(a.connection_id(), b.connection_id());
    let mut out = Outbox::default();
    a.send_datagram(b"from a token client", &mut out).unwrap();
    b.input(out.get(0).unwrap(), 0).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.recv_datagram(&mut buf), Ok(19));
}
