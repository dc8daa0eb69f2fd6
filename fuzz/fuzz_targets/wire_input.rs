//! Arbitrary bytes into the kcp-go wire layers: the first byte picks the FEC
//! shard counts, the second the cipher (no cipher, or any kcp-go method, AES-GCM included), the
//! rest is cut into datagrams
//! that go through `PacketCrypt::open` and `FecDecoder::decode` (and, for every
//! fourth one, the FEC encoder and `seal`). Goal: no panic, bounded memory,
//! recovered segments within the size the decoder promises.
#![no_main]

use std::sync::OnceLock;

use kcpx::crypt::{CryptMethod, PacketCrypt};
use kcpx::fec::{FecConfig, FecDecoder, FecEncoder, FecInput, FEC_DATA_OVERHEAD};
use libfuzzer_sys::fuzz_target;

const MAX_SHARD: usize = 1500;

fuzz_target!(|data: &[u8]| {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let Some((&pick, mut rest)) = rest.split_first() else {
        return;
    };
    // Every method's expanded key, built once (xor's PBKDF2 table would
    // otherwise dominate each run).
    static CRYPTS: OnceLock<Vec<PacketCrypt>> = OnceLock::new();
    let crypts = CRYPTS.get_or_init(|| {
        CryptMethod::ALL
            .iter()
            .map(|&m| PacketCrypt::with_nonce_seed(m, &vec![7; m.key_len()], &[2; 32]).unwrap())
            .collect()
    });
    let crypt = crypts.get(usize::from(pick) % (CryptMethod::ALL.len() + 1));
    let ds = 1 + usize::from(setup >> 2) % 12;
    let ps = 1 + usize::from(setup >> 6);
    let fec = FecConfig::new(ds, ps).unwrap();
    let offset = crypt.as_ref().map_or(0, |c| c.header_len());
    let trailer = crypt.as_ref().map_or(0, |c| c.trailer_len());
    let mut decoder = FecDecoder::new(fec, MAX_SHARD);
    decoder.set_sync_threshold(usize::from(setup & 1) * 8);
    let mut encoder = FecEncoder::new(fec, offset, MAX_SHARD);
    let mut now = 0u32;
    let mut count = 0usize;
    while let Some((&len, tail)) = rest.split_first() {
        let len = (usize::from(len) * 6).min(tail.len());
        let mut datagram = tail[..len].to_vec();
        rest = &tail[len..];
        now = now.wrapping_add(u32::from(setup) * 97);
        count += 1;
        if count % 4 == 0 {
            let mut out = vec![0u8; offset + FEC_DATA_OVERHEAD];
            out.extend_from_slice(&datagram);
            // Room for AES-GCM's tag (here inside the shard: parity is then
            // long enough to seal as well).
            out.resize(out.len() + trailer, 0);
            if let Ok(parity) = encoder.encode(&mut out, 0) {
                if let Some(c) = &crypt {
                    c.seal_many(parity).unwrap();
                }
            }
            if let Some(c) = &crypt {
                let _ = c.seal(&mut out);
                // The same bytes as a packed outbox with fuzzer-chosen ends.
                let ends: Vec<usize> = datagram.iter().map(|&b| usize::from(b) * 9).collect();
                let _ = c.seal_packed(&mut out, usize::from(setup) % 7, &ends);
            }
        }
        let payload: &[u8] = match &crypt {
            Some(c) => match c.open(&mut datagram) {
                Ok(p) => p,
                Err(_) => continue,
            },
            None => &datagram,
        };
        if let FecInput::Data(kcp) = decoder.decode(payload, now) {
            assert!(kcp.len() <= payload.len());
        }
        for r in decoder.recovered() {
            assert!(r.len() <= MAX_SHARD);
        }
        assert!(decoder.queued() <= 3 * fec.total_shards());
    }
});
