//! Arbitrary bytes into the secure wire (`src/secure/`): the first byte
//! picks a mode, the rest is cut into datagrams (a length byte, then up to
//! 6 × that many bytes).
//!
//! * mode 0: raw datagrams into the header parser, the server's handshake,
//!   a client waiting for a challenge, and a session's receiver;
//! * mode 1: each datagram is a plaintext that a sender seals and the
//!   receiver opens (frames parsed and validated, fed to the path check and
//!   the keepalive timer from one of four source ports), then the sealed
//!   datagram with some of its bytes flipped, which must not open;
//! * mode 2: each datagram fills a CLIENT_HELLO or CLIENT_ECHO whose MAC is
//!   made with the server's PSK, so the server's checks past the MAC run;
//!   a challenge it answers is fed to a client, and its echo back;
//! * mode 3: a genuine handshake up to the echo, then raw datagrams into
//!   the waiting client and the established session.
//!
//! Goal: no panic, no overflow (the fuzz profile checks arithmetic), and the
//! invariants below: nothing unauthenticated opens or creates a session.
#![no_main]

use std::net::SocketAddr;

use kcpx::secure::frames;
use kcpx::secure::handshake::{Now, ServerAction};
use kcpx::secure::keys::CredentialKeys;
use kcpx::secure::liveness::Liveness;
use kcpx::secure::path::Paths;
use kcpx::secure::wire::{self, ConnectionId};
use kcpx::secure::{
    AeadAlg, Client, ClientConfig, ClientProgress, Receiver, SeededEntropy, Sender, Server, ServerConfig,
};
use libfuzzer_sys::fuzz_target;

const PSK: &[u8] = b"kcpx fuzz pre-shared key 32 byte";
const NOW: Now = Now {
    ms: 5_000_000,
    unix_s: 1_700_000_000,
};

fn from() -> SocketAddr {
    "192.0.2.1:1000".parse().unwrap()
}

fn local() -> SocketAddr {
    "198.51.100.1:7000".parse().unwrap()
}

fn no_cid(_: &ConnectionId) -> bool {
    false
}

fn server() -> Server {
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    cfg.set_token_key(&[3; 32]).unwrap();
    cfg.used_capacity = 64;
    Server::new(&cfg).unwrap()
}

fn datagrams(mut rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = (usize::from(len) * 6).min(tail.len());
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let alg = if mode & 0x80 != 0 {
        AeadAlg::ChaCha20Poly1305
    } else {
        AeadAlg::Aes256Gcm
    };
    let cid = [mode; 8];
    let mut entropy = SeededEntropy::new(u64::from(mode));
    let mut srv = server();
    match mode % 4 {
        0 => {
            let mut client = Client::new(&ClientConfig::psk(PSK).unwrap(), NOW.ms, &mut entropy).unwrap();
            let mut receiver = Receiver::new(alg, cid, [1; 32]);
            for d in datagrams(rest) {
                let _ = wire::classify(d);
                let r = srv.handle(d, from(), local(), NOW, &mut entropy, &no_cid);
                assert!(!matches!(r, Ok(ServerAction::Accept(_))), "a session from forged bytes");
                assert!(!matches!(client.handle(d, NOW.ms), Ok(ClientProgress::Established(_))));
                let mut m = d.to_vec();
                assert!(receiver.open(&mut m).is_err(), "forged bytes opened");
            }
        }
        1 => {
            let mut sender = Sender::new(alg, cid, [2; 32]);
            let mut receiver = Receiver::new(alg, cid, [2; 32]);
            let mut paths = Paths::new(from());
            let mut liveness = Liveness::new(u32::from(mode) * 10, 0);
            let mut now = 0u64;
            for d in datagrams(rest) {
                now += u64::from(d.first().copied().unwrap_or(1)) * 7;
                let mut m = vec![0u8; wire::SHORT_HEADER_LEN + d.len().max(1) + wire::TAG_LEN];
                m[wire::SHORT_HEADER_LEN..wire::SHORT_HEADER_LEN + d.len()].copy_from_slice(d);
                sender.seal(&mut m).unwrap();
                let sealed = m.clone();
                let o = receiver.open(&mut m).expect("a genuine datagram opens");
                let plain = o.frames.to_vec();
                let _ = frames::validate(&plain);
                let newest = o.newest;
                liveness.on_authenticated(now);
                let port = u16::from(d.first().copied().unwrap_or(0) % 4);
                let src = SocketAddr::new(from().ip(), 1000 + port);
                let _ = paths.on_datagram(src, m.len(), newest, now, 50, &mut entropy);
                for f in frames::parse(&plain).flatten() {
                    let mut buf = vec![0u8; f.len()];
                    f.encode(&mut buf).unwrap();
                    if let frames::Frame::PathResponse(b) = f {
                        let moved = paths.on_response(src, &b);
                        assert!(!moved || paths.current() == src);
                    }
                }
                let _ = paths.may_send(src, plain.len());
                let _ = paths.handle_timeout(now, 50, &mut entropy);
                let _ = liveness.handle_timeout(now);
                // Flipped bytes (chosen by the input) never open.
                if let Some(&k) = d.first() {
                    let mut bad = sealed.clone();
                    let at = usize::from(k) % bad.len();
                    bad[at] ^= 1 | (k >> 1);
                    assert!(receiver.open(&mut bad).is_err(), "a changed datagram opened");
                }
                let mut again = sealed;
                assert!(receiver.open(&mut again).is_err(), "a replay opened");
            }
        }
        2 => {
            let keys = CredentialKeys::new(PSK);
            let mut client = Client::new(&ClientConfig::psk(PSK).unwrap(), NOW.ms, &mut entropy).unwrap();
            for d in datagrams(rest) {
                let mut h = [0u8; 1200];
                let n = d.len().min(1200 - 6 - 16);
                h[6..6 + n].copy_from_slice(&d[..n]);
                let t = if d.first().is_some_and(|b| b & 1 != 0) {
                    wire::MessageType::ClientEcho
                } else {
                    wire::MessageType::ClientHello
                };
                wire::write_long(&mut h, t);
                let mac = keys.hello_mac(&h[..1184]);
                h[1184..].copy_from_slice(&mac);
                if let Ok(ServerAction::Challenge(ch)) = srv.handle(&h, from(), local(), NOW, &mut entropy, &no_cid) {
                    assert_eq!(ch.len(), 70);
                    let _ = client.handle(&ch, NOW.ms);
                }
                let _ = srv.handle(client.message(), from(), local(), NOW, &mut entropy, &no_cid);
            }
        }
        _ => {
            let mut client = Client::new(&ClientConfig::psk(PSK).unwrap(), NOW.ms, &mut entropy).unwrap();
            let Ok(ServerAction::Challenge(ch)) =
                srv.handle(client.message(), from(), local(), NOW, &mut entropy, &no_cid)
            else {
                panic!("a genuine hello is answered");
            };
            client.handle(&ch, NOW.ms).unwrap();
            let Ok(ServerAction::Accept(mut acc)) =
                srv.handle(client.message(), from(), local(), NOW, &mut entropy, &no_cid)
            else {
                panic!("a genuine echo is accepted");
            };
            for d in datagrams(rest) {
                assert!(!matches!(client.handle(d, NOW.ms), Ok(ClientProgress::Established(_))));
                let mut m = d.to_vec();
                assert!(acc.session.receiver.open(&mut m).is_err(), "forged bytes opened");
                let _ = srv.handle(d, from(), local(), NOW, &mut entropy, &no_cid);
            }
            assert!(matches!(
                client.handle(&acc.server_hello, NOW.ms),
                Ok(ClientProgress::Established(_))
            ));
        }
    }
});
