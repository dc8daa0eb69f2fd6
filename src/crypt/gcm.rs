//! AES-GCM in kcp-go master's AEAD layout (`NewAESGCMCrypt`; kcptun's
//! `aes-128-gcm`), a different wire format from the CFB + CRC-32 one:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 12 | nonce, random per datagram, in clear |
//! | 12 | … | payload (FEC header if FEC is on, KCP bytes), AES-GCM encrypted |
//! | end − 16 | 16 | GCM tag |
//!
//! No CRC-32 and no associated data; every FEC shard (data and parity) is
//! sealed on its own. The tag authenticates nonce-keyed ciphertext, so any
//! change, truncation or datagram sealed under another key fails to open
//! ([`CryptError::Forged`]). Like kcp-go there is no replay protection and no
//! direction binding: a replayed or reflected datagram opens.
//!
//! AES-128-GCM and AES-256-GCM run on `ring` (the AEAD of rustls), whose
//! stitched AES-NI + carry-less-multiply code seals and opens a 1500-byte
//! datagram 3.6 times as fast as RustCrypto's `aes-gcm` on this machine
//! (5.1 against 1.4 GB/s, seal + open counted twice; Go's GCM, which kcp-go
//! master uses, 4.3 GB/s in the same run: see docs/benchmarks.md). `ring`
//! has no AES-192-GCM, so that method stays on RustCrypto's `aes-gcm`. Both
//! pick their code for the CPU at run time, constant-time software without
//! AES instructions; both seal and open in place and never allocate.
#![forbid(unsafe_code)]

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};
use ring::aead::{Aad, LessSafeKey, Nonce as RingNonce, UnboundKey, AES_128_GCM, AES_256_GCM};

use std::sync::Arc;

use super::{CryptError, CryptMethod};

/// Bytes of the nonce in front of a GCM datagram.
pub const GCM_NONCE_LEN: usize = 12;
/// Bytes of the tag at the end of a GCM datagram.
pub const GCM_TAG_LEN: usize = 16;

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, U12>;

/// One expanded AES-GCM key (boxed: the key schedules are large; `ring`'s
/// key is not `Clone`, so its clones share it).
#[derive(Clone)]
pub(super) enum Gcm {
    /// AES-128-GCM or AES-256-GCM.
    Ring(Arc<LessSafeKey>),
    Aes192(Box<Aes192Gcm>),
}

fn ring_key(method: CryptMethod, key: &[u8]) -> Result<Gcm, ()> {
    let alg = if method == CryptMethod::Aes128Gcm {
        &AES_128_GCM
    } else {
        &AES_256_GCM
    };
    let unbound = UnboundKey::new(alg, key).map_err(|_| ())?;
    Ok(Gcm::Ring(Arc::new(LessSafeKey::new(unbound))))
}

impl Gcm {
    /// The cipher of a GCM method, `None` for the other methods.
    pub(super) fn new(method: CryptMethod, key: &[u8]) -> Option<Result<Gcm, CryptError>> {
        let bad = CryptError::KeyLength {
            expected: method.key_len(),
            got: key.len(),
        };
        let gcm = match method {
            CryptMethod::Aes128Gcm | CryptMethod::Aes256Gcm => ring_key(method, key),
            CryptMethod::Aes192Gcm => Aes192Gcm::new_from_slice(key)
                .map(|c| Gcm::Aes192(Box::new(c)))
                .map_err(|_| ()),
            _ => return None,
        };
        Some(gcm.map_err(|_| bad))
    }

    /// Seals `datagram` in place: `[..12]` receives `nonce`, `[12..len − 16]`
    /// is encrypted, `[len − 16..]` receives the tag.
    pub(super) fn seal(&self, datagram: &mut [u8], nonce: &[u8; GCM_NONCE_LEN]) -> Result<(), CryptError> {
        let (head, body, tail) = split(datagram)?;
        head.copy_from_slice(nonce);
        // Errors only for a payload beyond GCM's 64 GiB limit, which no datagram reaches.
        match self {
            Gcm::Ring(k) => {
                let n = RingNonce::assume_unique_for_key(*nonce);
                let tag = k.seal_in_place_separate_tag(n, Aad::empty(), body);
                tail.copy_from_slice(tag.map_err(|_| CryptError::TooShort)?.as_ref());
            }
            Gcm::Aes192(g) => {
                let tag = g.encrypt_in_place_detached(Nonce::from_slice(nonce), &[], body);
                tail.copy_from_slice(&tag.map_err(|_| CryptError::TooShort)?);
            }
        }
        Ok(())
    }

    /// Opens `datagram` in place and returns the plaintext (`[12..len − 16]`).
    /// On [`CryptError::Forged`] the payload bytes are unspecified.
    pub(super) fn open<'a>(&self, datagram: &'a mut [u8]) -> Result<&'a mut [u8], CryptError> {
        split(datagram)?;
        let (head, rest) = datagram.split_at_mut(GCM_NONCE_LEN);
        let mut nonce = [0u8; GCM_NONCE_LEN];
        nonce.copy_from_slice(head);
        match self {
            Gcm::Ring(k) => {
                let n = RingNonce::assume_unique_for_key(nonce);
                k.open_in_place(n, Aad::empty(), rest).map_err(|_| CryptError::Forged)
            }
            Gcm::Aes192(g) => {
                let (body, tail) = rest.split_at_mut(rest.len() - GCM_TAG_LEN);
                let tag = Tag::clone_from_slice(tail);
                g.decrypt_in_place_detached(Nonce::from_slice(&nonce), &[], body, &tag)
                    .map_err(|_| CryptError::Forged)?;
                Ok(body)
            }
        }
    }
}

/// Nonce, payload and tag of one datagram.
type Parts<'a> = (&'a mut [u8], &'a mut [u8], &'a mut [u8]);

/// Nonce, payload and tag of a GCM datagram ([`CryptError::TooShort`] under 28 bytes).
fn split(datagram: &mut [u8]) -> Result<Parts<'_>, CryptError> {
    if datagram.len() < GCM_NONCE_LEN + GCM_TAG_LEN {
        return Err(CryptError::TooShort);
    }
    let (head, rest) = datagram.split_at_mut(GCM_NONCE_LEN);
    let (body, tail) = rest.split_at_mut(rest.len() - GCM_TAG_LEN);
    Ok((head, body, tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::unhex;

    /// The published GCM test vectors with 96-bit IVs and no associated data
    /// (McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 1-3
    /// for AES-128, 7-9 for AES-192, 13-15 for AES-256; also in NIST's
    /// gcmEncryptExtIV files), through the kcpx wrapper: the datagram is
    /// `[IV][ciphertext][tag]`.
    #[test]
    fn mcgrew_viega_vectors() {
        const P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
        const IV: &str = "cafebabefacedbaddecaf888";
        const K: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
        let zero = "0".repeat(64);
        let cases: [(CryptMethod, &str, &str, &str, &str, &str); 9] = [
            (CryptMethod::Aes128Gcm, &zero[..32], &zero[..24], "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
            (
                CryptMethod::Aes128Gcm,
                &zero[..32],
                &zero[..24],
                &zero[..32],
                "0388dace60b6a392f328c2b971b2fe78",
                "ab6e47d42cec13bdf53a67b21257bddf",
            ),
            (
                CryptMethod::Aes128Gcm,
                &K[..32],
                IV,
                P,
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
                "4d5c2af327cd64a62cf35abd2ba6fab4",
            ),
            (CryptMethod::Aes192Gcm, &zero[..48], &zero[..24], "", "", "cd33b28ac773f74ba00ed1f312572435"),
            (
                CryptMethod::Aes192Gcm,
                &zero[..48],
                &zero[..24],
                &zero[..32],
                "98e7247c07f0fe411c267e4384b0f600",
                "2ff58d80033927ab8ef4d4587514f0fb",
            ),
            (
                CryptMethod::Aes192Gcm,
                &K[..48],
                IV,
                P,
                "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710acade256",
                "9924a7c8587336bfb118024db8674a14",
            ),
            (CryptMethod::Aes256Gcm, &zero[..64], &zero[..24], "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
            (
                CryptMethod::Aes256Gcm,
                &zero[..64],
                &zero[..24],
                &zero[..32],
                "cea7403d4d606b6e074ec5d3baf39d18",
                "d0d1c8a799996bf0265b98b5d48ab919",
            ),
            (
                CryptMethod::Aes256Gcm,
                K,
                IV,
                P,
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
                "b094dac5d93471bdec1a502270e3cc6c",
            ),
        ];
        for (method, key, iv, plain, cipher, tag) in cases {
            let gcm = Gcm::new(method, &unhex(key)).unwrap().unwrap();
            let iv: [u8; GCM_NONCE_LEN] = unhex(iv).try_into().unwrap();
            let mut datagram = [vec![0; GCM_NONCE_LEN], unhex(plain), vec![0; GCM_TAG_LEN]].concat();
            gcm.seal(&mut datagram, &iv).unwrap();
            let expected = [iv.to_vec(), unhex(cipher), unhex(tag)].concat();
            assert_eq!(datagram, expected, "{method:?} seal, plaintext {plain}");
            assert_eq!(gcm.open(&mut datagram).unwrap(), &unhex(plain)[..], "{method:?} open");
            // Every single-bit change anywhere is refused (the payload bytes
            // are then unspecified: `ring` overwrites them).
            for bit in (0..expected.len() * 8).step_by(7) {
                let mut bad = expected.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(gcm.open(&mut bad), Err(CryptError::Forged), "{method:?} bit {bit}");
            }
            for cut in 1..=expected.len() {
                let mut short = expected[..expected.len() - cut].to_vec();
                let want = if short.len() < 28 {
                    CryptError::TooShort
                } else {
                    CryptError::Forged
                };
                assert_eq!(gcm.open(&mut short), Err(want), "{method:?} cut {cut}");
            }
        }
    }

    #[test]
    fn key_lengths_and_other_methods() {
        for (method, len) in [
            (CryptMethod::Aes128Gcm, 16),
            (CryptMethod::Aes192Gcm, 24),
            (CryptMethod::Aes256Gcm, 32),
        ] {
            assert!(Gcm::new(method, &vec![1; len]).unwrap().is_ok());
            assert_eq!(
                Gcm::new(method, &vec![1; len + 8]).unwrap().err(),
                Some(CryptError::KeyLength {
                    expected: len,
                    got: len + 8
                })
            );
        }
        assert!(Gcm::new(CryptMethod::Aes128, &[1; 16]).is_none());
    }
}
