//! kcp-go's two ciphers that are not CFB: salsa20 and its "simple XOR".
//!
//! - **salsa20**: Salsa20/20 with a 32-byte key and an 8-byte nonce, the
//!   first 8 bytes of the datagram (the head of its random nonce), which stay
//!   in clear; the keystream (block counter from 0) is XORed into everything
//!   after them, the rest of the nonce and the CRC-32 included.
//! - **xor**: a fixed table of [`XOR_TABLE_LEN`] bytes derived from the key
//!   with PBKDF2-HMAC-SHA1 (salt [`XOR_SALT`], 32 iterations) is XORed into
//!   the datagram's first bytes, nonce included. The same table for every
//!   datagram: a passive observer who knows one plaintext datagram learns the
//!   table, and every other datagram with it.
#![forbid(unsafe_code)]

use salsa20::cipher::{KeyIvInit, StreamCipher};

/// Bytes of the datagram head that salsa20 keeps in clear and uses as nonce.
pub(super) const SALSA20_NONCE_LEN: usize = 8;
/// kcp-go's salt for expanding the xor key (`saltxor` in its `crypt.go`).
pub(super) const XOR_SALT: &[u8] = b"sH3CIVoF#rWLtJo6";
/// PBKDF2 iterations of the xor key expansion.
pub(super) const XOR_ROUNDS: u32 = 32;
/// Length of the xor table: kcp-go's largest datagram (`mtuLimit`). Bytes
/// past it (there are none in a datagram kcp-go accepts) stay in clear.
pub(super) const XOR_TABLE_LEN: usize = 1500;

/// Applies kcp-go's salsa20 layout to `buf` in place (its own inverse).
pub(super) fn salsa20(key: &[u8; 32], buf: &mut [u8]) {
    if buf.len() <= SALSA20_NONCE_LEN {
        return;
    }
    let (nonce, rest) = buf.split_at_mut(SALSA20_NONCE_LEN);
    let nonce: &[u8; SALSA20_NONCE_LEN] = (&*nonce).try_into().expect("8 bytes");
    salsa20::Salsa20::new(key.into(), nonce.into()).apply_keystream(rest);
}

/// kcp-go's xor table for `key`.
pub(super) fn xor_table(key: &[u8]) -> Box<[u8; XOR_TABLE_LEN]> {
    let mut table = Box::new([0u8; XOR_TABLE_LEN]);
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(key, XOR_SALT, XOR_ROUNDS, &mut table[..]);
    table
}

/// Applies the xor table to `buf` in place (its own inverse).
pub(super) fn xor(table: &[u8; XOR_TABLE_LEN], buf: &mut [u8]) {
    for (d, k) in buf.iter_mut().zip(table.iter()) {
        *d ^= k;
    }
}
