//! Keepalive, dead links and draining (`docs/secure-wire.md`, sections 7
//! and 9), sans-IO timers. Only authenticated datagrams count as life.

/// A dead link is declared after this many keepalive periods of silence.
pub const DEAD_AFTER_PERIODS: u64 = 3;
/// How long a closed session keeps answering with CLOSE.
pub const DRAIN_MS: u64 = 3000;
/// At most one repeated CLOSE per this long while draining.
pub const CLOSE_REPEAT_MS: u64 = 200;

/// What a keepalive timer wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivenessAction {
    /// Nothing now.
    Nothing,
    /// Send a PING with this ID.
    Ping(u32),
    /// Nothing authentic arrived for 3 periods: close with `DEAD_LINK`.
    Dead,
}

/// The keepalive of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liveness {
    period_ms: u64,
    last_received_ms: u64,
    last_ping_ms: Option<u64>,
    next_id: u32,
}

impl Liveness {
    /// A session that last heard from its peer at `now_ms`, pinging after
    /// `keepalive_ms` of silence (0: off).
    pub fn new(keepalive_ms: u32, now_ms: u64) -> Liveness {
        Liveness {
            period_ms: u64::from(keepalive_ms),
            last_received_ms: now_ms,
            last_ping_ms: None,
            next_id: 0,
        }
    }

    /// An authenticated, new datagram arrived.
    pub fn on_authenticated(&mut self, now_ms: u64) {
        self.last_received_ms = self.last_received_ms.max(now_ms);
        self.last_ping_ms = None;
    }

    /// When [`Liveness::handle_timeout`] wants to run (`None` when off).
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.period_ms == 0 {
            return None;
        }
        let dead = self.last_received_ms + DEAD_AFTER_PERIODS * self.period_ms;
        let ping = match self.last_ping_ms {
            None => self.last_received_ms + self.period_ms,
            Some(p) => p + self.period_ms,
        };
        Some(ping.min(dead))
    }

    /// At `now_ms`: a PING to send, the death of the link, or nothing.
    pub fn handle_timeout(&mut self, now_ms: u64) -> LivenessAction {
        if self.period_ms == 0 {
            return LivenessAction::Nothing;
        }
        let silent = now_ms.saturating_sub(self.last_received_ms);
        if silent >= DEAD_AFTER_PERIODS * self.period_ms {
            return LivenessAction::Dead;
        }
        let due = match self.last_ping_ms {
            None => silent >= self.period_ms,
            Some(p) => now_ms.saturating_sub(p) >= self.period_ms,
        };
        if !due {
            return LivenessAction::Nothing;
        }
        self.last_ping_ms = Some(now_ms);
        self.next_id = self.next_id.wrapping_add(1);
        LivenessAction::Ping(self.next_id)
    }
}

/// A session that sent CLOSE: it answers datagrams that still open with
/// another CLOSE, at most one per 200 ms, for 3 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draining {
    until_ms: u64,
    last_close_ms: u64,
}

impl Draining {
    /// Draining from `now_ms`, when the first CLOSE was sent.
    pub fn new(now_ms: u64) -> Draining {
        Draining {
            until_ms: now_ms + DRAIN_MS,
            last_close_ms: now_ms,
        }
    }

    /// A datagram opened at `now_ms`: whether to send CLOSE again.
    pub fn on_datagram(&mut self, now_ms: u64) -> bool {
        if self.is_over(now_ms) || now_ms < self.last_close_ms + CLOSE_REPEAT_MS {
            return false;
        }
        self.last_close_ms = now_ms;
        true
    }

    /// Whether the session may be forgotten.
    pub fn is_over(&self, now_ms: u64) -> bool {
        now_ms >= self.until_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_session_pings_each_period_and_dies_after_three() {
        let mut l = Liveness::new(1000, 0);
        assert_eq!(l.poll_timeout(), Some(1000));
        assert_eq!(l.handle_timeout(999), LivenessAction::Nothing);
        assert_eq!(l.handle_timeout(1000), LivenessAction::Ping(1));
        assert_eq!(l.handle_timeout(1500), LivenessAction::Nothing, "one ping per period");
        assert_eq!(l.poll_timeout(), Some(2000));
        assert_eq!(l.handle_timeout(2000), LivenessAction::Ping(2));
        assert_eq!(l.poll_timeout(), Some(3000));
        assert_eq!(l.handle_timeout(3000), LivenessAction::Dead);
    }

    #[test]
    fn an_answer_keeps_it_alive_and_zero_is_off() {
        let mut l = Liveness::new(1000, 0);
        assert_eq!(l.handle_timeout(1000), LivenessAction::Ping(1));
        l.on_authenticated(1100);
        assert_eq!(l.poll_timeout(), Some(2100));
        assert_eq!(l.handle_timeout(2099), LivenessAction::Nothing);
        assert_eq!(
            l.handle_timeout(4099),
            LivenessAction::Ping(2),
            "silent again since 1100"
        );
        assert_eq!(l.handle_timeout(4100), LivenessAction::Dead);
        let mut off = Liveness::new(0, 0);
        assert_eq!(off.poll_timeout(), None);
        assert_eq!(off.handle_timeout(u64::MAX), LivenessAction::Nothing);
    }

    #[test]
    fn draining_repeats_close_at_most_every_200_ms_for_3_s() {
        let mut d = Draining::new(10_000);
        assert!(!d.on_datagram(10_100));
        assert!(d.on_datagram(10_200));
        assert!(!d.on_datagram(10_399));
        assert!(d.on_datagram(10_400));
        assert!(!d.is_over(12_999));
        assert!(d.is_over(13_000));
        assert!(!d.on_datagram(13_000));
    }
}
