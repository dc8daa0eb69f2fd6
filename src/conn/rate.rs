//! A connection's rate limit: a token bucket on the bytes that leave
//! (kcp-go's `SetRateLimit`, every datagram counted whole: headers, FEC
//! parity, ACKs, unreliable messages). What the bucket holds is the
//! budget of the core's next flush ([`crate::kcp::Kcp::set_send_budget`]):
//! data waits for tokens, ACKs never do (withholding them would only make
//! the peer retransmit). The level may go below zero by what a flush sent
//! beyond its data budget; the debt is paid before more data leaves, so
//! over time the bytes sent follow the rate.

/// A rate limit: `bytes_per_sec` on average, bursts of `burst` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Average rate, bytes per second (at least 1).
    pub bytes_per_sec: u32,
    /// Bytes that may leave at once after a quiet spell; 0 takes kcp-go's
    /// 64 datagrams of the MTU. A connection raises a burst below its MTU
    /// to the MTU, so that a full datagram can always leave.
    pub burst: u32,
}

impl RateLimit {
    /// The limit of `bytes_per_sec` (0 is none: `None`) and `burst` bytes.
    pub fn new(bytes_per_sec: u32, burst: u32) -> Option<RateLimit> {
        (bytes_per_sec > 0).then_some(RateLimit { bytes_per_sec, burst })
    }
}

/// Longest gap the bucket refills for at once (its level is capped at the
/// burst anyway; this keeps the arithmetic far from overflow).
const MAX_GAP_MS: u32 = 3_600_000;

/// The bucket of one connection. Levels are in thousandths of a byte, so
/// that a low rate refills exactly at any tick.
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    rate: u64,
    burst_milli: i64,
    level_milli: i64,
    last_ms: Option<u32>,
}

impl Bucket {
    /// A full bucket for `limit` on a connection of `mtu` bytes.
    pub(super) fn new(limit: RateLimit, mtu: u32) -> Bucket {
        let burst = match limit.burst {
            0 => 64 * u64::from(mtu),
            b => u64::from(b.max(mtu)),
        };
        let burst_milli = (burst * 1000) as i64;
        Bucket {
            rate: u64::from(limit.bytes_per_sec.max(1)),
            burst_milli,
            level_milli: burst_milli,
            last_ms: None,
        }
    }

    /// Adds what the time since the last refill earned (the clock is the
    /// connection's: ms, wrapping; a clock that goes back earns nothing).
    pub(super) fn refill(&mut self, now_ms: u32) {
        self.level_milli = self.level_at(now_ms);
        self.last_ms = Some(now_ms);
    }

    fn level_at(&self, now_ms: u32) -> i64 {
        let Some(last) = self.last_ms else {
            return self.level_milli;
        };
        let gap = now_ms.wrapping_sub(last);
        if gap > i32::MAX as u32 {
            return self.level_milli; // the clock went back
        }
        let earned = u64::from(gap.min(MAX_GAP_MS)) * self.rate;
        self.level_milli.saturating_add(earned as i64).min(self.burst_milli)
    }

    /// Whole bytes available now (0 while in debt).
    pub(super) fn available(&self) -> u32 {
        (self.level_milli.max(0) / 1000).min(i64::from(u32::MAX - 1)) as u32
    }

    /// Spends `bytes` (possibly into debt).
    pub(super) fn charge(&mut self, bytes: usize) {
        let milli = (bytes as i64).saturating_mul(1000);
        self.level_milli = self.level_milli.saturating_sub(milli);
    }

    /// Milliseconds from `now_ms` until `bytes` are available (0: now).
    pub(super) fn wait_ms(&self, now_ms: u32, bytes: u32) -> u32 {
        let need = i64::from(bytes) * 1000;
        let level = self.level_at(now_ms);
        if level >= need {
            return 0;
        }
        let missing = (need.min(self.burst_milli) - level).max(0) as u64;
        missing.div_ceil(self.rate).min(u64::from(MAX_GAP_MS)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_the_burst() {
        let mut b = Bucket::new(RateLimit::new(1000, 5000).unwrap(), 1400);
        b.refill(0);
        assert_eq!(b.available(), 5000);
        b.charge(5000);
        assert_eq!(b.available(), 0);
        b.refill(1); // 1 ms at 1000 B/s: one byte
        assert_eq!(b.available(), 1);
        b.refill(1000);
        assert_eq!(b.available(), 1000);
        b.refill(100_000);
        assert_eq!(b.available(), 5000);
    }

    #[test]
    fn debt_is_paid_before_bytes_are_available() {
        let mut b = Bucket::new(RateLimit::new(10_000, 0).unwrap(), 1000);
        b.refill(7);
        assert_eq!(b.available(), 64_000); // kcp-go's burst: 64 datagrams
        b.charge(70_000);
        assert_eq!(b.available(), 0);
        assert_eq!(b.wait_ms(7, 1000), 700); // 6,000 of debt + 1,000
        b.refill(7 + 599); // the debt is paid at 600 ms
        assert_eq!(b.available(), 0);
        b.refill(7 + 700);
        assert_eq!(b.available(), 1000);
    }

    #[test]
    fn a_slow_rate_refills_exactly_and_odd_clocks_are_safe() {
        let mut b = Bucket::new(RateLimit::new(3, 1).unwrap(), 100);
        assert_eq!(b.available(), 100); // a burst below the MTU is raised to it
        b.charge(100);
        b.refill(u32::MAX - 100);
        for t in 0..1000u32 {
            b.refill((u32::MAX - 100).wrapping_add(t)); // wraps through 0
        }
        assert_eq!(b.available(), 2); // 999 ms at 3 B/s
        b.refill(5); // back in time: nothing earned, nothing lost
        assert_eq!(b.available(), 2);
        // A wait is for at most the burst: (100,000 - 2,997) / 3 ms, rounded up.
        assert_eq!(b.wait_ms(5, u32::MAX), 32_335);
        assert!(RateLimit::new(0, 10).is_none());
    }
}
