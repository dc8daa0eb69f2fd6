//! A received datagram read once: its length checked, opened with the
//! connection's cipher, its FEC framing classified and its first KCP
//! segment's conv and sn read. A listener routes it by [`Incoming::route`]
//! and hands the same value to [`super::Conn::input_incoming`], which reads
//! nothing again.

use crate::crypt::PacketCrypt;
use crate::error::Error;
use crate::fec::{classify, FecInput, KCPGO_MTU_LIMIT, OOB_CONV_LEN};
use crate::kcp::consts::{CMD_PUSH, CMD_WINS};
use crate::kcp::OVERHEAD;

/// Where a datagram goes, from its headers alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// KCP segments (an FEC data shard or a datagram without FEC): the
    /// first segment's conv and sn.
    Segment {
        /// The conversation.
        conv: u32,
        /// The segment's sequence number (0: a conversation's first).
        sn: u32,
    },
    /// An out-of-band (unreliable) message of conversation `conv`.
    Message {
        /// The conversation it names.
        conv: u32,
    },
    /// FEC parity: names no conversation.
    Parity,
    /// Nothing a session can take: [`Error::Short`] for broken FEC framing
    /// or a truncated KCP header, [`Error::Kcp`] for an unknown command or
    /// a segment longer than the datagram.
    Invalid(Error),
}

/// One received datagram, opened and classified.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// The datagram without its crypto header.
    pub(super) payload: &'a [u8],
    /// Its length on the wire.
    pub(super) wire_len: usize,
    pub(super) fec: FecInput<'a>,
    route: Route,
}

impl<'a> Incoming<'a> {
    /// Checks the length (at most kcp-go's 1,500 bytes, else
    /// [`Error::Short`]), opens the datagram in place with `crypt`
    /// ([`Error::Checksum`] for a wrong key, a forgery or corruption) and
    /// reads its headers.
    pub fn open(crypt: Option<&PacketCrypt>, datagram: &'a mut [u8]) -> Result<Incoming<'a>, Error> {
        let wire_len = datagram.len();
        if wire_len > KCPGO_MTU_LIMIT {
            return Err(Error::Short);
        }
        let payload: &'a [u8] = match crypt {
            Some(c) => c.open(datagram)?,
            None => datagram,
        };
        Ok(Incoming::classified(payload, wire_len))
    }

    /// [`Incoming::open`] for a connection without cipher, whose datagrams
    /// need no opening (and no copy to be opened in place).
    pub fn unsealed(datagram: &'a [u8]) -> Result<Incoming<'a>, Error> {
        if datagram.len() > KCPGO_MTU_LIMIT {
            return Err(Error::Short);
        }
        Ok(Incoming::classified(datagram, datagram.len()))
    }

    /// The KCP frame of a secure datagram that opened (`wire_len` bytes on
    /// the wire, at most kcp-go's limit: checked before it was opened).
    pub(super) fn opened(payload: &'a [u8], wire_len: usize) -> Incoming<'a> {
        Incoming::classified(payload, wire_len)
    }

    fn classified(payload: &'a [u8], wire_len: usize) -> Incoming<'a> {
        let fec = classify(payload);
        let route = match fec {
            FecInput::Data(kcp) => first_segment(kcp),
            // kcp-go hands a datagram without FEC header to KCP as it is.
            FecInput::NotFec => first_segment(payload),
            FecInput::Parity => Route::Parity,
            FecInput::Oob(m) => Route::Message { conv: word(m, 0) },
            FecInput::Malformed | FecInput::Inconsistent => Route::Invalid(Error::Short),
        };
        Incoming {
            payload,
            wire_len,
            fec,
            route,
        }
    }

    /// Where it goes.
    pub fn route(&self) -> Route {
        self.route
    }

    /// Its length on the wire (crypto header included).
    pub fn wire_len(&self) -> usize {
        self.wire_len
    }

    /// The payload of an out-of-band message (after its conv).
    pub(super) fn message(&self) -> Option<&'a [u8]> {
        match self.fec {
            FecInput::Oob(m) => Some(&m[OOB_CONV_LEN..]),
            _ => None,
        }
    }
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The conv and sn of the first KCP segment, if it is a plausible one: a
/// full header, a known command, a length that fits.
fn first_segment(kcp: &[u8]) -> Route {
    if kcp.len() < OVERHEAD as usize {
        return Route::Invalid(Error::Short);
    }
    let (cmd, len) = (kcp[4], word(kcp, 20) as usize);
    if !(CMD_PUSH..=CMD_WINS).contains(&cmd) || len > kcp.len() - OVERHEAD as usize {
        return Route::Invalid(Error::Kcp);
    }
    Route::Segment {
        conv: word(kcp, 0),
        sn: word(kcp, 12),
    }
}

/// kcp-go's input counters (InPkts, InBytes, InErrs, InCsumErrors,
/// KCPInErrors): one set of code for a connection's and a listener's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InCounters {
    /// InPkts: datagrams received.
    pub in_pkts: u64,
    /// InBytes: their bytes.
    pub in_bytes: u64,
    /// InErrs: too short, too long or malformed.
    pub in_errs: u64,
    /// InCsumErrors: failed the cipher's check.
    pub in_csum_errors: u64,
    /// KCPInErrors: refused by KCP, or of another conversation.
    pub kcp_in_errors: u64,
}

impl InCounters {
    /// Counts a received datagram of `len` bytes.
    pub fn datagram(&mut self, len: usize) {
        self.in_pkts += 1;
        self.in_bytes += len as u64;
    }

    /// Counts a rejected datagram under its kind and returns the error.
    pub fn count(&mut self, e: Error) -> Error {
        match e {
            Error::Checksum => self.in_csum_errors += 1,
            Error::Kcp => self.kcp_in_errors += 1,
            _ => self.in_errs += 1,
        }
        e
    }
}
