//! The endpoint's own buffers after a burst (issue 21 item 1).
//!
//! What a listener keeps beside its sessions grows with the busiest moment
//! it has seen: the transmit batch, the event and accept queues, the list
//! of sessions to flush, the timer heap (with its stale entries), the
//! address map, the budget's scratch. Sessions give their buffers back
//! after [`SHED_AFTER_MS`] of quiet; the endpoint gives its own back once
//! no datagram came in or went out for [`QUIET_AFTER_MS`]. That moment is
//! a deadline of its own, part of [`Endpoint::poll_timeout`], because a
//! listener whose sessions are all idle arms no timer and a caller that
//! waits for the next deadline would otherwise never come back to shrink
//! anything. Once per quiet spell [`Endpoint::take_quiet`] then says so,
//! for the socket layer to shrink its receive batch and give the freed
//! heap back to the system.

use super::{Endpoint, SHED_AFTER_MS};

/// Milliseconds without a datagram in or out after which the endpoint
/// shrinks its buffers: after every session quiet since then has shed.
pub const QUIET_AFTER_MS: u64 = 2 * SHED_AFTER_MS;

/// When the endpoint was last busy, and whether it shrank since.
#[derive(Debug, Default)]
pub(super) struct Quiet {
    /// Extended time of the last datagram in or out (None: none since the
    /// last shrink).
    busy_at: Option<u64>,
    /// Shrunk at the end of a quiet spell, not yet taken by `take_quiet`.
    shrunk: bool,
}

impl Quiet {
    /// A datagram came in or went out at `t`.
    #[inline]
    pub(super) fn busy(&mut self, t: u64) {
        self.busy_at = Some(t);
    }

    /// When the buffers shrink next, if traffic came since they last did.
    pub(super) fn deadline(&self) -> Option<u64> {
        self.busy_at.map(|t| t + QUIET_AFTER_MS)
    }
}

impl Endpoint {
    /// Shrinks the endpoint's buffers when its quiet deadline passed.
    pub(super) fn shrink_if_quiet(&mut self, t: u64) {
        if !self.quiet.deadline().is_some_and(|d| t >= d) {
            return;
        }
        self.quiet = Quiet {
            busy_at: None,
            shrunk: true,
        };
        self.stats.quiet_shrinks += 1;
        if self.tx.is_empty() {
            self.tx = Default::default();
            self.tx_peak = (0, 0, 0);
        }
        self.events.shrink_to_fit();
        let mut queue = core::mem::take(&mut self.accept_queue);
        queue.retain(|id| self.is_waiting(*id));
        queue.shrink_to_fit();
        self.accept_queue = queue;
        let mut unproven = core::mem::take(&mut self.unproven);
        unproven.retain(|id| self.get(*id).is_some_and(|s| !s.proven));
        unproven.shrink_to_fit();
        self.unproven = unproven;
        self.dirty.shrink_to_fit();
        self.free.shrink_to_fit();
        self.by_addr.shrink_to_fit();
        self.by_cid.shrink_to_fit();
        self.by_hello.shrink_to_fit();
        self.timers.compact();
        self.budget.shrink();
    }

    /// Whether the endpoint shrank its buffers at the end of a quiet spell
    /// since the last call (true once per spell): the moment for the owner
    /// to shrink its own (a socket layer's receive batch) and to give freed
    /// heap back to the system.
    pub fn take_quiet(&mut self) -> bool {
        core::mem::take(&mut self.quiet.shrunk)
    }
}
