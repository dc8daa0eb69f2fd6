//! The user side: ikcp_send (fragmenting into the send queue) and
//! ikcp_recv / ikcp_peeksize (reassembling from the receive queue).

use super::log::mask;
use super::segment::{put_bytes, RcvSeg, SndSeg};
use super::{consts::*, Kcp, RecvError, SendError};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

impl<A: Allocator + Clone> Kcp<A> {
    /// Queues a message (or, in stream mode, bytes) for sending and returns
    /// the number of bytes queued. A message may span at most 127 segments.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        let len = i32::try_from(data.len()).map_err(|_| SendError::TooLarge)?;
        match self.send_c(Some(data), len) {
            n if n >= 0 => Ok(n as usize),
            -3 => Err(SendError::NoMss),
            _ => Err(SendError::TooLarge),
        }
    }

    /// ikcp_send with C semantics: `data` None is a NULL buffer (the
    /// segments are zero-filled), returns bytes queued, -1 for `len < 0`,
    /// -2 for more than 127 fragments or allocation failure, -3 if the MSS
    /// is 0 (ikcp.c would divide by zero there). An allocation failure
    /// queues nothing at all (ikcp.c crashes there): a partly queued message
    /// would merge with the next one at the receiver.
    pub(crate) fn send_c(&mut self, data: Option<&[u8]>, len: i32) -> i32 {
        let queued = self.snd_queue.len();
        let tail = self.snd_queue.back().map(|s| (s.data.len(), s.frg));
        let n = self.send_inner(data, len);
        if n == -2 {
            self.undo_send(queued, tail);
        }
        n
    }

    /// Takes back what a failed [`Kcp::send_c`] queued: the segments after
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

    fn send_inner(&mut self, data: Option<&[u8]>, len: i32) -> i32 {
        if len < 0 {
            return -1;
        }
        let mss = self.v.mss;
        if mss == 0 || mss > i32::MAX as u32 {
            return -3;
        }
        let mut len = len;
        let mut src = data.map(|d| &d[..d.len().min(len as usize)]);
        let mut sent = 0i32;

        // Stream mode first tops up the segment at the tail of the queue.
        if self.v.stream != 0 {
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
            return if self.v.stream != 0 && sent > 0 { sent } else { -2 };
        }
        for i in 0..count {
            let size = len.min(mss as i32);
            let (head, zeros) = take_front(&mut src, size as usize);
            let Some(payload) = self.payloads.filled(head, zeros) else {
                return -2;
            };
            let frg = if self.v.stream == 0 { count - i - 1 } else { 0 };
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
        let len = buf.len().min(i32::MAX as usize) as i32;
        recv_result(self.recv_inner(Some(buf), len, false))
    }

    /// Copies the next message into `buf` without consuming it.
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        let len = buf.len().min(i32::MAX as usize) as i32;
        recv_result(self.recv_inner(Some(buf), len, true))
    }

    /// Size of the next complete message.
    pub fn peek_size(&self) -> Result<usize, RecvError> {
        match self.peeksize_c() {
            n if n >= 0 => Ok(n as usize),
            _ => Err(RecvError::Empty),
        }
    }

    /// ikcp_peeksize: size of the next message, -1 if none is complete.
    pub(crate) fn peeksize_c(&self) -> i32 {
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

    /// ikcp_recv with C semantics: `len < 0` peeks; `buf` None is a NULL
    /// buffer (nothing copied). Returns the size, -1 empty, -2 incomplete,
    /// -3 buffer too small.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn recv_c(&mut self, buf: Option<&mut [u8]>, len: i32) -> i32 {
        // `-len` of INT_MIN stays negative in C as here: "buffer too small".
        self.recv_inner(buf, len.wrapping_abs(), len < 0)
    }

    fn recv_inner(&mut self, mut buf: Option<&mut [u8]>, len: i32, peek: bool) -> i32 {
        if self.rcv_move_failed {
            // Moving segments to the queue failed for lack of memory (ikcp.c
            // crashes there). They are acknowledged, so no later input may
            // come to move them: retry now.
            self.rcv_move_failed = false;
            self.move_to_rcv_queue();
        }
        if self.rcv_queue.is_empty() {
            return -1;
        }
        let peeksize = self.peeksize_c();
        if peeksize < 0 {
            return -2;
        }
        if peeksize > len {
            return -3;
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
        copied as i32
    }

    /// Hands the buffer of a finished segment to the payload pool.
    #[inline]
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
            if let Err(lost) = self.rcv_queue.push_back(seg) {
                // Out of memory: keep the segment where it was (the slot it
                // left is free: no allocation), and retry on the next recv.
                let _ = self.rcv_buf.insert(0, lost);
                self.rcv_move_failed = true;
                break;
            }
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

fn recv_result(code: i32) -> Result<usize, RecvError> {
    match code {
        n if n >= 0 => Ok(n as usize),
        -1 => Err(RecvError::Empty),
        -2 => Err(RecvError::Incomplete),
        _ => Err(RecvError::BufferTooSmall),
    }
}
