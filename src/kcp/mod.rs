//! The KCP protocol core: safe, sans-IO, and byte-for-byte the behaviour of
//! `ikcp.c` 1.7.1 (skywind3000/kcp), quirks included.
//!
//! Bytes and the time go in ([`Kcp::input`], [`Kcp::send`], [`Kcp::update`]),
//! datagrams come out through a closure, and [`Kcp::check`] tells when to
//! call [`Kcp::update`] next. No sockets, clocks or threads.
//!
//! ```
//! use kcpx::kcp::Kcp;
//! let (mut a, mut b) = (Kcp::new(7), Kcp::new(7));
//! a.send(b"hello").unwrap();
//! let mut wire = Vec::new();
//! a.update(0, |_| {}); // ikcp.c's cwnd starts at 0: data leaves on the next flush
//! a.update(100, |d| wire.push(d.to_vec()));
//! for d in &wire { b.input(d).unwrap(); }
//! let mut buf = [0u8; 64];
//! let n = b.recv(&mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```
//!
//! Unlike ikcp.c, the four segment queues are contiguous rings (see
//! `ring.rs`), the flush buffer is held only while the connection is active,
//! and no input can make the core panic or allocate without bound beyond
//! what the windows admit.
#![forbid(unsafe_code)]

mod flush;
mod flushbuf;
mod input;
pub mod log;
mod pacing;
mod pool;
mod queue;
mod ring;
mod segment;
mod state;

use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::vec::Vec;
use core::num::NonZeroU32;

pub use flushbuf::FlushBuf;
pub use log::LogLines;
use pool::PayloadPool;
use ring::Ring;
pub use segment::OVERHEAD;
use segment::{RcvSeg, SndSeg};
pub(crate) use state::{InlineScalars, Scalars};
#[cfg(feature = "ffi")]
pub(crate) use state::{Tuning, Vars};

/// Protocol constants of ikcp.c 1.7.1.
pub mod consts {
    /// Minimum RTO in nodelay mode, ms.
    pub const RTO_NDL: u32 = 30;
    /// Minimum RTO in normal mode, ms.
    pub const RTO_MIN: u32 = 100;
    /// Initial RTO, ms.
    pub const RTO_DEF: u32 = 200;
    /// Maximum RTO, ms.
    pub const RTO_MAX: u32 = 60000;
    /// Segment command: data.
    pub const CMD_PUSH: u8 = 81;
    /// Segment command: acknowledgement.
    pub const CMD_ACK: u8 = 82;
    /// Segment command: window probe (ask the peer's window).
    pub const CMD_WASK: u8 = 83;
    /// Segment command: window answer (tell our window).
    pub const CMD_WINS: u8 = 84;
    /// Probe flag: send a window probe.
    pub const ASK_SEND: u32 = 1;
    /// Probe flag: send a window answer.
    pub const ASK_TELL: u32 = 2;
    /// Default send window, segments.
    pub const WND_SND: u32 = 32;
    /// Default (and minimum) receive window, segments.
    pub const WND_RCV: u32 = 128;
    /// Default MTU, bytes.
    pub const MTU_DEF: u32 = 1400;
    /// Default update interval, ms.
    pub const INTERVAL: u32 = 100;
    /// Retransmissions of one segment after which `state` marks the link dead.
    pub const DEADLINK: u32 = 20;
    /// Initial slow-start threshold, segments.
    pub const THRESH_INIT: u32 = 2;
    /// Minimum slow-start threshold, segments.
    pub const THRESH_MIN: u32 = 2;
    /// First window-probe delay, ms.
    pub const PROBE_INIT: u32 = 7000;
    /// Largest window-probe delay, ms.
    pub const PROBE_LIMIT: u32 = 120000;
    /// Default `fastlimit`: fast retransmissions of one segment at most.
    pub const FASTACK_LIMIT: i32 = 5;
    /// Most fragments one message may have.
    pub const MAX_FRAGMENTS: u32 = WND_RCV - 1;
}
use consts::*;

/// Wrap-safe difference of two 32-bit times or sequence numbers.
#[inline]
pub(crate) fn timediff(later: u32, earlier: u32) -> i32 {
    later.wrapping_sub(earlier) as i32
}

/// Why [`Kcp::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The message needs more than 127 fragments (ikcp_send's -2), or memory
    /// could not be allocated.
    TooLarge,
}

/// [`Kcp::set_nodelay`]'s settings (ikcp_nodelay's four arguments); `None`
/// leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoDelay {
    /// 0 normal, 1 no-delay (minimum RTO 30 ms instead of 100), 2 also a
    /// gentler RTO backoff.
    pub nodelay: Option<u32>,
    /// The flush interval in ms, clamped to 10..=5000.
    pub interval: Option<u32>,
    /// Fast retransmit after this many duplicate ACKs; 0 turns it off.
    pub resend: Option<u32>,
    /// Nonzero turns congestion control off (ikcp.c keeps the value as
    /// given in `nocwnd`).
    pub nc: Option<u32>,
}

impl NoDelay {
    /// All four settings: `NoDelay::new(1, 10, 2, true)` is ikcp.c's
    /// fastest mode, `ikcp_nodelay(kcp, 1, 10, 2, 1)`.
    pub fn new(nodelay: u32, interval: u32, resend: u32, no_congestion_control: bool) -> NoDelay {
        NoDelay {
            nodelay: Some(nodelay),
            interval: Some(interval),
            resend: Some(resend),
            nc: Some(no_congestion_control as u32),
        }
    }
}

/// Why [`Kcp::set_mtu`] refused an MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtuError {
    /// Below 50 bytes or above `i32::MAX` (ikcp_setmtu's -1).
    OutOfRange,
    /// The flush buffer for it could not be allocated (-2).
    NoMemory,
}

/// Why [`Kcp::recv`] or [`Kcp::peek`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing received yet (ikcp_recv's -1).
    Empty,
    /// The first message has not fully arrived (-2).
    Incomplete,
    /// The buffer is smaller than the next message (-3).
    BufferTooSmall,
}

/// Why [`Kcp::input`] stopped. Segments before the bad one keep their
/// effects, exactly as in ikcp.c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// Shorter than one header, or a segment of another conversation (-1).
    ConvOrShort,
    /// A segment's length field exceeds the datagram (-2).
    BadLength,
    /// Unknown command byte (-3).
    BadCommand,
}

impl InputError {
    /// The ikcp_input return code.
    pub fn code(self) -> i32 {
        match self {
            InputError::ConvOrShort => -1,
            InputError::BadLength => -2,
            InputError::BadCommand => -3,
        }
    }
}

/// Where a resumable flush stands (see `flush.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlushCursor {
    stage: flush::Stage,
    /// The control-segment template: window and una computed when the
    /// flush started, sn/ts of the last ACK written, conv as the flush
    /// started.
    conv: u32,
    wnd: u32,
    una: u32,
    last_sn: u32,
    last_ts: u32,
    current: u32,
    next_ack: usize,
    ack_count: usize,
    cwnd: u32,
    resent: u32,
    rtomin: u32,
    next_sn: u32,
    end_sn: u32,
    change: u32,
    lost: bool,
    /// What the segment scan found so far (with the hint's covered
    /// segments folded in): the range of resend times as offsets from
    /// `current` (`scan_min > scan_max` while empty), largest fast-ACK count.
    scan_min: u32,
    scan_max: u32,
    scan_fastack: u32,
    /// `Kcp::flush_count` when this flush began.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    flush_count: u32,
    /// Emit the pending ACKs and nothing else ([`Kcp::flush_acks`]).
    acks_only: bool,
    /// A flush ran from inside this one's `output` (C re-entry): the
    /// segments it changed are not all in this scan's summary.
    nested: bool,
    /// The last step emitted a full buffer; encode before checking again.
    skip_check: bool,
    /// A segment was chosen for sending but not yet encoded.
    pending: bool,
    /// The buffer holds an emitted datagram; clear it before writing again.
    emitted: bool,
}

/// What the last complete scan of the send buffer found about the segments
/// it covered (sequence numbers before `end_sn`), so that a flush can skip
/// them when none can be due and scan only newer segments. Only the scan
/// changes a segment's `resendts`; ACK removals only make the hint
/// conservative; fast-ACK counts are tracked as they grow.
///
/// The covered `resendts` lie in the arc `due_at ..= due_at + span`. ikcp.c
/// compares each segment with `(int)(current - resendts) >= 0`, which wraps:
/// after a clock step of about 2^31 ms a segment far in the past looks far
/// in the future, and a later one is due. The hint says "none due" only if
/// every time in the arc is not due by that same comparison (see
/// [`ScanHint::none_due`]), so skipping gives exactly ikcp.c's result.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScanHint {
    valid: bool,
    /// Start of the arc holding the covered segments' `resendts`.
    due_at: u32,
    /// Length of that arc.
    span: u32,
    /// Largest `fastack` of the covered segments.
    max_fastack: u32,
    /// The covered segments are those with sn before this.
    end_sn: u32,
}

impl ScanHint {
    /// Whether no time in the arc is due at `current` by ikcp.c's wrapping
    /// compare: `current - t` as i32 is negative, i.e. `t - current` (mod
    /// 2^32) lies in `1..=2^31`, for both ends of the arc and all between.
    pub(crate) fn none_due(&self, current: u32) -> bool {
        let first = self.due_at.wrapping_sub(current);
        first >= 1 && u64::from(first) + u64::from(self.span) <= 1 << 31
    }
}

/// A KCP control block. `A` is the allocator its queues use (the C layer
/// passes one that honours `ikcp_allocator`); `S` is where its scalar state
/// lives (inline by default; the C layer's `struct IKCPCB`, see `state.rs`).
pub struct Kcp<A: Allocator + Clone = Global, S: Scalars = InlineScalars> {
    /// The scalars: the one copy of them (see [`Scalars`]).
    pub(crate) v: S,
    snd_queue: Ring<SndSeg<A>, A>,
    /// In-flight segments, consecutive sequence numbers ending at `snd_nxt`;
    /// acknowledged segments in the middle become `None` (tombstones).
    snd_buf: Ring<Option<SndSeg<A>>, A>,
    /// Live (not yet acknowledged) segments in `snd_buf`.
    nsnd_buf: u32,
    rcv_buf: Ring<RcvSeg<A>, A>,
    rcv_queue: Ring<RcvSeg<A>, A>,
    /// What `rcv_buf` and `rcv_queue` hold, in [`RcvSeg::charge`] units
    /// (payload bytes plus a queue entry per segment), kept as they change.
    rcv_buf_bytes: u32,
    rcv_queue_bytes: u32,
    /// Most `rcv_buf_bytes` a segment other than the next in order
    /// (`sn != rcv_nxt`) may bring: beyond it the segment is dropped, not
    /// acknowledged (see [`Kcp::set_out_of_order_cap`]). `u32::MAX`, no cap,
    /// is ikcp.c's behaviour and the default; `ikcp_*` never sets it.
    ooo_cap: u32,
    /// Segments refused by `ooo_cap` so far (wrapping).
    ooo_refused: u32,
    /// Moving segments from `rcv_buf` to `rcv_queue` failed for lack of
    /// memory; the next receive retries.
    rcv_move_failed: bool,
    /// `(sn, ts)` pairs, the same memory layout as ikcp.c's `acklist`. Only
    /// the first `ackcount` are pending: as in ikcp.c, a flush "clears" the
    /// list by resetting the count, and a flush it interrupted (from inside
    /// `output`) still reads the entries it counted.
    acklist: Vec<[u32; 2], A>,
    ackcount: usize,
    /// Flushes begun so far (wrapping): tells a flush that another one ran
    /// from inside its `output`.
    flush_count: u32,
    /// The capacity ikcp.c's acklist would have (8, 16, 32… entries).
    ackblock: u32,
    buffer: FlushBuf<A>,
    payloads: PayloadPool<A>,
    /// Keep the flush buffer and pooled payloads when a flush finds the
    /// connection quiet (the owner frees them later, with
    /// [`Kcp::shed_idle_memory`]); ikcp.c's behaviour is to free at once.
    retain_idle: bool,
    /// Timeout retransmissions back off linearly, capped at `RTO_MAX`
    /// (kcp-go's rule) instead of ikcp.c's multiplying one (see
    /// [`Kcp::set_linear_backoff`]).
    linear_backoff: bool,
    /// kcpx's sender rules beside ikcp.c's (see `pacing.rs`): a byte
    /// budget for data segments.
    pacing: pacing::Pacing,
    cursor: FlushCursor,
    scan_hint: ScanHint,
    logs: LogLines<A>,
    alloc: A,
}

impl Kcp<Global, InlineScalars> {
    /// A control block for conversation `conv` with ikcp.c's defaults:
    /// windows 32/128, MTU 1400, interval 100 ms, RTO 200 ms.
    pub fn new(conv: u32) -> Self {
        Kcp::new_in(conv, Global)
    }
}

impl<A: Allocator + Clone> Kcp<A, InlineScalars> {
    /// Like [`Kcp::new`], with every allocation made through `alloc`.
    pub fn new_in(conv: u32, alloc: A) -> Self {
        Kcp::with_scalars(InlineScalars::new(conv), alloc)
    }
}

impl<A: Allocator + Clone, S: Scalars> Kcp<A, S> {
    /// A control block whose scalars live in `v`, which must hold
    /// ikcp_create's values ([`Vars::new`], [`Tuning::new`]).
    pub(crate) fn with_scalars(v: S, alloc: A) -> Self {
        Kcp {
            v,
            snd_queue: Ring::new_in(alloc.clone()),
            snd_buf: Ring::new_in(alloc.clone()),
            nsnd_buf: 0,
            rcv_buf: Ring::new_in(alloc.clone()),
            rcv_queue: Ring::new_in(alloc.clone()),
            rcv_buf_bytes: 0,
            rcv_queue_bytes: 0,
            ooo_cap: u32::MAX,
            ooo_refused: 0,
            rcv_move_failed: false,
            acklist: Vec::new_in(alloc.clone()),
            ackcount: 0,
            flush_count: 0,
            ackblock: 0,
            buffer: FlushBuf::new_in(alloc.clone()),
            payloads: PayloadPool::new_in(alloc.clone()),
            retain_idle: false,
            linear_backoff: false,
            pacing: pacing::Pacing::default(),
            cursor: FlushCursor::default(),
            scan_hint: ScanHint::default(),
            logs: LogLines::new_in(alloc.clone()),
            alloc,
        }
    }

    // ----- configuration (ikcp_setmtu, ikcp_wndsize, ikcp_nodelay, …) -----

    /// Sets the MTU (whole datagram); the MSS becomes `mtu - 24`. Segments
    /// already queued are not re-split. Like ikcp.c it allocates the flush
    /// buffer for the new MTU, and keeps the old MTU if that fails.
    pub fn set_mtu(&mut self, mtu: u32) -> Result<(), MtuError> {
        if mtu < 50 || mtu > i32::MAX as u32 {
            return Err(MtuError::OutOfRange);
        }
        let Some(buffer) = FlushBuf::for_mtu(self.alloc.clone(), mtu as usize) else {
            return Err(MtuError::NoMemory);
        };
        self.v.mtu = mtu;
        self.v.mss = mtu - OVERHEAD;
        self.buffer = buffer;
        Ok(())
    }

    /// Sets the send and receive windows in segments; `None` keeps the
    /// current value. The receive window never drops below 128 (the largest
    /// message).
    pub fn set_window(&mut self, snd: Option<NonZeroU32>, rcv: Option<NonZeroU32>) {
        if let Some(snd) = snd {
            self.v.snd_wnd = snd.get();
        }
        if let Some(rcv) = rcv {
            self.v.rcv_wnd = rcv.get().max(WND_RCV);
        }
    }

    /// ikcp_nodelay: no-delay mode, flush interval, fast retransmit and
    /// congestion control (see [`NoDelay`]); `None` fields are left alone.
    pub fn set_nodelay(&mut self, settings: NoDelay) {
        let NoDelay {
            nodelay,
            interval,
            resend,
            nc,
        } = settings;
        if let Some(nodelay) = nodelay {
            self.v.nodelay = nodelay;
            self.v.rx_minrto = if nodelay != 0 { RTO_NDL as i32 } else { RTO_MIN as i32 };
        }
        if let Some(interval) = interval {
            self.set_interval(interval);
        }
        if let Some(resend) = resend {
            self.v.tuning_mut().fastresend = resend.min(i32::MAX as u32) as i32;
        }
        if let Some(nc) = nc {
            self.v.tuning_mut().nocwnd = nc.min(i32::MAX as u32) as i32;
        }
    }

    /// Sets the flush interval, clamped to 10..=5000 ms.
    pub fn set_interval(&mut self, interval: u32) {
        self.v.interval = interval.clamp(10, 5000);
    }

    /// Stream mode: messages are concatenated into full segments (frg 0).
    pub fn set_stream(&mut self, on: bool) {
        self.v.tuning_mut().stream = on as i32;
    }

    /// Lower bound of the retransmission timeout in ms.
    pub fn set_min_rto(&mut self, ms: u32) {
        self.v.rx_minrto = ms.min(i32::MAX as u32) as i32;
    }

    /// A segment transmitted this many times marks the link dead.
    pub fn set_dead_link(&mut self, xmits: u32) {
        self.v.dead_link = xmits;
    }

    /// Enables log lines whose mask intersects `mask` (see [`log::mask`]);
    /// read them with [`Kcp::take_logs`]. 0 disables logging.
    pub fn set_log_mask(&mut self, mask: i32) {
        self.v.tuning_mut().logmask = mask;
    }

    // ----- state -----

    /// The conversation id.
    pub fn conv(&self) -> u32 {
        self.v.conv
    }
    /// Current MTU.
    pub fn mtu(&self) -> u32 {
        self.v.mtu
    }
    /// Current MSS (payload bytes per segment).
    pub fn mss(&self) -> u32 {
        self.v.mss
    }
    /// The send window, in segments.
    pub fn snd_wnd(&self) -> u32 {
        self.v.snd_wnd
    }

    /// Segments queued or in flight, not yet acknowledged.
    pub fn wait_snd(&self) -> u32 {
        self.nsnd_buf.wrapping_add(self.snd_queue.len() as u32)
    }
    /// The oldest sequence number not acknowledged by the peer (everything
    /// before it was; 0 until the first acknowledgement of a new
    /// conversation).
    pub fn snd_una(&self) -> u32 {
        self.v.snd_una
    }
    /// The next sequence number expected from the peer: every segment
    /// before it was received in order.
    pub fn rcv_nxt(&self) -> u32 {
        self.v.rcv_nxt
    }
    /// The next sequence number to send: segments `snd_una..snd_nxt` are in
    /// flight.
    pub fn snd_nxt(&self) -> u32 {
        self.v.snd_nxt
    }
    /// True once one segment was transmitted `dead_link` times.
    pub fn is_dead(&self) -> bool {
        self.v.state == u32::MAX
    }
    /// The time of the last update (ms).
    pub fn current(&self) -> u32 {
        self.v.current
    }
    /// Smoothed RTT in ms.
    pub fn srtt(&self) -> i32 {
        self.v.rx_srtt
    }
    /// Current retransmission timeout in ms.
    pub fn rto(&self) -> i32 {
        self.v.rx_rto
    }
    /// Total retransmissions by timeout.
    pub fn xmit(&self) -> u32 {
        self.v.xmit
    }
    /// Stores the lengths of the four segment queues in the scalars'
    /// `nrcv_buf`, `nsnd_buf`, `nrcv_que` and `nsnd_que` (which the core
    /// itself never reads), for an embedder that shows them.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    #[inline]
    pub(crate) fn count_queues(&mut self) {
        let counts = (
            self.rcv_buf.len() as u32,
            self.nsnd_buf,
            self.rcv_queue.len() as u32,
            self.snd_queue.len() as u32,
        );
        let v = &mut *self.v;
        (v.nrcv_buf, v.nsnd_buf, v.nrcv_que, v.nsnd_que) = counts;
    }
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn ackcount(&self) -> u32 {
        self.ackcount as u32
    }
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn ackblock(&self) -> u32 {
        self.ackblock
    }
    /// Index in `snd_buf` of sequence number `sn`, if it lies in the ring
    /// (its sequence numbers are consecutive and end at `snd_nxt`).
    #[inline]
    pub(crate) fn snd_index(&self, sn: u32) -> Option<usize> {
        let base = self.v.snd_nxt.wrapping_sub(self.snd_buf.len() as u32);
        let i = sn.wrapping_sub(base) as usize;
        (i < self.snd_buf.len()).then_some(i)
    }
    /// Pointer to the pending `(sn, ts)` ACK pairs (NULL when none are
    /// stored), shown to C as `IKCPCB.acklist`.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn acklist_ptr(&self) -> *const [u32; 2] {
        if self.acklist.capacity() == 0 {
            core::ptr::null()
        } else {
            self.acklist.as_ptr()
        }
    }
    /// Pointer to the flush buffer (NULL while none is allocated).
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn buffer_ptr(&self) -> *const u8 {
        self.buffer.as_ptr()
    }

    /// Caps what the receive buffer may hold out of order. The window the
    /// connection advertises shrinks to what the cap admits: the next
    /// segment in order and as many full segments after it as `bytes` holds
    /// (payload plus about 40 bytes of bookkeeping per segment). A data
    /// segment beyond that window that would bring the receive buffer over
    /// `bytes` is dropped **without being acknowledged**, as if lost: the
    /// peer sends it again later, when there may be room. What the window
    /// admits always passes (the next in order advances delivery, and a
    /// sender honouring the window is never refused), and segments already
    /// buffered stay (they were acknowledged: dropping one would lose it for
    /// good), so a lowered cap takes effect as the buffer drains; the buffer
    /// holds at most the larger of `bytes` (plus one segment) and what it
    /// held when the cap was lowered. A cap below one receive window of full
    /// segments slows a transfer to the smaller window. `None` (the default,
    /// ikcp.c's behaviour) removes the cap.
    pub fn set_out_of_order_cap(&mut self, bytes: Option<usize>) {
        self.ooo_cap = bytes.map_or(u32::MAX, |b| b.min(u32::MAX as usize - 1) as u32);
    }

    /// The receive window the out-of-order cap admits, in segments from
    /// `rcv_nxt` on: the next in order, and as many full segments after it
    /// as the cap holds.
    pub(crate) fn ooo_cap_window(&self) -> u32 {
        let full = segment::RcvSeg::<A>::charge_for(self.v.mss as usize).max(1);
        1 + self.ooo_cap / full
    }

    /// Bytes held in the receive buffer (segments waiting for an earlier
    /// one, and in-order segments for which the receive queue has no room),
    /// in the units of [`Kcp::set_out_of_order_cap`]. O(1).
    pub fn out_of_order_bytes(&self) -> usize {
        self.rcv_buf_bytes as usize
    }

    /// Bytes in the receive queue, delivered in order but not yet taken by
    /// [`Kcp::recv`], in the same units. O(1).
    pub fn rcv_queue_bytes(&self) -> usize {
        self.rcv_queue_bytes as usize
    }

    /// Segments dropped unacknowledged by [`Kcp::set_out_of_order_cap`]
    /// so far (wrapping).
    pub fn out_of_order_refused(&self) -> u32 {
        self.ooo_refused
    }

    /// Heap bytes held by this control block beyond `size_of::<Kcp>()`.
    pub fn heap_bytes(&self) -> usize {
        self.snd_queue.heap_bytes()
            + self.snd_buf.heap_bytes()
            + self.rcv_buf.heap_bytes()
            + self.rcv_queue.heap_bytes()
            + self.snd_queue.iter().map(|s| s.data.capacity()).sum::<usize>()
            + self.snd_buf.iter().flatten().map(|s| s.data.capacity()).sum::<usize>()
            + self.rcv_buf.iter().map(|s| s.data.capacity()).sum::<usize>()
            + self.rcv_queue.iter().map(|s| s.data.capacity()).sum::<usize>()
            + self.acklist.capacity() * 8
            + self.buffer.capacity()
            + self.payloads.heap_bytes()
    }

    // ----- logging -----

    #[inline]
    fn can_log(&self, mask: u32) -> bool {
        (mask & self.v.tuning().logmask as u32) != 0 && self.v.logging()
    }

    /// Whether log lines are waiting to be taken.
    pub fn has_logs(&self) -> bool {
        !self.logs.is_empty()
    }

    /// Takes the log lines queued so far (leaving an empty queue behind).
    pub fn take_logs(&mut self) -> LogLines<A> {
        core::mem::replace(&mut self.logs, LogLines::new_in(self.alloc.clone()))
    }

    /// Gives back a drained line queue so its memory is reused.
    pub fn restore_logs(&mut self, mut lines: LogLines<A>) {
        if self.logs.is_empty() {
            lines.clear();
            self.logs = lines;
        }
    }

    // ----- time -----

    /// Advances the clock to `current` (ms, wrapping) and flushes when the
    /// interval has elapsed; datagrams go to `output`.
    pub fn update(&mut self, current: u32, output: impl FnMut(&[u8])) {
        if self.advance_clock(current) {
            self.flush(output);
        }
    }

    /// Sets the clock (ms, wrapping) without flushing: the time the next
    /// [`Kcp::input`] uses for its RTT samples (ikcp.c's `current` field).
    pub fn set_current(&mut self, current: u32) {
        self.v.current = current;
    }

    /// The timer part of [`Kcp::update`]: sets the clock and returns whether
    /// a flush is due now (then call [`Kcp::flush`]).
    #[inline]
    pub fn advance_clock(&mut self, current: u32) -> bool {
        self.v.clock_step(current)
    }

    /// Nothing to send, acknowledge or probe, and the peer's window open:
    /// updates would produce nothing until the next input or send, so a
    /// scheduler may leave the connection asleep until then.
    pub fn is_idle(&self) -> bool {
        self.is_quiet() && self.v.probe == 0 && self.v.rmt_wnd != 0
    }

    /// When to call [`Kcp::update`] next (absolute ms), at most one interval
    /// from `current`; `current` itself if an update is due now.
    pub fn check(&self, current: u32) -> u32 {
        let v = &*self.v;
        if v.updated == 0 {
            return current;
        }
        let mut ts_flush = v.ts_flush;
        let d = timediff(current, ts_flush);
        if !(-10000..10000).contains(&d) {
            ts_flush = current;
        }
        if timediff(current, ts_flush) >= 0 {
            return current;
        }
        let tm_flush = timediff(ts_flush, current);
        let mut tm_packet = i32::MAX;
        let (first, second) = self.snd_buf.as_slices();
        for half in [first, second] {
            for seg in half.iter().flatten().flatten() {
                let diff = timediff(seg.resendts, current);
                if diff <= 0 {
                    return current;
                }
                tm_packet = tm_packet.min(diff);
            }
        }
        let mut minimal = tm_packet.min(tm_flush) as u32;
        if minimal >= v.interval {
            minimal = v.interval;
        }
        current.wrapping_add(minimal)
    }
}

#[cfg(test)]
mod tests;
