//! The per-datagram AEAD (`docs/secure-wire.md`, sections 2 and 4):
//! AES-256-GCM or ChaCha20-Poly1305 on `ring`, the nonce built from a
//! per-direction IV and the packet number, the header as associated data.
//! Seal and open work in place on the datagram and never allocate.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

use super::wire::TAG_LEN;
use super::SecureError;

/// Bytes of an AEAD key.
pub const KEY_LEN: usize = 32;
/// Bytes of an IV (and of a nonce).
pub const IV_LEN: usize = 12;

/// The two AEADs of the secure wire; the discriminant is the wire's ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlg {
    /// AES-256-GCM: the fastest where the CPU has AES and carry-less
    /// multiply instructions.
    Aes256Gcm = 1,
    /// ChaCha20-Poly1305: constant-time and fast in software.
    ChaCha20Poly1305 = 2,
}

impl AeadAlg {
    /// The wire ID (1 or 2).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The algorithm of a wire ID.
    pub const fn from_id(id: u8) -> Option<AeadAlg> {
        match id {
            1 => Some(AeadAlg::Aes256Gcm),
            2 => Some(AeadAlg::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// AES-256-GCM when this CPU has AES and carry-less multiply
    /// instructions, ChaCha20-Poly1305 otherwise.
    pub fn for_this_cpu() -> AeadAlg {
        if hardware_aes() {
            AeadAlg::Aes256Gcm
        } else {
            AeadAlg::ChaCha20Poly1305
        }
    }

    fn ring(self) -> &'static ring::aead::Algorithm {
        match self {
            AeadAlg::Aes256Gcm => &AES_256_GCM,
            AeadAlg::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

/// A set of AEADs, as offered in a hello (bit `id − 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AeadSet(u8);

impl AeadSet {
    /// Both algorithms.
    pub const ALL: AeadSet = AeadSet(0b11);

    /// The set holding only `alg`.
    pub const fn only(alg: AeadAlg) -> AeadSet {
        AeadSet(1 << (alg as u8 - 1))
    }

    /// The set of a hello's offer byte; `None` if it is empty or has bits v1
    /// does not define.
    pub const fn from_bits(bits: u8) -> Option<AeadSet> {
        if bits == 0 || bits & !0b11 != 0 {
            None
        } else {
            Some(AeadSet(bits))
        }
    }

    /// The offer byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether `alg` is in the set.
    pub const fn contains(self, alg: AeadAlg) -> bool {
        self.0 & (1 << (alg as u8 - 1)) != 0
    }

    /// The server's choice (section 2): the client's preference if both
    /// allow it, otherwise the first of AES-256-GCM, ChaCha20-Poly1305 that
    /// both allow.
    pub fn choose(server: AeadSet, offer: AeadSet, preferred: AeadAlg) -> Option<AeadAlg> {
        if server.contains(preferred) && offer.contains(preferred) {
            return Some(preferred);
        }
        [AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305]
            .into_iter()
            .find(|&a| server.contains(a) && offer.contains(a))
    }
}

/// One direction's key and IV of one key generation.
pub struct PacketKey {
    alg: AeadAlg,
    key: LessSafeKey,
    iv: [u8; IV_LEN],
}

impl core::fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PacketKey {
    /// The key of `alg` with this key and IV.
    pub fn new(alg: AeadAlg, key: &[u8; KEY_LEN], iv: [u8; IV_LEN]) -> PacketKey {
        let unbound = UnboundKey::new(alg.ring(), key).expect("both algorithms take 32-byte keys");
        PacketKey {
            alg,
            key: LessSafeKey::new(unbound),
            iv,
        }
    }

    /// The algorithm.
    pub fn alg(&self) -> AeadAlg {
        self.alg
    }

    /// `iv XOR (0⁴ ‖ pn)`: distinct for every packet number of a key.
    fn nonce(&self, pn: u64) -> Nonce {
        let mut n = self.iv;
        for (b, p) in n[4..].iter_mut().zip(pn.to_be_bytes()) {
            *b ^= p;
        }
        Nonce::assume_unique_for_key(n)
    }

    /// Seals `datagram` in place: `[..aad_len]` is the associated data (the
    /// header), `[aad_len..len − 16]` the plaintext, encrypted in place, and
    /// `[len − 16..]` receives the tag.
    pub fn seal(&self, pn: u64, datagram: &mut [u8], aad_len: usize) -> Result<(), SecureError> {
        if datagram.len() < aad_len + TAG_LEN {
            return Err(SecureError::Truncated);
        }
        let (aad, rest) = datagram.split_at_mut(aad_len);
        let (body, tail) = rest.split_at_mut(rest.len() - TAG_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(pn), Aad::from(&*aad), body)
            .map_err(|_| SecureError::Truncated)?;
        tail.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `datagram` in place (the layout of [`PacketKey::seal`]) and
    /// returns the plaintext. On [`SecureError::Forged`] the plaintext bytes
    /// are unspecified; the header is never changed.
    pub fn open<'a>(&self, pn: u64, datagram: &'a mut [u8], aad_len: usize) -> Result<&'a mut [u8], SecureError> {
        if datagram.len() < aad_len + TAG_LEN {
            return Err(SecureError::Truncated);
        }
        let (aad, rest) = datagram.split_at_mut(aad_len);
        self.key
            .open_in_place(self.nonce(pn), Aad::from(&*aad), rest)
            .map(|p| &mut *p)
            .map_err(|_| SecureError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::keys::tests::hex;

    /// Runs a published vector through [`PacketKey`]: IV = the nonce and
    /// packet number 0, so the nonce is the vector's.
    fn check(alg: AeadAlg, key: &str, nonce: &str, aad: &str, plain: &[u8], sealed: &str) {
        let key: [u8; 32] = hex(key).try_into().unwrap();
        let iv: [u8; 12] = hex(nonce).try_into().unwrap();
        let k = PacketKey::new(alg, &key, iv);
        let aad = hex(aad);
        let fresh = || {
            let mut d = aad.clone();
            d.extend_from_slice(plain);
            d.extend_from_slice(&[0; 16]);
            k.seal(0, &mut d, aad.len()).unwrap();
            d
        };
        let mut d = fresh();
        assert_eq!(d[aad.len()..], hex(sealed)[..]);
        assert_eq!(k.open(0, &mut d, aad.len()).unwrap(), plain);
        // Any changed bit fails, in the header as in the body and the tag.
        for i in [0, aad.len(), d.len() - 1] {
            let mut e = fresh();
            e[i] ^= 0x80;
            assert_eq!(k.open(0, &mut e, aad.len()), Err(SecureError::Forged), "bit at {i}");
        }
        // Another packet number is another nonce.
        assert_eq!(k.open(1, &mut fresh(), aad.len()), Err(SecureError::Forged));
    }

    #[test]
    fn chacha20_poly1305_rfc_8439_section_2_8_2() {
        check(
            AeadAlg::ChaCha20Poly1305,
            "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
            "070000004041424344454647",
            "50515253c0c1c2c3c4c5c6c7",
            b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116\
             1ae10b594f09e26a7e902ecbd0600691",
        );
    }

    #[test]
    fn aes_256_gcm_test_case_16() {
        // McGrew and Viega, "The Galois/Counter Mode of Operation", test case 16.
        check(
            AeadAlg::Aes256Gcm,
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            &hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
             76fc6ece0f4e1768cddf8853bb2d551b",
        );
    }

    #[test]
    fn the_nonce_is_the_iv_xor_the_packet_number() {
        let k = PacketKey::new(AeadAlg::ChaCha20Poly1305, &[7; 32], [0xAA; 12]);
        let n = k.nonce(0x0102_0304_0506_0708);
        assert_eq!(
            n.as_ref(),
            &[0xAA, 0xAA, 0xAA, 0xAA, 0xAB, 0xA8, 0xA9, 0xAE, 0xAF, 0xAC, 0xAD, 0xA2]
        );
    }

    #[test]
    fn offers_and_choices() {
        use AeadAlg::*;
        assert_eq!(AeadSet::from_bits(0), None);
        assert_eq!(AeadSet::from_bits(4), None);
        let chacha = AeadSet::only(ChaCha20Poly1305);
        assert_eq!(
            AeadSet::choose(AeadSet::ALL, AeadSet::ALL, ChaCha20Poly1305),
            Some(ChaCha20Poly1305)
        );
        assert_eq!(AeadSet::choose(chacha, AeadSet::ALL, Aes256Gcm), Some(ChaCha20Poly1305));
        assert_eq!(
            AeadSet::choose(AeadSet::ALL, AeadSet::only(Aes256Gcm), ChaCha20Poly1305),
            Some(Aes256Gcm)
        );
        assert_eq!(AeadSet::choose(chacha, AeadSet::only(Aes256Gcm), Aes256Gcm), None);
    }
}
