//! Known-answer tests of `crypt` and `fec` against data produced by kcp-go 5.6.1
//! itself (`tests/data/kcpgo/`, see its README.md). No Go needed at test time.

#[path = "support/kat.rs"]
mod kat;

use kat::unhex;
use kcpx::crypt::{key_from_password, CryptMethod, PacketCrypt, HEADER_LEN, NONCE_LEN};
use kcpx::fec::{FecConfig, FecDecoder, FecEncoder, FecInput, FEC_DATA_OVERHEAD, TYPE_PARITY};
use reed_solomon_erasure::galois_8::ReedSolomon;

fn records(name: &str) -> Vec<Vec<String>> {
    kat::records("kcpgo", name)
}

fn method(name: &str) -> CryptMethod {
    CryptMethod::from_name(name).unwrap_or_else(|| panic!("method {name}"))
}

#[test]
fn aes_cfb_matches_kcpgo_block_crypt() {
    let recs = records("cfb.txt");
    assert_eq!(recs.len(), 48);
    for r in &recs {
        let (key, plain, cipher) = (unhex(&r[1]), unhex(&r[2]), unhex(&r[3]));
        let crypt = PacketCrypt::new(method(&r[0]), &key).unwrap();
        let mut buf = plain.clone();
        crypt.encrypt_in_place(&mut buf);
        assert_eq!(buf, cipher, "{} encrypt, {} bytes", r[0], plain.len());
        crypt.decrypt_in_place(&mut buf);
        assert_eq!(buf, plain, "{} decrypt, {} bytes", r[0], plain.len());
    }
}

/// Every other kcp-go cipher (salsa20, blowfish, twofish, cast5, 3des, 16-round
/// tea, xtea, sm4, xor) over whole buffers, both directions.
#[test]
fn every_cipher_matches_kcpgo_block_crypt() {
    let recs = records("ciphers.txt");
    let mut seen = std::collections::BTreeSet::new();
    for r in &recs {
        let (key, plain, cipher) = (unhex(&r[1]), unhex(&r[2]), unhex(&r[3]));
        let crypt = PacketCrypt::new(method(&r[0]), &key).unwrap();
        let mut buf = plain.clone();
        crypt.encrypt_in_place(&mut buf);
        assert_eq!(
            buf,
            cipher,
            "{} ({}-byte key) encrypt, {} bytes",
            r[0],
            key.len(),
            plain.len()
        );
        crypt.decrypt_in_place(&mut buf);
        assert_eq!(
            buf,
            plain,
            "{} ({}-byte key) decrypt, {} bytes",
            r[0],
            key.len(),
            plain.len()
        );
        seen.insert((r[0].clone(), key.len()));
    }
    // The AES-GCM methods have their own known answers (tests/gcm_kat.rs).
    for m in CryptMethod::ALL.into_iter().filter(|m| !m.is_gcm()) {
        let aes_or_none = matches!(
            m,
            CryptMethod::Aes128 | CryptMethod::Aes192 | CryptMethod::Aes256 | CryptMethod::None
        );
        assert!(
            aes_or_none || seen.contains(&(m.name().to_owned(), m.key_len())),
            "{m:?} missing from ciphers.txt"
        );
    }
    assert_eq!(seen.len(), 16, "{seen:?}");
}

#[test]
fn crc32_matches_kcpgo() {
    for r in records("crc32.txt") {
        assert_eq!(format!("{:08x}", crc32fast::hash(&unhex(&r[0]))), r[1]);
    }
}

#[test]
fn password_keys_match_kcptun() {
    for r in records("pbkdf2.txt") {
        assert_eq!(key_from_password(&unhex(&r[0]), 32), unhex(&r[1]), "password {}", r[0]);
    }
}

#[test]
fn reed_solomon_matches_klauspost() {
    let recs = records("rs.txt");
    let mut i = 0;
    let mut groups = 0;
    while i < recs.len() {
        assert_eq!(recs[i][0], "rs");
        let ds: usize = recs[i][1].parse().unwrap();
        let ps: usize = recs[i][2].parse().unwrap();
        let expected: Vec<Vec<u8>> = recs[i + 1..i + 1 + ds + ps].iter().map(|r| unhex(&r[1])).collect();
        let mut shards = expected.clone();
        for parity in &mut shards[ds..] {
            parity.fill(0);
        }
        ReedSolomon::new(ds, ps).unwrap().encode(&mut shards).unwrap();
        assert_eq!(shards, expected, "RS({ds},{ps})");
        i += 1 + ds + ps;
        groups += 1;
    }
    assert_eq!(groups, 4);
}

/// One captured kcp-go session: configuration and (plaintext, wire) datagrams.
struct Session {
    crypt: Option<PacketCrypt>,
    fec: Option<FecConfig>,
    mtu: usize,
    datagrams: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Session {
    fn load(name: &str) -> Session {
        let recs = records(&format!("session-{name}.txt"));
        let config = &recs[0];
        assert_eq!(config[0], "config");
        let field = |key: &str| -> String {
            config
                .iter()
                .find_map(|f| f.strip_prefix(&format!("{key}=")))
                .unwrap()
                .to_owned()
        };
        let crypt = match field("crypt").as_str() {
            "off" => None,
            m => Some(PacketCrypt::new(method(m), &unhex(field("key").trim_start_matches('-'))).unwrap()),
        };
        let (ds, ps): (usize, usize) = (field("ds").parse().unwrap(), field("ps").parse().unwrap());
        let fec = (ds > 0).then(|| FecConfig::new(ds, ps).unwrap());
        let datagrams = recs[1..].iter().map(|r| (unhex(&r[1]), unhex(&r[2]))).collect();
        Session {
            crypt,
            fec,
            mtu: field("mtu").parse().unwrap(),
            datagrams,
        }
    }

    fn header_len(&self) -> usize {
        self.crypt.as_ref().map_or(0, |c| c.header_len())
    }

    /// The KCP bytes kcp-go put in each data datagram, in order.
    fn kcp_payloads(&self) -> Vec<Vec<u8>> {
        let off = self.header_len();
        self.datagrams
            .iter()
            .filter(|(plain, _)| {
                self.fec.is_none() || u16::from_le_bytes([plain[off + 4], plain[off + 5]]) != TYPE_PARITY
            })
            .map(|(plain, _)| plain[off + if self.fec.is_some() { FEC_DATA_OVERHEAD } else { 0 }..].to_vec())
            .collect()
    }
}

const SESSIONS: [&str; 14] = [
    "aes128-fec10-3",
    "none-fec3-2",
    "aes256-nofec",
    "aes192-fec1-1",
    "plain-fec2-1",
    "salsa20-fec3-2",
    "blowfish-nofec",
    "twofish-fec3-2",
    "cast5-nofec",
    "3des-fec3-2",
    "tea-nofec",
    "xtea-fec3-2",
    "sm4-nofec",
    "xor-fec3-2",
];

#[test]
fn sessions_open_and_seal_byte_for_byte() {
    for name in SESSIONS {
        let s = Session::load(name);
        let Some(crypt) = &s.crypt else { continue };
        let mut nonces = Vec::new();
        let mut batch = Vec::new();
        for (i, (plain, wire)) in s.datagrams.iter().enumerate() {
            let mut opened = wire.clone();
            assert_eq!(
                crypt.open(&mut opened).unwrap(),
                &plain[HEADER_LEN..],
                "{name} #{i} open"
            );
            let nonce: [u8; NONCE_LEN] = plain[..NONCE_LEN].try_into().unwrap();
            let mut sealed = plain.clone();
            sealed[..HEADER_LEN].fill(0);
            batch.push(sealed.clone());
            crypt.seal_with_nonce(&mut sealed, &nonce).unwrap();
            assert_eq!(&sealed, wire, "{name} #{i} seal");
            nonces.push(nonce);
        }
        crypt.seal_many_with_nonces(&mut batch, &nonces).unwrap();
        let wires: Vec<Vec<u8>> = s.datagrams.iter().map(|(_, w)| w.clone()).collect();
        assert_eq!(batch, wires, "{name} seal_many");
    }
}

/// The whole send path: kcp-go's KCP bytes → our FEC encoder → our sealing with
/// the captured nonces must give exactly the captured wire datagrams.
#[test]
fn sessions_reencode_byte_for_byte() {
    for name in SESSIONS {
        let s = Session::load(name);
        let Some(fec) = s.fec else { continue };
        let off = s.header_len();
        let mut encoder = FecEncoder::new(fec, off, s.mtu);
        let mut ours: Vec<Vec<u8>> = Vec::new();
        for kcp in s.kcp_payloads() {
            let mut d = vec![0u8; off + FEC_DATA_OVERHEAD];
            d.extend_from_slice(&kcp);
            let parity: Vec<Vec<u8>> = encoder.encode(&mut d, 0).unwrap().iter().map(|p| p.to_vec()).collect();
            ours.push(d);
            ours.extend(parity);
        }
        assert_eq!(ours.len(), s.datagrams.len(), "{name}: datagram count");
        for (i, (mine, (plain, wire))) in ours.iter_mut().zip(&s.datagrams).enumerate() {
            assert_eq!(mine[off..], plain[off..], "{name} #{i}: FEC plaintext");
            if let Some(crypt) = &s.crypt {
                crypt
                    .seal_with_nonce(mine, plain[..NONCE_LEN].try_into().unwrap())
                    .unwrap();
            }
            assert_eq!(mine, wire, "{name} #{i}: wire bytes");
        }
    }
}

/// kcp-go's datagrams through our open + FEC decoder, with every loss pattern of
/// up to `ps` datagrams per group: every lost data datagram's KCP bytes come back.
#[test]
fn sessions_decode_and_recover_lost_data() {
    for name in SESSIONS {
        let s = Session::load(name);
        let Some(fec) = s.fec else { continue };
        let off = s.header_len();
        let n = fec.total_shards();
        let kcp = s.kcp_payloads();
        let groups = s.datagrams.len() / n;
        for group in 0..groups {
            // Lose the first 1..=ps data datagrams of this group.
            for lost in 1..=fec.parity_shards().min(fec.data_shards()) {
                let mut decoder = FecDecoder::new(fec, 1500);
                decoder.set_sync_threshold(0);
                let mut delivered = 0;
                let mut recovered = Vec::new();
                for (i, (_, wire)) in s.datagrams.iter().enumerate() {
                    if i / n == group && i % n < lost {
                        continue;
                    }
                    let mut buf = wire.clone();
                    let payload: &[u8] = match &s.crypt {
                        Some(c) => c.open(&mut buf).unwrap(),
                        None => &buf[..],
                    };
                    match decoder.decode(payload, i as u32) {
                        FecInput::Data(bytes) => {
                            assert_eq!(bytes, &s.datagrams[i].0[off + FEC_DATA_OVERHEAD..]);
                            delivered += 1;
                        }
                        FecInput::Parity => {}
                        other => panic!("{name} #{i}: {other:?}"),
                    }
                    recovered.extend(decoder.recovered().map(<[u8]>::to_vec));
                }
                let first_data = group * fec.data_shards();
                assert_eq!(
                    recovered,
                    kcp[first_data..first_data + lost],
                    "{name} group {group} lost {lost}"
                );
                assert_eq!(delivered + lost, kcp.len(), "{name}");
                assert_eq!(decoder.stats().recovered as usize, lost);
            }
        }
        assert!(groups >= 1, "{name}: no complete group captured");
    }
}
