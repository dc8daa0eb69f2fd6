//! Protocol log lines, formatted exactly as ikcp.c formats them.
//!
//! The core never calls out while it mutates its state: log lines are queued
//! here and handed to the user once the operation returns (the C layer then
//! calls `writelog` with each line, in order, before the next output).

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;
use core::fmt;

/// Log masks (the values of ikcp.h's `IKCP_LOG_*`).
pub mod mask {
    /// A datagram handed to `output`.
    pub const OUTPUT: u32 = 1;
    /// A datagram given to `input`.
    pub const INPUT: u32 = 2;
    /// A message given to `send`.
    pub const SEND: u32 = 4;
    /// A message returned by `recv`.
    pub const RECV: u32 = 8;
    /// A data segment received.
    pub const IN_DATA: u32 = 16;
    /// An ACK received.
    pub const IN_ACK: u32 = 32;
    /// A window probe received.
    pub const IN_PROBE: u32 = 64;
    /// A window answer received.
    pub const IN_WINS: u32 = 128;
    /// A data segment sent.
    pub const OUT_DATA: u32 = 256;
    /// An ACK sent.
    pub const OUT_ACK: u32 = 512;
    /// A window probe sent.
    pub const OUT_PROBE: u32 = 1024;
    /// A window answer sent.
    pub const OUT_WINS: u32 = 2048;
}

/// Queued log lines: `[mask: u32 LE][len: u32 LE][text][NUL]` records.
pub struct LogLines<A: Allocator> {
    bytes: Vec<u8, A>,
}

impl<A: Allocator> LogLines<A> {
    pub(crate) fn new_in(alloc: A) -> Self {
        LogLines {
            bytes: Vec::new_in(alloc),
        }
    }

    /// No line is queued.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Appends one line. Lines that cannot be stored (allocation failure)
    /// are dropped: logging never fails an operation.
    pub(crate) fn push(&mut self, mask: u32, args: fmt::Arguments<'_>) {
        let start = self.bytes.len();
        if self.bytes.try_reserve(64).is_err() {
            return;
        }
        self.bytes.extend_from_slice(&mask.to_le_bytes());
        self.bytes.extend_from_slice(&[0; 4]);
        let mut w = Writer {
            out: &mut self.bytes,
            ok: true,
        };
        let ok = fmt::write(&mut w, args).is_ok() && w.ok && self.bytes.try_reserve(1).is_ok();
        if !ok {
            self.bytes.truncate(start);
            return;
        }
        let text_len = (self.bytes.len() - start - 8) as u32;
        self.bytes.push(0);
        self.bytes[start + 4..start + 8].copy_from_slice(&text_len.to_le_bytes());
    }

    /// The queued lines in order: `(mask, text followed by a NUL byte)`.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        let mut rest: &[u8] = &self.bytes;
        core::iter::from_fn(move || {
            let head: &[u8; 8] = rest.get(..8)?.try_into().ok()?;
            let mask = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            let line = rest.get(8..8 + len + 1)?;
            rest = rest.get(8 + len + 1..)?;
            Some((mask, line))
        })
    }
}

struct Writer<'a, A: Allocator> {
    out: &'a mut Vec<u8, A>,
    ok: bool,
}

impl<A: Allocator> fmt::Write for Writer<'_, A> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.try_reserve(s.len()).is_err() {
            self.ok = false;
            return Err(fmt::Error);
        }
        super::segment::put_bytes(self.out, s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    #[test]
    fn lines_come_back_in_order_nul_terminated() {
        let mut l = LogLines::new_in(Global);
        assert!(l.is_empty());
        l.push(mask::INPUT, format_args!("[RI] {} bytes", 24));
        l.push(mask::RECV, format_args!("recv sn={}", 7u32));
        let v: std::vec::Vec<_> = l.iter().collect();
        assert_eq!(v, [(2, &b"[RI] 24 bytes\0"[..]), (8, &b"recv sn=7\0"[..])]);
        l.clear();
        assert_eq!(l.iter().count(), 0);
    }
}
