//! `kcpx_dial`, `kcpx_session_*`: kcp-go compatible sessions over real UDP
//! sockets, for C; their events; and the settings of `kcpx_config` that
//! apply to listeners and dialers. Thin wrappers over `crate::net` and
//! `crate::endpoint`, written with the `ptr` toolkit. Listeners
//! (`kcpx_listen`, `kcpx_listener_*`, `kcpx_accept`) are in `listener.rs`,
//! re-exported here.
//!
//! Ownership follows the file-descriptor model. A `kcpx_session *` stays
//! valid until the caller passes it to `kcpx_session_close`, also after its
//! CLOSED event, when send and recv return KCPX_ERR_CLOSED.
//! `kcpx_listener_close` closes and frees every session of that listener the
//! caller has not closed yet. A new session is handed out exactly once: by
//! its ACCEPT event or by `kcpx_accept`, whichever the caller uses first.
//!
//! Threading: a listener and its sessions are driven by one thread at a
//! time; distinct listeners and dialed sessions are independent.

pub use super::listener::*;

use super::conn::{code, code_of, count, kcpx_config, kcpx_stats};
use super::listener::open;
use super::ptr::{guard, try_mut, try_out, try_ref, try_slice_mut, try_slice_or_empty, try_take, Handle};
use crate::conn::RateLimit;
use crate::endpoint::{CloseReason, Endpoint, Event, SessionId};
use crate::error::{Error, KCPX_ERR_BUFFER_TOO_SMALL, KCPX_ERR_INTERNAL, KCPX_ERR_INVALID, KCPX_ERR_NULL, KCPX_OK};
use crate::net::{now_ms, Dialer, Listener};
use core::ffi::{c_char, c_int, c_void};
use core::ptr::null_mut;

/// A new session (`kcpx_event.session` is the new session).
pub const KCPX_EVENT_ACCEPT: c_int = 1;
/// Data arrived: call `kcpx_session_recv` until KCPX_ERR_AGAIN (the event is
/// edge-triggered: the next one comes only after that).
pub const KCPX_EVENT_READABLE: c_int = 2;
/// `kcpx_session_send` returned KCPX_ERR_AGAIN before; there is room again.
pub const KCPX_EVENT_WRITABLE: c_int = 3;
/// The session closed (`kcpx_event.reason` says why); close it with
/// `kcpx_session_close`.
pub const KCPX_EVENT_CLOSED: c_int = 4;
/// A session has unreliable messages to read: call
/// `kcpx_session_recv_datagram` until it returns KCPX_ERR_AGAIN
/// (edge-triggered, as KCPX_EVENT_READABLE).
pub const KCPX_EVENT_DATAGRAM: c_int = 5;

/// Closed by `kcpx_session_close`.
pub const KCPX_CLOSE_LOCAL: c_int = 1;
/// Nothing received for the idle timeout (`kcpx_config_set_idle_timeout`).
pub const KCPX_CLOSE_IDLE: c_int = 2;
/// Data in flight went unacknowledged for the dead-link time
/// (`kcpx_config_set_dead_link_time`, 15 s by default).
pub const KCPX_CLOSE_DEAD_LINK: c_int = 3;
/// The peer's address started a new conversation (a restarted kcp-go
/// client) after the session had been silent for the active window.
pub const KCPX_CLOSE_REPLACED: c_int = 4;
/// The listener closed.
pub const KCPX_CLOSE_LISTENER: c_int = 5;
/// The listener evicted the session to make room for another one or to keep
/// within its memory budget (it had delivered nothing yet, was the longest
/// idle, or held the most undeliverable data).
pub const KCPX_CLOSE_EVICTED: c_int = 6;

/// How long `kcpx_session_close` on a dialed session blocks at most while
/// its queued data is acknowledged, in ms (`kcpx_session_close_linger`
/// chooses another time).
pub const KCPX_DIAL_CLOSE_LINGER_MS: u32 = 2000;

/// A session, accepted from a listener or dialed. Opaque.
///
/// Ownership follows the file-descriptor model: a `kcpx_session *` stays
/// valid until the caller passes it to `kcpx_session_close`, also after its
/// KCPX_EVENT_CLOSED (idle, dead link, replaced), when send and recv return
/// KCPX_ERR_CLOSED; `kcpx_listener_close` frees the sessions of that
/// listener the caller has not closed yet. A new session is handed out
/// exactly once: by its KCPX_EVENT_ACCEPT or by `kcpx_accept`, whichever the
/// caller uses first. `kcpx_session_send` makes the datagrams at once
/// when the window allows (kcp-go's write path), not only at the next
/// update; they are written to the socket, those of all the listener's
/// sessions together, at the next `kcpx_listener_check`, `_update`, `_wait`
/// or `_flush` (`kcpx_session_check`, `_update`, `_wait` or `_flush` for a
/// dialed session), or at once when 64 are waiting.
///
/// Return codes by the session's state, one rule for every call. "Closed"
/// means its KCPX_EVENT_CLOSED happened (taken or not); what it received
/// before stays readable ("data left") until read ("drained"). A stale or
/// freed session is not a state: do not pass a closed pointer.
///
/// | call                     | open                           | closed, data left        | closed, drained      |
/// |--------------------------|--------------------------------|--------------------------|----------------------|
/// | `send`, len > 0          | bytes queued, or AGAIN         | CLOSED                   | CLOSED               |
/// | `send`, len 0            | 0                              | CLOSED                   | CLOSED               |
/// | `recv`, len > 0          | bytes, or AGAIN                | bytes (BUFFER_TOO_SMALL) | CLOSED               |
/// | `recv`, len 0            | BUFFER_TOO_SMALL, or AGAIN     | BUFFER_TOO_SMALL         | CLOSED               |
/// | `peeksize`               | size, or AGAIN                 | size                     | CLOSED               |
/// | `flush`                  | OK                             | CLOSED                   | CLOSED               |
/// | `wait` (dialed)          | 1 when there is work, or 0     | 1 at once                | 1 at once            |
/// | `poll_event` (dialed)    | 1 or 0                         | 1 (the CLOSED event), then 0 | same             |
/// | `stats`, `rtt`, `conv`, `remote_addr` | answer            | answer                   | answer               |
/// | `close`, `close_linger`  | frees                          | frees                    | frees                |
///
/// BUFFER_TOO_SMALL: something waits that the buffer cannot hold (message
/// mode: a longer message; any data for len 0). AGAIN on an open session
/// only: nothing to read yet, or the send queue is full. `wait` and
/// `poll_event` on an accepted session return KCPX_ERR_INVALID (its
/// listener drives it), in every state.
#[allow(non_camel_case_types)]
pub struct kcpx_session {
    kind: Kind,
    user: *mut c_void,
}

impl Handle for kcpx_session {}

enum Kind {
    Accepted {
        listener: *mut kcpx_listener,
        id: SessionId,
    },
    Dialed(Box<Dialer>),
}

/// Something that happened to a session.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct kcpx_event {
    /// KCPX_EVENT_ACCEPT, _READABLE, _WRITABLE, _DATAGRAM or _CLOSED.
    pub kind: c_int,
    /// The session it happened to.
    pub session: *mut kcpx_session,
    /// For KCPX_EVENT_CLOSED: KCPX_CLOSE_*; 0 otherwise.
    pub reason: c_int,
}

fn reason_code(r: CloseReason) -> c_int {
    match r {
        CloseReason::Local => KCPX_CLOSE_LOCAL,
        CloseReason::Idle => KCPX_CLOSE_IDLE,
        CloseReason::DeadLink => KCPX_CLOSE_DEAD_LINK,
        CloseReason::Replaced => KCPX_CLOSE_REPLACED,
        CloseReason::Listener => KCPX_CLOSE_LISTENER,
        CloseReason::Evicted => KCPX_CLOSE_EVICTED,
        // Only secure sessions close so, and the C API cannot configure
        // one yet: KCPX_CLOSE_REMOTE comes with `kcpx_config_set_secure_psk`.
        CloseReason::Remote { .. } => KCPX_CLOSE_LISTENER,
    }
}

/// The monotonic millisecond clock (any origin; wraps at 2^32) on which
/// listeners and sessions run all their timers. Passing it as `now_ms` is
/// optional: the update and check functions of listeners and dialed
/// sessions accept the caller's own clock (see `kcpx_listener_update`).
#[no_mangle]
pub extern "C" fn kcpx_now_ms() -> u32 {
    guard(0, now_ms)
}

// ----- configuration of sessions -----

/// A session that heard from its peer less than `ms` milliseconds ago is
/// *active*: a listener neither replaces it when a datagram of a new
/// conversation with sn 0 comes from its address (kcp-go's rule for a
/// restarted client; the attempt is dropped and counted in
/// `dropped_replace`), nor evicts it to make room. A restarted client then
/// replaces its old session once that one has been silent for `ms`.
/// Default 5,000; 0 = kcp-go's rule (any such datagram replaces). Without
/// a cipher anyone who can send with a session's address can still replace
/// it after `ms` of silence; with a cipher, replaying a captured first
/// datagram can. Returns KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_active_window(cfg: *mut kcpx_config, ms: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).cfg.endpoint.set_active_window(ms);
        KCPX_OK
    })
}

/// A session whose oldest unacknowledged segment has waited `ms`
/// milliseconds for an acknowledgement closes with KCPX_CLOSE_DEAD_LINK
/// (reported within about `ms`; retransmission timeouts then grow
/// linearly, kcp-go's rule, and never exceed 60 s). Default 15,000. 0 =
/// KCP's rule instead: 20 retransmissions of one segment with ikcp.c's
/// multiplying backoff (hours with the default settings). Returns KCPX_OK
/// or KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_dead_link_time(cfg: *mut kcpx_config, ms: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).cfg.endpoint.set_dead_link_time(ms);
        KCPX_OK
    })
}

/// Sessions that receive nothing for `ms` milliseconds close with
/// KCPX_CLOSE_IDLE; 0 = never (kcp-go's behaviour). Default 60,000 (one
/// minute: kcp-go clients send nothing when they close, so without it
/// their sessions would stay for good). Applications that stay silent
/// longer without a keepalive of their own set more, or 0. Returns
/// KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_idle_timeout(cfg: *mut kcpx_config, ms: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).cfg.endpoint.set_idle_timeout(ms);
        KCPX_OK
    })
}

/// A listener's accept backlog (new sessions not accepted yet; default
/// 4096, kcp-go's is 128) and session limit (open and closing sessions;
/// default 16384). A session waiting in the backlog sends nothing, not
/// even ACKs, until it is accepted. When either is full, a session whose
/// peer has not yet proven that it receives at its address (it
/// acknowledged nothing the session sent, has been sending for less than
/// 2 s and delivered fewer than 8 segments in order) is evicted to make
/// room, oldest first; for the table, else
/// the longest-idle session that is not active (see
/// `kcpx_config_set_active_window`). An evicted session that was accepted
/// gets KCPX_EVENT_CLOSED with KCPX_CLOSE_EVICTED and stays the
/// application's until `kcpx_session_close` (up to `max_sessions` such
/// sessions are held beside the limit). What still finds no room is
/// dropped and counted (`dropped_backlog`, `dropped_limit`); evictions in
/// `evicted`. Returns KCPX_OK, KCPX_ERR_NULL, or KCPX_ERR_INVALID unless
/// both are >= 1 (the limit at most 2^30).
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_limits(cfg: *mut kcpx_config, backlog: c_int, max_sessions: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let (Ok(b), Ok(m)) = (usize::try_from(backlog), usize::try_from(max_sessions)) else {
            return KCPX_ERR_INVALID;
        };
        code(try_mut!(cfg, KCPX_ERR_NULL).cfg.endpoint.set_limits(b, m))
    })
}

/// Memory limits of a session's received data (issue 17 item 4), in bytes
/// (payload plus a few dozen per segment or FEC shard).
///
/// `session_bytes` caps, for each session, both the out-of-order data KCP
/// buffers (segments waiting for an earlier one) and FEC's kept shards:
/// beyond it an out-of-order segment is dropped without being acknowledged
/// (the peer sends it again; the next segment in order always passes) and
/// the oldest kept shard goes; the window a session advertises shrinks to
/// what its cap admits. Default 262144 (256 KiB, above the default receive
/// window of 128 full segments: no transfer at the default windows is
/// slowed; raise it with the windows).
///
/// `listener_bytes` is a listener's budget for all its sessions together
/// (out-of-order, received and not read, FEC kept shards). Beyond it the
/// listener sheds: every session's cap drops to 16 KiB (or `session_bytes`
/// if lower) and FEC's kept shards go; if it is still over, the sessions that
/// delivered nothing to the application yet, then those holding the most
/// out-of-order data beyond 16 KiB, are closed with KCPX_CLOSE_EVICTED (their
/// unread data discarded), most bytes first, down to three quarters of the
/// budget; a session that delivered data and holds no more than 16 KiB out
/// of order is never evicted. It may overshoot by an eighth between two
/// shedding passes. Default 33554432 (32 MiB): 1,000 hostile peers that
/// withhold sequence number 0 then cost about 33 KiB of heap each (43 KiB
/// with FEC 10/3). Dialed sessions have only the per-session cap. The
/// counters `mem_*` and `buffered_bytes` of `kcpx_listener_counters` report it.
///
/// 0 selects the default of either; SIZE_MAX turns it off. Returns KCPX_OK,
/// KCPX_ERR_NULL, or KCPX_ERR_INVALID (the configuration unchanged) for a
/// `session_bytes` below 4096 or a `listener_bytes` below `session_bytes`
/// (after defaults are applied). Not thread-safe on one `cfg`.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_memory_limits(
    cfg: *mut kcpx_config,
    session_bytes: usize,
    listener_bytes: usize,
) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let c = try_mut!(cfg, KCPX_ERR_NULL);
        code(c.cfg.endpoint.set_memory_limits(session_bytes, listener_bytes))
    })
}

/// SO_RCVBUF and SO_SNDBUF of new sockets in bytes (default 4 MiB, as
/// kcptun; the kernel caps it at net.core.rmem_max/wmem_max; the listener
/// counters report what it set). Returns KCPX_OK, KCPX_ERR_NULL, or
/// KCPX_ERR_INVALID outside 4096..=2^30.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_sockbuf(cfg: *mut kcpx_config, bytes: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let Ok(b) = usize::try_from(bytes) else {
            return KCPX_ERR_INVALID;
        };
        code(try_mut!(cfg, KCPX_ERR_NULL).cfg.set_sockbuf(b))
    })
}

/// `SO_REUSEPORT` on new listeners' sockets: `on` non-zero lets several
/// listeners (one per thread or process, each made with this setting) bind
/// the same address and port; the kernel spreads peers over them by a hash
/// of the 4-tuple. Default off. Returns KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_reuseport(cfg: *mut kcpx_config, on: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).cfg.reuseport = on != 0;
        KCPX_OK
    })
}

/// UDP GSO and GRO on new sockets where the kernel has them (Linux; `on`
/// non-zero, the default); off: `sendmmsg`/`recvmmsg` of one datagram per
/// message. Returns KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_offload(cfg: *mut kcpx_config, on: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).cfg.offload = on != 0;
        KCPX_OK
    })
}

/// Receive coalescing of new listeners and dialers, in microseconds (0,
/// the default: off; at most 100000): while datagrams keep arriving,
/// `kcpx_listener_wait` (and `kcpx_session_wait`) sleep this long instead
/// of waking for each datagram, then read what accumulated in one batch —
/// fewer wake-ups and system calls per datagram for busy servers, at the
/// price of up to this much added latency; an idle socket still wakes at
/// the first datagram. Loops of their own (epoll) do the same by waiting
/// at least this long. Returns KCPX_OK, KCPX_ERR_INVALID (out of range) or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_coalesce(cfg: *mut kcpx_config, us: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        code(try_mut!(cfg, KCPX_ERR_NULL).cfg.set_coalesce(us))
    })
}

/// Flush policies of sessions: `on_send` non-zero makes the datagrams
/// inside `kcpx_session_send` as far as the window allows (kcp-go's write
/// path; default on); `on_input` non-zero sends the ACKs of what sessions
/// received (and newly allowed data) at the listener's next check, update,
/// wait or flush (default on), so they ride in the replies the program
/// sent in between, instead of at the next interval. Returns KCPX_OK or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_flush(cfg: *mut kcpx_config, on_send: c_int, on_input: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL)
            .cfg
            .endpoint
            .set_flush(on_send != 0, on_input != 0);
        KCPX_OK
    })
}

/// The C form of an event from the endpoint, making handles as needed.
pub(super) fn event(event: Event, handle: impl FnOnce(SessionId) -> *mut kcpx_session) -> kcpx_event {
    let (kind, id, reason) = match event {
        Event::Accept(id) => (KCPX_EVENT_ACCEPT, id, 0),
        Event::Readable(id) => (KCPX_EVENT_READABLE, id, 0),
        Event::Writable(id) => (KCPX_EVENT_WRITABLE, id, 0),
        Event::Datagram(id) => (KCPX_EVENT_DATAGRAM, id, 0),
        Event::Closed(id, r) => (KCPX_EVENT_CLOSED, id, reason_code(r)),
    };
    kcpx_event {
        kind,
        session: handle(id),
        reason,
    }
}

// ----- dialed sessions -----

/// Opens a session to `addr` (`"1.2.3.4:4000"`, `"[::1]:4000"`) from its own
/// UDP socket on an ephemeral port, with a random conv; datagrams from
/// other addresses are ignored. Returns the session, or NULL with `*err`
/// set (as `kcpx_listen`). Free with `kcpx_session_close`.
///
/// # Safety
/// As `kcpx_listen`.
#[no_mangle]
pub unsafe extern "C" fn kcpx_dial(addr: *const c_char, cfg: *const kcpx_config, err: *mut c_int) -> *mut kcpx_session {
    // SAFETY: `open` has this export's contract.
    unsafe {
        open(addr, cfg, err, |at, c| {
            Dialer::connect(at, c).map(|d| kcpx_session {
                kind: Kind::Dialed(Box::new(d)),
                user: null_mut(),
            })
        })
    }
}

/// The session operations, on an accepted or a dialed session.
enum Target<'a> {
    Accepted(&'a mut Listener, SessionId),
    Dialed(&'a mut Dialer),
}

/// The session's read-only operations.
#[derive(Clone, Copy)]
enum View<'a> {
    Accepted(&'a Listener, SessionId),
    Dialed(&'a Dialer),
}

impl<'a> View<'a> {
    /// The endpoint that holds the session, and its id there.
    fn endpoint(self) -> (&'a Endpoint, SessionId) {
        match self {
            View::Accepted(l, id) => (l.endpoint(), id),
            View::Dialed(d) => (d.endpoint(), d.id()),
        }
    }
}

impl kcpx_session {
    /// The handle of a session accepted by the listener at `listener` (the
    /// pointer C holds, so that the session reaches it as C's calls do).
    pub(super) fn accepted(listener: *mut kcpx_listener, id: SessionId) -> kcpx_session {
        kcpx_session {
            kind: Kind::Accepted { listener, id },
            user: null_mut(),
        }
    }

    /// The session's operations.
    fn target(&mut self) -> Target<'_> {
        match &mut self.kind {
            // SAFETY: the listener of an accepted session lives as long as
            // the session's handle (kcpx_listener_close frees its handles
            // with it), so the caller's obligation that `s` is live covers
            // it; no other reference to it exists, since listener and
            // sessions are driven by one thread at a time and no listener
            // call is in progress during a session call.
            Kind::Accepted { listener, id } => Target::Accepted(unsafe { &mut (**listener).inner }, *id),
            Kind::Dialed(d) => Target::Dialed(d),
        }
    }

    /// The session's read-only operations.
    fn view(&self) -> View<'_> {
        match &self.kind {
            // SAFETY: as in `target` (live, and not mutably borrowed).
            Kind::Accepted { listener, id } => View::Accepted(unsafe { &(**listener).inner }, *id),
            Kind::Dialed(d) => View::Dialed(d),
        }
    }
}

/// A dialed session's UDP socket for the caller's poll loop (readable
/// means call `kcpx_session_update`, then block at most until
/// `kcpx_session_check`'s time, which is `now_ms` while datagrams the
/// update's batch left are waiting: see `kcpx_listener_fd`);
/// KCPX_ERR_INVALID for an accepted
/// session (use its listener's), KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_fd(s: *const kcpx_session) -> c_int {
    guard(KCPX_ERR_INTERNAL, || match try_ref!(s, KCPX_ERR_NULL).view() {
        View::Dialed(d) => d.fd(),
        View::Accepted(..) => KCPX_ERR_INVALID,
    })
}

/// A dialed session's `kcpx_listener_update`: never blocks; writes what
/// sends queued, reads, runs the timers due and writes their
/// datagrams (ACKs of what it read at the next write). Returns the
/// datagrams read or a negative code; KCPX_ERR_INVALID for an accepted
/// session (its listener does this). `now_ms` is not used: the timers run
/// on kcpx's clock, as for `kcpx_listener_update`.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_update(s: *mut kcpx_session, now_ms: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || match try_mut!(s, KCPX_ERR_NULL).target() {
        Target::Dialed(d) => code_of(d.update(now_ms), count),
        Target::Accepted(..) => KCPX_ERR_INVALID,
    })
}

/// When a dialed session's `kcpx_session_update` is due next (absolute ms
/// on the caller's clock, of which `now_ms` is the current value, at most
/// one second ahead: the clocks as for `kcpx_listener_update`), after writing
/// what `kcpx_session_send` queued; `now_ms` for an accepted session (its
/// listener's check writes) or NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_check(s: *mut kcpx_session, now_ms: u32) -> u32 {
    guard(now_ms, || match try_mut!(s, now_ms).target() {
        Target::Dialed(d) => d.check(now_ms),
        Target::Accepted(..) => now_ms,
    })
}

/// For dialed sessions without a loop of their own, with or without taking
/// events: runs the session's I/O and timers on every call (at least one
/// non-blocking update, whatever is pending) and blocks until there is
/// something to do or `timeout_ms` passed (0: does not block). Returns 1
/// when there is: data to read (level-triggered: 1 at once while data waits
/// unread), room to send after `kcpx_session_send` refused data
/// (KCPX_ERR_AGAIN or a short write; once per refusal), or the session is
/// closed (recv and send answer at once, see `kcpx_session`); 0 after the
/// timeout; a negative code (KCPX_ERR_INVALID for an accepted session or a
/// negative timeout, KCPX_ERR_IO, KCPX_ERR_NULL). Never sleeps past a
/// datagram's arrival or a due timer, and never returns 1 with nothing to
/// do, so `wait` + `send` + `recv` alone is a complete program.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_wait(s: *mut kcpx_session, timeout_ms: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let Ok(t) = u32::try_from(timeout_ms) else {
            return KCPX_ERR_INVALID;
        };
        match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Dialed(d) => code_of(d.wait(t), c_int::from),
            Target::Accepted(..) => KCPX_ERR_INVALID,
        }
    })
}

/// Takes a dialed session's next event into `*ev` (1 filled, 0 none);
/// KCPX_ERR_INVALID for an accepted session (poll its listener).
///
/// # Safety
/// `s` is NULL or live; `ev` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_poll_event(s: *mut kcpx_session, ev: *mut kcpx_event) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_out!(ev, KCPX_ERR_NULL);
        match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Dialed(d) => match d.poll_event() {
                Some(e) => {
                    out.write(event(e, |_| s));
                    1
                }
                None => 0,
            },
            Target::Accepted(..) => KCPX_ERR_INVALID,
        }
    })
}

/// Queues `len` bytes and makes their datagrams at once as far as the
/// window allows; they are written to the socket at the next check,
/// update, wait or flush of the listener (or dialed session), together
/// with every other session's, or at once when 64 are waiting (see
/// `kcpx_session`). Returns the bytes queued: in stream mode as many as the
/// send queue has room for (it holds twice the send window in segments);
/// in message mode the whole message. KCPX_ERR_AGAIN when the queue is
/// full. After KCPX_ERR_AGAIN and after a short write (fewer bytes queued
/// than `len`) a KCPX_EVENT_WRITABLE follows when there is room (and
/// `kcpx_session_wait` returns 1), so a program may wait for it either
/// way. KCPX_ERR_CLOSED
/// after the session closed, KCPX_ERR_TOO_LARGE for a message over 127
/// segments, KCPX_ERR_NULL. `len` 0 queues nothing and returns 0.
///
/// # Safety
/// `s` is NULL or live; `buf` NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_send(s: *mut kcpx_session, buf: *const c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let data = try_slice_or_empty!(buf, len.min(c_int::MAX as usize), KCPX_ERR_NULL);
        let r = match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Accepted(l, id) => l.send(id, data),
            Target::Dialed(d) => d.send(data),
        };
        code_of(r, count)
    })
}

/// Receives into `buf`: in stream mode as many of the next bytes as fit;
/// in message mode the next whole message (KCPX_ERR_BUFFER_TOO_SMALL if it
/// does not fit: grow to `kcpx_session_peeksize`). Returns the length,
/// KCPX_ERR_AGAIN (open, nothing yet), KCPX_ERR_BUFFER_TOO_SMALL (also for
/// `len` 0 while data waits), KCPX_ERR_CLOSED (closed, and everything
/// received before was read), KCPX_ERR_NULL. See the table at
/// `kcpx_session`.
///
/// # Safety
/// `s` is NULL or live; `buf` NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_recv(s: *mut kcpx_session, buf: *mut c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_slice_mut!(buf, len.min(c_int::MAX as usize), KCPX_ERR_NULL);
        let r = match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Accepted(l, id) => l.recv(id, out),
            Target::Dialed(d) => d.recv(out),
        };
        code_of(r, count)
    })
}

/// Sends `len` bytes as one unreliable message (kcp-go's out-of-band
/// packet), beside the stream and never behind it: sealed like every
/// datagram, never retransmitted, never FEC-protected, not ordered with the
/// stream or other messages. It is written with the session's other
/// datagrams (at the next check, update, wait or flush, as for
/// `kcpx_session_send`). Returns `len`; KCPX_ERR_TOO_LARGE over
/// `kcpx_session_datagram_max`; KCPX_ERR_AGAIN when the session's rate
/// limit (`kcpx_session_set_rate_limit`) has no room for it now (it is not
/// sent); KCPX_ERR_CLOSED after the session closed;
/// KCPX_ERR_NULL (`s` NULL, or `buf` NULL with `len` > 0). `len` 0 sends an
/// empty message. Works with FEC off too (the bytes are the same; a kcp-go
/// peer without FEC drops them). Never send one to a kcp-go 5.6.1 peer: it
/// reads it as a KCP segment of conversation 0xFFFFFFFF.
///
/// # Safety
/// `s` is NULL or live; `buf` NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_send_datagram(s: *mut kcpx_session, buf: *const c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let data = try_slice_or_empty!(buf, len, KCPX_ERR_NULL);
        let r = match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Accepted(l, id) => l.send_datagram(id, data),
            Target::Dialed(d) => d.send_datagram(data),
        };
        code_of(r, count)
    })
}

/// Copies the oldest unreliable message received into `buf` and removes
/// it. Returns its length (0 for an empty message); KCPX_ERR_AGAIN when
/// none waits (the next KCPX_EVENT_DATAGRAM says when one does);
/// KCPX_ERR_BUFFER_TOO_SMALL when `buf` cannot hold it (it stays; a buffer
/// of 1,500 bytes holds any); KCPX_ERR_CLOSED when the session closed and
/// every message received before was read; KCPX_ERR_NULL. At most 64
/// messages (64 KiB) wait; beyond, the oldest are dropped and counted.
///
/// # Safety
/// `s` is NULL or live; `buf` NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_recv_datagram(s: *mut kcpx_session, buf: *mut c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_slice_mut!(buf, len, KCPX_ERR_NULL);
        let r = match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Accepted(l, id) => l.recv_datagram(id, out),
            Target::Dialed(d) => d.recv_datagram(out),
        };
        code_of(r, count)
    })
}

/// The longest unreliable message `kcpx_session_send_datagram` takes
/// (kcp-go's GetOOBMaxSize): the MTU less the crypto header, the 8-byte
/// out-of-band header and the 4-byte conv — 1,368 bytes with the default
/// MTU and a CFB cipher, 1,360 with AES-GCM (nonce and tag). Never 0: kcpx sends them with or without FEC.
/// KCPX_ERR_CLOSED once the session is freed, KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_datagram_max(s: *const kcpx_session) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let (e, id) = try_ref!(s, KCPX_ERR_NULL).view().endpoint();
        code_of(e.datagram_max(id), count)
    })
}

/// Caps what session `s` sends from now on, in place of its config's cap
/// (see `kcpx_config_set_rate_limit`: the same meaning; `bytes_per_sec` 0
/// removes it); the bucket starts full. A game server's per-client
/// bandwidth cap. Returns KCPX_OK, KCPX_ERR_CLOSED once the session is
/// freed by its listener, KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_set_rate_limit(s: *mut kcpx_session, bytes_per_sec: u32, burst: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let limit = RateLimit::new(bytes_per_sec, burst);
        let r = match try_mut!(s, KCPX_ERR_NULL).target() {
            Target::Accepted(l, id) => l.set_rate_limit(id, limit),
            Target::Dialed(d) => d.set_rate_limit(limit),
        };
        code(r)
    })
}

/// Size of the next message (stream mode: bytes ready now), also on a
/// closed session while data is left; KCPX_ERR_AGAIN when none on an open
/// session, KCPX_ERR_CLOSED when closed and everything was read,
/// KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_peeksize(s: *const kcpx_session) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let (e, id) = try_ref!(s, KCPX_ERR_NULL).view().endpoint();
        code_of(e.peek_size(id).and_then(|n| n.ok_or(Error::Again)), count)
    })
}

/// Sends what the session has queued now, without waiting for its next
/// update, and writes every datagram queued on its socket. Returns
/// KCPX_OK, KCPX_ERR_CLOSED (the session is closed: nothing more is
/// sent), KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_flush(s: *mut kcpx_session) -> c_int {
    guard(KCPX_ERR_INTERNAL, || match try_mut!(s, KCPX_ERR_NULL).target() {
        Target::Accepted(l, id) => code(l.flush(id)),
        Target::Dialed(d) => code(d.flush()),
    })
}

/// Copies the session's counters into `*out` (see `kcpx_stats`). Returns
/// KCPX_OK, KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_stats(s: *const kcpx_session, out: *mut kcpx_stats) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_out!(out, KCPX_ERR_NULL);
        let (e, id) = try_ref!(s, KCPX_ERR_NULL).view().endpoint();
        code_of(e.session_stats(id), |st| {
            out.write(st.into());
            KCPX_OK
        })
    })
}

/// Copies a dialed session's socket counters into `*out`: the counters of
/// its own UDP socket and endpoint, in the listener's struct (the session's
/// KCP counters are `kcpx_session_stats`). For a dialer, `dropped_unknown`
/// counts datagrams from addresses other than the one dialed (a
/// multi-homed server answering from another address, NAT), and
/// `in_csum_errors` replies that fail the checksum (another key or
/// cipher): see docs/troubleshooting.md. `passive_opens`, `curr_estab`,
/// `max_conn` and the like describe its one session. Returns KCPX_OK,
/// KCPX_ERR_NULL (`s` or `out` NULL), KCPX_ERR_INVALID for an accepted
/// session (use `kcpx_listener_stats` of its listener; `*out` untouched).
/// Thread-safety: as every call on the session.
///
/// # Safety
/// `s` is NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_socket_stats(s: *const kcpx_session, out: *mut kcpx_listener_counters) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_out!(out, KCPX_ERR_NULL);
        match try_ref!(s, KCPX_ERR_NULL).view() {
            View::Dialed(d) => {
                out.write(d.stats().into());
                KCPX_OK
            }
            View::Accepted(..) => KCPX_ERR_INVALID,
        }
    })
}

/// The session's smoothed round-trip time in ms (KCP's estimate), or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_rtt(s: *const kcpx_session) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let (e, id) = try_ref!(s, KCPX_ERR_NULL).view().endpoint();
        code_of(e.rtt(id), |(srtt, _)| srtt)
    })
}

/// Writes the peer's address as `"ip:port"` (`"[ip6]:port"` for IPv6),
/// NUL-terminated, into `buf` (48 bytes always suffice). Returns its length
/// without the NUL, KCPX_ERR_BUFFER_TOO_SMALL, or KCPX_ERR_NULL.
///
/// # Safety
/// `s` is NULL or live; `buf` NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_remote_addr(s: *const kcpx_session, buf: *mut c_char, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_slice_mut!(buf, len, KCPX_ERR_NULL);
        let (e, id) = try_ref!(s, KCPX_ERR_NULL).view().endpoint();
        code_of(e.remote_addr(id), |a| {
            let text = a.to_string();
            // The text and its NUL, or too small.
            let Some((nul, dst)) = out.get_mut(..=text.len()).and_then(|o| o.split_last_mut()) else {
                return KCPX_ERR_BUFFER_TOO_SMALL;
            };
            dst.copy_from_slice(text.as_bytes());
            *nul = 0;
            count(text.len())
        })
    })
}

/// The session's conversation id (0 for NULL).
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_conv(s: *const kcpx_session) -> u32 {
    guard(0, || {
        let (e, id) = try_ref!(s, 0).view().endpoint();
        e.conv(id).unwrap_or(0)
    })
}

/// Attaches the caller's pointer to the session (kcpx never uses it).
/// NULL `s` is ignored.
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_set_user(s: *mut kcpx_session, user: *mut c_void) {
    guard((), || try_mut!(s).user = user)
}

/// The pointer given to `kcpx_session_set_user` (NULL before, or for NULL).
///
/// # Safety
/// `s` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_user(s: *const kcpx_session) -> *mut c_void {
    guard(null_mut(), || try_ref!(s, null_mut()).user)
}

/// Closes and frees the session. An accepted session keeps sending what it
/// had queued from its listener until the peer acknowledged it (or the
/// link died or the idle timeout passed) and never blocks; a dialed session
/// blocks up to KCPX_DIAL_CLOSE_LINGER_MS (2 s) for that, then closes its
/// socket (`kcpx_session_close_linger` chooses the time). NULL is ignored.
/// `s` is invalid afterwards.
///
/// # Safety
/// `s` is NULL or live (and its listener too).
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_close(s: *mut kcpx_session) {
    // SAFETY: kcpx_session_close_linger has this export's contract.
    unsafe { kcpx_session_close_linger(s, KCPX_DIAL_CLOSE_LINGER_MS) }
}

/// `kcpx_session_close` with the dialed session's linger chosen: blocks at
/// most `linger_ms` milliseconds while what it queued is sent and
/// acknowledged (0: flushes once and returns at once; what is not
/// acknowledged then is lost), then frees it and closes its socket. For an
/// accepted session `linger_ms` is unused: it is `kcpx_session_close`
/// (never blocks; the listener keeps sending). NULL is ignored. `s` is
/// invalid afterwards.
///
/// # Safety
/// `s` is NULL or live (and its listener too).
#[no_mangle]
pub unsafe extern "C" fn kcpx_session_close_linger(s: *mut kcpx_session, linger_ms: u32) {
    guard((), || match try_take!(s).kind {
        Kind::Accepted { listener, id } => {
            // SAFETY: live as in `kcpx_session::target`; the session's own
            // handle was just taken back, so nothing else refers to it.
            let l = unsafe { &mut *listener };
            l.handles.remove(&id);
            let _ = l.inner.close_session(id);
        }
        Kind::Dialed(d) => d.close(linger_ms),
    })
}
