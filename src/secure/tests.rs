//! The handshake machines: every transition of `docs/secure-wire.md`'s
//! state tables, every refusal (forged, truncated, replayed, reflected,
//! expired, wrong address), and sessions sealing frames both ways.

use std::net::SocketAddr;

use super::frames::{self, CloseReason, Frame};
use super::handshake::*;
use super::token;
use super::wire::{ConnectionId, SHORT_HEADER_LEN, TAG_LEN};
use super::*;

const PSK: &[u8] = b"a pre-shared key of 32 bytes....";
const TOKEN_KEY: [u8; 32] = [0x5A; 32];
const T0: Now = Now {
    ms: 1_000_000,
    unix_s: 1_700_000_000,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn client_addr() -> SocketAddr {
    addr("192.0.2.7:40000")
}

fn server_addr() -> SocketAddr {
    addr("198.51.100.1:7000")
}

fn no_cid(_: &ConnectionId) -> bool {
    false
}

fn psk_server() -> Server {
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    cfg.set_token_key(&TOKEN_KEY).unwrap();
    Server::new(&cfg).unwrap()
}

fn at(now: Now, ms: u64) -> Now {
    Now {
        ms: now.ms + ms,
        unix_s: now.unix_s + ms / 1000,
    }
}

struct Run {
    server: Server,
    se: SeededEntropy,
}

impl Run {
    fn new() -> Run {
        Run {
            server: psk_server(),
            se: SeededEntropy::new(100),
        }
    }

    fn send(&mut self, d: &[u8], from: SocketAddr, now: Now) -> Result<ServerAction, SecureError> {
        self.server.handle(d, from, server_addr(), now, &mut self.se, &no_cid)
    }

    fn challenge(&mut self, c: &Client, now: Now) -> [u8; CHALLENGE_LEN] {
        match self.send(c.message(), client_addr(), now).unwrap() {
            ServerAction::Challenge(ch) => ch,
            other => panic!("{other:?}"),
        }
    }

    fn accept(&mut self, c: &Client, now: Now) -> Box<Accepted> {
        match self.send(c.message(), client_addr(), now).unwrap() {
            ServerAction::Accept(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// A full handshake; returns (client session, server's accepted).
    fn handshake(&mut self, cfg: &ClientConfig, seed: u64) -> (Box<Session>, Box<Accepted>) {
        let mut c = Client::new(cfg, T0.ms, &mut SeededEntropy::new(seed)).unwrap();
        let ch = self.challenge(&c, T0);
        assert!(matches!(c.handle(&ch, T0.ms).unwrap(), ClientProgress::Send));
        assert_eq!(c.state(), ClientState::EchoSent);
        let a = self.accept(&c, T0);
        match c.handle(&a.server_hello, T0.ms).unwrap() {
            ClientProgress::Established(s) => (s, a),
            other => panic!("{other:?}"),
        }
    }
}

/// Sends `c`'s hello to `server`, answers its challenge, and returns what
/// the echo draws.
fn echo_through(
    server: &mut Server,
    e: &mut SeededEntropy,
    c: &mut Client,
    taken: &dyn Fn(&ConnectionId) -> bool,
) -> Result<ServerAction, SecureError> {
    let ch = match server.handle(c.message(), client_addr(), server_addr(), T0, e, &no_cid)? {
        ServerAction::Challenge(ch) => ch,
        other => panic!("{other:?}"),
    };
    c.handle(&ch, T0.ms)?;
    server.handle(c.message(), client_addr(), server_addr(), T0, e, taken)
}

fn psk_client() -> ClientConfig {
    ClientConfig::psk(PSK).unwrap()
}

fn token_client(seed: u64, servers: &[SocketAddr], valid_s: u32) -> ClientConfig {
    let blob = token::make(
        &TOKEN_KEY,
        4242,
        T0.unix_s,
        valid_s,
        servers,
        &mut SeededEntropy::new(seed),
    )
    .unwrap();
    ClientConfig::token(&blob).unwrap()
}

/// Seals `frames` from `s` into a datagram.
fn seal(s: &mut Sender, frame: Frame) -> Vec<u8> {
    let mut d = vec![0u8; SHORT_HEADER_LEN + frame.len() + TAG_LEN];
    frame.encode(&mut d[SHORT_HEADER_LEN..]).unwrap();
    s.seal(&mut d).unwrap();
    d
}

fn open_one(r: &mut Receiver, mut d: Vec<u8>) -> Result<Vec<u8>, SecureError> {
    r.open(&mut d).map(|o| o.frames.to_vec())
}

#[test]
fn psk_handshake_and_both_directions_for_each_aead() {
    for alg in [AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305] {
        let mut run = Run::new();
        let mut cfg = psk_client();
        cfg.preferred = alg;
        let (mut cs, mut a) = run.handshake(&cfg, 1);
        assert_eq!((cs.alg, a.session.alg, cs.cid), (alg, alg, a.session.cid));
        assert_eq!(cs.client_id, None);
        let up = seal(&mut cs.sender, Frame::Kcp(b"client to server"));
        let plain = open_one(&mut a.session.receiver, up.clone()).unwrap();
        assert_eq!(frames::parse(&plain).next(), Some(Ok(Frame::Kcp(b"client to server"))));
        let down = seal(&mut a.session.sender, Frame::Ping(9));
        assert_eq!(open_one(&mut cs.receiver, down.clone()).unwrap(), [2, 0, 0, 0, 9]);
        // Replayed and reflected datagrams do not open.
        assert_eq!(open_one(&mut a.session.receiver, up), Err(SecureError::Replayed));
        assert_eq!(open_one(&mut cs.receiver, down), Err(SecureError::Replayed));
        let up2 = seal(&mut cs.sender, Frame::Ping(1));
        let down2 = seal(&mut a.session.sender, Frame::Ping(2));
        assert_eq!(
            open_one(&mut cs.receiver, up2.clone()),
            Err(SecureError::Forged),
            "reflected to its sender"
        );
        assert_eq!(
            open_one(&mut a.session.receiver, down2.clone()),
            Err(SecureError::Forged),
            "reflected to its sender"
        );
        // And they changed nothing: both still open where they belong.
        assert!(open_one(&mut a.session.receiver, up2).is_ok());
        assert!(open_one(&mut cs.receiver, down2).is_ok());
        assert_eq!(run.server.stats().accepted, 1);
    }
}

#[test]
fn token_handshake_carries_the_client_id() {
    let mut run = Run::new();
    let (mut cs, mut a) = run.handshake(&token_client(5, &[server_addr()], 60), 2);
    assert_eq!((cs.client_id, a.session.client_id), (Some(4242), Some(4242)));
    let up = seal(
        &mut cs.sender,
        Frame::Close {
            reason: CloseReason::Application,
            code: 77,
        },
    );
    let plain = open_one(&mut a.session.receiver, up).unwrap();
    assert_eq!(
        frames::parse(&plain).next(),
        Some(Ok(Frame::Close {
            reason: CloseReason::Application,
            code: 77
        }))
    );
}

#[test]
fn hellos_from_spoofed_addresses_allocate_nothing_and_the_answer_is_small() {
    let mut run = Run::new();
    for i in 0..200u64 {
        let c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(1000 + i)).unwrap();
        let from = SocketAddr::new(std::net::Ipv4Addr::from(0x0A00_0000 + i as u32).into(), 1234);
        match run.send(c.message(), from, T0).unwrap() {
            ServerAction::Challenge(ch) => assert!(ch.len() < c.message().len() / 10),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(run.server.used_entries(), 0, "no state before an echo");
    assert_eq!(run.server.stats().challenges, 200);
    const { assert!(CHALLENGE_LEN == 70 && SERVER_HELLO_LEN < HELLO_LEN) };
}

#[test]
fn an_echo_from_another_address_or_after_the_window_is_refused() {
    let mut run = Run::new();
    let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(3)).unwrap();
    let ch = run.challenge(&c, T0);
    c.handle(&ch, T0.ms).unwrap();
    let echo = c.message().to_vec();
    assert_eq!(
        run.send(&echo, addr("192.0.2.7:40001"), T0).unwrap_err(),
        SecureError::Forged,
        "other port"
    );
    assert_eq!(
        run.send(&echo, addr("192.0.2.8:40000"), T0).unwrap_err(),
        SecureError::Forged,
        "other host"
    );
    assert_eq!(
        run.send(&echo, client_addr(), at(T0, 20_000)).unwrap_err(),
        SecureError::Expired,
        "two windows later"
    );
    assert_eq!(run.server.used_entries(), 0);
    assert_eq!(run.server.stats().expired, 1);
    // A cookie is valid into the next window (a fresh server: the first one
    // has rotated its secrets past this cookie's).
    let mut run2 = Run::new();
    let mut c2 = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(4)).unwrap();
    let ch2 = run2.challenge(&c2, T0);
    c2.handle(&ch2, T0.ms).unwrap();
    assert!(matches!(
        run2.send(c2.message(), client_addr(), at(T0, 10_000)),
        Ok(ServerAction::Accept(_))
    ));
}

#[test]
fn forged_truncated_and_malformed_hellos_draw_nothing() {
    let mut run = Run::new();
    let c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(6)).unwrap();
    let hello = c.message().to_vec();
    // A wrong PSK: the MAC fails, no challenge.
    let other = Client::new(&ClientConfig::psk(&[1; 32]).unwrap(), T0.ms, &mut SeededEntropy::new(6)).unwrap();
    assert_eq!(
        run.send(other.message(), client_addr(), T0).unwrap_err(),
        SecureError::Forged
    );
    // Every byte of the hello counts.
    for i in [0, 5, 6, 40, 70, 71, 72, 73, 100, 1167, 1168, 1184, 1199] {
        let mut h = hello.clone();
        h[i] ^= 0x01;
        assert!(run.send(&h, client_addr(), T0).is_err(), "byte {i}");
    }
    assert_eq!(
        run.send(&hello[..1199], client_addr(), T0).unwrap_err(),
        SecureError::Truncated
    );
    let mut long = hello.clone();
    long.push(0);
    assert_eq!(run.send(&long, client_addr(), T0).unwrap_err(), SecureError::Truncated);
    let mut pad = hello.clone();
    pad[500] = 1;
    assert_eq!(run.send(&pad, client_addr(), T0).unwrap_err(), SecureError::Malformed);
    let mut cookie = hello.clone();
    cookie[1170] = 1;
    assert_eq!(
        run.send(&cookie, client_addr(), T0).unwrap_err(),
        SecureError::Malformed
    );
    let mut v2 = hello.clone();
    v2[5] = 2;
    assert_eq!(run.send(&v2, client_addr(), T0).unwrap_err(), SecureError::Version);
    // An echo without a challenge: a zero cookie is not a cookie.
    let mut echo = hello.clone();
    echo[0] = 0xC2;
    assert!(run.send(&echo, client_addr(), T0).is_err());
    assert_eq!(run.server.stats().challenges, 0);
    assert_eq!(run.server.used_entries(), 0);
    // The genuine one still works.
    assert!(matches!(
        run.send(&hello, client_addr(), T0),
        Ok(ServerAction::Challenge(_))
    ));
}

#[test]
fn a_changed_offer_is_a_forged_hello() {
    let mut run = Run::new();
    let c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(7)).unwrap();
    let mut h = c.message().to_vec();
    h[70] = 0b10;
    h[71] = 2;
    assert_eq!(run.send(&h, client_addr(), T0).unwrap_err(), SecureError::Forged);
}

#[test]
fn reflected_handshake_messages_are_refused_by_both_sides() {
    let mut run = Run::new();
    let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(8)).unwrap();
    let ch = run.challenge(&c, T0);
    assert_eq!(run.send(&ch, client_addr(), T0).unwrap_err(), SecureError::Unexpected);
    let hello = c.message().to_vec();
    assert_eq!(c.handle(&hello, T0.ms).unwrap_err(), SecureError::Unexpected);
    c.handle(&ch, T0.ms).unwrap();
    let a = run.accept(&c, T0);
    assert_eq!(
        run.send(&a.server_hello, client_addr(), T0).unwrap_err(),
        SecureError::Unexpected
    );
    let echo = c.message().to_vec();
    assert_eq!(c.handle(&echo, T0.ms).unwrap_err(), SecureError::Unexpected);
    assert!(run.server.stats().unexpected >= 2);
}

#[test]
fn repeated_echoes_are_duplicates_and_a_token_opens_one_session() {
    let mut run = Run::new();
    let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(9)).unwrap();
    let ch = run.challenge(&c, T0);
    c.handle(&ch, T0.ms).unwrap();
    let a = run.accept(&c, T0);
    match run.send(c.message(), client_addr(), T0).unwrap() {
        ServerAction::Duplicate(r) => assert_eq!(r, a.client_random),
        other => panic!("{other:?}"),
    }

    // A token: a second client with the same blob (a stolen or replayed
    // token) is refused once the first used it.
    let cfg = token_client(10, &[server_addr()], 60);
    let mut c1 = Client::new(&cfg, T0.ms, &mut SeededEntropy::new(11)).unwrap();
    let ch1 = run.challenge(&c1, T0);
    c1.handle(&ch1, T0.ms).unwrap();
    run.accept(&c1, T0);
    assert!(matches!(
        run.send(c1.message(), client_addr(), T0),
        Ok(ServerAction::Duplicate(_))
    ));
    let mut c2 = Client::new(&cfg, T0.ms, &mut SeededEntropy::new(12)).unwrap();
    let ch2 = run.challenge(&c2, T0);
    c2.handle(&ch2, T0.ms).unwrap();
    assert_eq!(
        run.send(c2.message(), client_addr(), T0).unwrap_err(),
        SecureError::TokenReused
    );
    assert_eq!(run.server.stats().token_reused, 1);
}

#[test]
fn tokens_for_other_servers_expired_or_unconfigured_are_refused() {
    let mut run = Run::new();
    let elsewhere = token_client(13, &[addr("198.51.100.2:7000")], 60);
    let c = Client::new(&elsewhere, T0.ms, &mut SeededEntropy::new(14)).unwrap();
    assert_eq!(
        run.send(c.message(), client_addr(), T0).unwrap_err(),
        SecureError::WrongAddress
    );
    let short = token_client(15, &[server_addr()], 5);
    let c = Client::new(&short, T0.ms, &mut SeededEntropy::new(16)).unwrap();
    assert_eq!(
        run.send(c.message(), client_addr(), at(T0, 5_000)).unwrap_err(),
        SecureError::Expired
    );
    // A PSK-only server does not take tokens, a token-only one no PSK.
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    let mut psk_only = Server::new(&cfg).unwrap();
    let c = Client::new(
        &token_client(17, &[server_addr()], 60),
        T0.ms,
        &mut SeededEntropy::new(18),
    )
    .unwrap();
    let mut e = SeededEntropy::new(19);
    assert_eq!(
        psk_only
            .handle(c.message(), client_addr(), server_addr(), T0, &mut e, &no_cid)
            .unwrap_err(),
        SecureError::Unsupported
    );
    let mut cfg = ServerConfig::default();
    cfg.set_token_key(&TOKEN_KEY).unwrap();
    let mut token_only = Server::new(&cfg).unwrap();
    let c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(20)).unwrap();
    assert_eq!(
        token_only
            .handle(c.message(), client_addr(), server_addr(), T0, &mut e, &no_cid)
            .unwrap_err(),
        SecureError::Unsupported
    );
    assert_eq!(
        Server::new(&ServerConfig::default()).unwrap_err(),
        SecureError::Unsupported
    );
    // A token sealed with another key.
    let blob = token::make(&[1; 32], 1, T0.unix_s, 60, &[server_addr()], &mut e).unwrap();
    let c = Client::new(&ClientConfig::token(&blob).unwrap(), T0.ms, &mut e).unwrap();
    assert_eq!(
        run.send(c.message(), client_addr(), T0).unwrap_err(),
        SecureError::Forged
    );
}

#[test]
fn the_client_refuses_what_is_not_its_servers() {
    let mut run = Run::new();
    let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(21)).unwrap();
    let ch = run.challenge(&c, T0);
    // A challenge for another hello, a forged one, a truncated one.
    let mut other = ch;
    other[10] ^= 1;
    assert_eq!(c.handle(&other, T0.ms).unwrap_err(), SecureError::Unexpected);
    let mut forged = ch;
    forged[40] ^= 1;
    assert_eq!(c.handle(&forged, T0.ms).unwrap_err(), SecureError::Forged);
    assert_eq!(c.handle(&ch[..69], T0.ms).unwrap_err(), SecureError::Truncated);
    // A SERVER_HELLO before the echo.
    let mut probe = Run::new();
    let mut c9 = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(22)).unwrap();
    let ch9 = probe.challenge(&c9, T0);
    c9.handle(&ch9, T0.ms).unwrap();
    let sh9 = probe.accept(&c9, T0).server_hello;
    assert_eq!(c.handle(&sh9, T0.ms).unwrap_err(), SecureError::Unexpected);
    assert_eq!(c.state(), ClientState::HelloSent);

    c.handle(&ch, T0.ms).unwrap();
    // The same challenge again (our hello was retransmitted): nothing.
    assert!(matches!(c.handle(&ch, T0.ms).unwrap(), ClientProgress::Nothing));
    let a = run.accept(&c, T0);
    // Another session's SERVER_HELLO, and every changed field of ours.
    assert_eq!(c.handle(&sh9, T0.ms).unwrap_err(), SecureError::Forged);
    for i in [6, 13, 14, 45, 46, 77, 79, 110] {
        let mut sh = a.server_hello;
        sh[i] ^= 1;
        assert!(c.handle(&sh, T0.ms).is_err(), "byte {i}");
        assert_eq!(c.state(), ClientState::EchoSent);
    }
    let mut not_offered = a.server_hello;
    not_offered[78] = 3;
    assert_eq!(c.handle(&not_offered, T0.ms).unwrap_err(), SecureError::Malformed);
    assert!(matches!(
        c.handle(&a.server_hello, T0.ms),
        Ok(ClientProgress::Established(_))
    ));
    assert_eq!(c.state(), ClientState::Established);
    assert_eq!(c.handle(&a.server_hello, T0.ms).unwrap_err(), SecureError::Unexpected);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn the_client_answers_three_new_challenges_then_gives_up() {
    let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(23)).unwrap();
    let hello = c.message().to_vec();
    let mut run = Run::new();
    let mut now = T0;
    let challenge = |run: &mut Run, now: Now| match run.send(&hello, client_addr(), now).unwrap() {
        ServerAction::Challenge(ch) => ch,
        other => panic!("{other:?}"),
    };
    for round in 0..=MAX_RECHALLENGES {
        let ch = challenge(&mut run, now);
        assert!(
            matches!(c.handle(&ch, now.ms), Ok(ClientProgress::Send)),
            "round {round}"
        );
        now = at(now, 10_000); // a new window: a new cookie
    }
    let ch = challenge(&mut run, now);
    assert_eq!(c.handle(&ch, now.ms).unwrap_err(), SecureError::Failed);
    assert_eq!(c.state(), ClientState::Failed);
    assert_eq!(c.handle_timeout(now.ms).unwrap_err(), SecureError::Failed);
}

#[test]
fn the_client_retransmits_with_backoff_and_times_out() {
    let t = 5_000;
    let mut c = Client::new(&psk_client(), t, &mut SeededEntropy::new(24)).unwrap();
    let mut sent = Vec::new();
    let mut now;
    loop {
        now = c.poll_timeout().unwrap();
        match c.handle_timeout(now) {
            Ok(true) => sent.push(now - t),
            Ok(false) => {}
            Err(e) => {
                assert_eq!(e, SecureError::Failed);
                break;
            }
        }
    }
    assert_eq!(sent, [250, 750, 1750, 3750, 5750, 7750, 9750]);
    assert_eq!(now - t, HANDSHAKE_TIMEOUT_MS);
    assert_eq!(c.state(), ClientState::Failed);
    assert_eq!(c.handle_timeout(now + 1).unwrap_err(), SecureError::Failed);
}

#[test]
fn connection_ids_in_use_are_redrawn() {
    let accept_with = |taken: &dyn Fn(&ConnectionId) -> bool| {
        let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(25)).unwrap();
        match echo_through(&mut psk_server(), &mut SeededEntropy::new(200), &mut c, taken).unwrap() {
            ServerAction::Accept(a) => a.session.cid,
            other => panic!("{other:?}"),
        }
    };
    let first = accept_with(&no_cid);
    let calls = std::cell::Cell::new(0);
    let second = accept_with(&|cid: &ConnectionId| {
        calls.set(calls.get() + 1);
        *cid == first
    });
    assert_ne!(first, second);
    assert_eq!(calls.get(), 2);
}

#[test]
fn the_used_table_fails_closed_when_full() {
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    cfg.used_capacity = 1;
    let mut server = Server::new(&cfg).unwrap();
    let mut e = SeededEntropy::new(26);
    let mut echo = |seed| {
        let mut c = Client::new(&psk_client(), T0.ms, &mut SeededEntropy::new(seed)).unwrap();
        echo_through(&mut server, &mut e, &mut c, &no_cid)
    };
    assert!(matches!(echo(27), Ok(ServerAction::Accept(_))));
    assert_eq!(echo(28).unwrap_err(), SecureError::Full);
}

#[test]
fn bad_configurations_are_refused() {
    assert_eq!(ClientConfig::psk(&[0; 15]).unwrap_err(), SecureError::Invalid);
    assert_eq!(ClientConfig::psk(&[0; 65]).unwrap_err(), SecureError::Invalid);
    assert!(ClientConfig::psk(&[0; 16]).is_ok());
    assert_eq!(ClientConfig::token(&[0; 10]).unwrap_err(), SecureError::Truncated);
    let mut cfg = psk_client();
    cfg.offer = AeadSet::only(AeadAlg::Aes256Gcm);
    cfg.preferred = AeadAlg::ChaCha20Poly1305;
    assert_eq!(
        Client::new(&cfg, 0, &mut SeededEntropy::new(1)).unwrap_err(),
        SecureError::Invalid
    );
    let mut s = ServerConfig::default();
    assert_eq!(s.set_psk(&[0; 8]), Err(SecureError::Invalid));
    assert_eq!(s.set_token_key(&[0; 31]), Err(SecureError::Invalid));
}

#[test]
fn no_common_aead_draws_nothing() {
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    cfg.allowed = AeadSet::only(AeadAlg::Aes256Gcm);
    let mut server = Server::new(&cfg).unwrap();
    let mut ccfg = psk_client();
    ccfg.offer = AeadSet::only(AeadAlg::ChaCha20Poly1305);
    ccfg.preferred = AeadAlg::ChaCha20Poly1305;
    let c = Client::new(&ccfg, T0.ms, &mut SeededEntropy::new(29)).unwrap();
    let mut e = SeededEntropy::new(30);
    assert_eq!(
        server
            .handle(c.message(), client_addr(), server_addr(), T0, &mut e, &no_cid)
            .unwrap_err(),
        SecureError::Unsupported
    );
}

#[test]
fn secure_errors_convert_into_the_crate_error() {
    use crate::error::Error;
    assert_eq!(Error::from(SecureError::Forged), Error::Checksum);
    assert_eq!(Error::from(SecureError::Truncated), Error::Short);
    assert_eq!(Error::from(SecureError::Random), Error::Random);
}

/// Migration end to end, sans-IO: the client's address changes, the server
/// checks the new one with a PATH_CHALLENGE inside the session's AEAD, the
/// client answers, the path moves. A replayed datagram from a spoofed
/// address starts nothing; a rewritten source starts a check nobody
/// answers, and the path stays.
#[test]
fn migration_moves_only_after_the_path_answers() {
    use super::path::Paths;
    let mut run = Run::new();
    let (mut cs, mut a) = run.handshake(&psk_client(), 31);
    let mut paths = Paths::new(client_addr());
    let mut e = SeededEntropy::new(32);
    let rebound = addr("192.0.2.7:50000");

    // A datagram the attacker captured on the old path, replayed from elsewhere.
    let first = seal(&mut cs.sender, Frame::Kcp(b"one"));
    assert_eq!(a.session.receiver.open(&mut first.clone()).unwrap().pn, 0);
    assert!(paths
        .on_datagram(client_addr(), first.len(), true, 0, 50, &mut e)
        .unwrap()
        .is_none());
    assert_eq!(
        a.session.receiver.open(&mut first.clone()).unwrap_err(),
        SecureError::Replayed
    );
    assert_eq!(paths.checking(), None, "a replay never reaches the path logic");

    // The client rebinds: its next datagram comes from a new port.
    let moved = seal(&mut cs.sender, Frame::Kcp(b"two"));
    let newest = a.session.receiver.open(&mut moved.clone()).unwrap().newest;
    assert!(newest);
    let ch = paths
        .on_datagram(rebound, moved.len(), newest, 10, 50, &mut e)
        .unwrap()
        .expect("a check starts");
    assert_eq!((paths.current(), ch.to), (client_addr(), rebound));
    let challenge = seal(&mut a.session.sender, Frame::PathChallenge(ch.data));
    assert!(paths.may_send(rebound, challenge.len()), "within 3x what it received");
    paths.on_sent(rebound, challenge.len());
    // The client answers from the socket the challenge came in on.
    let plain = open_one(&mut cs.receiver, challenge).unwrap();
    let Some(Ok(Frame::PathChallenge(data))) = frames::parse(&plain).next() else {
        panic!("a PATH_CHALLENGE")
    };
    let response = seal(&mut cs.sender, Frame::PathResponse(data));
    let plain = open_one(&mut a.session.receiver, response).unwrap();
    let Some(Ok(Frame::PathResponse(back))) = frames::parse(&plain).next() else {
        panic!("a PATH_RESPONSE")
    };
    assert!(
        !paths.on_response(addr("203.0.113.9:1"), &back),
        "from another address: no"
    );
    assert!(paths.on_response(rebound, &back));
    assert_eq!(paths.current(), rebound);

    // An on-path attacker rewrites the source of a fresh datagram: it opens
    // (it is genuine), a check starts, nobody answers, the path stays.
    let fresh = seal(&mut cs.sender, Frame::Kcp(b"three"));
    a.session.receiver.open(&mut fresh.clone()).unwrap();
    let spoof = addr("203.0.113.66:9");
    let ch = paths
        .on_datagram(spoof, fresh.len(), true, 100, 50, &mut e)
        .unwrap()
        .unwrap();
    assert_eq!(ch.to, spoof);
    let mut now = 100;
    while let Some(t) = paths.poll_timeout() {
        now = t;
        paths.handle_timeout(now, 50, &mut e).unwrap();
    }
    assert_eq!((paths.current(), paths.checking()), (rebound, None));
    assert!(now <= 100 + 3 * 200, "given up after 3 tries of 200 ms");
}

/// Property, on the virtual clock: over a lossy, duplicating, reordering
/// network the handshake completes, the server accepts exactly one session
/// per client (repeated echoes are duplicates, answered from the pending
/// session), and both sides hold the same keys.
#[test]
fn handshakes_complete_over_a_lossy_network_with_one_session_each() {
    use crate::sim::{LinkConfig, SimNet};
    let (c_addr, s_addr) = (client_addr(), server_addr());
    let mut established = 0;
    let runs = 100u64;
    for seed in 0..runs {
        let mut net = SimNet::new(
            seed,
            LinkConfig {
                delay_ms: 5 + (seed % 40) as u32,
                jitter_ms: 30,
                loss: 0.2,
                duplicate: 0.1,
            },
        );
        let mut run = Run::new();
        run.se = SeededEntropy::new(1000 + seed);
        let t0 = T0.ms;
        let mut client = Client::new(&psk_client(), t0, &mut SeededEntropy::new(seed)).unwrap();
        net.send(t0, c_addr, s_addr, client.message());
        let mut pending: Option<Box<Accepted>> = None;
        let mut session: Option<Box<Session>> = None;
        let mut now = t0;
        while session.is_none() && client.state() != ClientState::Failed {
            let next = [client.poll_timeout(), net.next_arrival()].into_iter().flatten().min();
            let Some(next) = next else { break };
            now = next;
            if client.poll_timeout().is_some_and(|t| t <= now) && client.handle_timeout(now) == Ok(true) {
                net.send(now, c_addr, s_addr, client.message());
            }
            for d in net.arrivals(now) {
                if d.to == s_addr {
                    let t = at(T0, now - t0);
                    match run.send(&d.bytes, d.from, t) {
                        Ok(ServerAction::Challenge(ch)) => net.send(now, s_addr, c_addr, &ch),
                        Ok(ServerAction::Accept(a)) => {
                            assert!(pending.is_none(), "seed {seed}: a second session for one client");
                            net.send(now, s_addr, c_addr, &a.server_hello);
                            pending = Some(a);
                        }
                        Ok(ServerAction::Duplicate(r)) => {
                            let p = pending.as_ref().expect("a duplicate of an accepted echo");
                            assert_eq!(p.client_random, r);
                            net.send(now, s_addr, c_addr, &p.server_hello);
                        }
                        Err(e) => panic!("seed {seed}: the server refused a genuine message: {e}"),
                    }
                } else {
                    match client.handle(&d.bytes, now) {
                        Ok(ClientProgress::Send) => net.send(now, c_addr, s_addr, client.message()),
                        Ok(ClientProgress::Established(s)) => session = Some(s),
                        Ok(ClientProgress::Nothing) | Err(SecureError::Unexpected) => {}
                        Err(e) => panic!("seed {seed}: the client refused a genuine message: {e}"),
                    }
                }
            }
        }
        if let (Some(mut cs), Some(mut a)) = (session, pending) {
            established += 1;
            assert!(now - t0 < HANDSHAKE_TIMEOUT_MS);
            let up = seal(&mut cs.sender, Frame::Ping(seed as u32));
            assert_eq!(
                open_one(&mut a.session.receiver, up).unwrap()[0],
                2,
                "seed {seed}: same keys"
            );
            assert_eq!(run.server.stats().accepted, 1);
        }
    }
    eprintln!("{established} of {runs} handshakes completed at 20% loss each way");
    assert!(established >= runs - 2, "{established} of {runs}");
}
