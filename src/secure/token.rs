//! Connect tokens (`docs/secure-wire.md`, section 6), netcode.io's idea in
//! kcpx's layout: a backend holding the server's token key seals, for the
//! server, a client ID, the allowed server addresses and fresh client ⇄
//! server keys; the client gets those keys and the sealed token in a blob.
//! The server opens the token with no database; [`UsedTable`] makes each
//! token usable once per server until it expires.
//!
//! The seal is XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`) with a
//! random 24-byte nonce: one long-lived key seals every token, and a 192-bit
//! random nonce does not repeat in practice where a 96-bit one reaches its
//! birthday bound after 2³² tokens.

use std::collections::HashMap;
use std::net::SocketAddr;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};

use super::wire::{canonical, decode_addr, encode_addr, ADDR_LEN};
use super::{random, Entropy, OsEntropy, SecureError};
use crate::error::Error;

/// Bytes of a token key and of each of the token's session keys.
pub const TOKEN_KEY_LEN: usize = 32;
/// Server addresses a token can name.
pub const MAX_ADDRS: usize = 8;
/// Bytes of the sealed part's plaintext.
pub const PRIVATE_LEN: usize = 8 + 1 + MAX_ADDRS * ADDR_LEN + 2 * TOKEN_KEY_LEN;
/// Bytes of the sealed token (version, expiry, nonce, ciphertext, tag).
pub const SEALED_LEN: usize = PUBLIC_LEN + PRIVATE_LEN + 16;
/// Bytes of the blob the backend hands the client.
pub const BLOB_LEN: usize = 83 + SEALED_LEN;
const PUBLIC_LEN: usize = 1 + 8 + 24;
const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"kcpx1 token";

/// What a client holds: the blob's fields.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenBlob {
    /// The client's ID, as the backend chose it.
    pub client_id: u64,
    /// Unix seconds after which the token is refused.
    pub expires: u64,
    /// The client → server key.
    pub c2s_key: [u8; TOKEN_KEY_LEN],
    /// The server → client key.
    pub s2c_key: [u8; TOKEN_KEY_LEN],
    /// The sealed token, put into the hello unchanged.
    pub sealed: [u8; SEALED_LEN],
}

impl core::fmt::Debug for TokenBlob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TokenBlob")
            .field("client_id", &self.client_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The credential secret of a token's keys: `c2s_key ‖ s2c_key`.
pub fn credential_secret(c2s: &[u8; TOKEN_KEY_LEN], s2c: &[u8; TOKEN_KEY_LEN]) -> [u8; 2 * TOKEN_KEY_LEN] {
    let mut cs = [0u8; 2 * TOKEN_KEY_LEN];
    cs[..TOKEN_KEY_LEN].copy_from_slice(c2s);
    cs[TOKEN_KEY_LEN..].copy_from_slice(s2c);
    cs
}

fn cipher(token_key: &[u8]) -> Result<XChaCha20Poly1305, SecureError> {
    if token_key.len() != TOKEN_KEY_LEN {
        return Err(SecureError::Invalid);
    }
    Ok(XChaCha20Poly1305::new(Key::from_slice(token_key)))
}

fn aad(public: &[u8]) -> [u8; 11 + PUBLIC_LEN] {
    let mut a = [0u8; 11 + PUBLIC_LEN];
    a[..11].copy_from_slice(AAD_LABEL);
    a[11..].copy_from_slice(public);
    a
}

/// The backend's side: a token for `client_id`, valid `valid_s` seconds from
/// `now_unix_s`, for the servers at `addrs` (1 to 8), as the blob to hand
/// the client.
pub fn make(
    token_key: &[u8],
    client_id: u64,
    now_unix_s: u64,
    valid_s: u32,
    addrs: &[SocketAddr],
    entropy: &mut dyn Entropy,
) -> Result<[u8; BLOB_LEN], SecureError> {
    let cipher = cipher(token_key)?;
    if addrs.is_empty() || addrs.len() > MAX_ADDRS || valid_s == 0 {
        return Err(SecureError::Invalid);
    }
    let expires = now_unix_s.checked_add(u64::from(valid_s)).ok_or(SecureError::Invalid)?;
    let c2s: [u8; TOKEN_KEY_LEN] = random(entropy)?;
    let s2c: [u8; TOKEN_KEY_LEN] = random(entropy)?;
    let nonce: [u8; 24] = random(entropy)?;

    let mut sealed = [0u8; SEALED_LEN];
    sealed[0] = VERSION;
    sealed[1..9].copy_from_slice(&expires.to_be_bytes());
    sealed[9..33].copy_from_slice(&nonce);
    let (public, rest) = sealed.split_at_mut(PUBLIC_LEN);
    let (private, tag_out) = rest.split_at_mut(PRIVATE_LEN);
    private[..8].copy_from_slice(&client_id.to_be_bytes());
    private[8] = addrs.len() as u8;
    for (i, a) in addrs.iter().enumerate() {
        private[9 + i * ADDR_LEN..9 + (i + 1) * ADDR_LEN].copy_from_slice(&encode_addr(*a));
    }
    let keys_at = 9 + MAX_ADDRS * ADDR_LEN;
    private[keys_at..keys_at + TOKEN_KEY_LEN].copy_from_slice(&c2s);
    private[keys_at + TOKEN_KEY_LEN..].copy_from_slice(&s2c);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad(public), private)
        .map_err(|_| SecureError::Invalid)?;
    tag_out.copy_from_slice(&tag);

    let mut blob = [0u8; BLOB_LEN];
    blob[0] = VERSION;
    blob[1..9].copy_from_slice(&client_id.to_be_bytes());
    blob[9..17].copy_from_slice(&expires.to_be_bytes());
    blob[17..49].copy_from_slice(&c2s);
    blob[49..81].copy_from_slice(&s2c);
    blob[81..83].copy_from_slice(&(SEALED_LEN as u16).to_be_bytes());
    blob[83..].copy_from_slice(&sealed);
    Ok(blob)
}

/// [`make`] as a backend calls it: at the system clock (Unix seconds), with
/// the system's randomness, for servers named by numeric `"ip:port"`
/// strings (`"[::1]:4000"` for IPv6). Errors: [`Error::Key`] for a token key
/// that is not [`TOKEN_KEY_LEN`] bytes, [`Error::Addr`] for an address that
/// does not parse, [`Error::Invalid`] for no address, more than
/// [`MAX_ADDRS`] or `valid_s` 0, [`Error::Random`] if the system's random
/// source fails.
pub fn make_now(token_key: &[u8], client_id: u64, valid_s: u32, addrs: &[&str]) -> Result<[u8; BLOB_LEN], Error> {
    if token_key.len() != TOKEN_KEY_LEN {
        return Err(Error::Key);
    }
    if addrs.is_empty() || addrs.len() > MAX_ADDRS {
        return Err(Error::Invalid);
    }
    let mut parsed = [SocketAddr::from(([0, 0, 0, 0], 0)); MAX_ADDRS];
    for (slot, text) in parsed.iter_mut().zip(addrs) {
        *slot = text.parse().map_err(|_| Error::Addr)?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(make(
        token_key,
        client_id,
        now,
        valid_s,
        &parsed[..addrs.len()],
        &mut OsEntropy,
    )?)
}

impl TokenBlob {
    /// The client's side: reads a blob from the backend.
    pub fn parse(blob: &[u8]) -> Result<TokenBlob, SecureError> {
        if blob.len() != BLOB_LEN {
            return Err(SecureError::Truncated);
        }
        if blob[0] != VERSION || blob[83] != VERSION {
            return Err(SecureError::Version);
        }
        if blob[81..83] != (SEALED_LEN as u16).to_be_bytes() || blob[9..17] != blob[84..92] {
            return Err(SecureError::Malformed);
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&blob[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut t = TokenBlob {
            client_id: u64_at(1),
            expires: u64_at(9),
            c2s_key: [0; TOKEN_KEY_LEN],
            s2c_key: [0; TOKEN_KEY_LEN],
            sealed: [0; SEALED_LEN],
        };
        t.c2s_key.copy_from_slice(&blob[17..49]);
        t.s2c_key.copy_from_slice(&blob[49..81]);
        t.sealed.copy_from_slice(&blob[83..]);
        Ok(t)
    }
}

/// A token the server opened.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedToken {
    /// The client's ID.
    pub client_id: u64,
    /// Unix seconds after which it is refused.
    pub expires: u64,
    /// Its Poly1305 tag: the key of the used-token table.
    pub tag: [u8; 16],
    /// The client → server key.
    pub c2s_key: [u8; TOKEN_KEY_LEN],
    /// The server → client key.
    pub s2c_key: [u8; TOKEN_KEY_LEN],
}

impl core::fmt::Debug for OpenedToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedToken")
            .field("client_id", &self.client_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The server's side: opens tokens sealed with its token key.
#[derive(Clone)]
pub struct TokenOpener {
    cipher: XChaCha20Poly1305,
}

impl core::fmt::Debug for TokenOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TokenOpener")
    }
}

impl TokenOpener {
    /// An opener for `token_key` (32 bytes).
    pub fn new(token_key: &[u8]) -> Result<TokenOpener, SecureError> {
        Ok(TokenOpener {
            cipher: cipher(token_key)?,
        })
    }

    /// Opens a sealed token and checks it for the server at `local` at
    /// `now_unix_s`: its expiry (before any decryption), its lifetime
    /// against `max_valid_s`, its seal, its fields, its addresses.
    pub fn open(
        &self,
        sealed: &[u8],
        now_unix_s: u64,
        max_valid_s: u64,
        local: SocketAddr,
    ) -> Result<OpenedToken, SecureError> {
        if sealed.len() != SEALED_LEN {
            return Err(SecureError::Truncated);
        }
        if sealed[0] != VERSION {
            return Err(SecureError::Version);
        }
        let mut e = [0u8; 8];
        e.copy_from_slice(&sealed[1..9]);
        let expires = u64::from_be_bytes(e);
        if expires <= now_unix_s {
            return Err(SecureError::Expired);
        }
        if expires - now_unix_s > max_valid_s {
            return Err(SecureError::Invalid);
        }
        let mut private = [0u8; PRIVATE_LEN];
        private.copy_from_slice(&sealed[PUBLIC_LEN..PUBLIC_LEN + PRIVATE_LEN]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&sealed[PUBLIC_LEN + PRIVATE_LEN..]);
        self.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(&sealed[9..33]),
                &aad(&sealed[..PUBLIC_LEN]),
                &mut private,
                Tag::from_slice(&tag),
            )
            .map_err(|_| SecureError::Forged)?;
        let n = usize::from(private[8]);
        if n == 0 || n > MAX_ADDRS {
            return Err(SecureError::Malformed);
        }
        let local = canonical(local);
        let mut found = false;
        for i in 0..MAX_ADDRS {
            let mut a = [0u8; ADDR_LEN];
            a.copy_from_slice(&private[9 + i * ADDR_LEN..9 + (i + 1) * ADDR_LEN]);
            if i < n {
                found |= decode_addr(&a)? == local;
            } else if a != [0; ADDR_LEN] {
                return Err(SecureError::Malformed);
            }
        }
        if !found {
            return Err(SecureError::WrongAddress);
        }
        let mut t = OpenedToken {
            client_id: u64::from_be_bytes(private[..8].try_into().expect("8 bytes")),
            expires,
            tag,
            c2s_key: [0; TOKEN_KEY_LEN],
            s2c_key: [0; TOKEN_KEY_LEN],
        };
        let keys_at = 9 + MAX_ADDRS * ADDR_LEN;
        t.c2s_key.copy_from_slice(&private[keys_at..keys_at + TOKEN_KEY_LEN]);
        t.s2c_key.copy_from_slice(&private[keys_at + TOKEN_KEY_LEN..]);
        Ok(t)
    }
}

/// What [`UsedTable::record`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Not seen before: recorded.
    Fresh,
    /// Seen with the same handshake (a retransmitted echo).
    Duplicate,
}

/// Bytes an entry costs, the map's own overhead included (an estimate:
/// 16-byte key, 16-byte value, hashbrown's control byte and load factor).
pub const ENTRY_BYTES: usize = 48;

/// The bounded used-token and echo table (section 3.3): 16-byte key →
/// (expiry in Unix seconds, the handshake's 8-byte fingerprint).
#[derive(Debug)]
pub struct UsedTable {
    map: HashMap<[u8; 16], (u64, [u8; 8])>,
    capacity: usize,
    last_sweep: Option<u64>,
}

impl UsedTable {
    /// A table of at most `capacity` entries.
    pub fn new(capacity: usize) -> UsedTable {
        UsedTable {
            map: HashMap::new(),
            capacity,
            last_sweep: None,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records `key` until `expires` for the handshake `fingerprint`:
    /// `Fresh` the first time, `Duplicate` for the same fingerprint,
    /// `TokenReused` for another, `Full` when the table is full of unexpired
    /// entries (it fails closed: forgetting one would allow its replay).
    pub fn record(
        &mut self,
        key: [u8; 16],
        expires: u64,
        fingerprint: [u8; 8],
        now_unix_s: u64,
    ) -> Result<Use, SecureError> {
        if let Some(&(e, fp)) = self.map.get(&key) {
            if e > now_unix_s {
                return if fp == fingerprint {
                    Ok(Use::Duplicate)
                } else {
                    Err(SecureError::TokenReused)
                };
            }
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            if self.last_sweep != Some(now_unix_s) {
                self.last_sweep = Some(now_unix_s);
                self.map.retain(|_, (e, _)| *e > now_unix_s);
            }
            if self.map.len() >= self.capacity {
                return Err(SecureError::Full);
            }
        }
        self.map.insert(key, (expires, fingerprint));
        Ok(Use::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::SeededEntropy;

    const KEY: [u8; 32] = [0x42; 32];

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sizes_are_the_specs() {
        assert_eq!(PRIVATE_LEN, 225);
        assert_eq!(SEALED_LEN, 274);
        assert_eq!(BLOB_LEN, 357);
    }

    #[test]
    fn a_token_opens_for_its_servers_only_and_until_it_expires() {
        let mut e = SeededEntropy::new(7);
        let servers = [addr("10.0.0.1:7000"), addr("[2001:db8::1]:7000")];
        let blob = make(&KEY, 77, 1_000, 30, &servers, &mut e).unwrap();
        let t = TokenBlob::parse(&blob).unwrap();
        assert_eq!((t.client_id, t.expires), (77, 1_030));
        let o = TokenOpener::new(&KEY).unwrap();
        let opened = o.open(&t.sealed, 1_000, 3600, servers[1]).unwrap();
        assert_eq!(
            (opened.client_id, opened.c2s_key, opened.s2c_key),
            (77, t.c2s_key, t.s2c_key)
        );
        assert!(
            o.open(&t.sealed, 1_000, 3600, addr("[::ffff:10.0.0.1]:7000")).is_ok(),
            "mapped"
        );
        assert_eq!(
            o.open(&t.sealed, 1_000, 3600, addr("10.0.0.1:7001")),
            Err(SecureError::WrongAddress)
        );
        assert_eq!(o.open(&t.sealed, 1_030, 3600, servers[0]), Err(SecureError::Expired));
        assert_eq!(
            o.open(&t.sealed, 1_000, 10, servers[0]),
            Err(SecureError::Invalid),
            "lifetime over the cap"
        );
        assert_eq!(
            o.open(&t.sealed[..273], 1_000, 3600, servers[0]),
            Err(SecureError::Truncated)
        );
        let other = TokenOpener::new(&[1; 32]).unwrap();
        assert_eq!(other.open(&t.sealed, 1_000, 3600, servers[0]), Err(SecureError::Forged));
        // Every byte is covered: the public ones by the associated data.
        for i in 0..SEALED_LEN {
            let mut s = t.sealed;
            s[i] ^= 0x01;
            assert!(o.open(&s, 1_000, 3600, servers[0]).is_err(), "byte {i}");
        }
    }

    #[test]
    fn bad_arguments_and_blobs_are_refused() {
        let mut e = SeededEntropy::new(8);
        let a = [addr("1.2.3.4:5")];
        assert_eq!(make(&KEY[..31], 1, 0, 1, &a, &mut e), Err(SecureError::Invalid));
        assert_eq!(make(&KEY, 1, 0, 1, &[], &mut e), Err(SecureError::Invalid));
        assert_eq!(make(&KEY, 1, 0, 1, &[a[0]; 9], &mut e), Err(SecureError::Invalid));
        assert_eq!(make(&KEY, 1, 0, 0, &a, &mut e), Err(SecureError::Invalid));
        assert_eq!(make(&KEY, 1, u64::MAX, 1, &a, &mut e), Err(SecureError::Invalid));
        assert!(make(&KEY, 1, 0, 1, &[a[0]; 8], &mut e).is_ok());
        let blob = make(&KEY, 1, 0, 1, &a, &mut e).unwrap();
        assert_eq!(TokenBlob::parse(&blob[1..]), Err(SecureError::Truncated));
        let mut b = blob;
        b[0] = 2;
        assert_eq!(TokenBlob::parse(&b), Err(SecureError::Version));
        let mut b = blob;
        b[10] ^= 1;
        assert_eq!(TokenBlob::parse(&b), Err(SecureError::Malformed));
    }

    #[test]
    fn the_used_table_allows_one_use_and_is_bounded() {
        let mut u = UsedTable::new(2);
        assert_eq!(u.record([1; 16], 100, [1; 8], 10), Ok(Use::Fresh));
        assert_eq!(u.record([1; 16], 100, [1; 8], 11), Ok(Use::Duplicate));
        assert_eq!(u.record([1; 16], 100, [2; 8], 11), Err(SecureError::TokenReused));
        assert_eq!(u.record([2; 16], 50, [1; 8], 11), Ok(Use::Fresh));
        assert_eq!(
            u.record([3; 16], 100, [1; 8], 12),
            Err(SecureError::Full),
            "fails closed"
        );
        assert_eq!(u.len(), 2);
        // Once an entry expires its room is reused, and an expired key is new.
        assert_eq!(u.record([3; 16], 100, [1; 8], 50), Ok(Use::Fresh));
        assert_eq!(u.record([1; 16], 200, [9; 8], 100), Ok(Use::Fresh));
        assert!(u.len() <= 2);
    }
}
