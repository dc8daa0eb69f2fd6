//! HKDF-SHA256 (RFC 5869) and the key schedule of `docs/secure-wire.md`,
//! section 4, on `ring`'s HMAC and HKDF.

use ring::hkdf::{KeyType, Prk, HKDF_SHA256};
use ring::hmac;

use super::aead::{IV_LEN, KEY_LEN};

/// Bytes of a SHA-256 output, an HKDF pseudorandom key and every secret.
pub const SECRET_LEN: usize = 32;
/// Bytes of a truncated MAC (hello, challenge, cookie).
pub const MAC_LEN: usize = 16;

/// `HMAC-SHA256(key, parts[0] ‖ parts[1] ‖ …)`.
pub fn hmac(key: &hmac::Key, parts: &[&[u8]]) -> [u8; SECRET_LEN] {
    let mut ctx = hmac::Context::with_key(key);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; SECRET_LEN];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// The first 16 bytes of [`hmac()`].
pub fn hmac16(key: &hmac::Key, parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&hmac(key, parts)[..MAC_LEN]);
    out
}

/// Whether `a == b`, in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An HMAC-SHA256 key.
pub fn hmac_key(key: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, key)
}

/// `SHA-256(parts[0] ‖ parts[1] ‖ …)`.
pub fn sha256(parts: &[&[u8]]) -> [u8; SECRET_LEN] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; SECRET_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// HKDF-Extract: `HMAC(salt, ikm[0] ‖ ikm[1] ‖ …)`.
pub fn extract(salt: &[u8], ikm: &[&[u8]]) -> [u8; SECRET_LEN] {
    hmac(&hmac_key(salt), ikm)
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand of `prk` with `info` into `out` (at most 255 × 32 bytes;
/// every caller here asks for 12 to 42).
pub fn expand(prk: &[u8; SECRET_LEN], info: &[u8], out: &mut [u8]) {
    let prk = Prk::new_less_safe(HKDF_SHA256, prk);
    let info = [info];
    let okm = prk
        .expand(&info, Len(out.len()))
        .expect("HKDF output of at most 255 blocks");
    okm.fill(out).expect("the length asked for");
}

/// `Expand(prk, label, N)`.
pub fn expand_label<const N: usize>(prk: &[u8; SECRET_LEN], label: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    expand(prk, label, &mut out);
    out
}

/// The MAC keys of a credential secret `cs` (the PSK, or a token's
/// `c2s_key ‖ s2c_key`): `K_hello` and `K_challenge`.
pub struct CredentialKeys {
    hello: hmac::Key,
    challenge: hmac::Key,
}

impl core::fmt::Debug for CredentialKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CredentialKeys")
    }
}

impl CredentialKeys {
    /// The keys of credential secret `cs`.
    pub fn new(cs: &[u8]) -> CredentialKeys {
        let prk = extract(b"kcpx1 credential", &[cs]);
        let hello: [u8; SECRET_LEN] = expand_label(&prk, b"kcpx1 hello");
        let challenge: [u8; SECRET_LEN] = expand_label(&prk, b"kcpx1 challenge");
        CredentialKeys {
            hello: hmac_key(&hello),
            challenge: hmac_key(&challenge),
        }
    }

    /// `HMAC16(K_hello, msg)`.
    pub fn hello_mac(&self, msg: &[u8]) -> [u8; MAC_LEN] {
        hmac16(&self.hello, &[msg])
    }

    /// `HMAC16(K_challenge, msg)`.
    pub fn challenge_mac(&self, msg: &[u8]) -> [u8; MAC_LEN] {
        hmac16(&self.challenge, &[msg])
    }
}

/// What both sides derive from the transcript hash, the credential secret
/// and the X25519 shared secret.
#[derive(Clone)]
pub struct SessionSecrets {
    /// `K_confirm`.
    pub confirm: [u8; SECRET_LEN],
    /// `secret_c2s[0]`.
    pub c2s: [u8; SECRET_LEN],
    /// `secret_s2c[0]`.
    pub s2c: [u8; SECRET_LEN],
}

impl SessionSecrets {
    /// `prk = Extract(th, cs ‖ dh)`, then the three secrets.
    pub fn derive(th: &[u8; SECRET_LEN], cs: &[u8], dh: &[u8; SECRET_LEN]) -> SessionSecrets {
        let prk = extract(th, &[cs, dh]);
        SessionSecrets {
            confirm: expand_label(&prk, b"kcpx1 confirm"),
            c2s: expand_label(&prk, b"kcpx1 c2s"),
            s2c: expand_label(&prk, b"kcpx1 s2c"),
        }
    }

    /// `HMAC(K_confirm, th)`, the SERVER_HELLO's confirmation.
    pub fn confirmation(&self, th: &[u8; SECRET_LEN]) -> [u8; SECRET_LEN] {
        hmac(&hmac_key(&self.confirm), &[th])
    }
}

/// The key and IV of one generation of a direction's secret.
pub fn generation_keys(secret: &[u8; SECRET_LEN]) -> ([u8; KEY_LEN], [u8; IV_LEN]) {
    (expand_label(secret, b"kcpx1 key"), expand_label(secret, b"kcpx1 iv"))
}

/// The next generation's secret: `Expand(secret, "kcpx1 ku", 32)`.
pub fn next_secret(secret: &[u8; SECRET_LEN]) -> [u8; SECRET_LEN] {
    expand_label(secret, b"kcpx1 ku")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes of a hex string (test input only).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn rfc5869(ikm: &str, salt: &str, info: &str, prk: &str, okm: &str) {
        let got = extract(&hex(salt), &[&hex(ikm)]);
        assert_eq!(got[..], hex(prk)[..]);
        let mut out = vec![0u8; hex(okm).len()];
        expand(&got, &hex(info), &mut out);
        assert_eq!(out, hex(okm));
    }

    #[test]
    fn hkdf_rfc_5869_test_case_1() {
        rfc5869(
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "000102030405060708090a0b0c",
            "f0f1f2f3f4f5f6f7f8f9",
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        );
    }

    #[test]
    fn hkdf_rfc_5869_test_case_2() {
        let seq = |from: u32, n: u32| -> String { (from..from + n).map(|b| format!("{b:02x}")).collect() };
        rfc5869(
            &seq(0x00, 80),
            &seq(0x60, 80),
            &seq(0xb0, 80),
            "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        );
    }

    #[test]
    fn hkdf_rfc_5869_test_case_3() {
        rfc5869(
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "",
            "",
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        );
    }

    #[test]
    fn labels_give_distinct_keys() {
        let s = SessionSecrets::derive(&[1; 32], b"psk", &[2; 32]);
        assert_ne!(s.c2s, s.s2c);
        assert_ne!(s.c2s, s.confirm);
        let (k, iv) = generation_keys(&s.c2s);
        assert_ne!(next_secret(&s.c2s), s.c2s);
        assert_ne!(k[..12], iv);
        // Every input changes the result.
        assert_ne!(SessionSecrets::derive(&[1; 32], b"psk", &[3; 32]).c2s, s.c2s);
        assert_ne!(SessionSecrets::derive(&[1; 32], b"psK", &[2; 32]).c2s, s.c2s);
        assert_ne!(SessionSecrets::derive(&[0; 32], b"psk", &[2; 32]).c2s, s.c2s);
    }
}
