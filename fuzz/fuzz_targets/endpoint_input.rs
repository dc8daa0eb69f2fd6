//! Arbitrary datagrams from arbitrary source addresses into a listener
//! endpoint (AES-128, or by the first byte AES-128-GCM, + FEC 3/2, small
//! backlog and session limit), as
//! `kcpx_listener_update` reads them from its socket. Half of the inputs
//! are sealed with the right key and carry a KCP header with a chosen conv
//! and sn, so the fuzzer reaches session creation, replacement (sn 0 with a
//! new conv), the FEC decoder and KCP behind the CRC check. The application
//! side accepts, reads, echoes and closes. Goal: no panic and no arithmetic
//! overflow (the fuzz profile checks them), the limits hold,
//! every transmit fits the MTU.
#![no_main]

use kcpx::crypt::{CryptMethod, PacketCrypt};
use kcpx::endpoint::{Endpoint, EndpointConfig, Event};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let key = [0x42u8; 16];
    let mut cfg = EndpointConfig::default();
    cfg.conn.set_fec(3, 2).unwrap();
    let method = if data.first().is_some_and(|b| b & 2 == 2) {
        CryptMethod::Aes128Gcm
    } else {
        CryptMethod::Aes128
    };
    cfg.conn.set_crypt(Some(method.name()), &key).unwrap();
    cfg.conn.set_nodelay(1, 10, 2, 1);
    cfg.conn.set_stream(data.first().is_some_and(|b| b & 1 == 1));
    cfg.set_limits(4, 8).unwrap();
    cfg.set_idle_timeout(500);
    let mut ep = Endpoint::listener(cfg).unwrap();
    let sealer = PacketCrypt::with_nonce_seed(method, &key, &[1; 32]).unwrap();
    let mut now = 0u32;
    let mut buf = [0u8; 2048];
    for chunk in data.split(|&b| b == 0xff) {
        let Some((&flag, rest)) = chunk.split_first() else {
            continue;
        };
        now = now.wrapping_add(u32::from(flag >> 4) * 13);
        let from = SocketAddr::from(([10, 0, 0, flag & 7], 1000 + u16::from(flag >> 5)));
        let mut d = if flag & 8 == 8 {
            // Sealed: [FEC header][KCP segments from the fuzzer's bytes].
            let mut d = vec![0u8; sealer.header_len()];
            let seqid = u32::from(flag >> 4);
            // Data, parity or an out-of-band message (seqid 0xFFFFFFFF).
            let kind = [0xf1, 0xf1, 0xf1, 0xf2, 0xf3][seqid as usize % 5];
            let seqid = if kind == 0xf3 { u32::MAX } else { seqid };
            d.extend_from_slice(&seqid.to_le_bytes());
            d.extend_from_slice(&[kind, 0]);
            d.extend_from_slice(&((rest.len() + 2) as u16).to_le_bytes());
            d.extend_from_slice(rest);
            d.resize(d.len() + sealer.trailer_len(), 0);
            sealer.seal(&mut d).unwrap();
            d
        } else {
            rest.to_vec()
        };
        ep.handle(now, from, &mut d);
        ep.handle_timeout(now);
        while let Some(ev) = ep.poll_event() {
            match ev {
                Event::Accept(id) | Event::Readable(id) => {
                    while let Ok(n) = ep.recv(id, &mut buf) {
                        let _ = ep.send(id, &buf[..n.min(64)], now);
                    }
                    if flag & 2 == 2 {
                        let _ = ep.close(id, now);
                    }
                }
                Event::Closed(id, _) => {
                    let _ = ep.close(id, now);
                }
                Event::Datagram(id) => {
                    while let Ok(n) = ep.recv_datagram(id, &mut buf) {
                        let _ = ep.send_datagram(id, &buf[..n], now);
                    }
                }
                Event::Writable(_) => {}
            }
        }
        // Open sessions within the limit; evicted ones the application has
        // not closed yet beside it, at most as many again.
        assert!(ep.stats().curr_estab <= 8);
        assert!(ep.sessions_alive() <= 16);
        assert!(ep.transmits().iter().all(|(_, d)| d.len() <= 1400));
        ep.clear_transmits();
    }
});
