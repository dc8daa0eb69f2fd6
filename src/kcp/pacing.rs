//! kcpx's sender rules beside ikcp.c's, each unused unless asked for (and
//! never by `ikcp_*`): a byte budget on the data segments a flush emits
//! (what a rate limiter above the core spends), and a flush of the pending
//! ACKs alone (kcp-go's newest sender has it). The budget is how kcpx holds
//! back data without holding back ACKs.

use super::{Kcp, Scalars};
use allocator_api2::alloc::Allocator;

#[derive(Debug, Clone, Copy)]
pub(super) struct Pacing {
    /// Bytes (KCP header and payload) data segments may still use;
    /// `u32::MAX` is no budget.
    pub(super) budget: u32,
    /// A segment due to be sent stayed back for lack of budget.
    pub(super) held_back: bool,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            budget: u32::MAX,
            held_back: false,
        }
    }
}

impl Pacing {
    /// Whether a segment of `need` bytes may go now; spends the budget if
    /// so. Once one segment stayed back, later ones stay back too (the
    /// send order is kept).
    pub(super) fn spend(&mut self, need: u32) -> bool {
        if self.budget == u32::MAX {
            return true;
        }
        if self.held_back || self.budget < need {
            self.held_back = true;
            return false;
        }
        self.budget -= need;
        true
    }
}

impl<A: Allocator + Clone, S: Scalars> Kcp<A, S> {
    /// Limits the bytes of data segments (KCP header and payload, first
    /// sends and retransmissions) the following flushes emit, until set
    /// again; `None` is no limit (the default). A segment that does not fit
    /// stays back, due, with the ones after it, and the flush goes on with
    /// everything else: ACKs, window probes and answers always leave. See
    /// [`Kcp::send_budget`] and [`Kcp::held_back`].
    pub fn set_send_budget(&mut self, bytes: Option<u32>) {
        self.pacing.budget = bytes.map_or(u32::MAX, |b| b.min(u32::MAX - 1));
        self.pacing.held_back = false;
    }

    /// What is left of the budget set by [`Kcp::set_send_budget`].
    pub fn send_budget(&self) -> Option<u32> {
        (self.pacing.budget != u32::MAX).then_some(self.pacing.budget)
    }

    /// Whether a segment due to be sent stayed back for lack of budget
    /// since the budget was last set.
    pub fn held_back(&self) -> bool {
        self.pacing.held_back
    }

    /// Pending ACKs reach what one datagram holds (MTU / 24, kcp-go's
    /// clocking rule): [`Kcp::flush_acks`] should send them now rather
    /// than at the next interval.
    pub fn ack_flush_due(&self) -> bool {
        self.ackcount > 0 && self.ackcount as u32 >= self.v.mtu / super::OVERHEAD
    }

    /// When the next interval flush of [`Kcp::update`] is due (absolute
    /// ms; `current` when it is due now), whatever the send buffer's
    /// timers say: for an owner that knows those segments must wait.
    pub fn next_flush(&self, current: u32) -> u32 {
        let ts_flush = self.v.ts_flush;
        let d = super::timediff(ts_flush, current);
        if self.v.updated == 0 || d <= 0 || d >= 10000 {
            current
        } else {
            ts_flush
        }
    }

    /// Emits the pending ACKs and nothing else (no data, no probe; those
    /// wait for the next [`Kcp::flush`]). Does nothing before the first
    /// [`Kcp::update`].
    pub fn flush_acks(&mut self, mut output: impl FnMut(&[u8])) {
        if self.v.updated == 0 || self.ackcount == 0 {
            return;
        }
        let mut buf = self.take_flush_buffer();
        self.begin_flush();
        self.cursor.acks_only = true;
        while self.flush_next(&mut buf) {
            if !buf.is_empty() {
                output(buf.as_slice());
            }
        }
        self.restore_flush_buffer(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::super::consts::{CMD_ACK, CMD_PUSH};
    use super::super::{Kcp, NoDelay, OVERHEAD};
    use core::num::NonZeroU32;

    /// The (cmd, sn) of every segment in a datagram.
    fn segments(d: &[u8]) -> Vec<(u8, u32)> {
        let mut out = vec![];
        let mut at = 0;
        while at + OVERHEAD as usize <= d.len() {
            let h = &d[at..at + OVERHEAD as usize];
            let sn = u32::from_le_bytes(h[12..16].try_into().unwrap());
            let len = u32::from_le_bytes(h[20..24].try_into().unwrap()) as usize;
            out.push((h[4], sn));
            at += OVERHEAD as usize + len;
        }
        out
    }

    fn flush(k: &mut Kcp) -> Vec<Vec<u8>> {
        let mut out = vec![];
        k.flush(|d| out.push(d.to_vec()));
        out
    }

    /// A sender of ten one-segment datagrams (MTU 150, 100-byte messages),
    /// its first flush done, and its peer.
    fn sender() -> (Kcp, Kcp, Vec<Vec<u8>>) {
        let (mut a, mut b) = (Kcp::new(9), Kcp::new(9));
        for k in [&mut a, &mut b] {
            k.set_mtu(150).unwrap();
            k.set_nodelay(NoDelay::new(1, 10, 2, true));
            k.set_window(NonZeroU32::new(64), NonZeroU32::new(64));
            k.update(100, |_| {});
        }
        for i in 0..10u8 {
            a.send(&[i; 100]).unwrap();
        }
        let first = flush(&mut a);
        assert_eq!(first.len(), 10);
        (a, b, first)
    }

    #[test]
    fn a_budget_holds_back_data_but_never_acks() {
        let (_, mut b, first) = sender();
        // b owes its peer an ACK and has five segments to send.
        b.input(&first[0]).unwrap();
        for i in 0..5u8 {
            b.send(&[i; 100]).unwrap();
        }
        let per_segment = OVERHEAD + 100;
        b.set_send_budget(Some(2 * per_segment + per_segment / 2));
        let out = flush(&mut b);
        let sent: Vec<_> = out.iter().flat_map(|d| segments(d)).collect();
        assert!(sent.iter().any(|s| s.0 == CMD_ACK), "the ACK left: {sent:?}");
        let pushed: Vec<u32> = sent.iter().filter(|s| s.0 == CMD_PUSH).map(|s| s.1).collect();
        assert_eq!(pushed, [0, 1]);
        assert!(b.held_back());
        assert_eq!(b.send_budget(), Some(per_segment / 2));
        // Without a budget the rest leave, in order.
        b.set_send_budget(None);
        assert!(!b.held_back());
        let out = flush(&mut b);
        let pushed: Vec<u32> = out
            .iter()
            .flat_map(|d| segments(d))
            .filter(|s| s.0 == CMD_PUSH)
            .map(|s| s.1)
            .collect();
        assert_eq!(pushed, [2, 3, 4]);
    }

    #[test]
    fn ack_only_flush_at_a_datagram_of_acks() {
        let (_, mut b, first) = sender();
        b.send(&[1; 100]).unwrap();
        // MTU 150 holds 6 ACKs (150 / 24).
        for (i, d) in first.iter().enumerate().take(6) {
            assert!(!b.ack_flush_due(), "after {i}");
            b.input(d).unwrap();
        }
        assert!(b.ack_flush_due());
        let mut out = vec![];
        b.flush_acks(|d| out.push(d.to_vec()));
        let sent: Vec<_> = out.iter().flat_map(|d| segments(d)).collect();
        assert_eq!(sent.len(), 6);
        assert!(sent.iter().all(|s| s.0 == CMD_ACK), "{sent:?}");
        assert!(!b.ack_flush_due());
        // The data waits for the next full flush.
        let later: Vec<_> = flush(&mut b).iter().flat_map(|d| segments(d)).collect();
        assert_eq!(later, [(CMD_PUSH, 0)]);
    }
}
