//! ikcp_input: decoding datagrams, ACK/UNA processing, RTT estimation,
//! receive buffering, and congestion window growth.

use super::log::mask;
use super::segment::{Header, RcvSeg, OVERHEAD};
use super::{consts::*, timediff, InputError, Kcp, Scalars};
use allocator_api2::alloc::Allocator;

impl<A: Allocator + Clone, S: Scalars> Kcp<A, S> {
    /// Feeds one received datagram (one or more segments). On error the
    /// segments before the bad one keep their effects, as in ikcp.c.
    pub fn input(&mut self, datagram: &[u8]) -> Result<(), InputError> {
        self.input_from(Some(datagram), datagram.len() as i32, true)
    }

    /// Feeds segments that did not arrive as sent but were rebuilt (by FEC):
    /// as [`Kcp::input`], except that they give no RTT sample and do not
    /// update the peer's window, which may be stale (kcp-go's rule).
    pub fn input_recovered(&mut self, segments: &[u8]) -> Result<(), InputError> {
        self.input_from(Some(segments), segments.len() as i32, false)
    }

    /// ikcp_input's body: logs the datagram's `size` as ikcp.c's `int` sees
    /// it, refuses a missing datagram (`None`, C's NULL) or a `size` below one
    /// header, then decodes `data`. `regular` is false for rebuilt segments
    /// (see [`Kcp::input_recovered`]).
    pub(crate) fn input_from(&mut self, data: Option<&[u8]>, size: i32, regular: bool) -> Result<(), InputError> {
        if self.can_log(mask::INPUT) {
            self.logs.push(mask::INPUT, format_args!("[RI] {} bytes", size));
        }
        let Some(data) = data else {
            return Err(InputError::ConvOrShort);
        };
        if size < OVERHEAD as i32 {
            return Err(InputError::ConvOrShort);
        }
        let prev_una = self.v.snd_una;
        let mut ack: Option<(u32, u32)> = None; // (maxack, latest_ts)
        let mut rest = data;

        while let Some(h) = Header::decode(rest) {
            if h.conv != self.v.conv {
                return Err(InputError::ConvOrShort);
            }
            let body = &rest[OVERHEAD as usize..];
            if (body.len() as u64) < h.len as u64 || (h.len as i32) < 0 {
                return Err(InputError::BadLength);
            }
            if !matches!(h.cmd, CMD_PUSH | CMD_ACK | CMD_WASK | CMD_WINS) {
                return Err(InputError::BadCommand);
            }
            let payload = &body[..h.len as usize];
            if regular {
                self.v.rmt_wnd = h.wnd as u32;
            }
            self.parse_una(h.una);
            self.shrink_buf();
            match h.cmd {
                CMD_ACK => self.input_ack(&h, &mut ack, regular),
                CMD_PUSH => self.input_push(&h, payload),
                CMD_WASK => {
                    self.v.probe |= ASK_TELL;
                    if self.can_log(mask::IN_PROBE) {
                        self.logs.push(mask::IN_PROBE, format_args!("input probe"));
                    }
                }
                _ => {
                    if self.can_log(mask::IN_WINS) {
                        self.logs.push(mask::IN_WINS, format_args!("input wins: {}", h.wnd));
                    }
                }
            }
            rest = &body[h.len as usize..];
        }

        if let Some((maxack, latest_ts)) = ack {
            self.parse_fastack(maxack, latest_ts);
        }
        if timediff(self.v.snd_una, prev_una) > 0 {
            self.grow_cwnd();
        }
        Ok(())
    }

    fn input_ack(&mut self, h: &Header, ack: &mut Option<(u32, u32)>, regular: bool) {
        let rtt = timediff(self.v.current, h.ts);
        if rtt >= 0 && regular {
            self.update_rtt(rtt);
        }
        self.parse_ack(h.sn);
        self.shrink_buf();
        match ack {
            None => *ack = Some((h.sn, h.ts)),
            // IKCP_FASTACK_CONSERVE: only a newer ACK that was also sent
            // later may raise the fast-ack mark.
            Some((maxack, latest_ts)) => {
                if timediff(h.sn, *maxack) > 0 && timediff(h.ts, *latest_ts) > 0 {
                    *ack = Some((h.sn, h.ts));
                }
            }
        }
        if self.can_log(mask::IN_ACK) {
            self.logs.push(
                mask::IN_ACK,
                format_args!("input ack: sn={} rtt={} rto={}", h.sn, rtt, self.v.rx_rto),
            );
        }
    }

    fn input_push(&mut self, h: &Header, payload: &[u8]) {
        if self.can_log(mask::IN_DATA) {
            self.logs
                .push(mask::IN_DATA, format_args!("input psh: sn={} ts={}", h.sn, h.ts));
        }
        let rcv_end = self.v.rcv_nxt.wrapping_add(self.v.rcv_wnd);
        if timediff(h.sn, rcv_end) >= 0 {
            return;
        }
        // ikcp.c queues the ACK first; both orders have the same effects,
        // except that here a segment that could not be stored (allocation
        // failure, where ikcp.c crashes) is not acknowledged: the peer would
        // never send it again.
        if timediff(h.sn, self.v.rcv_nxt) < 0 || self.parse_data(h.sn, h.frg, payload) {
            self.ack_push(h.sn, h.ts);
        }
    }

    /// RTT estimator of ikcp.c (RFC 6298 style), with C's integer types:
    /// `int` arithmetic wraps (the reference is built with -fwrapv) and the
    /// RTO bound compares as unsigned.
    fn update_rtt(&mut self, rtt: i32) {
        let v = &mut *self.v;
        if v.rx_srtt == 0 {
            v.rx_srtt = rtt;
            v.rx_rttval = rtt / 2;
        } else {
            let delta = (rtt.wrapping_sub(v.rx_srtt) as i64).abs();
            v.rx_rttval = ((v.rx_rttval.wrapping_mul(3) as i64 + delta) / 4) as i32;
            v.rx_srtt = v.rx_srtt.wrapping_mul(7).wrapping_add(rtt) / 8;
            if v.rx_srtt < 1 {
                v.rx_srtt = 1;
            }
        }
        let spread = v.interval.max(v.rx_rttval.wrapping_mul(4) as u32);
        let rto = (v.rx_srtt as u32).wrapping_add(spread);
        v.rx_rto = rto.max(v.rx_minrto as u32).min(RTO_MAX) as i32;
    }

    fn parse_ack(&mut self, sn: u32) {
        if timediff(sn, self.v.snd_una) < 0 || timediff(sn, self.v.snd_nxt) >= 0 {
            return;
        }
        // Replacing a tombstone yields Some(None): only a live segment counts.
        if let Some(Some(seg)) = self.snd_index(sn).and_then(|i| self.snd_buf.replace(i, None)) {
            self.recycle_payload(seg.data);
            self.nsnd_buf -= 1;
            self.pop_acked_front();
        }
    }

    fn parse_una(&mut self, una: u32) {
        while let Some(Some(seg)) = self.snd_buf.front() {
            if timediff(una, seg.sn) <= 0 {
                break;
            }
            if let Some(Some(seg)) = self.snd_buf.pop_front() {
                self.recycle_payload(seg.data);
            }
            self.nsnd_buf -= 1;
            self.pop_acked_front();
        }
    }

    /// Drops tombstones at the front so the ring starts at a live segment.
    fn pop_acked_front(&mut self) {
        while let Some(None) = self.snd_buf.front() {
            self.snd_buf.pop_front();
        }
    }

    fn shrink_buf(&mut self) {
        self.v.snd_una = match self.snd_buf.front() {
            Some(Some(seg)) => seg.sn,
            _ => self.v.snd_nxt,
        };
    }

    fn parse_fastack(&mut self, sn: u32, ts: u32) {
        if timediff(sn, self.v.snd_una) < 0 || timediff(sn, self.v.snd_nxt) >= 0 {
            return;
        }
        let end = self.snd_index(sn).unwrap_or(self.snd_buf.len());
        for i in 0..end {
            if let Some(Some(seg)) = self.snd_buf.get_mut(i) {
                if timediff(ts, seg.ts) >= 0 {
                    seg.fastack = seg.fastack.wrapping_add(1);
                    self.scan_hint.max_fastack = self.scan_hint.max_fastack.max(seg.fastack);
                }
            }
        }
    }

    fn ack_push(&mut self, sn: u32, ts: u32) {
        let newsize = self.ackcount as u32 + 1;
        if newsize > self.ackblock {
            let mut block = 8u32;
            while block < newsize {
                block <<= 1;
            }
            self.ackblock = block;
        }
        if let Some(slot) = self.acklist.get_mut(self.ackcount) {
            *slot = [sn, ts];
            self.ackcount += 1;
        } else if self.acklist.try_reserve(1).is_ok() {
            self.acklist.push([sn, ts]);
            self.ackcount += 1;
        }
    }

    /// Stores a received segment; false only if memory ran out (the segment
    /// is then dropped like a lost datagram and must not be acknowledged).
    fn parse_data(&mut self, sn: u32, frg: u8, payload: &[u8]) -> bool {
        let rcv_end = self.v.rcv_nxt.wrapping_add(self.v.rcv_wnd);
        if timediff(sn, rcv_end) >= 0 || timediff(sn, self.v.rcv_nxt) < 0 {
            return true;
        }
        // The receive buffer is sorted by sequence number: find the first
        // entry not before `sn` (usually the end: data arrives in order).
        let n = self.rcv_buf.len();
        let at = match self.rcv_buf.back() {
            Some(last) if timediff(sn, last.sn) > 0 => n,
            None => 0,
            _ => {
                let (mut lo, mut hi) = (0, n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    match self.rcv_buf.get(mid) {
                        Some(s) if timediff(s.sn, sn) < 0 => lo = mid + 1,
                        _ => hi = mid,
                    }
                }
                lo
            }
        };
        let repeat = matches!(self.rcv_buf.get(at), Some(s) if s.sn == sn);
        let charge = RcvSeg::<A>::charge_for(payload.len());
        if !repeat && self.rcv_buf_bytes.saturating_add(charge) > self.ooo_cap && self.beyond_cap_window(sn) {
            // Over the out-of-order cap (never set by ikcp_*): dropped like
            // a lost datagram, and so not acknowledged.
            self.ooo_refused = self.ooo_refused.wrapping_add(1);
            return false;
        }
        let mut stored = true;
        if !repeat {
            // On allocation failure the segment is dropped like a lost
            // datagram; the peer retransmits it.
            stored = match self.payloads.filled(payload, 0) {
                Some(data) => {
                    let mut seg = RcvSeg { sn, frg, data };
                    // The next segment in order with nothing buffered (the
                    // usual case) would be moved on to the receive queue at
                    // once below: put it there directly.
                    if n == 0 && sn == self.v.rcv_nxt && (self.rcv_queue.len() as u32) < self.v.rcv_wnd {
                        match self.rcv_queue.push_back(seg) {
                            Ok(()) => {
                                self.rcv_queue_bytes += charge;
                                self.v.rcv_nxt = self.v.rcv_nxt.wrapping_add(1);
                                return true;
                            }
                            Err(back) => seg = back,
                        }
                    }
                    let pushed = if at == n {
                        self.rcv_buf.push_back(seg)
                    } else {
                        self.rcv_buf.insert(at, seg)
                    };
                    match pushed {
                        Ok(()) => {
                            self.rcv_buf_bytes += charge;
                            true
                        }
                        Err(seg) => {
                            self.recycle_payload(seg.data);
                            false
                        }
                    }
                }
                None => false,
            };
        }
        self.move_to_rcv_queue();
        stored
    }

    /// Whether `sn` lies beyond the window the out-of-order cap admits (see
    /// [`Kcp::set_out_of_order_cap`]): what a sender honouring the window
    /// it was told may send always passes, the next in order first.
    #[inline]
    fn beyond_cap_window(&self, sn: u32) -> bool {
        sn.wrapping_sub(self.v.rcv_nxt) >= self.ooo_cap_window()
    }

    /// Slow start / congestion avoidance after una advanced.
    fn grow_cwnd(&mut self) {
        let v = &mut *self.v;
        if v.cwnd >= v.rmt_wnd {
            return;
        }
        let mss = v.mss;
        if v.cwnd < v.ssthresh {
            v.cwnd = v.cwnd.wrapping_add(1);
            v.incr = v.incr.wrapping_add(mss);
        } else {
            if v.incr < mss {
                v.incr = mss;
            }
            let growth = mss.wrapping_mul(mss).checked_div(v.incr).unwrap_or(0);
            v.incr = v.incr.wrapping_add(growth).wrapping_add(mss / 16);
            if v.cwnd.wrapping_add(1).wrapping_mul(mss) <= v.incr {
                v.cwnd = v.incr.wrapping_add(mss).wrapping_sub(1) / mss.max(1);
            }
        }
        if v.cwnd > v.rmt_wnd {
            v.cwnd = v.rmt_wnd;
            v.incr = v.rmt_wnd.wrapping_mul(mss);
        }
    }
}
