//! Time for the endpoint: a 64-bit millisecond clock extended from the
//! caller's wrapping 32-bit one, and a deadline heap whose cost is
//! O(log n) per re-arm and O(due) per tick.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Extends the caller's `u32` milliseconds (any origin, wrapping every 49.7
/// days) into a monotonic `u64`. A step backwards counts as no time.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: Option<u32>,
    now: u64,
}

impl Clock {
    /// Moves to `now_ms` and returns the extended time.
    pub(crate) fn advance(&mut self, now_ms: u32) -> u64 {
        if let Some(last) = self.last {
            let step = now_ms.wrapping_sub(last) as i32;
            if step > 0 {
                self.now += step as u64;
            }
        }
        self.last = Some(now_ms);
        self.now
    }

    /// The extended time of the last `advance`.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// The caller's clock value at extended time `t` (at or after now).
    pub(crate) fn wrap(&self, t: u64) -> u32 {
        let last = self.last.unwrap_or(0);
        last.wrapping_add(t.saturating_sub(self.now).min(u32::MAX as u64 / 2) as u32)
    }

    /// The extended time of `at`, a value of the caller's clock close to now.
    pub(crate) fn extend(&self, at: u32) -> u64 {
        let last = self.last.unwrap_or(0);
        let d = at.wrapping_sub(last) as i32;
        if d >= 0 {
            self.now + d as u64
        } else {
            self.now.saturating_sub(d.unsigned_abs() as u64)
        }
    }
}

/// Deadlines of slots. Each slot has at most one live entry: re-arming
/// later than the armed deadline keeps the earlier entry (the slot is then
/// woken early and re-armed), re-arming earlier pushes a new one and the old
/// entry goes stale; stale entries are skipped when popped. So the heap
/// holds at most about two entries per slot.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// The live deadline of each slot, `u64::MAX` when none.
    armed: Vec<u64>,
}

impl Timers {
    /// Arms `slot` for `deadline` unless it is armed earlier already.
    pub(crate) fn arm(&mut self, slot: u32, deadline: u64) {
        let i = slot as usize;
        if self.armed.len() <= i {
            self.armed.resize(i + 1, u64::MAX);
        }
        if deadline < self.armed[i] {
            self.armed[i] = deadline;
            self.heap.push(Reverse((deadline, slot)));
        }
    }

    /// Disarms `slot` (its entry goes stale).
    pub(crate) fn disarm(&mut self, slot: u32) {
        if let Some(a) = self.armed.get_mut(slot as usize) {
            *a = u64::MAX;
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next(&mut self) -> Option<u64> {
        while let Some(&Reverse((t, slot))) = self.heap.peek() {
            if self.armed.get(slot as usize) == Some(&t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops one slot due at or before `now` (it is disarmed).
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<u32> {
        let t = self.next()?;
        if t > now {
            return None;
        }
        let Reverse((_, slot)) = self.heap.pop().expect("peeked");
        self.armed[slot as usize] = u64::MAX;
        Some(slot)
    }

    /// Drops the stale entries and gives back the capacity the heap and the
    /// slot table do not need (after a burst).
    pub(crate) fn compact(&mut self) {
        let armed = &self.armed;
        self.heap
            .retain(|&Reverse((t, slot))| armed.get(slot as usize) == Some(&t));
        self.heap.shrink_to_fit();
        let used = self.armed.iter().rposition(|&a| a != u64::MAX).map_or(0, |i| i + 1);
        self.armed.truncate(used);
        self.armed.shrink_to_fit();
    }

    /// Entries in the heap, stale ones included (for tests and stats).
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_extends_across_the_u32_wrap_and_ignores_steps_back() {
        let mut c = Clock::default();
        assert_eq!(c.advance(u32::MAX - 5), 0);
        assert_eq!(c.advance(4), 10);
        assert_eq!(c.advance(2), 10, "a step back counts as no time");
        assert_eq!(c.advance(12), 20);
        assert_eq!(c.wrap(25), 17);
        assert_eq!(c.extend(17), 25);
        assert_eq!(c.extend(7), 15);
    }

    #[test]
    fn timers_pop_in_deadline_order_and_skip_stale_entries() {
        let mut t = Timers::default();
        t.arm(1, 50);
        t.arm(2, 30);
        t.arm(1, 20); // earlier: the entry at 50 goes stale
        t.arm(2, 40); // later: keeps 30
        t.arm(3, 10);
        t.disarm(3);
        assert_eq!(t.next(), Some(20));
        assert_eq!(t.pop_due(25), Some(1));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.pop_due(100), Some(2));
        assert_eq!(t.pop_due(100), None, "stale entries of 1 and 3 are skipped");
        assert_eq!(t.len(), 0);
    }
}
