//! The endpoint's public vocabulary: settings, session ids, events,
//! counters and the outgoing batch.

use crate::conn::{ConnConfig, Outbox};
use crate::error::Error;
use crate::secure::{ClientConfig, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Settings of an endpoint: the connection settings every session shares,
/// plus the session-layer policies kcp-go lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// FEC, cipher, KCP tuning, MTU, stream mode of every session.
    pub conn: ConnConfig,
    /// A session that receives nothing for this long is closed with
    /// [`CloseReason::Idle`]; 0 = never (kcp-go's behaviour). Default
    /// [`DEFAULT_IDLE_TIMEOUT_MS`].
    pub idle_timeout_ms: u32,
    /// A session that heard from its peer less than this long ago is
    /// *active*: a listener neither replaces it (a new conv with sn 0 from
    /// its address is dropped and counted in
    /// [`EndpointStats::dropped_replace`]) nor evicts it to make room.
    /// 0 = kcp-go's rule (any sn-0 datagram of a new conv replaces).
    /// Default [`DEFAULT_ACTIVE_MS`].
    pub active_ms: u32,
    /// A session whose oldest unacknowledged segment has waited this long
    /// for an acknowledgement is closed with [`CloseReason::DeadLink`]
    /// (retransmissions back off linearly, kcp-go's rule, capped at 60 s).
    /// 0 = KCP's count rule instead: `dead_link` retransmissions of one
    /// segment, with ikcp.c's backoff. Default [`DEFAULT_DEAD_LINK_MS`].
    pub dead_link_ms: u32,
    /// New sessions not yet accepted, at most (kcp-go: 128; default
    /// [`DEFAULT_BACKLOG`]). A waiting session sends nothing, not even
    /// ACKs, until the application accepts it. When the backlog is full the
    /// oldest unproven waiting session is evicted to make room (its peer,
    /// unacknowledged, sends again); else the datagram is dropped and
    /// counted.
    pub backlog: usize,
    /// Sessions alive at once, at most (accepted, waiting and closing ones).
    /// When full, an unproven or long-idle session is evicted to make room
    /// (see `admission.rs`); sessions closed by an event and not yet closed
    /// by the application count apart, up to `max_sessions` more.
    pub max_sessions: usize,
    /// Flush a session right after `send` queued data (kcp-go's write path).
    pub flush_on_send: bool,
    /// Flush a session that received datagrams at the end of the receive
    /// batch: ACKs leave at once instead of at the next interval.
    pub flush_on_input: bool,
    // ----- memory limits (issue 17 item 4; see `budget.rs`) -----
    /// Most bytes one session may hold that the application cannot read
    /// yet, for each of KCP's out-of-order receive buffer and FEC's kept
    /// shards (payload plus a few dozen bytes per segment or shard):
    /// beyond it an out-of-order segment is dropped unacknowledged (the
    /// peer sends it again) and the oldest kept shard goes. The next
    /// segment in order always passes. Default
    /// [`DEFAULT_SESSION_BUFFER_BYTES`] (256 KiB: more than the default
    /// receive window of 128 full segments, so it never slows a transfer at
    /// the default windows; raise it with the windows). `usize::MAX`: no cap.
    pub session_buffer_bytes: usize,
    /// The listener's memory budget: most bytes all its sessions together
    /// may hold for delivery (out-of-order, received but unread, FEC kept
    /// shards). Beyond it the listener sheds (see `budget.rs`): every
    /// session's cap drops to [`PRESSURE_SESSION_BYTES`] and FEC's kept
    /// shards go; if it is still over, the sessions that delivered nothing
    /// to the application (then those holding the most out-of-order data
    /// beyond the pressure cap) are evicted, most bytes first, down to
    /// three quarters of the budget. Default
    /// [`DEFAULT_LISTENER_BUFFER_BYTES`] (32 MiB). `usize::MAX`: no budget.
    /// A dialer has no budget (only the per-session cap).
    pub listener_buffer_bytes: usize,
    /// kcpx's secure wire (`docs/secure-wire.md`) instead of kcp-go's:
    /// a listener's credentials or a dialer's. `None` (the default):
    /// kcp-go's wire. Secure is exclusive of a kcp-go cipher
    /// ([`Error::Key`]); a secure listener refuses kcp-go datagrams
    /// (counted in [`EndpointStats::refused_kcpgo`]).
    pub secure: Option<SecureSetting>,
    /// A secure session that received no authenticated datagram for this
    /// long sends a PING (the peer answers PONG), and closes with
    /// [`CloseReason::DeadLink`] after 3 × this long of silence
    /// (`docs/secure-wire.md`, section 9). 0 (the default): off. kcp-go's
    /// wire has no PING: ignored there.
    pub keepalive_ms: u32,
}

/// The secure wire's setting of an endpoint (shared, immutable).
#[derive(Clone, Debug)]
pub struct SecureSetting(Arc<SecureRole>);

/// Which side of the secure handshake an endpoint runs.
#[derive(Clone, Debug)]
pub enum SecureRole {
    /// A listener: the stateless server with these credentials.
    Listen {
        /// Its credentials (a PSK, a token key, or both).
        server: ServerConfig,
        /// The address connect tokens must name (the one clients dial);
        /// `None`: the local address the datagram arrived at, port 0 (no
        /// token matches it).
        addr: Option<SocketAddr>,
    },
    /// A dialer: the client with this credential.
    Dial(ClientConfig),
}

impl SecureSetting {
    /// A listener's setting (PSK: no address needed).
    pub fn listen(cfg: ServerConfig) -> SecureSetting {
        SecureSetting(Arc::new(SecureRole::Listen {
            server: cfg,
            addr: None,
        }))
    }

    /// A listener's setting accepting connect tokens that name `addr`.
    pub fn listen_at(cfg: ServerConfig, addr: SocketAddr) -> SecureSetting {
        SecureSetting(Arc::new(SecureRole::Listen {
            server: cfg,
            addr: Some(addr),
        }))
    }

    /// A dialer's setting.
    pub fn dial(cfg: ClientConfig) -> SecureSetting {
        SecureSetting(Arc::new(SecureRole::Dial(cfg)))
    }

    /// Its role and credentials.
    pub fn role(&self) -> &SecureRole {
        &self.0
    }
}

/// Equal when one is a clone of the other (the keys are not compared).
impl PartialEq for SecureSetting {
    fn eq(&self, other: &SecureSetting) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SecureSetting {}

/// Default of [`EndpointConfig::idle_timeout_ms`]: one minute. A peer that
/// sends nothing for a minute is taken for gone (kcp-go's clients send
/// nothing when they close). kcp-go applications that stay silent longer
/// without an application keepalive (kcptun's smux sends one every 10 s)
/// set a longer one, or 0.
pub const DEFAULT_IDLE_TIMEOUT_MS: u32 = 60_000;
/// Default of [`EndpointConfig::active_ms`]: a restarted client replaces
/// its old session once that one has been silent for 5 s.
pub const DEFAULT_ACTIVE_MS: u32 = 5_000;
/// Default of [`EndpointConfig::dead_link_ms`]: 15 s without an
/// acknowledgement of data in flight.
pub const DEFAULT_DEAD_LINK_MS: u32 = 15_000;
/// Default of [`EndpointConfig::session_buffer_bytes`].
pub const DEFAULT_SESSION_BUFFER_BYTES: usize = 256 << 10;
/// Default of [`EndpointConfig::listener_buffer_bytes`].
pub const DEFAULT_LISTENER_BUFFER_BYTES: usize = 32 << 20;
/// The per-session cap while a listener is over its budget (or
/// [`EndpointConfig::session_buffer_bytes`] if that is lower): about a
/// dozen full segments, so that a legitimate transfer survives a loss with
/// a fast retransmission, more slowly, while a hostile session holds little.
pub const PRESSURE_SESSION_BYTES: usize = 16 << 10;
/// Smallest [`EndpointConfig::session_buffer_bytes`] (a few segments).
pub const MIN_SESSION_BUFFER_BYTES: usize = 4 << 10;

/// Default of [`EndpointConfig::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 16384;
/// A session whose KCP has been idle this long frees the buffers only an
/// active connection needs (flush buffer, FEC parity and shard buffers):
/// a session pausing between messages keeps them (no allocation per
/// message), a quiet one holds its state only.
pub const SHED_AFTER_MS: u64 = 1_000;
/// Default of [`EndpointConfig::backlog`]: 4,096 (kcp-go's is 128), one
/// socket read budget's worth of datagrams, so that a flood of spoofed
/// first datagrams read in one update cannot push a real client's waiting
/// session out before the application's next accept.
pub const DEFAULT_BACKLOG: usize = 4096;
/// How long a session closed by its owner keeps sending what it had queued
/// (until acknowledged), at most, when no idle timeout is set.
pub const DRAIN_LIMIT_MS: u64 = 30_000;

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            conn: ConnConfig::default(),
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            active_ms: DEFAULT_ACTIVE_MS,
            dead_link_ms: DEFAULT_DEAD_LINK_MS,
            backlog: DEFAULT_BACKLOG,
            max_sessions: DEFAULT_MAX_SESSIONS,
            flush_on_send: true,
            flush_on_input: true,
            session_buffer_bytes: DEFAULT_SESSION_BUFFER_BYTES,
            listener_buffer_bytes: DEFAULT_LISTENER_BUFFER_BYTES,
            secure: None,
            keepalive_ms: 0,
        }
    }
}

impl EndpointConfig {
    /// The accept backlog and the session limit, each at least 1 (the limit
    /// at most 2^30), else [`Error::Invalid`].
    pub fn set_limits(&mut self, backlog: usize, max_sessions: usize) -> Result<(), Error> {
        check_limits(backlog, max_sessions)?;
        self.backlog = backlog;
        self.max_sessions = max_sessions;
        Ok(())
    }

    /// The idle timeout in ms; 0 = none.
    pub fn set_idle_timeout(&mut self, ms: u32) {
        self.idle_timeout_ms = ms;
    }

    /// [`EndpointConfig::active_ms`]: 0 = kcp-go's replacement rule.
    pub fn set_active_window(&mut self, ms: u32) {
        self.active_ms = ms;
    }

    /// [`EndpointConfig::dead_link_ms`]: 0 = KCP's retransmission count.
    pub fn set_dead_link_time(&mut self, ms: u32) {
        self.dead_link_ms = ms;
    }

    /// kcp-go's flush-on-write, and flush-after-input (ACKs at once).
    pub fn set_flush(&mut self, on_send: bool, on_input: bool) {
        self.flush_on_send = on_send;
        self.flush_on_input = on_input;
    }

    /// The memory limits ([`EndpointConfig::session_buffer_bytes`],
    /// [`EndpointConfig::listener_buffer_bytes`]); 0 selects the default,
    /// `usize::MAX` turns the limit off. [`Error::Invalid`] for a session
    /// cap below [`MIN_SESSION_BUFFER_BYTES`] or a budget below the session
    /// cap.
    pub fn set_memory_limits(&mut self, session_bytes: usize, listener_bytes: usize) -> Result<(), Error> {
        let or_default = |v: usize, d: usize| if v == 0 { d } else { v };
        let session = or_default(session_bytes, DEFAULT_SESSION_BUFFER_BYTES);
        let listener = or_default(listener_bytes, DEFAULT_LISTENER_BUFFER_BYTES);
        check_memory(session, listener)?;
        self.session_buffer_bytes = session;
        self.listener_buffer_bytes = listener;
        Ok(())
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), Error> {
        self.conn.validate()?;
        check_limits(self.backlog, self.max_sessions)?;
        check_memory(self.session_buffer_bytes, self.listener_buffer_bytes)?;
        if self.secure.is_some() && self.conn.crypt.is_some() {
            return Err(Error::Key);
        }
        Ok(())
    }
}

fn check_limits(backlog: usize, max_sessions: usize) -> Result<(), Error> {
    if backlog == 0 || max_sessions == 0 || max_sessions > MAX_SESSIONS_LIMIT {
        return Err(Error::Invalid);
    }
    Ok(())
}

fn check_memory(session: usize, listener: usize) -> Result<(), Error> {
    if session < MIN_SESSION_BUFFER_BYTES || listener < session {
        return Err(Error::Invalid);
    }
    Ok(())
}

/// Largest [`EndpointConfig::max_sessions`].
pub const MAX_SESSIONS_LIMIT: usize = 1 << 30;

/// A session of an endpoint. Ids are not reused while the session's slot is
/// held, and a stale id (of a freed session) is refused with
/// [`crate::error::Error::Closed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// Why a session closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Its owner closed it.
    Local,
    /// Nothing was received for the idle timeout.
    Idle,
    /// Data in flight went unacknowledged for
    /// [`EndpointConfig::dead_link_ms`] (or, with 0 there, a segment was
    /// retransmitted `dead_link` times).
    DeadLink,
    /// Its peer's address started a new conversation (sn 0 with a new conv)
    /// while the session was not active.
    Replaced,
    /// Its listener closed.
    Listener,
    /// The listener made room for another session or kept within its
    /// memory budget: this one had delivered nothing yet, or was the
    /// longest idle, or held the most undeliverable data.
    Evicted,
    /// The peer closed (a secure session's authenticated CLOSE frame):
    /// its reason and, for [`crate::secure::frames::CloseReason::Application`],
    /// its application's code.
    Remote {
        /// The peer's reason.
        reason: crate::secure::frames::CloseReason,
        /// The peer application's code (0 unless it chose one).
        code: u32,
    },
}

/// Something that happened to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A new session from a new peer (handed out once: by this event or by
    /// `accept`, whichever comes first).
    Accept(SessionId),
    /// Data arrived: `recv` until it returns `Again` (edge-triggered: the
    /// next event comes only after that).
    Readable(SessionId),
    /// `send` returned `Again` before, and there is room again.
    Writable(SessionId),
    /// Unreliable messages arrived: `recv_datagram` until it returns
    /// `Again` (edge-triggered, as [`Event::Readable`]).
    Datagram(SessionId),
    /// The session closed; `send`/`recv` now return `Closed`.
    Closed(SessionId, CloseReason),
}

impl Event {
    /// The session it happened to.
    pub fn session(self) -> SessionId {
        match self {
            Event::Accept(id)
            | Event::Readable(id)
            | Event::Writable(id)
            | Event::Datagram(id)
            | Event::Closed(id, _) => id,
        }
    }
}

/// An endpoint's counters, with kcp-go's SNMP names where they apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// InPkts / InBytes: datagrams and bytes received.
    pub in_pkts: u64,
    /// Bytes of those datagrams.
    pub in_bytes: u64,
    /// OutPkts / OutBytes: datagrams and bytes produced (counted when the
    /// transmits are cleared, sent or given up).
    pub out_pkts: u64,
    /// Bytes of those datagrams.
    pub out_bytes: u64,
    /// InErrs: datagrams too short, too long or malformed.
    pub in_errs: u64,
    /// InCsumErrors: datagrams failing the CRC check.
    pub in_csum_errors: u64,
    /// KCPInErrors: datagrams KCP refused.
    pub kcp_in_errors: u64,
    /// PassiveOpens: sessions created by a peer's first datagram.
    pub passive_opens: u64,
    /// ActiveOpens: sessions dialed.
    pub active_opens: u64,
    /// CurrEstab: sessions open now.
    pub curr_estab: u64,
    /// MaxConn: most sessions open at once.
    pub max_conn: u64,
    /// Datagrams from unknown addresses that cannot open a session (FEC
    /// parity, no valid KCP header) or, for a dialer, from another address.
    pub dropped_unknown: u64,
    /// Datagrams dropped because the accept backlog was full.
    pub dropped_backlog: u64,
    /// Datagrams dropped because `max_sessions` were alive.
    pub dropped_limit: u64,
    /// Sessions replaced by a new conversation from the same address.
    pub replaced: u64,
    /// Datagrams of a new conversation (sn 0) from the address of an
    /// active session, refused: the session stays (see
    /// [`EndpointConfig::active_ms`]).
    pub dropped_replace: u64,
    /// A dialer's datagrams from the dialed address with another conv,
    /// refused: a dialed session never changes its conversation.
    pub dropped_conv: u64,
    /// Sessions closed for idleness.
    pub closed_idle: u64,
    /// Sessions closed for a dead link.
    pub closed_dead_link: u64,
    /// Sessions evicted ([`CloseReason::Evicted`]).
    pub evicted: u64,
    /// Session timers serviced (KCP updates run by `handle_timeout`): the
    /// scheduler's work, proportional to the sessions due, not to the
    /// sessions held.
    pub serviced: u64,
    /// Sessions that freed their active buffers after [`SHED_AFTER_MS`]
    /// of quiet.
    pub sheds: u64,
    /// Times the endpoint shrank its own buffers after
    /// [`QUIET_AFTER_MS`](crate::endpoint::QUIET_AFTER_MS) without a
    /// datagram in or out.
    pub quiet_shrinks: u64,
    // ----- memory limits (issue 17 item 4; see `budget.rs`) -----
    /// Out-of-order KCP segments dropped unacknowledged by a session's cap
    /// ([`EndpointConfig::session_buffer_bytes`], lower under pressure).
    pub mem_dropped_segments: u64,
    /// FEC shards kept for reconstruction dropped by a session's cap or
    /// when the budget was exceeded (no data lost: KCP retransmits).
    pub mem_dropped_shards: u64,
    /// Times the listener went over its budget
    /// ([`EndpointConfig::listener_buffer_bytes`]) and started shedding.
    pub mem_pressure: u64,
    /// Sessions evicted to keep within the budget (also in `evicted`).
    pub mem_evicted: u64,
    /// Bytes its sessions hold for delivery now (the budget's measure).
    pub buffered_bytes: u64,
    // ----- the secure wire (`docs/secure-wire.md`, section 15) -----
    /// Datagrams of kcp-go's wire refused by a secure endpoint.
    pub refused_kcpgo: u64,
    /// Handshake datagrams refused (forged, expired, malformed, a wrong
    /// credential, reflected, or out of place).
    pub secure_refused: u64,
    /// CHALLENGEs sent by a secure listener (stateless: no session).
    pub secure_challenges: u64,
    /// Secure sessions established (either side).
    pub secure_established: u64,
    /// Datagrams of a secure session that opened from another address than
    /// the session's (taken; the session moves only after a path check).
    pub secure_addr_changed: u64,
    /// PATH_CHALLENGEs a secure listener sent (tries included).
    pub secure_path_checks: u64,
    /// Secure sessions that moved to a new address that answered its check.
    pub secure_migrated: u64,
}

/// Datagrams to send, each with its destination, in order. Runs of
/// datagrams to one destination are kept together (what UDP GSO and
/// sendmmsg batch).
#[derive(Default)]
pub struct Transmits {
    pub(crate) out: Outbox,
    /// (destination, local address to send from (None: the kernel's
    /// choice), index in `out` one past the run's last datagram).
    pub(crate) runs: Vec<(SocketAddr, Option<IpAddr>, usize)>,
}

impl Transmits {
    /// Number of datagrams.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Datagram `i` and its destination.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let run = self.runs.partition_point(|&(_, _, end)| end <= i);
        let (addr, _, _) = *self.runs.get(run)?;
        Some((addr, self.out.get(i)?))
    }

    /// The datagrams with their destinations, in sending order.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        let mut run = 0;
        self.out.iter().enumerate().map(move |(i, d)| {
            while self.runs[run].2 <= i {
                run += 1;
            }
            (self.runs[run].0, d)
        })
    }

    /// The local address datagram `i` is to leave from (the one its
    /// session's peer sent to, on a wildcard-bound listener), if one was
    /// learnt.
    pub fn local_of(&self, i: usize) -> Option<IpAddr> {
        let run = self.runs.partition_point(|&(_, _, end)| end <= i);
        self.runs.get(run)?.1
    }

    /// Marks the datagrams appended to `out` since the last call as going
    /// to `addr` from `local` (None: the kernel's choice).
    pub(crate) fn close_run(&mut self, addr: SocketAddr, local: Option<IpAddr>) {
        let end = self.out.len();
        let start = self.runs.last().map_or(0, |r| r.2);
        if end > start {
            match self.runs.last_mut() {
                Some(last) if last.0 == addr && last.1 == local => last.2 = end,
                _ => self.runs.push((addr, local, end)),
            }
        }
    }

    /// Gives back capacity beyond twice `peak` (bytes, datagrams and runs
    /// of the largest batch lately) once it is more than four times that:
    /// an endpoint whose load fell keeps a buffer in proportion to it.
    pub(crate) fn trim(&mut self, peak: (usize, usize, usize)) {
        let (bytes, datagrams, runs) = peak;
        if self.out.byte_len() == 0 && self.out.byte_capacity() > 4 * bytes.max(16 << 10) {
            self.out.shrink_to(2 * bytes, 2 * datagrams);
            self.runs.shrink_to(2 * runs);
        }
    }

    /// Forgets everything (after sending), giving memory back after a burst.
    pub fn clear(&mut self) {
        self.out.clear_and_trim(1 << 20);
        self.runs.clear();
    }
}
