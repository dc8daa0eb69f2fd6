//! Admission under pressure: which session makes room when a listener's
//! table or accept backlog is full.
//!
//! kcp-go opens a session for any datagram that decodes, so without a
//! policy one datagram per spoofed source address (or one captured
//! datagram replayed from many) fills a listener for good. The policy:
//!
//! 1. *Unproven* sessions go first, oldest first: those whose peer has not
//!    yet shown that it receives at its address — it acknowledged nothing
//!    the session sent, its datagrams span less than [`PROVEN_SPAN_MS`],
//!    and it has not delivered [`PROVEN_SEGMENTS`] segments in order over
//!    more than one datagram. A spoofed or replayed datagram opens exactly
//!    such a session; a real client proves itself with its first
//!    acknowledgement, one round trip after the server's first reply.
//! 2. Then the longest-idle session among those not *active* (silent for
//!    at least [`EndpointConfig::active_ms`](super::EndpointConfig::active_ms)),
//!    found by a bounded sweep of the table ([`SWEEP`] slots per eviction).
//! 3. Otherwise the new session is refused (`dropped_limit`): an active,
//!    proven session is never evicted.
//!
//! A full backlog evicts the oldest unproven session that is still waiting
//! to be accepted, or refuses (`dropped_backlog`). Every eviction is
//! counted (`evicted`) and closes the session with
//! [`CloseReason::Evicted`]. Costs are O(1) amortised for (1) (each session
//! enters the queue once) and O([`SWEEP`]) for (2), so a flood cannot make
//! a datagram cost O(sessions).

use super::{CloseReason, Endpoint, State};

/// A peer whose datagrams keep coming for this long counts as proven even
/// if it acknowledged nothing (a client that only uploads, to a server that
/// never replies).
pub(super) const PROVEN_SPAN_MS: u64 = 2_000;

/// A peer that delivered this many segments in order, in more than one
/// datagram, counts as proven too (a client uploading before the server
/// replies): a replayed datagram, or a forged first one, delivers at most
/// what one datagram holds.
pub(super) const PROVEN_SEGMENTS: u32 = 8;

/// Slots a sweep for the longest-idle session looks at, at most.
pub(super) const SWEEP: usize = 256;

impl Endpoint {
    /// Evicts one session so that a new one fits the table; false when none
    /// may go.
    pub(super) fn make_room(&mut self, t: u64) -> bool {
        while let Some(id) = self.unproven.pop_front() {
            match self.get(id) {
                Some(s) if !s.proven && s.state == State::Open => {
                    self.evict(id.slot);
                    return true;
                }
                // Proven, closed or freed since: never unproven again.
                _ => continue,
            }
        }
        match self.longest_idle(t) {
            Some(slot) => {
                self.evict(slot);
                true
            }
            None => false,
        }
    }

    /// Evicts the oldest unproven session still waiting to be accepted;
    /// false when there is none.
    pub(super) fn make_room_in_backlog(&mut self) -> bool {
        let found = self
            .accept_queue
            .iter()
            .position(|id| self.get(*id).is_some_and(|s| !s.proven && s.state == State::Open));
        let Some(at) = found else { return false };
        let id = self.accept_queue.remove(at).expect("found in the queue");
        self.evict(id.slot);
        true
    }

    /// The session idle longest among the next [`SWEEP`] slots that are
    /// open and not active.
    fn longest_idle(&mut self, t: u64) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let active = self.config.active_ms as u64;
        let mut best: Option<(u64, u32)> = None;
        for i in 0..SWEEP.min(n) {
            let slot = ((self.sweep as usize + i) % n) as u32;
            let Some(s) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            if s.state != State::Open || t < s.last_recv + active {
                continue;
            }
            if best.map_or(true, |(last, _)| s.last_recv < last) {
                best = Some((s.last_recv, slot));
            }
        }
        self.sweep = ((self.sweep as usize + SWEEP) % n) as u32;
        best.map(|(_, slot)| slot)
    }

    fn evict(&mut self, slot: u32) {
        self.stats.evicted += 1;
        self.end(slot, CloseReason::Evicted);
    }
}
