//! kcpx's secure wire, version 1 (issue 19): an authenticated handshake that
//! keeps no server state until the client proves its address, per-session
//! keys with forward secrecy, one AEAD seal per datagram with a replay
//! window, connection IDs, and control frames. The specification is
//! `docs/secure-wire.md`; this module is its sans-IO implementation:
//!
//! * [`wire`]: datagram forms, the long and short headers, packet-number
//!   reconstruction, the 19-byte address encoding;
//! * [`aead`]: AES-256-GCM and ChaCha20-Poly1305 (`ring`), sealed and opened
//!   in place without allocation;
//! * [`keys`]: HKDF-SHA256 and the key schedule (`kcpx1 …` labels);
//! * [`replay`]: the 1,024-packet sliding replay window;
//! * [`packet`]: [`Sender`] (packet numbers, key updates) and [`Receiver`]
//!   (open, replay check, then state change);
//! * [`cookie`]: the stateless HMAC cookies with rotating secrets;
//! * [`token`]: connect tokens (make, open) and the bounded used-token table;
//! * [`frames`]: the frames inside a sealed datagram;
//! * [`handshake`]: the client and server handshake state machines;
//! * [`path`]: path validation and anti-amplification for migration;
//! * [`liveness`]: keepalive, dead-link and draining timers.
//!
//! Nothing here reads a clock, a socket or the OS random source by itself:
//! time and randomness ([`Entropy`]) are inputs, so the tests and the test
//! vectors are deterministic. Errors carry their detail ([`SecureError`]) and
//! convert into the crate's one error type.
//!
//! A connection speaks it with [`crate::conn::Conn::secure`], the sans-IO
//! endpoint with a PSK (`EndpointConfig::secure`); the C API does not use it
//! yet (the spec's last section says how it will).
#![forbid(unsafe_code)]

pub mod aead;
pub mod cookie;
pub mod frames;
pub mod handshake;
pub mod keys;
pub mod liveness;
pub mod packet;
pub mod path;
pub mod replay;
pub mod token;
pub mod wire;

#[cfg(test)]
mod tests;

pub use aead::{AeadAlg, AeadSet};
pub use handshake::{
    Client, ClientConfig, ClientCredential, ClientProgress, Server, ServerAction, ServerConfig, Session,
};
pub use packet::{Receiver, Sender};

use core::fmt;

/// Why the secure layer refused something. Each is counted by its caller;
/// none is a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecureError {
    /// Too short or too long for its form, or a length field that disagrees.
    Truncated,
    /// A reserved bit, padding byte or field value that v1 does not allow.
    Malformed,
    /// Another version or magic in a long header.
    Version,
    /// An AEAD tag, MAC or cookie that does not verify (forged, corrupted,
    /// or under other keys, including a reflected datagram).
    Forged,
    /// A packet number already seen or older than the replay window.
    Replayed,
    /// A handshake message this side never takes (a server's message sent to
    /// a server, a client's to a client), or one not expected in this state.
    Unexpected,
    /// A cookie or token whose time has passed.
    Expired,
    /// A cookie issued to another address, or a token that does not name
    /// this server's address.
    WrongAddress,
    /// A connect token already used, with another handshake, on this server.
    TokenReused,
    /// No AEAD both sides allow, or a credential kind this side is not
    /// configured for.
    Unsupported,
    /// A bounded table is full of unexpired entries (fail closed).
    Full,
    /// A key of the wrong length, or a bad argument.
    Invalid,
    /// The random source failed.
    Random,
    /// The packet-number space or the integrity limit is exhausted.
    KeysExhausted,
    /// The handshake gave up (timeout, too many challenges).
    Failed,
}

impl fmt::Display for SecureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecureError::Truncated => "datagram too short or too long",
            SecureError::Malformed => "malformed field",
            SecureError::Version => "unknown version",
            SecureError::Forged => "authentication failed",
            SecureError::Replayed => "replayed packet",
            SecureError::Unexpected => "unexpected message",
            SecureError::Expired => "expired",
            SecureError::WrongAddress => "wrong address",
            SecureError::TokenReused => "connect token already used",
            SecureError::Unsupported => "no common algorithm or credential",
            SecureError::Full => "table full",
            SecureError::Invalid => "invalid argument",
            SecureError::Random => "random source failed",
            SecureError::KeysExhausted => "keys exhausted",
            SecureError::Failed => "handshake failed",
        })
    }
}

impl std::error::Error for SecureError {}

/// A source of fresh random bytes: the OS ([`OsEntropy`]) in production, a
/// seeded generator ([`SeededEntropy`]) for tests and test vectors.
pub trait Entropy {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SecureError>;
}

/// The operating system's random source (`getrandom`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SecureError> {
        getrandom::getrandom(out).map_err(|_| SecureError::Random)
    }
}

/// A deterministic generator for tests and test vectors only: block `i` is
/// `SHA256("kcpx1 seeded" ‖ seed ‖ i)`. Never use it for real keys.
#[derive(Clone, Debug)]
pub struct SeededEntropy {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededEntropy {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> SeededEntropy {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        SeededEntropy {
            seed: s,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SecureError> {
        for b in out {
            if self.used == 32 {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                ctx.update(b"kcpx1 seeded");
                ctx.update(&self.seed);
                ctx.update(&self.counter.to_be_bytes());
                self.block.copy_from_slice(ctx.finish().as_ref());
                self.counter = self.counter.wrapping_add(1);
                self.used = 0;
            }
            *b = self.block[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

/// `N` random bytes from `entropy`.
pub(crate) fn random<const N: usize>(entropy: &mut dyn Entropy) -> Result<[u8; N], SecureError> {
    let mut out = [0u8; N];
    entropy.fill(&mut out)?;
    Ok(out)
}
