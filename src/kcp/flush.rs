//! ikcp_flush as a resumable state machine.
//!
//! ikcp.c calls `output` from inside its flush loop, and C callers may call
//! back into the same object from there. To never hold a borrow across a
//! user callback, [`Kcp::flush_next`] stops each time a datagram is ready and
//! the caller resumes it after delivering the datagram. The emission order
//! and every state change are those of ikcp.c: ACKs, window probe (WASK),
//! window tell (WINS), new data moved from the send queue, then the send
//! buffer scan (first send / timeout / fast retransmit), then the
//! congestion-window epilogue.

use super::flushbuf::FlushBuf;
use super::log::mask;
use super::segment::{Header, OVERHEAD};
use super::{consts::*, timediff, Kcp, Scalars};
use allocator_api2::alloc::Allocator;

/// Why a segment goes out in a flush.
#[derive(Clone, Copy)]
enum Send {
    First,
    Timeout,
    Fast,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Stage {
    #[default]
    Idle,
    Acks,
    Probe,
    AskSend,
    AskTell,
    MoveQueue,
    Segments,
    Remainder,
}

impl<A: Allocator + Clone, S: Scalars> Kcp<A, S> {
    /// Emits everything due now (ACKs, probes, new and retransmitted data) to
    /// `output`. Does nothing before the first [`Kcp::update`].
    pub fn flush(&mut self, mut output: impl FnMut(&[u8])) {
        let mut buf = self.take_flush_buffer();
        self.begin_flush();
        while self.flush_next(&mut buf) {
            if !buf.is_empty() {
                output(buf.as_slice());
            }
        }
        self.restore_flush_buffer(buf);
    }

    /// Lends the flush buffer to the caller for the duration of a flush.
    pub(crate) fn take_flush_buffer(&mut self) -> FlushBuf<A> {
        core::mem::replace(&mut self.buffer, FlushBuf::new_in(self.alloc.clone()))
    }

    /// Returns the lent flush buffer (unless it grew past twice the MTU).
    pub(crate) fn restore_flush_buffer(&mut self, mut buf: FlushBuf<A>) {
        buf.clear();
        if self.buffer.capacity() == 0 && buf.capacity() <= 2 * self.v.mtu as usize {
            self.buffer = buf;
        }
    }

    /// Frees what only an active connection needs (flush buffer, and pooled
    /// payloads and the storage of the empty segment queues once no segment
    /// came or went for a whole interval): a quiet connection holds no
    /// memory beyond its state and the ACK list (whose address C sees as
    /// `IKCPCB.acklist`). A flush that finds the connection quiet does this
    /// itself unless [`Kcp::set_retain_idle_memory`] said otherwise.
    #[inline]
    pub fn shed_idle_memory(&mut self) {
        if self.buffer.capacity() != 0 {
            self.buffer = FlushBuf::new_in(self.alloc.clone());
        }
        if self.payloads.shed() {
            self.release_empty_queues();
        }
    }

    /// The storage of the empty segment queues (they grow again when used).
    fn release_empty_queues(&mut self) {
        self.snd_queue.release_if_empty();
        self.snd_buf.release_if_empty();
        self.rcv_buf.release_if_empty();
        self.rcv_queue.release_if_empty();
    }

    /// Frees the storage of the empty segment queues and, with no ACK
    /// pending, of the ACK list, besides what [`Kcp::shed_idle_memory`]
    /// frees: for a Rust owner (a session layer) of a connection gone
    /// quiet. The C ABI does not call it: its `acklist` field keeps
    /// pointing at the list's memory, as ikcp.c's does.
    pub fn release_idle_queues(&mut self) {
        self.shed_idle_memory();
        self.payloads.clear();
        self.release_empty_queues();
        if self.ackcount == 0 && self.acklist.capacity() != 0 {
            self.acklist = allocator_api2::vec::Vec::new_in(self.alloc.clone());
        }
    }

    /// Whether a quiet flush keeps the flush buffer and the pooled payloads
    /// (for an owner that frees them itself after a longer quiet spell, so
    /// that a connection pausing between messages does not allocate them
    /// again for every message). Off by default, as in ikcp.c.
    pub fn set_retain_idle_memory(&mut self, on: bool) {
        self.retain_idle = on;
    }

    /// How a segment's retransmission timeout grows at each timeout. Off
    /// (ikcp.c's rule, the default and always for `ikcp_*`): nodelay 0
    /// doubles it, nodelay 1 multiplies it by 1.5, nodelay 2 adds half the
    /// RTO; uncapped, so the 20th retransmission of a default connection
    /// comes days after the first. On (kcp-go's rule): each timeout adds
    /// the current RTO (nodelay 0) or half of it, and the timeout never
    /// exceeds `RTO_MAX` (60 s).
    pub fn set_linear_backoff(&mut self, on: bool) {
        self.linear_backoff = on;
    }

    /// Starts a flush; [`Kcp::flush_next`] then produces its datagrams.
    pub(crate) fn begin_flush(&mut self) {
        if self.v.updated == 0 {
            self.cursor.stage = Stage::Idle;
            return;
        }
        if self.quiet_flush() {
            self.cursor.stage = Stage::Idle;
            return;
        }
        let v = &*self.v;
        let mut wnd = v.rcv_wnd.saturating_sub(self.rcv_queue.len() as u32);
        if self.ooo_cap != u32::MAX {
            // kcpx only (ikcp_* never sets a cap): the window advertised
            // covers no more than the cap admits, so a sender that honours
            // it sends nothing the cap would refuse.
            wnd = wnd.min(self.ooo_cap_window());
        }
        self.flush_count = self.flush_count.wrapping_add(1);
        self.cursor = super::FlushCursor {
            flush_count: self.flush_count,
            stage: Stage::Acks,
            wnd,
            conv: v.conv,
            una: v.rcv_nxt,
            current: v.current,
            ack_count: self.ackcount,
            ..Default::default()
        };
    }

    /// The flush of a quiet connection (see [`Kcp::is_quiet`]) with no
    /// window probe pending and the peer's window open: it sends nothing,
    /// resets the probe timer, opens a closed congestion window and sheds
    /// the idle memory (unless retained). Returns false, changing nothing,
    /// when a real flush is needed. The C layer's idle `ikcp_update` calls
    /// it directly.
    #[inline]
    pub(crate) fn quiet_flush(&mut self) -> bool {
        if !self.is_quiet() || self.v.probe != 0 || self.v.rmt_wnd == 0 {
            return false;
        }
        let v = &mut *self.v;
        (v.ts_probe, v.probe_wait) = (0, 0);
        if v.cwnd < 1 {
            (v.cwnd, v.incr) = (1, v.mss);
        }
        if !self.retain_idle {
            self.shed_idle_memory();
        }
        true
    }

    /// No ACK to send and nothing queued or in flight.
    #[inline]
    pub(crate) fn is_quiet(&self) -> bool {
        self.ackcount == 0 && self.snd_queue.is_empty() && self.snd_buf.is_empty()
    }

    /// The state of the flush in progress, kept by a flush that starts
    /// inside it (C code calling ikcp_flush or ikcp_update from `output`)
    /// and given back with [`Kcp::resume_flush`] when that one is done.
    /// ikcp.c keeps a flush's state in locals, so a nested flush runs
    /// completely and the outer one continues where it was.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn suspend_flush(&self) -> super::FlushCursor {
        self.cursor
    }

    /// Continues the flush suspended by [`Kcp::suspend_flush`].
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn resume_flush(&mut self, cursor: super::FlushCursor) {
        let nested = self.flush_count != cursor.flush_count;
        self.cursor = cursor;
        self.cursor.nested |= nested;
    }

    /// Whether a flush begun by [`Kcp::begin_flush`] has datagrams to produce.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn flush_in_progress(&self) -> bool {
        self.cursor.stage != Stage::Idle
    }

    /// Advances the flush started by [`Kcp::begin_flush`]. Returns true when
    /// `buf` holds a datagram to emit (possibly empty: ikcp.c logs those but
    /// does not send them), false once the flush is complete.
    pub(crate) fn flush_next(&mut self, buf: &mut FlushBuf<A>) -> bool {
        if self.cursor.emitted {
            buf.clear();
            self.cursor.emitted = false;
        }
        loop {
            match self.cursor.stage {
                Stage::Idle => return false,
                Stage::Acks => {
                    while self.cursor.next_ack < self.cursor.ack_count {
                        let Some(&[sn, ts]) = self.acklist.get(self.cursor.next_ack) else {
                            break;
                        };
                        if self.must_emit(buf, OVERHEAD) {
                            return true;
                        }
                        // ikcp.c builds every control segment from one template
                        // that keeps the last ACK's sn/ts: WASK/WINS carry them.
                        (self.cursor.last_sn, self.cursor.last_ts) = (sn, ts);
                        self.encode_ctrl(buf, CMD_ACK);
                        self.cursor.next_ack += 1;
                    }
                    self.ackcount = 0;
                    self.cursor.stage = if self.cursor.acks_only {
                        Stage::Remainder
                    } else {
                        Stage::Probe
                    };
                }
                Stage::Probe => {
                    self.update_probe();
                    self.cursor.stage = Stage::AskSend;
                }
                Stage::AskSend => {
                    if self.v.probe & ASK_SEND != 0 {
                        if self.must_emit(buf, OVERHEAD) {
                            return true;
                        }
                        self.encode_ctrl(buf, CMD_WASK);
                    }
                    self.cursor.stage = Stage::AskTell;
                }
                Stage::AskTell => {
                    if self.v.probe & ASK_TELL != 0 {
                        if self.must_emit(buf, OVERHEAD) {
                            return true;
                        }
                        self.encode_ctrl(buf, CMD_WINS);
                    }
                    self.v.probe = 0;
                    self.cursor.stage = Stage::MoveQueue;
                }
                Stage::MoveQueue => {
                    self.move_queue_to_buf();
                    self.cursor.stage = Stage::Segments;
                }
                Stage::Segments => {
                    if self.flush_segments(buf) {
                        return true;
                    }
                    self.cursor.stage = Stage::Remainder;
                }
                Stage::Remainder => {
                    self.cursor.stage = Stage::Idle;
                    if !self.cursor.acks_only {
                        self.adjust_cwnd();
                    }
                    if !buf.is_empty() {
                        // The epilogue above runs after this output in ikcp.c;
                        // nothing observable depends on the order.
                        self.log_output(buf.len());
                        self.cursor.emitted = true;
                        return true;
                    }
                    return false;
                }
            }
        }
    }

    /// True if `need` more bytes would overflow the MTU: the buffer is then
    /// emitted first. After an emit the next check is skipped so that a
    /// segment larger than the MTU is still written (into an empty buffer).
    #[inline]
    fn must_emit(&mut self, buf: &FlushBuf<A>, need: u32) -> bool {
        if self.cursor.skip_check {
            self.cursor.skip_check = false;
            return false;
        }
        let size = buf.len() as i32;
        if size.wrapping_add(need as i32) > self.v.mtu as i32 {
            self.log_output(buf.len());
            self.cursor.skip_check = true;
            self.cursor.emitted = true;
            return true;
        }
        false
    }

    fn log_output(&mut self, size: usize) {
        if self.can_log(mask::OUTPUT) {
            self.logs.push(mask::OUTPUT, format_args!("[RO] {} bytes", size));
        }
    }

    /// Appends an ACK / WASK / WINS segment built from the flush template.
    fn encode_ctrl(&mut self, buf: &mut FlushBuf<A>, cmd: u8) {
        if !buf.reserve(OVERHEAD as usize, self.v.mtu as usize) {
            return;
        }
        // ikcp.c fills its control-segment template when the flush starts: a
        // conv written from inside `output` applies to the next flush.
        let c = &self.cursor;
        let (conv, wnd, ts, sn, una) = (c.conv, c.wnd as u16, c.last_ts, c.last_sn, c.una);
        buf.put(
            &Header {
                conv,
                cmd,
                frg: 0,
                wnd,
                ts,
                sn,
                una,
                len: 0,
            }
            .to_bytes(),
        );
    }

    /// Window probing: when the peer advertised a zero window, ask it for
    /// its window after 7 s, backing off up to 120 s.
    fn update_probe(&mut self) {
        let v = &mut *self.v;
        if v.rmt_wnd != 0 {
            v.ts_probe = 0;
            v.probe_wait = 0;
            return;
        }
        if v.probe_wait == 0 {
            v.probe_wait = PROBE_INIT;
            v.ts_probe = v.current.wrapping_add(v.probe_wait);
        } else if timediff(v.current, v.ts_probe) >= 0 {
            if v.probe_wait < PROBE_INIT {
                v.probe_wait = PROBE_INIT;
            }
            v.probe_wait = v.probe_wait.wrapping_add(v.probe_wait / 2);
            if v.probe_wait > PROBE_LIMIT {
                v.probe_wait = PROBE_LIMIT;
            }
            v.ts_probe = v.current.wrapping_add(v.probe_wait);
            v.probe |= ASK_SEND;
        }
    }

    /// Moves segments from the send queue into flight as the window allows,
    /// and fixes the parameters of the send-buffer scan.
    fn move_queue_to_buf(&mut self) {
        let v = *self.v;
        let t = *self.v.tuning();
        let mut cwnd = v.snd_wnd.min(v.rmt_wnd);
        if t.nocwnd == 0 {
            cwnd = cwnd.min(v.cwnd);
        }
        let current = self.cursor.current;
        while timediff(self.v.snd_nxt, self.v.snd_una.wrapping_add(cwnd)) < 0 {
            let Some(mut seg) = self.snd_queue.pop_front() else {
                break;
            };
            seg.conv = v.conv;
            seg.wnd = self.cursor.wnd;
            seg.ts = current;
            seg.sn = self.v.snd_nxt;
            seg.una = v.rcv_nxt;
            seg.resendts = current;
            seg.rto = v.rx_rto as u32;
            seg.fastack = 0;
            seg.xmit = 0;
            match self.snd_buf.push_back(Some(seg)) {
                Ok(()) => {
                    self.nsnd_buf += 1;
                    self.v.snd_nxt = self.v.snd_nxt.wrapping_add(1);
                }
                Err(seg) => {
                    // Out of memory: leave the segment queued for later.
                    if let Some(seg) = seg {
                        let _ = self.snd_queue.insert(0, seg);
                    }
                    break;
                }
            }
        }
        let c = &mut self.cursor;
        c.cwnd = cwnd;
        c.resent = if t.fastresend > 0 {
            t.fastresend as u32
        } else {
            u32::MAX
        };
        c.rtomin = if v.nodelay == 0 { (v.rx_rto >> 3) as u32 } else { 0 };
        c.next_sn = self.v.snd_nxt.wrapping_sub(self.snd_buf.len() as u32);
        c.end_sn = self.v.snd_nxt;
        (c.scan_min, c.scan_max, c.scan_fastack) = (u32::MAX, 0, 0);
        let h = self.scan_hint;
        if h.valid && h.none_due(current) && h.max_fastack < c.resent {
            // None of the segments the last scan covered is timed out or
            // fast-acked enough: start at the first newer one (if any), and
            // carry what the hint knows into this scan's summary.
            if timediff(h.end_sn, c.next_sn) > 0 {
                c.next_sn = if timediff(h.end_sn, c.end_sn) < 0 {
                    h.end_sn
                } else {
                    c.end_sn
                };
            }
            let first = h.due_at.wrapping_sub(current);
            (c.scan_min, c.scan_max, c.scan_fastack) = (first, first + h.span, h.max_fastack);
        }
    }

    /// Scans the send buffer in sequence order. Returns true when `buf` must
    /// be emitted before the scan can go on.
    fn flush_segments(&mut self, buf: &mut FlushBuf<A>) -> bool {
        while self.cursor.next_sn != self.cursor.end_sn {
            let sn = self.cursor.next_sn;
            let index = self.snd_index(sn).unwrap_or(usize::MAX);
            if !self.cursor.pending {
                if !matches!(self.snd_buf.get(index), Some(Some(_))) {
                    self.cursor.next_sn = sn.wrapping_add(1);
                    continue;
                }
                let send = self.decide_send(index);
                if let Some(Some(seg)) = self.snd_buf.get(index) {
                    let c = &mut self.cursor;
                    let offset = seg.resendts.wrapping_sub(c.current);
                    (c.scan_min, c.scan_max) = (c.scan_min.min(offset), c.scan_max.max(offset));
                    c.scan_fastack = c.scan_fastack.max(seg.fastack);
                }
                if !send {
                    self.cursor.next_sn = sn.wrapping_add(1);
                    continue;
                }
                self.cursor.pending = true;
            }
            let Some(Some(seg)) = self.snd_buf.get(index) else {
                // Acknowledged by a callback re-entering input: skip it.
                self.cursor.pending = false;
                self.cursor.skip_check = false;
                continue;
            };
            let need = OVERHEAD.wrapping_add(seg.data.len() as u32);
            if self.must_emit(buf, need) {
                return true;
            }
            let Some(Some(seg)) = self.snd_buf.get(index) else {
                continue;
            };
            if buf.reserve(need as usize, self.v.mtu as usize) {
                let h = Header {
                    conv: seg.conv,
                    cmd: CMD_PUSH,
                    frg: seg.frg as u8,
                    wnd: seg.wnd as u16,
                    ts: seg.ts,
                    sn: seg.sn,
                    una: seg.una,
                    len: seg.data.len() as u32,
                };
                buf.put(&h.to_bytes());
                buf.put(&seg.data);
            }
            if seg.xmit >= self.v.dead_link {
                self.v.state = u32::MAX;
            }
            self.cursor.pending = false;
            self.cursor.next_sn = sn.wrapping_add(1);
        }
        let c = &mut self.cursor;
        if c.nested {
            // A flush from inside `output` changed segments this scan had
            // already summarised: no hint until the next complete scan.
            self.scan_hint.valid = false;
        } else if c.scan_min <= c.scan_max {
            self.scan_hint = super::ScanHint {
                valid: true,
                due_at: c.current.wrapping_add(c.scan_min),
                span: c.scan_max - c.scan_min,
                max_fastack: c.scan_fastack,
                end_sn: c.end_sn,
            };
        }
        false
    }

    /// Decides whether the segment at `index` goes out now (first send,
    /// timeout, fast retransmit) and updates its timers as ikcp.c does. A
    /// segment the send budget cannot pay for stays as it was (see
    /// `pacing.rs`).
    fn decide_send(&mut self, index: usize) -> bool {
        let c = &self.cursor;
        let (current, rtomin, resent, wnd) = (c.current, c.rtomin, c.resent, c.wnd);
        let fastlimit = self.v.tuning().fastlimit;
        let linear = self.linear_backoff;
        let v = &mut *self.v;
        let Some(Some(seg)) = self.snd_buf.get_mut(index) else {
            return false;
        };
        let why = if seg.xmit == 0 {
            Send::First
        } else if timediff(current, seg.resendts) >= 0 {
            Send::Timeout
        } else if seg.fastack >= resent && (seg.xmit as i32 <= fastlimit || fastlimit <= 0) {
            Send::Fast
        } else {
            return false;
        };
        if !self.pacing.spend(OVERHEAD.wrapping_add(seg.data.len() as u32)) {
            return false;
        }
        match why {
            Send::First => {
                seg.xmit = 1;
                seg.rto = v.rx_rto as u32;
                seg.resendts = current.wrapping_add(seg.rto).wrapping_add(rtomin);
            }
            Send::Timeout => {
                seg.xmit = seg.xmit.wrapping_add(1);
                v.xmit = v.xmit.wrapping_add(1);
                if linear {
                    let step = if v.nodelay == 0 { v.rx_rto } else { v.rx_rto / 2 };
                    seg.rto = seg.rto.saturating_add(step.max(0) as u32).min(RTO_MAX);
                } else if v.nodelay == 0 {
                    seg.rto = seg.rto.wrapping_add(seg.rto.max(v.rx_rto as u32));
                } else {
                    let step = if v.nodelay < 2 { seg.rto as i32 } else { v.rx_rto };
                    seg.rto = seg.rto.wrapping_add((step / 2) as u32);
                }
                seg.resendts = current.wrapping_add(seg.rto);
                self.cursor.lost = true;
            }
            Send::Fast => {
                seg.xmit = seg.xmit.wrapping_add(1);
                seg.fastack = 0;
                seg.resendts = current.wrapping_add(seg.rto);
                self.cursor.change += 1;
            }
        }
        seg.ts = current;
        seg.wnd = wnd;
        seg.una = v.rcv_nxt;
        true
    }

    /// Congestion window after a flush: halve on fast retransmit, collapse
    /// to 1 on timeout.
    fn adjust_cwnd(&mut self) {
        let c = self.cursor;
        let v = &mut *self.v;
        if c.change != 0 {
            let inflight = v.snd_nxt.wrapping_sub(v.snd_una);
            v.ssthresh = (inflight / 2).max(THRESH_MIN);
            v.cwnd = v.ssthresh.wrapping_add(c.resent);
            v.incr = v.cwnd.wrapping_mul(v.mss);
        }
        if c.lost {
            v.ssthresh = (c.cwnd / 2).max(THRESH_MIN);
            v.cwnd = 1;
            v.incr = v.mss;
        }
        if v.cwnd < 1 {
            v.cwnd = 1;
            v.incr = v.mss;
        }
    }
}
