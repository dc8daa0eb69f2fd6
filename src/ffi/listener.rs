//! `kcpx_listen`, `kcpx_listener_*`, `kcpx_accept`: many kcp-go compatible
//! sessions on one UDP socket, for C. Thin wrappers over
//! `crate::net::Listener`, written with the `ptr` toolkit; the sessions a
//! listener hands out, events and settings are in `session.rs`.

use super::conn::{code, code_of, count, kcpx_config};
use super::ptr::{guard, maybe_out, maybe_str, opt_take, try_mut, try_out, try_ref, try_take, Handle};
use super::session::{event, kcpx_event, kcpx_session};
use crate::endpoint::SessionId;
use crate::error::{Error, KCPX_ERR_INTERNAL, KCPX_ERR_INVALID, KCPX_ERR_NULL, KCPX_OK};
use crate::net::{Listener, ListenerStats};
use core::ffi::{c_char, c_int};
use core::ptr::null_mut;
use std::collections::HashMap;
use std::net::SocketAddr;

/// A listener: many sessions on one UDP socket. Opaque; from `kcpx_listen`,
/// freed by `kcpx_listener_close`, which also closes and frees every
/// session of it not closed yet.
///
/// Threading: a listener and its sessions are driven by one thread at a
/// time (any thread); distinct listeners and dialed sessions are
/// independent and may run on different threads at once.
#[allow(non_camel_case_types)]
pub struct kcpx_listener {
    pub(super) inner: Listener,
    /// The handles given out, by session: each from `Handle::into_ptr`,
    /// freed by `kcpx_session_close` (which removes it here) or by
    /// `kcpx_listener_close`.
    pub(super) handles: HashMap<SessionId, *mut kcpx_session>,
}

impl Handle for kcpx_listener {}

/// A listener's counters (`kcpx_listener_stats`), or a dialed session's
/// socket's (`kcpx_session_socket_stats`), kcp-go's SNMP names where they
/// apply. docs/troubleshooting.md maps each error counter to its likely
/// cause.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Default)]
pub struct kcpx_listener_counters {
    /// Datagrams and bytes received (InPkts, InBytes).
    pub in_pkts: u64,
    pub in_bytes: u64,
    /// Datagrams too short, too long or malformed (InErrs).
    pub in_errs: u64,
    /// Datagrams failing the CRC-32 check: wrong key, corruption, forgery.
    pub in_csum_errors: u64,
    /// Datagrams KCP refused (KCPInErrors).
    pub kcp_in_errors: u64,
    /// Sessions opened by peers (PassiveOpens), dialed (ActiveOpens).
    pub passive_opens: u64,
    pub active_opens: u64,
    /// Sessions open now (CurrEstab), most at once (MaxConn).
    pub curr_estab: u64,
    pub max_conn: u64,
    /// Datagrams from unknown addresses that cannot open a session.
    pub dropped_unknown: u64,
    /// Datagrams dropped: accept backlog full, session limit reached.
    pub dropped_backlog: u64,
    pub dropped_limit: u64,
    /// Sessions replaced by a restarted peer, closed idle, closed dead.
    pub replaced: u64,
    pub closed_idle: u64,
    pub closed_dead_link: u64,
    /// Sessions evicted (KCPX_CLOSE_EVICTED).
    pub evicted: u64,
    /// Datagrams of a new conversation from an active session's address,
    /// refused (see `kcpx_config_set_active_window`); a dialed session's
    /// datagrams from the server's address with another conv, refused.
    pub dropped_replace: u64,
    pub dropped_conv: u64,
    /// Receive and send system calls, datagrams read and written.
    pub recv_syscalls: u64,
    pub send_syscalls: u64,
    pub recv_datagrams: u64,
    pub sent_datagrams: u64,
    /// Sends deferred for a full socket buffer; failed; dropped.
    pub send_would_block: u64,
    pub send_errors: u64,
    pub send_dropped: u64,
    /// The socket's buffer sizes as the kernel set them, in bytes.
    pub rcvbuf: u64,
    pub sndbuf: u64,
    /// Linux: UDP GSO messages sent (each several datagrams), GRO buffers
    /// received holding several datagrams, GSO sends the kernel refused
    /// (the socket then sends one datagram per message; at most 1).
    pub gso_sends: u64,
    pub gro_receives: u64,
    pub gso_fallbacks: u64,
    // ----- memory limits (issue 17 item 4; `kcpx_config_set_memory_limits`) -----
    /// Out-of-order KCP segments dropped unacknowledged by a session's cap
    /// (the peer sends them again).
    pub mem_dropped_segments: u64,
    /// FEC shards kept for reconstruction dropped by a session's cap or the
    /// budget (no data lost).
    pub mem_dropped_shards: u64,
    /// Times the listener went over its memory budget and started shedding.
    pub mem_pressure: u64,
    /// Sessions evicted to keep within the budget (also counted in `evicted`).
    pub mem_evicted: u64,
    /// Bytes the listener's sessions hold for delivery now.
    pub buffered_bytes: u64,
}

impl From<ListenerStats> for kcpx_listener_counters {
    fn from(s: ListenerStats) -> Self {
        let (e, k) = (s.endpoint, s.socket);
        kcpx_listener_counters {
            in_pkts: e.in_pkts,
            in_bytes: e.in_bytes,
            in_errs: e.in_errs,
            in_csum_errors: e.in_csum_errors,
            kcp_in_errors: e.kcp_in_errors,
            passive_opens: e.passive_opens,
            active_opens: e.active_opens,
            curr_estab: e.curr_estab,
            max_conn: e.max_conn,
            dropped_unknown: e.dropped_unknown,
            dropped_backlog: e.dropped_backlog,
            dropped_limit: e.dropped_limit,
            replaced: e.replaced,
            closed_idle: e.closed_idle,
            closed_dead_link: e.closed_dead_link,
            evicted: e.evicted,
            dropped_replace: e.dropped_replace,
            dropped_conv: e.dropped_conv,
            recv_syscalls: k.recv_syscalls,
            send_syscalls: k.send_syscalls,
            recv_datagrams: k.recv_datagrams,
            sent_datagrams: k.sent_datagrams,
            send_would_block: k.send_would_block,
            send_errors: k.send_errors,
            send_dropped: k.send_dropped,
            rcvbuf: k.rcvbuf,
            sndbuf: k.sndbuf,
            gso_sends: k.gso_sends,
            gro_receives: k.gro_receives,
            gso_fallbacks: k.gso_fallbacks,
            // memory limits (issue 17 item 4)
            mem_dropped_segments: e.mem_dropped_segments,
            mem_dropped_shards: e.mem_dropped_shards,
            mem_pressure: e.mem_pressure,
            mem_evicted: e.mem_evicted,
            buffered_bytes: e.buffered_bytes,
        }
    }
}

/// Builds a listener or dialer from the C arguments of `kcpx_listen` or
/// `kcpx_dial`: its handle, or NULL; `*err` (if `err` is not NULL) is set
/// either way (KCPX_OK on success).
///
/// # Safety
/// As `kcpx_listen`.
pub(super) unsafe fn open<T: Handle>(
    addr: *const c_char,
    cfg: *const kcpx_config,
    err: *mut c_int,
    make: impl FnOnce(SocketAddr, &crate::net::Config) -> Result<T, Error>,
) -> *mut T {
    let made = guard(Err(Error::Internal), || {
        let c = try_ref!(cfg, Err(Error::Null));
        let at = match maybe_str!(addr) {
            None => return Err(Error::Null),
            Some(text) => text.ok().and_then(|t| t.parse().ok()).ok_or(Error::Addr)?,
        };
        make(at, &c.cfg)
    });
    if let Some(e) = maybe_out!(err) {
        e.write(code(made.as_ref().map(|_| ()).map_err(|e| *e)));
    }
    made.map_or(null_mut(), Handle::into_ptr)
}

// ----- listeners -----

/// Listens on `addr`: `"127.0.0.1:4000"`, `"[::1]:4000"`, `"0.0.0.0:4000"`;
/// port 0 picks a free port (see `kcpx_listener_local_port`). Numeric
/// addresses only. Returns the listener, or NULL with `*err` (if `err` is
/// not NULL) set to KCPX_ERR_NULL, KCPX_ERR_ADDR, KCPX_ERR_IO (bind failed:
/// see errno), or a configuration code (KCPX_ERR_KEY, _MTU, _INVALID, ...).
/// The listener keeps its own copy of `cfg`. Free with
/// `kcpx_listener_close`.
///
/// # Safety
/// `addr` is NULL or NUL-terminated; `cfg` NULL or live; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listen(
    addr: *const c_char,
    cfg: *const kcpx_config,
    err: *mut c_int,
) -> *mut kcpx_listener {
    // SAFETY: `open` has this export's contract.
    unsafe {
        open(addr, cfg, err, |at, c| {
            Listener::bind(at, c).map(|inner| kcpx_listener {
                inner,
                handles: HashMap::new(),
            })
        })
    }
}

/// The listener's local port, or KCPX_ERR_NULL / KCPX_ERR_IO.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_local_port(l: *const kcpx_listener) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        code_of(try_ref!(l, KCPX_ERR_NULL).inner.local_addr(), |a| c_int::from(a.port()))
    })
}

/// The listener's UDP socket, for the caller's poll/epoll loop. The
/// contract: readable means call `kcpx_listener_update`; before blocking
/// again, block at most until `kcpx_listener_check`'s time. An update reads
/// a bounded batch (about 4,096 datagrams); when more are still waiting,
/// `kcpx_listener_check` returns `now_ms` (update again at once), so the
/// loop works with level-triggered poll/epoll and with EPOLLET alike. Do
/// not read, write or close it. KCPX_ERR_NULL for NULL.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_fd(l: *const kcpx_listener) -> c_int {
    guard(KCPX_ERR_INTERNAL, || try_ref!(l, KCPX_ERR_NULL).inner.fd())
}

/// Never blocks: writes what sends queued, reads the pending datagrams (at
/// most about 4,096: see `kcpx_listener_fd`), demultiplexes, runs the
/// timers due and writes their datagrams. The ACKs of what it read
/// leave at the next check, update, wait or flush, in the replies sent
/// meanwhile. Returns the datagrams read (>= 0) or a negative code
/// (KCPX_ERR_NULL, KCPX_ERR_IO).
///
/// One clock: a listener and its sessions run every timer on kcpx's own
/// monotonic clock (`kcpx_now_ms`), also inside `kcpx_session_send`,
/// `_flush`, `_close` and the `_wait` functions, which take no time. So
/// `now_ms` may be the caller's own millisecond clock (any origin, wrapping
/// at 2^32, e.g. a game loop's tick time) or `kcpx_now_ms()`: update does
/// not use it, and `kcpx_listener_check` answers on the clock it is given.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_update(l: *mut kcpx_listener, now_ms: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        code_of(try_mut!(l, KCPX_ERR_NULL).inner.update(now_ms), count)
    })
}

/// When `kcpx_listener_update` is due next: an absolute time on the
/// caller's clock, of which `now_ms` is the current value (the caller's own
/// or `kcpx_now_ms()`: see `kcpx_listener_update`), at most one second
/// after `now_ms` (`now_ms` itself
/// when due now — also when the last update stopped at its read budget with
/// datagrams still waiting — or for NULL). First writes the datagrams that
/// `kcpx_session_send` and `kcpx_session_close` queued on the listener's
/// sessions, so a loop that computes its poll timeout here leaves nothing
/// unsent while it blocks.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_check(l: *mut kcpx_listener, now_ms: u32) -> u32 {
    guard(now_ms, || try_mut!(l, now_ms).inner.check(now_ms))
}

/// Writes what sends queued, blocks until a datagram arrives, a timer is
/// due, or `timeout_ms` passed (0: does not block), then updates. For
/// programs without their own loop.
/// Returns as `kcpx_listener_update`, or KCPX_ERR_INVALID for a negative
/// timeout.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_wait(l: *mut kcpx_listener, timeout_ms: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let l = try_mut!(l, KCPX_ERR_NULL);
        let Ok(t) = u32::try_from(timeout_ms) else {
            return KCPX_ERR_INVALID;
        };
        code_of(l.inner.wait(t), count)
    })
}

/// Writes now the datagrams that `kcpx_session_send` and
/// `kcpx_session_close` queued on the listener's sessions, and the ACKs
/// of what they received that no reply carried (in as few `sendmmsg`
/// calls as they fit). `kcpx_listener_check`, `_update` and `_wait` do
/// the same; call this where the loop blocks without them.
/// Returns KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_flush(l: *mut kcpx_listener) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(l, KCPX_ERR_NULL).inner.write_queued();
        KCPX_OK
    })
}

/// The handle of an accepted session, made on first use.
fn handle_of(l: &mut kcpx_listener, at: *mut kcpx_listener, id: SessionId) -> *mut kcpx_session {
    *l.handles
        .entry(id)
        .or_insert_with(|| kcpx_session::accepted(at, id).into_ptr())
}

/// Takes the next event of the listener's sessions into `*ev`: returns 1
/// (filled), 0 (none), or KCPX_ERR_NULL. An ACCEPT event hands out its new
/// session (see `kcpx_accept`).
///
/// # Safety
/// `l` is NULL or live; `ev` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_poll_event(l: *mut kcpx_listener, ev: *mut kcpx_event) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let at = l;
        let l = try_mut!(l, KCPX_ERR_NULL);
        let out = try_out!(ev, KCPX_ERR_NULL);
        match l.inner.poll_event() {
            Some(e) => {
                out.write(event(e, |id| handle_of(l, at, id)));
                1
            }
            None => 0,
        }
    })
}

/// The next new session not handed out yet (by an ACCEPT event or an
/// earlier call), or NULL. The caller owns it: `kcpx_session_close`.
///
/// # Safety
/// `l` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_accept(l: *mut kcpx_listener) -> *mut kcpx_session {
    guard(null_mut(), || {
        let at = l;
        let l = try_mut!(l, null_mut());
        l.inner.accept().map_or(null_mut(), |id| handle_of(l, at, id))
    })
}

/// Copies the listener's counters into `*out`. Returns KCPX_OK or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `l` is NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_stats(l: *const kcpx_listener, out: *mut kcpx_listener_counters) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let l = try_ref!(l, KCPX_ERR_NULL);
        try_out!(out, KCPX_ERR_NULL).write(l.inner.stats().into());
        KCPX_OK
    })
}

/// Closes the listener: every session of it flushes once and is freed,
/// with every `kcpx_session *` of it not yet closed (do not use them
/// afterwards); then the socket closes. NULL is ignored.
///
/// # Safety
/// `l` is NULL or from `kcpx_listen` and not yet closed.
#[no_mangle]
pub unsafe extern "C" fn kcpx_listener_close(l: *mut kcpx_listener) {
    guard((), || {
        let l = try_take!(l);
        for (_, h) in l.handles.iter() {
            // SAFETY: each handle in the map came from `into_ptr` and is
            // freed only here or by kcpx_session_close, which removes it
            // from the map first; the caller does not use them afterwards
            // (this export's documented contract).
            drop(unsafe { opt_take(*h) });
        }
        drop(l);
    })
}
