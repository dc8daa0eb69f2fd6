//! The wire format of FEC datagrams: header fields and stateless classification.

use super::*;

pub(super) fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(super) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Bytes of the conv in front of an out-of-band payload.
pub const OOB_CONV_LEN: usize = 4;
/// The seqid field of every out-of-band datagram: outside every FEC group.
pub const OOB_SEQID: u32 = u32::MAX;

/// Frames an out-of-band message in place: `datagram` holds `offset`
/// bytes (the crypto header), then [`FEC_DATA_OVERHEAD`] bytes for the FEC
/// header, then the conv and the payload; this writes the FEC header and
/// the size field. The caller checks the length (at most 65,535 bytes from
/// the size field on, which every MTU satisfies).
pub fn frame_oob(datagram: &mut [u8], offset: usize) {
    let size = datagram.len() - offset - FEC_HEADER_LEN;
    write_header(&mut datagram[offset..], OOB_SEQID, TYPE_OOB);
    let size = u16::try_from(size).unwrap_or(u16::MAX);
    datagram[offset + FEC_HEADER_LEN..offset + FEC_DATA_OVERHEAD].copy_from_slice(&size.to_le_bytes());
}

pub(super) fn write_header(header: &mut [u8], seqid: u32, kind: u16) {
    header[..4].copy_from_slice(&seqid.to_le_bytes());
    header[4..6].copy_from_slice(&kind.to_le_bytes());
}

/// What [`FecDecoder::decode`] made of one datagram (crypto header removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FecInput<'a> {
    /// A data shard: feed these KCP bytes to KCP as regular input (RTT sample and
    /// remote window taken from it). As kcp-go 5.6.1 does, this is everything after
    /// the 8-byte FEC header, whatever the size field says; it is returned for
    /// every data shard, duplicates and shards the decoder does not keep included.
    Data(&'a [u8]),
    /// A parity shard (kept for reconstruction, nothing for KCP).
    Parity,
    /// Type [`TYPE_OOB`]: newer kcp-go's out-of-band (unreliable) message,
    /// `[seqid 0xFFFFFFFF][type][size][conv][payload]`, with a size field
    /// that matches its length as for a data shard: these are the bytes
    /// after the size field (the conv, then the payload; at least 4). Never
    /// KCP's, never kept for reconstruction.
    Oob(&'a [u8]),
    /// FEC type but shorter than the 8 bytes every FEC datagram carries (kcp-go
    /// counts this as InErrs and drops it).
    Malformed,
    /// A data shard whose size field disagrees with its length (truncated, or
    /// with bytes appended), or a parity shard shorter than another shard of
    /// its group. Never kept for reconstruction, never for KCP: zero-padding
    /// it would rebuild a lost sibling with wrong bytes that pass KCP's
    /// checks. kcp-go 5.6.1 hands such a data shard to KCP and keeps it.
    Inconsistent,
    /// Not an FEC datagram: shorter than 6 bytes or of another type. kcp-go hands
    /// such a datagram to KCP as it is; that is the caller's choice.
    NotFec,
}

/// What a datagram (crypto header removed) is, without any decoder state: what
/// [`FecDecoder::decode`] returns for it, minus reconstruction. A listener can use
/// it to read the conv of a new peer's first data datagram (the first 4 KCP
/// bytes) before it has a decoder for that peer.
pub fn classify(datagram: &[u8]) -> FecInput<'_> {
    if datagram.len() < FEC_HEADER_LEN {
        return FecInput::NotFec;
    }
    let kind = read_u16(datagram, 4);
    if !matches!(kind, TYPE_DATA | TYPE_PARITY | TYPE_OOB) {
        return FecInput::NotFec;
    }
    let sized = kind != TYPE_PARITY;
    if datagram.len() < FEC_DATA_OVERHEAD + if kind == TYPE_OOB { OOB_CONV_LEN } else { 0 } {
        FecInput::Malformed
    } else if sized && usize::from(read_u16(datagram, FEC_HEADER_LEN)) != datagram.len() - FEC_HEADER_LEN {
        FecInput::Inconsistent
    } else if kind == TYPE_DATA {
        FecInput::Data(&datagram[FEC_DATA_OVERHEAD..])
    } else if kind == TYPE_OOB {
        FecInput::Oob(&datagram[FEC_DATA_OVERHEAD..])
    } else {
        FecInput::Parity
    }
}
