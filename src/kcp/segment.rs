//! Segments as the queues hold them, and the 24-byte wire header.
//!
//! Wire header, always little-endian:
//! `conv u32 | cmd u8 | frg u8 | wnd u16 | ts u32 | sn u32 | una u32 | len u32`.

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// Bytes of the KCP segment header.
pub const OVERHEAD: u32 = 24;

/// Appends `src` to `dst` as one memset + memcpy. (allocator-api2's
/// `extend_from_slice` pushes byte by byte, ~10 instructions per byte.)
/// The caller has reserved the capacity.
#[inline]
pub(crate) fn put_bytes<A: Allocator>(dst: &mut Vec<u8, A>, src: &[u8]) {
    let at = dst.len();
    dst.resize(at + src.len(), 0);
    dst[at..].copy_from_slice(src);
}

/// A segment waiting in the send queue or in flight in the send buffer.
pub(crate) struct SndSeg<A: Allocator> {
    pub conv: u32,
    pub frg: u32,
    pub wnd: u32,
    pub ts: u32,
    pub sn: u32,
    pub una: u32,
    pub resendts: u32,
    pub rto: u32,
    pub fastack: u32,
    pub xmit: u32,
    pub data: Vec<u8, A>,
}

/// A received data segment (receive buffer or receive queue).
pub(crate) struct RcvSeg<A: Allocator> {
    pub sn: u32,
    pub frg: u8,
    pub data: Vec<u8, A>,
}

impl<A: Allocator> RcvSeg<A> {
    /// What a received segment of `len` payload bytes counts for in the
    /// receive-side byte counts ([`crate::kcp::Kcp::out_of_order_bytes`]):
    /// its payload plus its entry in a queue, so that a flood of empty
    /// segments is not free either.
    #[inline]
    pub(crate) fn charge_for(len: usize) -> u32 {
        (len + core::mem::size_of::<Self>()).min(u32::MAX as usize) as u32
    }

    /// [`RcvSeg::charge_for`] this segment.
    #[inline]
    pub(crate) fn charge(&self) -> u32 {
        Self::charge_for(self.data.len())
    }
}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub conv: u32,
    pub cmd: u8,
    pub frg: u8,
    pub wnd: u16,
    pub ts: u32,
    pub sn: u32,
    pub una: u32,
    pub len: u32,
}

impl Header {
    /// Decodes the header at the start of `b`, if `b` holds at least 24 bytes.
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Header> {
        let h: &[u8; 24] = b.get(..24)?.try_into().ok()?;
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        Some(Header {
            conv: u32_at(0),
            cmd: h[4],
            frg: h[5],
            wnd: u16::from_le_bytes([h[6], h[7]]),
            ts: u32_at(8),
            sn: u32_at(12),
            una: u32_at(16),
            len: u32_at(20),
        })
    }

    /// The encoded header.
    #[inline]
    pub fn to_bytes(self) -> [u8; 24] {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&self.conv.to_le_bytes());
        h[4] = self.cmd;
        h[5] = self.frg;
        h[6..8].copy_from_slice(&self.wnd.to_le_bytes());
        h[8..12].copy_from_slice(&self.ts.to_le_bytes());
        h[12..16].copy_from_slice(&self.sn.to_le_bytes());
        h[16..20].copy_from_slice(&self.una.to_le_bytes());
        h[20..24].copy_from_slice(&self.len.to_le_bytes());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn header_round_trip_is_little_endian() {
        let h = Header {
            conv: 0x11223344,
            cmd: 81,
            frg: 3,
            wnd: 0xabcd,
            ts: 5,
            sn: 6,
            una: 7,
            len: 8,
        };
        let v = h.to_bytes();
        assert_eq!(&v[..8], &[0x44, 0x33, 0x22, 0x11, 81, 3, 0xcd, 0xab]);
        assert_eq!(Header::decode(&v), Some(h));
        assert_eq!(Header::decode(&v[..23]), None);
    }
}
