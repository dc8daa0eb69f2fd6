//! A secure (PSK) listener and a secure dialer on one fuzzer-controlled
//! wire: each step the fuzzer delivers, drops, duplicates, corrupts or
//! redirects (a new source address: migration) the datagrams in flight, or
//! injects its own bytes from arbitrary addresses, starting with a long
//! header's magic half of the time so that they reach the handshake. The
//! application sides echo, send unreliable messages and close with a code.
//! Goal: no panic, no arithmetic overflow, the session limit holds, every
//! transmit fits the MTU.
#![no_main]

use kcpx::endpoint::{Endpoint, EndpointConfig, Event, SecureSetting};
use kcpx::secure::{ClientConfig, ServerConfig};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

const PSK: [u8; 32] = [0x5a; 32];

fn config(fec: bool) -> EndpointConfig {
    let mut cfg = EndpointConfig::default();
    if fec {
        cfg.conn.set_fec(3, 2).unwrap();
    }
    cfg.conn.set_nodelay(1, 10, 2, 1);
    cfg.set_limits(4, 8).unwrap();
    cfg.set_idle_timeout(2_000);
    cfg
}

/// The application side of one endpoint: accept, echo, answer messages.
fn serve(ep: &mut Endpoint, now: u32, close: bool, buf: &mut [u8]) {
    while let Some(ev) = ep.poll_event() {
        match ev {
            Event::Accept(id) | Event::Readable(id) => {
                while let Ok(n) = ep.recv(id, buf) {
                    let _ = ep.send(id, &buf[..n.min(64)], now);
                }
                if close {
                    let _ = ep.close_with_code(id, 7, now);
                }
            }
            Event::Datagram(id) => {
                while let Ok(n) = ep.recv_datagram(id, buf) {
                    let _ = ep.send_datagram(id, &buf[..n.min(32)], now);
                }
            }
            Event::Closed(id, _) => {
                let _ = ep.close(id, now);
            }
            Event::Writable(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let fec = data.first().is_some_and(|b| b & 1 == 1);
    let (server_addr, client_addr) = (
        SocketAddr::from(([10, 0, 0, 1], 4000)),
        SocketAddr::from(([10, 0, 0, 2], 5000)),
    );
    let mut scfg = config(fec);
    let mut server_cfg = ServerConfig::default();
    server_cfg.set_psk(&PSK).unwrap();
    scfg.secure = Some(SecureSetting::listen(server_cfg));
    let mut ccfg = config(fec);
    ccfg.secure = Some(SecureSetting::dial(ClientConfig::psk(&PSK).unwrap()));
    let mut server = Endpoint::listener(scfg).unwrap();
    let mut now = 0u32;
    let (mut client, id) = Endpoint::dialer(ccfg, server_addr, now).unwrap();
    let mut buf = [0u8; 2048];
    // Datagrams in flight: (to the server?, from, bytes).
    let mut flight: Vec<(bool, SocketAddr, Vec<u8>)> = Vec::new();
    for chunk in data.split(|&b| b == 0xff) {
        let Some((&flag, rest)) = chunk.split_first() else {
            continue;
        };
        now = now.wrapping_add(u32::from(flag >> 5) * 7 + 1);
        let _ = client.send(id, rest, now);
        if flag & 0x10 == 0x10 {
            let _ = client.send_datagram(id, rest, now);
        }
        for (to_server, ep) in [(false, &mut server), (true, &mut client)] {
            ep.handle_timeout(now);
            for k in 0..ep.transmits().len() {
                let (to, d) = ep.transmits().get(k).unwrap();
                assert!(d.len() <= 1500, "a transmit over the MTU");
                // The server's answers to the fuzzer's addresses go nowhere.
                if to_server || to.ip() == client_addr.ip() {
                    let from = if to_server { client_addr } else { server_addr };
                    flight.push((to_server, from, d.to_vec()));
                }
            }
            ep.clear_transmits();
        }
        // What happens to what is in flight.
        let mut next = Vec::new();
        for (i, (to_server, from, mut d)) in flight.drain(..).enumerate() {
            let what = rest.get(i).copied().unwrap_or(flag);
            match what % 8 {
                0 => continue,                                // lost
                1 => next.push((to_server, from, d.clone())), // duplicated later
                2 if !d.is_empty() => {
                    let at = usize::from(what) % d.len();
                    d[at] ^= 0x40; // corrupted
                }
                _ => {}
            }
            // A rebinding client: its datagrams come from a new port.
            let from = if to_server && what % 8 == 3 {
                SocketAddr::from(([10, 0, 0, 2], 5001))
            } else {
                from
            };
            let ep = if to_server { &mut server } else { &mut client };
            ep.handle(now, from, &mut d);
        }
        flight = next;
        // The fuzzer's own datagram, from an arbitrary address.
        if flag & 2 == 2 {
            let mut d = if flag & 4 == 4 {
                vec![0xC0 | (flag >> 6), b'k', b'c', b'p', b'x', 1]
            } else {
                Vec::new()
            };
            d.extend_from_slice(rest);
            let from = SocketAddr::from(([10, 9, 0, flag & 7], 6000 + u16::from(flag >> 3)));
            server.handle(now, from, &mut d);
        }
        serve(&mut server, now, flag & 8 == 8, &mut buf);
        serve(&mut client, now, false, &mut buf);
        assert!(server.stats().curr_estab <= 8);
    }
});
