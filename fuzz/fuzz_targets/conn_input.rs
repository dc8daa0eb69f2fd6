//! Arbitrary datagrams into a connection with FEC 3/2 and a cipher picked by
//! the first input byte (every kcp-go method), as `kcpx_conn_input` gets them
//! from the network. Half of the inputs are first sealed with the right key
//! (and stamped as FEC data or parity), so the fuzzer also reaches the FEC
//! decoder and KCP behind the CRC check.
//! Goal: no panic, bounded memory, and only well-formed data delivered.
#![no_main]

use kcpx::conn::{Conn, ConnConfig};
use kcpx::crypt::{CryptMethod, PacketCrypt, HEADER_LEN};
use kcpx::fec::FecConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let method = CryptMethod::ALL[usize::from(pick) % CryptMethod::ALL.len()];
    let key = vec![0x42u8; method.key_len()];
    let cfg = ConnConfig {
        fec: Some(FecConfig::new(3, 2).unwrap()),
        crypt: Some((method, key.clone())),
        nodelay: (1, 10, 2, 1),
        window: (64, 64),
        mtu: 1400,
        stream: true,
    };
    let mut conn = Conn::new(7, &cfg).unwrap();
    let sealer = PacketCrypt::with_nonce_seed(method, &key, &[1; 32]).unwrap();
    let mut now = 0u32;
    let mut buf = [0u8; 4096];
    for chunk in data.split(|&b| b == 0xff) {
        now = now.wrapping_add(7);
        match chunk.first() {
            Some(&flag) if flag & 1 == 1 && chunk.len() > 1 => {
                let mut d = vec![0u8; HEADER_LEN];
                d.extend_from_slice(&chunk[1..]);
                if d.len() >= HEADER_LEN + 6 && flag & 2 == 2 {
                    d[HEADER_LEN + 4] = 0xf1 + (flag >> 2) % 3; // data, parity, out-of-band
                    d[HEADER_LEN + 5] = 0;
                    d[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::from(flag >> 3).to_le_bytes());
                }
                sealer.seal(&mut d).unwrap();
                let _ = conn.input(&d, now);
            }
            _ => {
                let _ = conn.input(chunk, now);
            }
        }
        conn.update(now);
        let out = conn.take_outbox();
        assert!(out.iter().all(|d| d.len() <= 1400));
        conn.restore_outbox(out);
        while conn.recv(&mut buf).is_ok() {}
    }
});
