//! The expanded ciphers behind a [`PacketCrypt`](super::PacketCrypt): the key
//! schedule runs once, at construction, and the result is immutable, so one
//! cipher serves any number of datagrams and threads at once (every
//! datagram's CFB or stream state lives on the stack of the call).
//!
//! Crates: AES, SM4, Blowfish and CAST5 come from RustCrypto's block-cipher
//! crates and Salsa20 from its stream-cipher crate (all on `cipher` 0.4); TEA
//! (kcp-go's 16-round variant) and XTEA are in `tea.rs`, Twofish and Triple
//! DES with precomputed tables in `twofish.rs` and `des.rs` (RustCrypto's
//! crates, 100 and 2 times slower here, are their test oracles), kcp-go's
//! xor in `stream.rs`.
#![forbid(unsafe_code)]

use aes::cipher::consts::U16;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Aes192Enc, Aes256Enc, Block};

use super::cfb::{self, CfbDecrypt, CfbEncrypt, CfbEncryptLanes};
use super::des::TripleDes;
use super::stream::{self, XOR_TABLE_LEN};
use super::tea::{Tea, Xtea};
use super::twofish::Twofish;
use super::{CryptError, CryptMethod, KCPGO_IV};

/// One method's expanded key. The large key schedules are boxed so that a
/// [`PacketCrypt`](super::PacketCrypt) stays small.
#[derive(Clone)]
pub(super) enum Cipher {
    None,
    Aes128(Aes128Enc),
    Aes192(Aes192Enc),
    Aes256(Aes256Enc),
    Sm4(Box<sm4::Sm4>),
    Twofish(Box<Twofish>),
    Blowfish(Box<blowfish::Blowfish>),
    Cast5(Box<cast5::Cast5>),
    TripleDes(Box<TripleDes>),
    Tea(Tea),
    Xtea(Box<Xtea>),
    Salsa20(Box<[u8; 32]>),
    Xor(Box<[u8; XOR_TABLE_LEN]>),
}

/// A RustCrypto block cipher as "encrypt one `N`-byte block in place".
#[inline(always)]
fn block_fn<C: BlockEncrypt, const N: usize>(cipher: &C) -> impl Fn(&mut [u8; N]) + '_ {
    move |block| cipher.encrypt_block(GenericArray::from_mut_slice(block))
}

/// kcp-go's CFB for an `N`-byte block cipher, one direction.
#[inline(always)]
fn soft_cfb<const N: usize, const DECRYPT: bool>(buf: &mut [u8], first: &Block, encrypt: impl Fn(&mut [u8; N])) {
    let mut head = [0u8; N];
    head.copy_from_slice(&first[..N]);
    if DECRYPT {
        cfb::decrypt(buf, head, encrypt);
    } else {
        cfb::encrypt(buf, head, encrypt);
    }
}

/// kcp-go's CFB for AES, run inside the `aes` backend, one direction.
#[inline(always)]
fn aes_cfb<C: BlockEncrypt<BlockSize = U16>, const DECRYPT: bool>(cipher: &C, buf: &mut [u8], first: &Block) {
    if DECRYPT {
        cipher.encrypt_with_backend(CfbDecrypt(buf));
    } else {
        cipher.encrypt_with_backend(CfbEncrypt((buf, *first)));
    }
}

/// Blowfish's key schedule cycles through the key bytes, so a key repeated
/// whole is the same key: that lets the crate (4..=56 bytes) take kcp-go's
/// 1..=3-byte keys too.
fn blowfish_key(key: &[u8]) -> Vec<u8> {
    key.repeat(4usize.div_ceil(key.len().max(1)))
}

impl Cipher {
    /// Expands `key` for `method`.
    pub(super) fn new(method: CryptMethod, key: &[u8]) -> Result<Cipher, CryptError> {
        let bad = CryptError::KeyLength {
            expected: method.key_len(),
            got: key.len(),
        };
        if !method.accepts_key_len(key.len()) {
            return Err(bad);
        }
        let key16 = || <&[u8; 16]>::try_from(key).map_err(|_| bad);
        Ok(match method {
            CryptMethod::None => Cipher::None,
            CryptMethod::Aes128 => Cipher::Aes128(Aes128Enc::new_from_slice(key).map_err(|_| bad)?),
            CryptMethod::Aes192 => Cipher::Aes192(Aes192Enc::new_from_slice(key).map_err(|_| bad)?),
            CryptMethod::Aes256 => Cipher::Aes256(Aes256Enc::new_from_slice(key).map_err(|_| bad)?),
            CryptMethod::Sm4 => Cipher::Sm4(Box::new(sm4::Sm4::new_from_slice(key).map_err(|_| bad)?)),
            CryptMethod::Twofish => Cipher::Twofish(Box::new(Twofish::new(key))),
            CryptMethod::Blowfish => Cipher::Blowfish(Box::new(
                blowfish::Blowfish::new_from_slice(&blowfish_key(key)).map_err(|_| bad)?,
            )),
            CryptMethod::Cast5 => Cipher::Cast5(Box::new(cast5::Cast5::new_from_slice(key).map_err(|_| bad)?)),
            CryptMethod::TripleDes => Cipher::TripleDes(Box::new(TripleDes::new(key))),
            CryptMethod::Tea => Cipher::Tea(Tea::new(key16()?, Tea::KCPGO_CYCLES)),
            CryptMethod::Xtea => Cipher::Xtea(Box::new(Xtea::new(key16()?))),
            CryptMethod::Salsa20 => Cipher::Salsa20(Box::new(key.try_into().map_err(|_| bad)?)),
            CryptMethod::Xor => Cipher::Xor(stream::xor_table(key)),
            // Sealed by gcm.rs, never by this CFB/stream cipher.
            CryptMethod::Aes128Gcm | CryptMethod::Aes192Gcm | CryptMethod::Aes256Gcm => Cipher::None,
        })
    }

    /// The encryption of [`KCPGO_IV`] (its first 8 bytes for 8-byte-block
    /// ciphers): the first keystream block of every datagram, a constant of
    /// the key. Zero for the methods that are not CFB.
    pub(super) fn iv_keystream(&self) -> Block {
        if matches!(self, Cipher::None | Cipher::Salsa20(_) | Cipher::Xor(_)) {
            return Block::default();
        }
        // CFB from a zero first keystream block over [IV, 0]: block 0's
        // ciphertext is the IV itself, so block 1 comes out as E(IV).
        let width = self.block_len();
        let mut buf = [0u8; 32];
        buf[..width].copy_from_slice(&KCPGO_IV[..width]);
        self.transform::<false>(&Block::default(), &mut buf[..2 * width]);
        let mut first = Block::default();
        first[..width].copy_from_slice(&buf[width..2 * width]);
        first
    }

    /// Block length of the CFB ciphers (16 for the others, unused).
    fn block_len(&self) -> usize {
        match self {
            Cipher::Blowfish(_) | Cipher::Cast5(_) | Cipher::TripleDes(_) | Cipher::Tea(_) | Cipher::Xtea(_) => 8,
            _ => 16,
        }
    }

    /// Encrypts (`DECRYPT` false) or decrypts a whole datagram in place, as
    /// kcp-go's `BlockCrypt.Encrypt`/`Decrypt`. `first` is [`Cipher::iv_keystream`].
    #[inline]
    pub(super) fn transform<const DECRYPT: bool>(&self, first: &Block, buf: &mut [u8]) {
        match self {
            Cipher::None => {}
            Cipher::Aes128(c) => aes_cfb::<_, DECRYPT>(c, buf, first),
            Cipher::Aes192(c) => aes_cfb::<_, DECRYPT>(c, buf, first),
            Cipher::Aes256(c) => aes_cfb::<_, DECRYPT>(c, buf, first),
            Cipher::Sm4(c) => soft_cfb::<16, DECRYPT>(buf, first, block_fn(&**c)),
            Cipher::Twofish(c) => soft_cfb::<16, DECRYPT>(buf, first, |b| c.encrypt(b)),
            Cipher::Blowfish(c) => soft_cfb::<8, DECRYPT>(buf, first, block_fn(&**c)),
            Cipher::Cast5(c) => soft_cfb::<8, DECRYPT>(buf, first, block_fn(&**c)),
            Cipher::TripleDes(c) => soft_cfb::<8, DECRYPT>(buf, first, |b| c.encrypt(b)),
            Cipher::Tea(c) => soft_cfb::<8, DECRYPT>(buf, first, |b| c.encrypt(b)),
            Cipher::Xtea(c) => soft_cfb::<8, DECRYPT>(buf, first, |b| c.encrypt(b)),
            Cipher::Salsa20(key) => stream::salsa20(key, buf),
            Cipher::Xor(table) => stream::xor(table, buf),
        }
    }

    /// Encrypts up to [`SEAL_LANES`](super::SEAL_LANES) datagrams: AES side by
    /// side through its pipelined path, the others one after the other (their
    /// crates have no parallel block path to feed).
    pub(super) fn encrypt_lanes<'a>(&self, first: &Block, lanes: &'a mut [&'a mut [u8]]) {
        match self {
            Cipher::Aes128(c) => c.encrypt_with_backend(CfbEncryptLanes((lanes, *first))),
            Cipher::Aes192(c) => c.encrypt_with_backend(CfbEncryptLanes((lanes, *first))),
            Cipher::Aes256(c) => c.encrypt_with_backend(CfbEncryptLanes((lanes, *first))),
            _ => {
                for lane in lanes.iter_mut() {
                    self.transform::<false>(first, lane);
                }
            }
        }
    }
}
