//! Datagrams into a connection speaking the secure wire (FEC 3/2), as its
//! owner gets them from the network: raw bytes (which must fail to open and
//! change nothing), and, half of the time, arbitrary frames sealed with the
//! peer's real keys, so that the fuzzer reaches the frame parser, the
//! control queue, the FEC decoder and KCP behind the AEAD. Each run starts
//! from a real PSK handshake (fixed seeds).
//! Goal: no panic, bounded memory, and only authenticated data delivered.
#![no_main]

use kcpx::conn::{Conn, ConnConfig, Outbox};
use kcpx::fec::FecConfig;
use kcpx::secure::handshake::Now;
use kcpx::secure::SeededEntropy;
use kcpx::secure::{Client, ClientConfig, ClientProgress, Server, ServerAction, ServerConfig, Session};
use libfuzzer_sys::fuzz_target;

const PSK: &[u8] = b"a pre-shared key of 32 bytes....";

/// A PSK handshake in memory: (the client's session, the server's).
fn sessions() -> (Session, Session) {
    let now = Now {
        ms: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let (client_addr, server_addr) = ("192.0.2.7:40000".parse().unwrap(), "198.51.100.1:7000".parse().unwrap());
    let mut scfg = ServerConfig::default();
    scfg.set_psk(PSK).unwrap();
    let mut server = Server::new(&scfg).unwrap();
    let mut se = SeededEntropy::new(1);
    let mut c = Client::new(&ClientConfig::psk(PSK).unwrap(), now.ms, &mut SeededEntropy::new(2)).unwrap();
    let taken = |_: &kcpx::secure::wire::ConnectionId| false;
    let Ok(ServerAction::Challenge(ch)) = server.handle(c.message(), client_addr, server_addr, now, &mut se, &taken)
    else {
        panic!("no challenge")
    };
    c.handle(&ch, now.ms).unwrap();
    let Ok(ServerAction::Accept(a)) = server.handle(c.message(), client_addr, server_addr, now, &mut se, &taken) else {
        panic!("no accept")
    };
    match c.handle(&a.server_hello, now.ms) {
        Ok(ClientProgress::Established(s)) => (*s, a.session),
        _ => panic!("no session"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (client, server) = sessions();
    let cfg = ConnConfig {
        fec: Some(FecConfig::new(3, 2).unwrap()),
        crypt: None,
        nodelay: (1, 10, 2, 1),
        window: (64, 64),
        mtu: 1400,
        stream: true,
        rate_limit: None,
    };
    let mut conn = Conn::secure(7, &cfg, server).unwrap();
    let mut sender = client.sender;
    let (mut now, mut out, mut buf) = (0u32, Outbox::default(), [0u8; 4096]);
    for chunk in data.split(|&b| b == 0xff) {
        now = now.wrapping_add(7);
        match chunk.first() {
            Some(&flag) if flag & 1 == 1 => {
                let mut d = vec![0u8; 13];
                if flag & 2 == 2 {
                    // A KCP frame, its body framed as an FEC shard (data,
                    // parity or out-of-band) half of the time.
                    d.push(0x01);
                    if flag & 4 == 4 && chunk.len() > 7 {
                        d.extend_from_slice(&u32::from(flag >> 4).to_le_bytes());
                        d.extend_from_slice(&[0xf1 + (flag >> 3) % 3, 0]);
                    }
                }
                d.extend_from_slice(&chunk[1..]);
                d.extend_from_slice(&[0; 16]);
                if sender.seal(&mut d).is_ok() {
                    let _ = conn.input(&d, now);
                }
            }
            _ => {
                let _ = conn.input(chunk, now);
            }
        }
        while conn.poll_control().is_some() {}
        conn.update(now, &mut out);
        out.clear();
        while conn.recv(&mut buf).is_ok() {}
        while conn.recv_datagram(&mut buf).is_ok() {}
        assert!(conn.heap_bytes() < 8 << 20, "unbounded memory");
    }
});
