//! The user side: ikcp_send (fragmenting into the send queue) and
//! ikcp_recv / ikcp_peeksize (reassembling from the receive queue).

use super::log::mask;
use super::segment::{put_bytes, RcvSeg, SndSeg};
use super::{consts::*, Kcp, RecvError, Ring, Scalars, SendError};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

impl<A: Allocator + Clone, S: Scalars> Kcp<A, S> {
    /// Queues a message (or, in stream mode, bytes) for sending and returns
    /// the number of bytes queued. A message may span at most 127 segments;
    /// a larger one, or one whose memory cannot be allocated, queues nothing.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if data.len() > i32::MAX as usize {
            return Err(SendError::TooLarge);
        }
        self.enqueue(Some(data), data.len())
    }

    /// Queues `len` bytes: those of `src`, then zeros up to `len` (all zeros
    /// for `None`); `len` is at most `i32::MAX`. The MSS must lie in
    /// `1..=i32::MAX`, as it always does through the typed API (`set_mtu`);
    /// the C layer checks it first, since C code can write it. An allocation
    /// failure queues nothing at all (ikcp.c crashes there): a partly queued
    /// message would merge with the next one at the receiver.
    pub(crate) fn enqueue(&mut self, src: Option<&[u8]>, len: usize) -> Result<usize, SendError> {
        let queued = self.snd_queue.len();
        let tail = self.snd_queue.back().map(|s| (s.data.len(), s.frg));
        let n = self.send_inner(src, len as i32);
        if n < 0 {
            self.undo_send(queued, tail);
            return Err(SendError::TooLarge);
        }
        Ok(n as usize)
    }

    /// Takes back what a failed [`Kcp::enqueue`] queued: the segments after
    /// the first `queued`, and the stream-mode top-up of the tail segment.
    #[cold]
    fn undo_send(&mut self, queued: usize, tail: Option<(usize, u32)>) {
        while self.snd_queue.len() > queued {
            if let Some(seg) = self.snd_queue.pop_back() {
                self.recycle_payload(seg.data);
            }
        }
        if let (Some(seg), Some((len, frg))) = (self.snd_queue.back_mut(), tail) {
            seg.data.truncate(len);
            seg.frg = frg;
        }
    }

    /// ikcp_send's body for `0 <= len`: the bytes queued, or -2 (too many
    /// fragments, or out of memory; the caller undoes a partial queueing).
    fn send_inner(&mut self, data: Option<&[u8]>, len: i32) -> i32 {
        // In range whenever the caller keeps `enqueue`'s contract; clamped
        // so that no state can make this divide by zero.
        let mss = self.v.mss.clamp(1, i32::MAX as u32);
        let mut len = len;
        let mut src = data.map(|d| &d[..d.len().min(len as usize)]);
        let mut sent = 0i32;

        // Stream mode first tops up the segment at the tail of the queue.
        if self.v.tuning().stream != 0 {
            if let Some(old) = self.snd_queue.back_mut() {
                let old_len = old.data.len() as u32;
                if old_len < mss {
                    let extend = len.min((mss - old_len) as i32);
                    if old.data.try_reserve_exact(extend as usize).is_err() {
                        return -2;
                    }
                    let (head, zeros) = take_front(&mut src, extend as usize);
                    put_bytes(&mut old.data, head);
                    old.data.resize(old.data.len() + zeros, 0);
                    old.frg = 0;
                    len -= extend;
                    sent = extend;
                }
            }
            if len <= 0 {
                return sent;
            }
        }

        let count = if len as u32 <= mss {
            1
        } else {
            (len as u32).div_ceil(mss)
        };
        if count >= WND_RCV {
            return if self.v.tuning().stream != 0 && sent > 0 {
                sent
            } else {
                -2
            };
        }
        for i in 0..count {
            let size = len.min(mss as i32);
            let (head, zeros) = take_front(&mut src, size as usize);
            let Some(payload) = self.payloads.filled(head, zeros) else {
                return -2;
            };
            let frg = if self.v.tuning().stream == 0 { count - i - 1 } else { 0 };
            let seg = SndSeg {
                conv: 0,
                frg,
                wnd: 0,
                ts: 0,
                sn: 0,
                una: 0,
                resendts: 0,
                rto: 0,
                fastack: 0,
                xmit: 0,
                data: payload,
            };
            if self.snd_queue.push_back(seg).is_err() {
                return -2;
            }
            len -= size;
            sent += size;
        }
        sent
    }

    /// Takes the next message into `buf` and returns its length.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let capacity = buf.len();
        self.take(Some(buf), capacity, false)
    }

    /// Copies the next message into `buf` without consuming it.
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let capacity = buf.len();
        self.take(Some(buf), capacity, true)
    }

    /// Size of the next complete message.
    pub fn peek_size(&self) -> Result<usize, RecvError> {
        match self.peeksize() {
            n if n >= 0 => Ok(n as usize),
            _ => Err(RecvError::Empty),
        }
    }

    /// ikcp_peeksize's value, with its C `int` arithmetic: the size of the
    /// next message, -1 if none is complete; a message of more than
    /// `i32::MAX` bytes wraps, as in ikcp.c.
    pub(crate) fn peeksize(&self) -> i32 {
        let Some(first) = self.rcv_queue.front() else { return -1 };
        if first.frg == 0 {
            return first.data.len() as i32;
        }
        if (self.rcv_queue.len() as u32) < first.frg as u32 + 1 {
            return -1;
        }
        let mut length = 0i32;
        for seg in self.rcv_queue.iter() {
            length = length.wrapping_add(seg.data.len() as i32);
            if seg.frg == 0 {
                break;
            }
        }
        length
    }

    /// The size of the message a receive would take now. First retries
    /// moving segments to the receive queue if that ran out of memory
    /// (ikcp.c crashes there): they are acknowledged, so no later input
    /// would come to move them.
    #[inline]
    pub(crate) fn next_message(&mut self) -> Result<usize, RecvError> {
        if self.rcv_move_failed {
            self.rcv_move_failed = false;
            self.move_to_rcv_queue();
        }
        if self.rcv_queue.is_empty() {
            return Err(RecvError::Empty);
        }
        match self.peeksize() {
            n if n >= 0 => Ok(n as usize),
            _ => Err(RecvError::Incomplete),
        }
    }

    /// Receives (or with `peek`, copies) the next message into `buf` if it
    /// has at most `capacity` bytes; `buf` None copies nothing.
    pub(crate) fn take(&mut self, mut buf: Option<&mut [u8]>, capacity: usize, peek: bool) -> Result<usize, RecvError> {
        if self.next_message()? > capacity {
            return Err(RecvError::BufferTooSmall);
        }
        let recover = self.rcv_queue.len() as u32 >= self.v.rcv_wnd;

        let mut copied = 0usize;
        let mut index = 0usize;
        loop {
            let seg = if peek {
                self.rcv_queue.get(index).map(SegRef::Borrowed)
            } else {
                self.rcv_queue.pop_front().map(SegRef::Owned)
            };
            let Some(seg) = seg else { break };
            let (sn, frg, data) = seg.parts();
            let n = data.len();
            if let Some(dst) = buf.as_deref_mut().and_then(|b| b.get_mut(copied..copied + n)) {
                dst.copy_from_slice(data);
            }
            copied += n;
            if let SegRef::Owned(seg) = seg {
                self.rcv_queue_bytes -= seg.charge();
                self.recycle_payload(seg.data);
            }
            if self.can_log(mask::RECV) {
                self.logs.push(mask::RECV, format_args!("recv sn={sn}"));
            }
            index += 1;
            if frg == 0 {
                break;
            }
        }

        self.move_to_rcv_queue();

        if (self.rcv_queue.len() as u32) < self.v.rcv_wnd && recover {
            self.v.probe |= ASK_TELL;
        }
        Ok(copied)
    }

    /// Frees every received segment, delivered or not, as if never
    /// received (nothing is acknowledged or sent for it): for an owner that
    /// gives up on the connection and must not hold its data meanwhile.
    pub fn discard_received(&mut self) {
        self.rcv_buf = Ring::new_in(self.alloc.clone());
        self.rcv_queue = Ring::new_in(self.alloc.clone());
        self.rcv_buf_bytes = 0;
        self.rcv_queue_bytes = 0;
        self.rcv_move_failed = false;
    }

    /// Hands the buffer of a finished segment to the payload pool.
    #[inline(always)]
    pub(crate) fn recycle_payload(&mut self, data: Vec<u8, A>) {
        let window = self.v.snd_wnd.max(self.v.rcv_wnd);
        self.payloads.recycle(data, window);
    }

    /// Moves in-order segments from the receive buffer to the receive queue
    /// while the queue has room.
    pub(crate) fn move_to_rcv_queue(&mut self) {
        while let Some(seg) = self.rcv_buf.front() {
            if seg.sn != self.v.rcv_nxt || self.rcv_queue.len() as u32 >= self.v.rcv_wnd {
                break;
            }
            let Some(seg) = self.rcv_buf.pop_front() else { break };
            let charge = seg.charge();
            if let Err(lost) = self.rcv_queue.push_back(seg) {
                // Out of memory: keep the segment where it was (the slot it
                // left is free: no allocation), and retry on the next recv.
                let _ = self.rcv_buf.insert(0, lost);
                self.rcv_move_failed = true;
                break;
            }
            self.rcv_buf_bytes -= charge;
            self.rcv_queue_bytes += charge;
            self.v.rcv_nxt = self.v.rcv_nxt.wrapping_add(1);
        }
    }
}

/// A received segment either still queued (peek) or already removed (recv).
enum SegRef<'a, A: Allocator> {
    Borrowed(&'a RcvSeg<A>),
    Owned(RcvSeg<A>),
}

impl<A: Allocator> SegRef<'_, A> {
    fn parts(&self) -> (u32, u8, &[u8]) {
        match self {
            SegRef::Borrowed(s) => (s.sn, s.frg, &s.data),
            SegRef::Owned(s) => (s.sn, s.frg, &s.data),
        }
    }
}

/// Takes up to `n` bytes from the front of `src`: returns them and how many
/// zero bytes must follow to make `n` (all of them for a NULL source).
fn take_front<'a>(src: &mut Option<&'a [u8]>, n: usize) -> (&'a [u8], usize) {
    let Some(s) = src else { return (&[], n) };
    let (head, rest) = s.split_at(n.min(s.len()));
    *src = Some(rest);
    (head, n - head.len())
}
