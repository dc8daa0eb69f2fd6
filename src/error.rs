//! The library's one error type, [`Error`], and the `KCPX_*` codes the C API
//! returns for it. This file is the single table: the constants below are
//! copied into `include/kcpx.h` by cbindgen, [`Error::code`] and
//! [`Error::from_code`] convert, and [`Error::message`] is both the Rust
//! `Display` text and what `kcpx_strerror` returns.
//!
//! Module-level errors ([`crate::crypt::CryptError`], [`crate::fec::FecError`],
//! [`crate::secure::SecureError`])
//! keep their detail for direct users of those modules and convert into
//! [`Error`] at the connection layer.
#![forbid(unsafe_code)]

use core::ffi::CStr;
use core::fmt;

/// Success.
pub const KCPX_OK: i32 = 0;
/// A required pointer argument is NULL.
pub const KCPX_ERR_NULL: i32 = -1;
/// An argument is out of range.
pub const KCPX_ERR_INVALID: i32 = -2;
/// Not now: no complete message is waiting (recv), or the send queue is
/// full (send); try again after the next update or event.
pub const KCPX_ERR_AGAIN: i32 = -3;
/// The buffer is smaller than the next message (see the peeksize functions).
pub const KCPX_ERR_BUFFER_TOO_SMALL: i32 = -4;
/// A message-mode message needs more than 127 segments: split it, or use a
/// session in stream mode (which splits any length itself).
pub const KCPX_ERR_TOO_LARGE: i32 = -5;
/// Unknown cipher name, or a key of the wrong length for it.
pub const KCPX_ERR_KEY: i32 = -6;
/// FEC shard counts out of range (1..=255 each, sum <= 256, or 0,0 for off).
pub const KCPX_ERR_FEC: i32 = -7;
/// The MTU is outside 50..=1500 or leaves too little room after the headers.
pub const KCPX_ERR_MTU: i32 = -8;
/// A datagram failed its CRC-32 check or AES-GCM tag (wrong key, corruption or forgery).
pub const KCPX_ERR_CHECKSUM: i32 = -9;
/// A datagram is too short (or too long) for its headers.
pub const KCPX_ERR_SHORT: i32 = -10;
/// KCP refused the datagram's segments (another conversation, bad length
/// or command).
pub const KCPX_ERR_KCP: i32 = -11;
/// The operating system's random source failed.
pub const KCPX_ERR_RANDOM: i32 = -12;
/// An internal error in kcpx (a bug; please report it).
pub const KCPX_ERR_INTERNAL: i32 = -13;
/// The session is closed: its KCPX_EVENT_CLOSED happened (idle timeout,
/// dead link, replaced by its peer's new conversation, or evicted) and, for
/// `kcpx_session_recv` and `_peeksize`, everything it received was read.
/// Its stats, RTT, conv and address still answer; `kcpx_session_close`
/// frees it (see the table at `kcpx_session`). A listener's close is not
/// among the causes: `kcpx_listener_close` frees its sessions, whose
/// pointers are then invalid, not closed.
pub const KCPX_ERR_CLOSED: i32 = -14;
/// A socket call failed (bind, send or receive); `errno` tells why.
pub const KCPX_ERR_IO: i32 = -15;
/// An address string could not be parsed: use `"1.2.3.4:port"` or
/// `"[::1]:port"` (numeric addresses only, no name lookup).
pub const KCPX_ERR_ADDR: i32 = -16;

/// Everything that can go wrong in kcpx, one variant per `KCPX_ERR_*` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A required pointer is NULL (C API only).
    Null,
    /// An argument is out of range.
    Invalid,
    /// Not now: nothing to receive yet, or the send queue is full.
    Again,
    /// The buffer is smaller than the next message.
    BufferTooSmall,
    /// A message-mode message needs more than 127 segments.
    TooLarge,
    /// Unknown cipher, or a key of the wrong length.
    Key,
    /// FEC shard counts out of range.
    Fec,
    /// The MTU is out of range for the configured headers.
    Mtu,
    /// A datagram failed its CRC-32 check or AES-GCM tag.
    Checksum,
    /// A datagram is too short or too long for its headers.
    Short,
    /// KCP refused the datagram's segments.
    Kcp,
    /// The operating system's random source failed.
    Random,
    /// A bug in kcpx.
    Internal,
    /// The session is closed.
    Closed,
    /// A socket call failed.
    Io(std::io::ErrorKind),
    /// An address could not be parsed.
    Addr,
}

/// The one table: variant, C code, description.
const TABLE: &[(Error, i32, &CStr)] = &[
    (Error::Null, KCPX_ERR_NULL, c"a required pointer argument is NULL"),
    (Error::Invalid, KCPX_ERR_INVALID, c"an argument is out of range"),
    (
        Error::Again,
        KCPX_ERR_AGAIN,
        c"not now: nothing to receive yet, or the send queue is full",
    ),
    (
        Error::BufferTooSmall,
        KCPX_ERR_BUFFER_TOO_SMALL,
        c"buffer smaller than the next message",
    ),
    (
        Error::TooLarge,
        KCPX_ERR_TOO_LARGE,
        c"message needs more than 127 segments",
    ),
    (Error::Key, KCPX_ERR_KEY, c"unknown cipher or wrong key length"),
    (Error::Fec, KCPX_ERR_FEC, c"FEC shard counts out of range"),
    (Error::Mtu, KCPX_ERR_MTU, c"MTU out of range for the configured headers"),
    (
        Error::Checksum,
        KCPX_ERR_CHECKSUM,
        c"datagram failed its CRC-32 check or AES-GCM tag",
    ),
    (
        Error::Short,
        KCPX_ERR_SHORT,
        c"datagram too short or too long for its headers",
    ),
    (Error::Kcp, KCPX_ERR_KCP, c"KCP refused the datagram"),
    (Error::Random, KCPX_ERR_RANDOM, c"the OS random source failed"),
    (Error::Internal, KCPX_ERR_INTERNAL, c"internal error in kcpx"),
    (Error::Closed, KCPX_ERR_CLOSED, c"the session is closed"),
    (
        Error::Io(std::io::ErrorKind::Other),
        KCPX_ERR_IO,
        c"a socket call failed",
    ),
    (
        Error::Addr,
        KCPX_ERR_ADDR,
        c"address not of the form 1.2.3.4:port or [::1]:port",
    ),
];

impl Error {
    /// The entry of `self` in the table (`Io` matches whatever its kind).
    fn entry(self) -> &'static (Error, i32, &'static CStr) {
        let key = match self {
            Error::Io(_) => Error::Io(std::io::ErrorKind::Other),
            e => e,
        };
        TABLE
            .iter()
            .find(|(e, _, _)| *e == key)
            .expect("every variant is in the table")
    }

    /// The `KCPX_ERR_*` code (negative).
    pub fn code(self) -> i32 {
        self.entry().1
    }

    /// The error of a `KCPX_ERR_*` code; `None` for `KCPX_OK` and unknown codes.
    pub fn from_code(code: i32) -> Option<Error> {
        TABLE.iter().find(|(_, c, _)| *c == code).map(|(e, _, _)| *e)
    }

    /// A static English description (also `kcpx_strerror`'s text).
    pub fn message(self) -> &'static CStr {
        self.entry().2
    }
}

/// `kcpx_strerror`'s text for any code: the table's, "success" for
/// `KCPX_OK`, "unknown error" otherwise.
pub fn describe(code: i32) -> &'static CStr {
    match (code, Error::from_code(code)) {
        (KCPX_OK, _) => c"success",
        (_, Some(e)) => e.message(),
        _ => c"unknown error",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().to_str().unwrap_or("?"))?;
        match self {
            Error::Io(kind) => write!(f, " ({kind})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::crypt::CryptError> for Error {
    fn from(e: crate::crypt::CryptError) -> Self {
        use crate::crypt::CryptError;
        match e {
            CryptError::KeyLength { .. } => Error::Key,
            CryptError::Random => Error::Random,
            CryptError::TooShort => Error::Short,
            CryptError::BadChecksum | CryptError::Forged => Error::Checksum,
            CryptError::Layout => Error::Internal,
        }
    }
}

impl From<crate::fec::FecError> for Error {
    fn from(e: crate::fec::FecError) -> Self {
        use crate::fec::FecError;
        match e {
            FecError::InvalidShards { .. } => Error::Fec,
            FecError::TooShort | FecError::TooLong => Error::Internal,
        }
    }
}

impl From<crate::secure::SecureError> for Error {
    fn from(e: crate::secure::SecureError) -> Self {
        use crate::secure::SecureError as S;
        match e {
            // Until the secure mode reaches the C API (with codes of its
            // own), a refusal maps onto the nearest existing code.
            S::Truncated | S::Malformed | S::Version | S::Unexpected => Error::Short,
            S::Forged | S::Replayed => Error::Checksum,
            S::Invalid | S::Unsupported | S::Expired | S::WrongAddress | S::TokenReused => Error::Invalid,
            S::Random => Error::Random,
            S::Full => Error::Again,
            S::KeysExhausted | S::Failed => Error::Closed,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_negative_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (e, code, msg) in TABLE {
            assert!(*code < 0, "{e:?}");
            assert!(seen.insert(*code), "{code} twice");
            assert_eq!(Error::from_code(*code), Some(*e));
            assert_eq!(e.code(), *code);
            assert_eq!(describe(*code), *msg);
        }
        assert_eq!(describe(KCPX_OK), c"success");
        assert_eq!(describe(-9999), c"unknown error");
        assert_eq!(Error::Io(std::io::ErrorKind::AddrInUse).code(), KCPX_ERR_IO);
        assert!(Error::Io(std::io::ErrorKind::AddrInUse).to_string().contains("address"));
    }
}
