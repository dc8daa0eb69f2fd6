//! The listener's memory budget (issue 17 item 4): what its sessions hold
//! for delivery, kept by incremental accounting, and what the listener sheds
//! beyond it.
//!
//! **What is counted.** Each session's [`Conn::buffered_bytes`](crate::conn::Conn::buffered_bytes): KCP's
//! out-of-order receive buffer and its receive queue not yet read, FEC's
//! kept shards of incomplete groups and a stream chunk the application's
//! buffer could not take (payload plus a few dozen bytes per segment or
//! shard). A session's share is recomputed in O(1) whenever its timer is
//! re-armed (after every input, send, receive, flush and update), so the
//! total is exact after each of them and no datagram costs a scan.
//!
//! **Per session.** Every session's out-of-order data and FEC kept shards
//! are each capped at [`EndpointConfig::session_buffer_bytes`] (256 KiB by
//! default, above one default receive window). The window a session
//! advertises shrinks to what its cap admits, and what that window admits
//! always passes (the next segment in order first); a segment beyond it
//! that would bring the session over its cap is dropped unacknowledged, so
//! the peer sends it again. A sender that honours the window (any KCP
//! sender, once it heard it) is thus slowed, never refused, and never runs
//! into its dead-link limit for it (the tests did before the window rule).
//! Acknowledged segments are never dropped (the sender has forgotten them).
//!
//! **Over the budget** ([`EndpointConfig::listener_buffer_bytes`], 32 MiB
//! by default; listeners only):
//! 1. pressure: one pass over the sessions lowers every cap to
//!    [`PRESSURE_SESSION_BYTES`] (16 KiB) and drops FEC's kept shards (they
//!    only serve to rebuild a lost datagram), counted; sessions opened or
//!    active during pressure get the lower cap too. What was buffered out of
//!    order stays (acknowledged) and drains as the holes fill.
//! 2. eviction, if still over: the sessions that delivered nothing to the
//!    application (never read, accepted or not) or whose peer is unproven
//!    (`admission.rs`), those that delivered least first, then most
//!    buffered bytes; then sessions holding more out-of-order data than the
//!    pressure cap, most such bytes first; each closed with
//!    [`CloseReason::Evicted`] and its received data discarded, until the
//!    total is at three quarters of the budget (the low-water mark). A
//!    proven session that delivered data and holds no more than the
//!    pressure cap out of order is never evicted: its bytes are what the
//!    application has not read yet, bounded by its receive window.
//! 3. pressure ends when the total is back at half the budget (below the
//!    low-water mark, so that a sustained flood keeps the listener in
//!    pressure rather than scanning at every crossing); caps go back up as
//!    sessions are next active.
//!
//! **Cost.** A pass (pressure or eviction) costs O(sessions log sessions);
//! after one, the next runs only once the total has grown by another
//! eighth of the budget (about 3,000 full segments at the default), so a
//! flood pays O(1) amortised per datagram and the steady state nothing.
//!
//! **Remaining exposure.** Between passes the total may exceed the budget by
//! up to an eighth of it plus one session's cap; a session that delivered
//! data and then stopped being read holds up to its receive window, in the
//! application's control.

use super::{CloseReason, Endpoint, EndpointConfig, EndpointStats, State, PRESSURE_SESSION_BYTES};

/// What one slot's session was last counted for.
#[derive(Clone, Copy, Debug, Default)]
struct Charge {
    bytes: usize,
    /// Its connection's drop counters when last read ([`Conn::memory_drops`](crate::conn::Conn::memory_drops)).
    segments: u32,
    shards: u64,
}

/// The accounting; see the module documentation.
#[derive(Debug)]
pub(super) struct Budget {
    /// The per-session cap outside pressure, and under pressure.
    normal_cap: Option<usize>,
    pressure_cap: Option<usize>,
    /// The budget (high-water mark), `None` for none (or a dialer).
    limit: Option<usize>,
    total: usize,
    pressure: bool,
    /// No pass runs before the total exceeds this (amortisation).
    next_pass: usize,
    charges: Vec<Charge>,
    /// Eviction candidates of the pass in progress: (tier, bytes delivered,
    /// bytes held, slot), in eviction order once sorted.
    scratch: Vec<(u8, u64, core::cmp::Reverse<usize>, u32)>,
}

impl Budget {
    pub(super) fn new(config: &EndpointConfig, listener: bool) -> Budget {
        let cap = |b: usize| (b != usize::MAX).then_some(b);
        let normal_cap = cap(config.session_buffer_bytes);
        Budget {
            normal_cap,
            pressure_cap: Some(normal_cap.map_or(PRESSURE_SESSION_BYTES, |c| c.min(PRESSURE_SESSION_BYTES))),
            limit: cap(config.listener_buffer_bytes).filter(|_| listener),
            total: 0,
            pressure: false,
            next_pass: 0,
            charges: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Gives back the scratch of eviction passes (after a quiet spell).
    pub(super) fn shrink(&mut self) {
        self.scratch = Vec::new();
    }

    /// The cap sessions get now.
    fn cap(&self) -> Option<usize> {
        if self.pressure {
            self.pressure_cap
        } else {
            self.normal_cap
        }
    }

    /// The budget's low-water mark: what eviction brings the total down to.
    fn low_water(limit: usize) -> usize {
        limit - limit / 4
    }

    /// Counts slot `slot` at `bytes` with drop counters `drops`; folds the
    /// drops since the last count into `stats`.
    fn update(&mut self, slot: u32, bytes: usize, drops: (u32, u64), stats: &mut EndpointStats) {
        let i = slot as usize;
        if self.charges.len() <= i {
            self.charges.resize(i + 1, Charge::default());
        }
        let c = &mut self.charges[i];
        self.total = self.total - c.bytes + bytes;
        stats.mem_dropped_segments += u64::from(drops.0.wrapping_sub(c.segments));
        stats.mem_dropped_shards += drops.1.saturating_sub(c.shards);
        *c = Charge {
            bytes,
            segments: drops.0,
            shards: drops.1,
        };
        stats.buffered_bytes = self.total as u64;
    }

    /// Slot `slot` was freed: its session counts no more.
    fn release(&mut self, slot: u32, stats: &mut EndpointStats) {
        if let Some(c) = self.charges.get_mut(slot as usize) {
            self.total -= c.bytes;
            *c = Charge::default();
        }
        stats.buffered_bytes = self.total as u64;
    }
}

impl Endpoint {
    /// Hook (from `rearm`): sets slot `slot`'s cap for the current mode and
    /// recounts what it holds. O(1).
    pub(super) fn charge_memory(&mut self, slot: u32) {
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return;
        };
        s.conn.set_buffer_cap(self.budget.cap());
        let (bytes, drops) = (s.conn.buffered_bytes(), s.conn.memory_drops());
        self.budget.update(slot, bytes, drops, &mut self.stats);
    }

    /// Hook (from `free_slot`): the slot's session is gone.
    pub(super) fn release_memory(&mut self, slot: u32) {
        self.budget.release(slot, &mut self.stats);
    }

    /// Hook (at the end of `handle`): enforces the budget. O(1) unless the
    /// total is over it and has grown since the last pass.
    pub(super) fn enforce_memory_budget(&mut self) {
        let Some(limit) = self.budget.limit else { return };
        let total = self.budget.total;
        if self.budget.pressure && total <= limit / 2 {
            self.budget.pressure = false;
            return;
        }
        if total <= limit || total <= self.budget.next_pass {
            return;
        }
        if !self.budget.pressure {
            self.enter_pressure();
        }
        if self.budget.total > limit {
            self.evict_for_memory(limit);
        }
        self.budget.next_pass = self.budget.total.max(limit) + limit / 8;
    }

    /// Lowers every session's cap and drops FEC's kept shards.
    fn enter_pressure(&mut self) {
        self.budget.pressure = true;
        self.stats.mem_pressure += 1;
        for slot in 0..self.slots.len() as u32 {
            if let Some(s) = self.slots[slot as usize].as_mut() {
                s.conn.drop_fec_shards();
                self.charge_memory(slot);
            }
        }
    }

    /// Evicts the worst sessions until the total is at the low-water mark.
    fn evict_for_memory(&mut self, limit: usize) {
        let pressure_cap = self.budget.pressure_cap.unwrap_or(0);
        let mut candidates = core::mem::take(&mut self.budget.scratch);
        candidates.clear();
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(s) = s.as_ref().filter(|s| s.state == State::Open) else {
                continue;
            };
            let held = s.conn.buffered_bytes();
            let undeliverable = s.conn.undeliverable_bytes();
            // First the sessions that delivered nothing or whose peer is
            // unproven (`admission.rs`), those that delivered least first;
            // then those holding most out of order.
            let delivered = s.conn.delivered_bytes();
            if (delivered == 0 || !s.proven) && held > 0 {
                candidates.push((0, delivered, core::cmp::Reverse(held), slot as u32));
            } else if undeliverable > pressure_cap {
                candidates.push((1, 0, core::cmp::Reverse(undeliverable), slot as u32));
            }
        }
        candidates.sort_unstable();
        let low = Budget::low_water(limit);
        for &(_, _, _, slot) in &candidates {
            if self.budget.total <= low {
                break;
            }
            self.stats.evicted += 1;
            self.stats.mem_evicted += 1;
            self.end(slot, CloseReason::Evicted);
            // A session the application holds stays (closed) until it is
            // closed: its received data goes now.
            if let Some(s) = self.slots[slot as usize].as_mut() {
                s.conn.discard_received();
                self.charge_memory(slot);
            }
        }
        self.budget.scratch = candidates;
    }
}
