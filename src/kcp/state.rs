//! The scalar state of a control block, and where it lives.
//!
//! A [`Kcp`](super::Kcp) keeps its queues itself, but its scalars (sequence
//! numbers, timers, windows, RTT estimator, tunables) live wherever its
//! [`Scalars`] store puts them: inline for a Rust owner ([`InlineScalars`],
//! the default), or inside a larger structure an embedder lays out. The C
//! ABI's `struct IKCPCB` is such a structure (`src/ffi/ikcp.rs`): it
//! contains [`Vars`] and [`Tuning`] at ikcp.h's offsets, so the fields C
//! code reads and writes *are* the core's state and nothing is copied.
//!
//! This module is private: its types are public only so that they may
//! appear in `Kcp`'s signature (its default type parameter).

use super::consts::*;
use super::OVERHEAD;
use core::ops::{Deref, DerefMut};

/// The scalars of a control block, named, typed and ordered as the fields
/// `conv` to `incr` of ikcp.c 1.7.1's `struct IKCPCB` (`#[repr(C)]`, so that
/// an embedder can place it at those offsets).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vars {
    pub conv: u32,
    pub mtu: u32,
    pub mss: u32,
    pub state: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    pub ts_recent: u32,
    pub ts_lastack: u32,
    pub ssthresh: u32,
    pub rx_rttval: i32,
    pub rx_srtt: i32,
    pub rx_rto: i32,
    pub rx_minrto: i32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub rmt_wnd: u32,
    pub cwnd: u32,
    pub probe: u32,
    pub current: u32,
    pub interval: u32,
    pub ts_flush: u32,
    pub xmit: u32,
    /// The lengths of the four segment queues (`rcv_buf`, `snd_buf`,
    /// `rcv_queue`, `snd_queue`): the core derives them from its queues and
    /// never reads these; `Kcp::count_queues` stores them here for
    /// an embedder that shows them.
    pub nrcv_buf: u32,
    pub nsnd_buf: u32,
    pub nrcv_que: u32,
    pub nsnd_que: u32,
    pub nodelay: u32,
    pub updated: u32,
    pub ts_probe: u32,
    pub probe_wait: u32,
    pub dead_link: u32,
    pub incr: u32,
}

/// The tunables ikcp.h keeps after its pointers (`fastresend` to
/// `logmask`), `#[repr(C)]` for the same reason as [`Vars`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub fastresend: i32,
    pub fastlimit: i32,
    pub nocwnd: i32,
    pub stream: i32,
    pub logmask: i32,
}

impl Vars {
    /// ikcp_create's values.
    pub(crate) fn new(conv: u32) -> Vars {
        Vars {
            conv,
            mtu: MTU_DEF,
            mss: MTU_DEF - OVERHEAD,
            state: 0,
            snd_una: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            ts_recent: 0,
            ts_lastack: 0,
            ssthresh: THRESH_INIT,
            rx_rttval: 0,
            rx_srtt: 0,
            rx_rto: RTO_DEF as i32,
            rx_minrto: RTO_MIN as i32,
            snd_wnd: WND_SND,
            rcv_wnd: WND_RCV,
            rmt_wnd: WND_RCV,
            cwnd: 0,
            probe: 0,
            current: 0,
            interval: INTERVAL,
            ts_flush: INTERVAL,
            xmit: 0,
            nrcv_buf: 0,
            nsnd_buf: 0,
            nrcv_que: 0,
            nsnd_que: 0,
            nodelay: 0,
            updated: 0,
            ts_probe: 0,
            probe_wait: 0,
            dead_link: DEADLINK,
            incr: 0,
        }
    }

    /// The timer step of ikcp_update: starts the clock on the first call,
    /// resynchronises `ts_flush` when it is more than 10 s away, and returns
    /// whether a flush is due (advancing `ts_flush`).
    #[inline]
    pub(crate) fn clock_step(&mut self, current: u32) -> bool {
        self.current = current;
        if self.updated == 0 {
            self.updated = 1;
            self.ts_flush = current;
        }
        let mut slap = super::timediff(current, self.ts_flush);
        if !(-10000..10000).contains(&slap) {
            self.ts_flush = current;
            slap = 0;
        }
        if slap < 0 {
            return false;
        }
        self.ts_flush = self.ts_flush.wrapping_add(self.interval);
        if super::timediff(current, self.ts_flush) >= 0 {
            self.ts_flush = current.wrapping_add(self.interval);
        }
        true
    }
}

impl Tuning {
    /// ikcp_create's values.
    pub(crate) fn new() -> Tuning {
        Tuning {
            fastresend: 0,
            fastlimit: FASTACK_LIMIT,
            nocwnd: 0,
            stream: 0,
            logmask: 0,
        }
    }
}

/// Where a [`Kcp`](super::Kcp) keeps its scalars: it dereferences to the
/// [`Vars`] and lends the [`Tuning`]. There is one store per control block
/// and the core reads and writes the scalars only through it, so whatever
/// structure holds them is the one copy of the state.
pub trait Scalars: DerefMut<Target = Vars> {
    /// The tunables.
    fn tuning(&self) -> &Tuning;
    /// The tunables, to change them.
    fn tuning_mut(&mut self) -> &mut Tuning;
    /// Whether someone takes log lines: the core produces lines only then
    /// (and only those whose mask intersects `logmask`).
    fn logging(&self) -> bool {
        true
    }
}

/// The scalars kept inside the `Kcp` itself (a Rust owner's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineScalars {
    vars: Vars,
    tuning: Tuning,
}

impl InlineScalars {
    pub(crate) fn new(conv: u32) -> InlineScalars {
        InlineScalars {
            vars: Vars::new(conv),
            tuning: Tuning::new(),
        }
    }
}

impl Deref for InlineScalars {
    type Target = Vars;
    #[inline]
    fn deref(&self) -> &Vars {
        &self.vars
    }
}

impl DerefMut for InlineScalars {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vars {
        &mut self.vars
    }
}

impl Scalars for InlineScalars {
    #[inline]
    fn tuning(&self) -> &Tuning {
        &self.tuning
    }
    #[inline]
    fn tuning_mut(&mut self) -> &mut Tuning {
        &mut self.tuning
    }
}
