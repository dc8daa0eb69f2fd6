//! The receive queue of a connection's unreliable (out-of-band) messages:
//! bounded, drop-oldest, its bytes back to back in one ring so that a
//! message costs no allocation once the ring has grown.

use crate::error::Error;
use std::collections::VecDeque;

/// Most messages a connection holds for its application.
pub const QUEUE_MESSAGES: usize = 64;
/// Most payload bytes it holds (64 KiB: a few dozen full-size messages).
pub const QUEUE_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(super) struct MessageQueue {
    bytes: VecDeque<u8>,
    lens: VecDeque<u16>,
}

impl MessageQueue {
    /// Queues a copy of `message` (at most 65,535 bytes: every message
    /// fits one datagram), dropping the oldest while it would not fit.
    /// Returns how many messages were dropped (the new one included if it
    /// is too long).
    pub(super) fn push(&mut self, message: &[u8]) -> u64 {
        let Ok(len) = u16::try_from(message.len()) else {
            return 1;
        };
        let mut dropped = 0;
        while !self.lens.is_empty()
            && (self.lens.len() >= QUEUE_MESSAGES || self.bytes.len() + message.len() > QUEUE_BYTES)
        {
            self.pop_front();
            dropped += 1;
        }
        self.bytes.extend(message);
        self.lens.push_back(len);
        dropped
    }

    fn pop_front(&mut self) {
        if let Some(len) = self.lens.pop_front() {
            self.bytes.drain(..usize::from(len));
        }
    }

    /// Copies the oldest message into `buf` and removes it: its length,
    /// [`Error::Again`] when none waits, [`Error::BufferTooSmall`] (the
    /// message stays) when `buf` cannot hold it.
    pub(super) fn pop(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = usize::from(*self.lens.front().ok_or(Error::Again)?);
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (a, b) = self.bytes.as_slices();
        let first = a.len().min(len);
        out[..first].copy_from_slice(&a[..first]);
        out[first..].copy_from_slice(&b[..len - first]);
        self.pop_front();
        Ok(len)
    }

    /// Length of the oldest message, if any.
    pub(super) fn peek(&self) -> Option<usize> {
        self.lens.front().map(|&l| usize::from(l))
    }

    pub(super) fn len(&self) -> usize {
        self.lens.len()
    }

    /// Payload bytes queued.
    pub(super) fn queued_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.lens.capacity() * 2
    }

    /// Gives the ring's memory back when nothing is queued.
    pub(super) fn shed(&mut self) {
        if self.lens.is_empty() {
            self.bytes = VecDeque::new();
            self.lens = VecDeque::new();
        }
    }

    /// Drops every queued message (not counted as dropped).
    pub(super) fn clear(&mut self) {
        self.bytes = VecDeque::new();
        self.lens = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_oldest_and_keeps_order() {
        let mut q = MessageQueue::default();
        let dropped: u64 = (0..QUEUE_MESSAGES as u8 + 3).map(|i| q.push(&[i; 5])).sum();
        assert_eq!((q.len(), dropped), (QUEUE_MESSAGES, 3));
        let mut buf = [0u8; 8];
        assert_eq!(q.pop(&mut buf[..4]), Err(Error::BufferTooSmall));
        assert_eq!(q.pop(&mut buf), Ok(5));
        assert_eq!(buf[..5], [3; 5], "the three oldest were dropped");
        // Bytes bound too: one large message pushes out as many as needed.
        assert!(q.push(&vec![9; QUEUE_BYTES - 10]) > 0);
        assert!(q.queued_bytes() <= QUEUE_BYTES, "{}", q.queued_bytes());
        let mut big = vec![0u8; QUEUE_BYTES];
        let mut last = 0;
        while let Ok(n) = q.pop(&mut big) {
            last = n;
        }
        assert_eq!(last, QUEUE_BYTES - 10);
        assert_eq!(q.pop(&mut big), Err(Error::Again));
        // Empty messages are messages.
        assert_eq!(q.push(&[]), 0);
        assert_eq!((q.peek(), q.pop(&mut buf)), (Some(0), Ok(0)));
        q.shed();
        assert_eq!(q.heap_bytes(), 0);
    }

    #[test]
    fn no_allocation_once_grown() {
        let mut q = MessageQueue::default();
        let mut buf = [0u8; 1400];
        for _ in 0..QUEUE_MESSAGES * 2 {
            let _ = q.push(&[1; 1000]);
        }
        let grown = q.heap_bytes();
        for round in 0..1000 {
            let _ = q.push(&[round as u8; 1000]);
            if round % 3 == 0 {
                let _ = q.pop(&mut buf);
            }
        }
        assert_eq!(q.heap_bytes(), grown, "the ring reuses its memory");
    }
}
