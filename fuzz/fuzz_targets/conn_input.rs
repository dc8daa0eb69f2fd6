//! Arbitrary datagrams into a connection with FEC 3/2 and a cipher picked by
//! the first input byte (every kcp-go method, kcp-go master's AES-GCM ones
//! included), as `kcpx_conn_input` gets them from the network. Half of the
//! inputs are first sealed with the right key (and stamped as FEC data or
//! parity), so the fuzzer also reaches the FEC decoder and KCP behind the CRC
//! check or GCM tag.
//! Goal: no panic, bounded memory, and only well-formed data delivered.
#![no_main]

use std::sync::{Arc, OnceLock};

use kcpx::conn::{Conn, ConnConfig};
use kcpx::crypt::{CryptMethod, PacketCrypt};
use kcpx::fec::FecConfig;
use libfuzzer_sys::fuzz_target;

/// Every method's expanded key, built once (key schedules such as xor's
/// PBKDF2 table would otherwise dominate each run), as a listener shares it.
fn crypts() -> &'static [Arc<PacketCrypt>] {
    static CRYPTS: OnceLock<Vec<Arc<PacketCrypt>>> = OnceLock::new();
    CRYPTS.get_or_init(|| {
        CryptMethod::ALL
            .iter()
            .map(|&m| Arc::new(PacketCrypt::with_nonce_seed(m, &vec![0x42; m.key_len()], &[1; 32]).unwrap()))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let index = usize::from(pick) % CryptMethod::ALL.len();
    let (method, crypt) = (CryptMethod::ALL[index], &crypts()[index]);
    let key = vec![0x42u8; method.key_len()];
    let cfg = ConnConfig {
        fec: Some(FecConfig::new(3, 2).unwrap()),
        crypt: Some((method, key)),
        nodelay: (1, 10, 2, 1),
        window: (64, 64),
        mtu: 1400,
        stream: true,
        // Half the runs under a rate limit (the data waits, ACKs do not).
        rate_limit: kcpx::conn::RateLimit::new(u32::from(pick & 0x80) * 100, 0),
    };
    let mut conn = Conn::with_crypt(7, &cfg, Some(Arc::clone(crypt))).unwrap();
    let mut now = 0u32;
    let mut buf = [0u8; 4096];
    let mut out = kcpx::conn::Outbox::default();
    for chunk in data.split(|&b| b == 0xff) {
        now = now.wrapping_add(7);
        match chunk.first() {
            Some(&flag) if flag & 1 == 1 && chunk.len() > 1 => {
                let h = crypt.header_len();
                let mut d = vec![0u8; h];
                d.extend_from_slice(&chunk[1..]);
                if d.len() >= h + 6 && flag & 2 == 2 {
                    d[h + 4] = 0xf1 + (flag >> 2) % 3; // data, parity, out-of-band
                    d[h + 5] = 0;
                    d[h..h + 4].copy_from_slice(&u32::from(flag >> 3).to_le_bytes());
                }
                // Room for AES-GCM's tag.
                d.resize(d.len() + crypt.trailer_len(), 0);
                // A nonce of the input's own, so that runs replay exactly.
                crypt.seal_with_nonce(&mut d, &[now as u8; 16]).unwrap();
                let _ = conn.input(&d, now);
            }
            _ => {
                let _ = conn.input(chunk, now);
            }
        }
        if chunk.first() == Some(&0xf3) {
            let _ = conn.send_datagram(&chunk[1..], &mut out);
        }
        conn.update(now, &mut out);
        assert!(out.iter().all(|d| d.len() <= 1400));
        out.clear();
        while conn.recv(&mut buf).is_ok() {}
        while conn.recv_datagram(&mut buf).is_ok() {}
        assert!(conn.datagrams_waiting() == 0);
    }
});
