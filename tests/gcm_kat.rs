//! Known answers for kcp-go master's AES-GCM layout and its out-of-band
//! packets, made by Go's standard library (`tests/kat/gcm_gen.go`, which
//! documents the formats of `tests/data/gcm/`; no Go needed at test time):
//! kcpx opens every datagram to the expected plaintext and, given the same
//! nonce, seals the plaintext to the same bytes. The published GCM vectors
//! run through the same wrapper in `src/crypt/gcm.rs`'s unit tests.

#[path = "support/kat.rs"]
mod kat;

use kat::unhex;
use kcpx::conn::{Conn, ConnConfig, Outbox};
use kcpx::crypt::{CryptError, CryptMethod, PacketCrypt, NONCE_LEN};
use kcpx::fec::{classify, FecInput};

/// Non-comment lines of `tests/data/gcm/NAME`, split into fields.
fn records(name: &str) -> Vec<Vec<String>> {
    kat::records("gcm", name)
}

fn crypt(name: &str, key: &str) -> PacketCrypt {
    let method = CryptMethod::from_name(name).unwrap_or_else(|| panic!("method {name}"));
    PacketCrypt::new(method, &unhex(key)).unwrap()
}

/// Opens `datagram` to `plain` and seals `plain` with `nonce` back to
/// `datagram`; a flipped bit anywhere is refused.
fn check_both_ways(crypt: &PacketCrypt, nonce: &[u8], plain: &[u8], datagram: &[u8], what: &str) {
    assert_eq!(nonce.len(), crypt.header_len().min(NONCE_LEN), "{what}: nonce length");
    assert_eq!(datagram.len(), plain.len() + crypt.overhead(), "{what}: length");
    let mut opened = datagram.to_vec();
    assert_eq!(crypt.open(&mut opened).unwrap(), plain, "{what}: open");
    let mut sealed = [
        vec![0; crypt.header_len()],
        plain.to_vec(),
        vec![0; crypt.trailer_len()],
    ]
    .concat();
    let mut nonce16 = [0u8; NONCE_LEN];
    nonce16[..nonce.len()].copy_from_slice(nonce);
    crypt.seal_with_nonce(&mut sealed, &nonce16).unwrap();
    assert_eq!(sealed, datagram, "{what}: seal");
    for bit in [0, 8 * datagram.len() / 2 + 3, 8 * datagram.len() - 1] {
        let mut bad = datagram.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = crypt.open(&mut bad).unwrap_err();
        assert!(
            matches!(err, CryptError::Forged | CryptError::BadChecksum),
            "{what}: bit {bit}: {err:?}"
        );
    }
}

#[test]
fn gcm_datagrams_match_go() {
    let mut kinds = std::collections::BTreeSet::new();
    for r in records("kat.txt") {
        let [kind, method, key, nonce, plain, datagram] = &r[..] else {
            panic!("bad record {r:?}");
        };
        let what = format!("{kind} {method} {} bytes", plain.len() / 2);
        let c = crypt(method, key);
        assert!(c.method().is_gcm(), "{what}");
        let (plain, datagram) = (unhex(plain), unhex(datagram));
        check_both_ways(&c, &unhex(nonce), &plain, &datagram, &what);
        let fec = classify(&plain);
        match kind.as_str() {
            "kcp" => assert_eq!(fec, FecInput::NotFec, "{what}"),
            "fec-data" => assert_eq!(fec, FecInput::Data(&plain[8..]), "{what}"),
            "fec-parity" => assert_eq!(fec, FecInput::Parity, "{what}"),
            other => panic!("kind {other}"),
        }
        kinds.insert((kind.clone(), method.clone()));
    }
    assert_eq!(kinds.len(), 9, "every kind for every key length: {kinds:?}");
}

#[test]
fn out_of_band_datagrams_match_go() {
    let mut methods = std::collections::BTreeSet::new();
    for r in records("oob.txt") {
        let [method, key, nonce, conv, payload, datagram] = &r[..] else {
            panic!("bad record {r:?}");
        };
        let what = format!("OOB {method}, {} payload bytes", payload.len() / 2);
        let c = crypt(method, key);
        let (payload, datagram) = (unhex(payload), unhex(datagram));
        let conv = u32::from_str_radix(conv, 16).unwrap();
        // [u32 seqid 0xffffffff][u16 0xf3][u16 size][u32 conv][payload].
        let mut plain = vec![0xff; 4];
        plain.extend_from_slice(&0xf3u16.to_le_bytes());
        plain.extend_from_slice(&(2 + 4 + payload.len() as u16).to_le_bytes());
        plain.extend_from_slice(&conv.to_le_bytes());
        plain.extend_from_slice(&payload);
        check_both_ways(&c, &unhex(nonce), &plain, &datagram, &what);
        assert!(datagram.len() <= 1400, "{what}");
        delivered_and_sent_alike(method, &unhex(key), conv, &payload, &plain, &datagram, &what);
        methods.insert(method.clone());
    }
    assert_eq!(methods.len(), 3, "{methods:?}");
}

/// Go's out-of-band datagram reaches a connection of its conv (FEC 10/3, as
/// kcp-go requires) as one unreliable message, never as KCP data; the
/// connection's own message of the same payload has Go's plaintext.
fn delivered_and_sent_alike(
    method: &str,
    key: &[u8],
    conv: u32,
    payload: &[u8],
    plain: &[u8],
    datagram: &[u8],
    what: &str,
) {
    let mut cfg = ConnConfig::default();
    cfg.set_fec(10, 3).unwrap();
    cfg.set_crypt(Some(method), key).unwrap();
    let mut conn = Conn::new(conv, &cfg).unwrap();
    conn.input(datagram, 0)
        .unwrap_or_else(|e| panic!("{what}: input: {e:?}"));
    let mut buf = [0u8; 1500];
    let n = conn
        .recv_datagram(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: recv: {e:?}"));
    assert_eq!(&buf[..n], payload, "{what}: delivered");
    assert_eq!(conn.peek_size(), None, "{what}: nothing reached KCP");
    let mut out = Outbox::default();
    assert_eq!(conn.send_datagram(payload, &mut out), Ok(payload.len()), "{what}");
    let mut sent = out.get(0).unwrap().to_vec();
    assert_eq!(sent.len(), datagram.len(), "{what}: sent length");
    let opened = PacketCrypt::new(CryptMethod::from_name(method).unwrap(), key).unwrap();
    assert_eq!(opened.open(&mut sent).unwrap(), plain, "{what}: sent plaintext");
    let mut other = Conn::new(conv ^ 1, &cfg).unwrap();
    assert!(other.input(datagram, 0).is_err(), "{what}: a foreign conv is refused");
    assert_eq!(other.recv_datagram(&mut buf).ok(), None, "{what}");
}
