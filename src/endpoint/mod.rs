//! A sans-IO multi-session endpoint: kcp-go's `Listener` (and a dialer's
//! one session) without sockets, clocks or threads.
//!
//! Datagrams go in with their source address and the caller's clock
//! ([`Endpoint::handle`]); datagrams come out with their destinations
//! ([`Endpoint::transmits`]), with the next deadline
//! ([`Endpoint::poll_timeout`], to be honoured by
//! [`Endpoint::handle_timeout`]) and with events ([`Endpoint::poll_event`]).
//! The socket layer (`crate::net`) drives it over real UDP; the tests
//! drive it on a virtual clock.
//!
//! What it shares between sessions: the settings and one expanded cipher
//! (the key schedule runs once per endpoint, never per datagram or per
//! session; the cipher is immutable and every datagram's state its own),
//! the Reed-Solomon code (see ARCHITECTURE.md, "Memory of a listener's
//! sessions").
//!
//! kcp-go's demultiplexing rules hold: sessions are keyed by the peer's
//! address; an unknown address opens a session with the conv of its first
//! datagram that decrypts, passes the CRC and carries a valid KCP header
//! (FEC parity from an unknown address is dropped); a known address sending
//! a new conv with sn 0 replaces its session; a dialer accepts datagrams
//! only from the address it dialed. Beyond kcp-go: an accept backlog and a
//! session limit (overflow dropped and counted), an idle timeout, dead links
//! reported as a close reason, a bounded send queue with a writable event,
//! and `close` that keeps sending what was queued before it frees.
//!
//! With [`EndpointConfig::secure`] it speaks kcpx's secure wire instead
//! (`docs/secure-wire.md`; `secure.rs`): a stateless handshake, sessions
//! keyed by connection ID, an authenticated close with a code.
#![forbid(unsafe_code)]

mod admission;
mod budget;
mod local;
mod ops;
mod secure;
mod shrink;
mod timers;
mod types;

pub use types::{
    CloseReason, EndpointConfig, EndpointStats, Event, SecureRole, SecureSetting, SessionId, Transmits,
    DEFAULT_ACTIVE_MS, DEFAULT_BACKLOG, DEFAULT_DEAD_LINK_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_LISTENER_BUFFER_BYTES,
    DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_BUFFER_BYTES, DRAIN_LIMIT_MS, MAX_SESSIONS_LIMIT, MIN_SESSION_BUFFER_BYTES,
    PRESSURE_SESSION_BYTES, SHED_AFTER_MS,
};

use crate::conn::{Conn, InCounters, Incoming, Route};
use crate::crypt::PacketCrypt;
use crate::error::Error;
use crate::fec::FecCode;
use budget::Budget;
pub use shrink::QUIET_AFTER_MS;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use timers::{Clock, Timers};

/// A session's life: open; closed by an event but still owned by the
/// application; or closed by the application and still sending what it had
/// queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Closed(CloseReason),
    Draining { until: u64 },
}

struct Session {
    conn: Conn,
    addr: SocketAddr,
    conv: u32,
    state: State,
    /// Extended time of the last datagram received and taken (one that
    /// failed to decode does not count).
    last_recv: u64,
    /// Extended time of the first datagram taken.
    first_recv: u64,
    /// Datagrams taken (saturating).
    rx_datagrams: u32,
    /// The peer showed that it receives at its address (it acknowledged
    /// data), or kept sending for [`admission::PROVEN_SPAN_MS`], or sent
    /// [`admission::PROVEN_SEGMENTS`] segments in order in more than one
    /// datagram. Until then a full listener evicts the session first.
    proven: bool,
    /// Data in flight since (extended time) with this oldest
    /// unacknowledged sn: the dead-link clock.
    stall: Option<(u64, u32)>,
    /// Handed to the application (by an Accept event or `accept`).
    handed_out: bool,
    /// A Readable event is outstanding (cleared when `recv` finds nothing).
    readable_signalled: bool,
    /// A Datagram event is outstanding (cleared when `recv_datagram` finds
    /// nothing).
    datagram_signalled: bool,
    /// `send` refused for lack of room: a Writable event is owed.
    want_writable: bool,
    /// Received datagrams since the last flush (flush-on-input).
    dirty: bool,
    /// Extended time since which KCP has been idle (None: active).
    idle_since: Option<u64>,
    /// The buffers of an active connection were freed during this idle
    /// spell ([`SHED_AFTER_MS`] after it began).
    shed: bool,
    /// The local address its peer's datagrams arrive at, when the socket
    /// layer reports it (a wildcard-bound listener, see `local.rs`): its
    /// datagrams leave from there.
    local: Option<std::net::IpAddr>,
    /// A secure session's state beyond its connection (`None`: kcp-go's
    /// wire; boxed, so a kcp-go session pays one pointer).
    secure: Option<Box<secure::SecureSlot>>,
}

impl Session {
    /// Datagrams came in or data was queued: a new active spell.
    fn wake(&mut self) {
        self.idle_since = None;
        self.shed = false;
    }

    /// A datagram from the peer was taken at `t`.
    fn heard(&mut self, t: u64) {
        self.last_recv = t;
        self.rx_datagrams = self.rx_datagrams.saturating_add(1);
        self.proven |= self.conn.peer_acked()
            || t >= self.first_recv + admission::PROVEN_SPAN_MS
            || (self.rx_datagrams >= 2 && self.conn.received_in_order() >= admission::PROVEN_SEGMENTS);
    }

    /// When the link counts as dead by the time rule (`ms`, see
    /// [`EndpointConfig::dead_link_ms`]), if data is in flight.
    fn dead_at(&self, ms: u32) -> Option<u64> {
        self.stall.filter(|_| ms > 0).map(|(since, _)| since + ms as u64)
    }

    /// Restarts the dead-link clock when the oldest unacknowledged segment
    /// changes (an acknowledgement came, or data went out after none was in
    /// flight); stops it when nothing is in flight.
    fn track_acks(&mut self, now: u64) {
        self.stall = match (self.conn.unacked(), self.stall) {
            (None, _) => None,
            (Some(una), Some((since, old))) if una == old => Some((since, old)),
            (Some(una), _) => Some((now, una)),
        };
    }
}

/// Listener or dialer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Listener,
    Dialer { remote: SocketAddr },
}

/// The sans-IO endpoint; see the module documentation.
pub struct Endpoint {
    config: EndpointConfig,
    role: Role,
    crypt: Option<Arc<PacketCrypt>>,
    fec: Option<Arc<FecCode>>,
    /// The sessions themselves, side by side (a slab), not boxed one by
    /// one: the long-lived state of many sessions then shares pages
    /// instead of sitting between the short-lived buffers of their first
    /// messages, which would pin a page of heap per idle session once
    /// those are freed. Grows by a quarter (see `open`).
    slots: Vec<Option<Session>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    live: usize,
    by_addr: HashMap<SocketAddr, u32>,
    /// Secure sessions by connection ID (`secure.rs`).
    by_cid: HashMap<crate::secure::wire::ConnectionId, u32>,
    /// Secure sessions whose client has not yet shown it got its
    /// SERVER_HELLO, by the client's random (`secure.rs`): a repeated echo
    /// finds its session in one lookup.
    by_hello: HashMap<[u8; 32], u32>,
    /// A secure listener's stateless handshake.
    server: Option<Box<crate::secure::Server>>,
    /// A secure dialer's handshake, until it is done.
    client: Option<Box<crate::secure::Client>>,
    accept_queue: VecDeque<SessionId>,
    /// Sessions opened by peers and not yet proven, oldest first (stale
    /// entries are skipped when met): the first to go when the table is
    /// full.
    unproven: VecDeque<SessionId>,
    /// Where the sweep for the longest-idle session goes on.
    sweep: u32,
    /// Sessions closed by an event and still held by the application:
    /// they keep their memory until it closes them, but not their place
    /// under `max_sessions`.
    closed_owned: usize,
    events: VecDeque<Event>,
    /// An event taken by `has_events`, returned by the next `poll_event`.
    peeked: Option<Event>,
    timers: Timers,
    clock: Clock,
    now_ms: u32,
    dirty: Vec<u32>,
    /// The largest transmit batch (bytes, datagrams, runs) since
    /// `tx_peak_since`: the transmit buffer is trimmed to it.
    tx_peak: (usize, usize, usize),
    tx_peak_since: u64,
    tx: Transmits,
    stats: EndpointStats,
    /// The input counters of [`EndpointStats`], kept by the code that
    /// keeps a connection's.
    input: InCounters,
    /// What the sessions hold for delivery, and the limits (`budget.rs`).
    budget: Budget,
    /// When the endpoint's own buffers shrink (`shrink.rs`).
    quiet: shrink::Quiet,
}

impl Endpoint {
    /// A listener: sessions open when new peers send.
    pub fn listener(config: EndpointConfig) -> Result<Endpoint, Error> {
        Endpoint::new(config, Role::Listener)
    }

    /// A dialer to `remote` with a random conv (as kcp-go's clients): one
    /// session, opened now; datagrams from other addresses are dropped.
    pub fn dialer(config: EndpointConfig, remote: SocketAddr, now_ms: u32) -> Result<(Endpoint, SessionId), Error> {
        let mut conv = [0u8; 4];
        getrandom::getrandom(&mut conv).map_err(|_| Error::Random)?;
        Endpoint::dialer_with_conv(config, remote, u32::from_le_bytes(conv), now_ms)
    }

    /// [`Endpoint::dialer`] with a chosen conv (tests, or peers that agree
    /// on one).
    pub fn dialer_with_conv(
        config: EndpointConfig,
        remote: SocketAddr,
        conv: u32,
        now_ms: u32,
    ) -> Result<(Endpoint, SessionId), Error> {
        let mut ep = Endpoint::new(config, Role::Dialer { remote })?;
        let t = ep.tick(now_ms);
        let id = ep.open(remote, conv).ok_or(Error::Internal)?;
        ep.stats.active_opens += 1;
        let s = ep.session_mut(id)?;
        s.handed_out = true;
        s.proven = true;
        ep.start_handshake(t)?; // secure.rs
        Ok((ep, id))
    }

    fn new(config: EndpointConfig, role: Role) -> Result<Endpoint, Error> {
        config.validate()?;
        let crypt = match &config.conn.crypt {
            Some((method, key)) => Some(Arc::new(PacketCrypt::new(*method, key)?)),
            None => None,
        };
        let fec = config.conn.fec.map(FecCode::new);
        let budget = Budget::new(&config, role == Role::Listener);
        let server = match (config.secure.as_ref().map(|s| s.role()), role) {
            (Some(SecureRole::Listen { server, .. }), Role::Listener) => {
                Some(Box::new(crate::secure::Server::new(server)?))
            }
            (Some(SecureRole::Dial(_)), Role::Dialer { .. }) | (None, _) => None,
            _ => return Err(Error::Invalid),
        };
        Ok(Endpoint {
            config,
            role,
            crypt,
            fec,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_addr: HashMap::new(),
            by_cid: HashMap::new(),
            by_hello: HashMap::new(),
            server,
            client: None,
            accept_queue: VecDeque::new(),
            unproven: VecDeque::new(),
            sweep: 0,
            closed_owned: 0,
            events: VecDeque::new(),
            peeked: None,
            timers: Timers::default(),
            clock: Clock::default(),
            now_ms: 0,
            dirty: Vec::new(),
            tx_peak: (0, 0, 0),
            tx_peak_since: 0,
            tx: Transmits::default(),
            stats: EndpointStats::default(),
            input: InCounters::default(),
            budget,
            quiet: shrink::Quiet::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        let i = self.input;
        EndpointStats {
            in_pkts: i.in_pkts,
            in_bytes: i.in_bytes,
            in_errs: i.in_errs,
            in_csum_errors: i.in_csum_errors,
            kcp_in_errors: i.kcp_in_errors,
            ..self.stats
        }
    }

    /// Sessions holding memory now (open, closed but owned, draining).
    pub fn sessions_alive(&self) -> usize {
        self.live
    }

    fn tick(&mut self, now_ms: u32) -> u64 {
        self.now_ms = now_ms;
        self.clock.advance(now_ms)
    }

    // ----- datagrams in -----

    /// Takes one received datagram from `from` at the caller's time
    /// `now_ms`. The datagram is decrypted in place. Rejected datagrams are
    /// counted ([`Endpoint::stats`]) and change nothing else.
    pub fn handle(&mut self, now_ms: u32, from: SocketAddr, datagram: &mut [u8]) {
        self.handle_at(now_ms, from, None, datagram);
    }

    /// [`Endpoint::handle`], with the local address the datagram arrived at
    /// when the socket layer knows it (see `local.rs`).
    fn handle_at(&mut self, now_ms: u32, from: SocketAddr, to: Option<IpAddr>, datagram: &mut [u8]) {
        let t = self.tick(now_ms);
        self.quiet.busy(t);
        self.input.datagram(datagram.len());
        if self.config.secure.is_some() {
            return self.handle_secure(now_ms, t, from, to, datagram); // secure.rs
        }
        // Read once: routed here, taken by the session's connection as it is.
        let incoming = match Incoming::open(self.crypt.as_deref(), datagram) {
            Ok(incoming) => incoming,
            Err(e) => return self.count(e),
        };
        let route = incoming.route();
        let slot = match (self.by_addr.get(&from).copied(), route) {
            (Some(slot), Route::Segment { conv, sn }) if self.session_at(slot).conv != conv => {
                match self.replace(slot, from, conv, sn, t) {
                    Some(slot) => slot,
                    None => return,
                }
            }
            // Parity, unreliable messages and broken datagrams go to the
            // session of their address, which counts what it refuses;
            // none of them opens, replaces or closes a session.
            (Some(slot), _) => slot,
            // A conversation starts at sn 0: a peer whose session is gone
            // (idle, evicted) gets no new one that would wait forever for
            // segments it will not send again; unacknowledged, it reports a
            // dead link.
            (None, Route::Segment { sn, .. }) if sn != 0 => {
                self.stats.dropped_unknown += 1;
                return;
            }
            (None, Route::Segment { conv, .. }) => match self.open_for(from, conv, t) {
                Some(slot) => slot,
                None => return,
            },
            (None, Route::Parity | Route::Message { .. }) => {
                self.stats.dropped_unknown += 1;
                return;
            }
            (None, Route::Invalid(e)) => return self.count(e),
        };
        let s = self.slots[slot as usize].as_mut().expect("mapped slots are live");
        s.wake();
        let result = s.conn.input_incoming(incoming, now_ms);
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(slot);
        }
        match (result, route) {
            // Only a KCP segment of the session's conv (the match above
            // made sure of the conv) shows that its peer is there: FEC
            // parity, which names no conv, could be another conversation's
            // from the same address (a restarted client's).
            (Ok(()), Route::Segment { .. }) => {
                s.heard(t);
                if to.is_some() {
                    s.local = to;
                }
            }
            // A message of its conv keeps it from idling out (a game client
            // may send only those for a while), and proves nothing.
            (Ok(()), Route::Message { .. }) => s.last_recv = t,
            (Ok(()), _) => {}
            (Err(e), _) => self.count(e),
        }
        self.after_activity(slot);
        self.enforce_memory_budget(); // budget.rs
    }

    /// A datagram of conversation `conv` (first sn `sn`) from the address
    /// of the session in `slot`, which has another conv. kcp-go's rule for
    /// a listener: sn 0 means the peer restarted, and replaces the session;
    /// here only a session that is not active (see
    /// [`EndpointConfig::active_ms`]). A dialer never changes conversation.
    fn replace(&mut self, slot: u32, from: SocketAddr, conv: u32, sn: u32, t: u64) -> Option<u32> {
        if matches!(self.role, Role::Dialer { .. }) {
            self.stats.dropped_conv += 1;
            return None;
        }
        if sn != 0 {
            self.count(Error::Kcp);
            return None;
        }
        let active = self.config.active_ms as u64;
        let s = self.session_at(slot);
        if active > 0 && s.state == State::Open && t < s.last_recv + active {
            self.stats.dropped_replace += 1;
            return None;
        }
        self.stats.replaced += 1;
        self.end(slot, CloseReason::Replaced);
        self.open_for(from, conv, t)
    }

    fn count(&mut self, e: Error) {
        self.input.count(e);
    }

    /// Opens a session for a datagram from an unknown address, within the
    /// limits: when the table or the backlog is full, an unproven or
    /// long-idle session makes room (`admission.rs`); else the datagram is
    /// dropped and counted.
    fn open_for(&mut self, from: SocketAddr, conv: u32, t: u64) -> Option<u32> {
        if !self.admit(t) {
            return None;
        }
        let id = self.open(from, conv)?;
        self.queue_accept(id);
        Some(id.slot)
    }

    /// Whether a peer may open a session now (room made if need be); else
    /// counted.
    fn admit(&mut self, t: u64) -> bool {
        if matches!(self.role, Role::Dialer { .. }) {
            self.stats.dropped_unknown += 1;
            return false;
        }
        // Evicted sessions the application still holds count apart, up to
        // as many again: memory stays bounded if it never closes them.
        let max = self.config.max_sessions;
        if self.live >= 2 * max || (self.live - self.closed_owned >= max && !self.make_room(t)) {
            self.stats.dropped_limit += 1;
            return false;
        }
        // Keep only sessions still waiting (in place: no allocation, even
        // under a flood); the queue then holds at most `backlog` ids.
        let mut queue = core::mem::take(&mut self.accept_queue);
        queue.retain(|id| self.is_waiting(*id));
        self.accept_queue = queue;
        if self.accept_queue.len() >= self.config.backlog && !self.make_room_in_backlog() {
            self.stats.dropped_backlog += 1;
            return false;
        }
        true
    }

    /// A peer opened session `id`: it waits for the application.
    fn queue_accept(&mut self, id: SessionId) {
        self.stats.passive_opens += 1;
        self.accept_queue.push_back(id);
        self.unproven.push_back(id);
        self.push_event(Event::Accept(id));
    }

    fn is_waiting(&self, id: SessionId) -> bool {
        self.get(id).is_some_and(|s| !s.handed_out && s.state == State::Open)
    }

    /// Creates a session in a free slot.
    fn open(&mut self, addr: SocketAddr, conv: u32) -> Option<SessionId> {
        let conn = Conn::with_shared(conv, &self.config.conn, self.crypt.clone(), self.fec.clone()).ok()?;
        let id = self.open_conn(addr, conv, conn);
        self.by_addr.insert(addr, id.slot);
        Some(id)
    }

    /// Creates a session for `conn` in a free slot (not in any map).
    fn open_conn(&mut self, addr: SocketAddr, conv: u32, mut conn: Conn) -> SessionId {
        conn.set_linear_backoff(self.config.dead_link_ms > 0);
        // ikcp.c flushes nothing before its first update.
        conn.update(self.now_ms, &mut self.tx.out);
        self.tx.close_run(addr, None);
        let cid = conn_cid(&conn);
        let session = Session {
            conn,
            addr,
            conv,
            state: State::Open,
            last_recv: self.clock.now(),
            first_recv: self.clock.now(),
            rx_datagrams: 0,
            proven: false,
            stall: None,
            handed_out: false,
            readable_signalled: false,
            datagram_signalled: false,
            want_writable: false,
            dirty: false,
            idle_since: None,
            shed: false,
            local: None,
            secure: cid.map(|cid| Box::new(secure::SecureSlot::new(cid, self.config.keepalive_ms, self.clock.now()))),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(session);
                slot
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // A quarter more, not twice: a slot is a whole session.
                    self.slots.reserve_exact((self.slots.len() / 4).max(16));
                }
                self.slots.push(Some(session));
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.live += 1;
        self.stats.curr_estab += 1;
        self.stats.max_conn = self.stats.max_conn.max(self.stats.curr_estab);
        self.rearm(slot);
        SessionId {
            slot,
            generation: self.generations[slot as usize],
        }
    }

    // ----- time -----

    /// Runs what is due at `now_ms`: [`Endpoint::flush_received`], then
    /// [`Endpoint::handle_timers`]. Costs O(due sessions), not O(sessions).
    pub fn handle_timeout(&mut self, now_ms: u32) {
        self.flush_received(now_ms);
        self.handle_timers(now_ms);
    }

    /// Flushes the sessions that took datagrams since the last call (when
    /// `flush_on_input`; without it, only ACKs that fill a datagram), so
    /// their ACKs leave now rather than at the next interval. A socket layer that calls this only when it is about to
    /// write (after the application had the chance to reply to what it
    /// read) lets the ACKs ride in the replies' datagrams: a request and
    /// its answer then cost one datagram, not two.
    pub fn flush_received(&mut self, now_ms: u32) {
        if self.dirty.is_empty() {
            return;
        }
        self.tick(now_ms);
        // The list's memory is kept for the next batch.
        let mut dirty = core::mem::take(&mut self.dirty);
        for slot in dirty.drain(..) {
            let Some(s) = self.slots[slot as usize].as_mut() else {
                continue;
            };
            s.dirty = false;
            if s.handed_out && !matches!(s.state, State::Closed(_)) {
                if self.config.flush_on_input {
                    s.conn.flush(&mut self.tx.out);
                } else if s.conn.ack_flush_due() {
                    // ACKs that fill a datagram leave now, data at the interval.
                    s.conn.flush_acks(&mut self.tx.out);
                }
                self.tx.close_run(s.addr, s.local);
            }
            self.rearm(slot);
        }
        self.dirty = dirty;
    }

    /// Runs every session whose timer expired at `now_ms` (KCP update,
    /// idle timeout, dead link, draining); not the flush of
    /// [`Endpoint::flush_received`]. Costs O(due sessions).
    pub fn handle_timers(&mut self, now_ms: u32) {
        let t = self.tick(now_ms);
        while let Some(slot) = self.timers.pop_due(t) {
            self.service(slot, t);
        }
        self.handshake_timeout(t); // secure.rs
        self.shrink_if_quiet(t); // shrink.rs
    }

    /// The caller's clock value at which [`Endpoint::handle_timeout`] is due
    /// next; `None` when nothing is scheduled.
    pub fn poll_timeout(&mut self) -> Option<u32> {
        if !self.dirty.is_empty() {
            return Some(self.now_ms);
        }
        let next = [self.timers.next(), self.quiet.deadline(), self.handshake_deadline()]
            .into_iter()
            .flatten()
            .min()?;
        Some(self.clock.wrap(next.max(self.clock.now())))
    }

    /// One session's timer expired.
    fn service(&mut self, slot: u32, t: u64) {
        let idle = self.config.idle_timeout_ms as u64;
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let dead = s.dead_at(self.config.dead_link_ms).is_some_and(|d| t >= d);
        if s.secure_deadline().is_some_and(|d| t >= d) {
            self.secure_timeout(slot, t); // secure.rs
        }
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return;
        };
        match s.state {
            State::Closed(_) => return,
            State::Open if idle > 0 && t >= s.last_recv + idle => {
                self.stats.closed_idle += 1;
                return self.end(slot, CloseReason::Idle);
            }
            State::Open if dead => {
                self.stats.closed_dead_link += 1;
                return self.end(slot, CloseReason::DeadLink);
            }
            State::Draining { .. } if dead => return self.free_slot(slot),
            // Waiting to be accepted: silent (see `rearm`).
            State::Open if !s.handed_out => return self.rearm(slot),
            State::Open if s.conn.is_idle() => {
                // An update would send nothing (the timer was armed while
                // data was in flight, and the ACK came since). Quiet long
                // enough: free the buffers of an active connection (no
                // timer after this).
                if !s.shed && s.idle_since.is_some_and(|since| t >= since + SHED_AFTER_MS) {
                    s.shed = true;
                    s.conn.compact_idle_memory();
                    self.stats.sheds += 1;
                }
                return self.rearm(slot);
            }
            _ => {}
        }
        self.stats.serviced += 1;
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        let flushed = s.conn.update(self.now_ms, &mut self.tx.out);
        if !flushed && s.conn.check(self.now_ms) == self.now_ms {
            // ikcp_check says a retransmission is due while ikcp_update
            // waits for its interval (it would spin): flush now, as
            // kcp-go's scheduler does.
            s.conn.flush(&mut self.tx.out);
        }
        self.tx.close_run(s.addr, s.local);
        let count_rule = self.config.dead_link_ms == 0 && s.conn.is_dead();
        match s.state {
            State::Open if count_rule => {
                self.stats.closed_dead_link += 1;
                self.end(slot, CloseReason::DeadLink);
            }
            State::Draining { until } if s.conn.wait_snd() == 0 || count_rule || t >= until => {
                self.free_slot(slot);
            }
            _ => self.after_activity(slot),
        }
    }

    /// Arms a session's timer: KCP's next update, or (when KCP is idle or
    /// the session waits to be accepted) the idle timeout or nothing; the
    /// dead-link deadline; a draining session's limit.
    /// An idle session arms only the end of [`SHED_AFTER_MS`], once.
    fn rearm(&mut self, slot: u32) {
        self.charge_memory(slot); // budget.rs
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let idle = self.config.idle_timeout_ms as u64;
        // A session waiting to be accepted sends nothing, not even ACKs:
        // evicting it from a full backlog then loses nothing (its peer,
        // unacknowledged, sends again), and a spoofed datagram draws no
        // answer until the application takes its session.
        let kcp = if !s.handed_out {
            u64::MAX
        } else if s.conn.is_idle() {
            let since = *s.idle_since.get_or_insert(self.clock.now());
            if s.shed {
                u64::MAX
            } else {
                since + SHED_AFTER_MS
            }
        } else {
            s.idle_since = None;
            self.clock.extend(s.conn.check(self.now_ms))
        };
        let kcp = s.dead_at(self.config.dead_link_ms).map_or(kcp, |d| kcp.min(d));
        let kcp = s.secure_deadline().map_or(kcp, |d| kcp.min(d));
        let deadline = match s.state {
            State::Open if idle > 0 => kcp.min(s.last_recv + idle),
            State::Open => kcp,
            State::Draining { until } => kcp.min(until),
            State::Closed(_) => u64::MAX,
        };
        if deadline != u64::MAX {
            // Never due again within the same tick: handle_timeout ends.
            self.timers.arm(slot, deadline.max(self.clock.now() + 1));
        }
    }

    /// After input, send, recv or an update: the dead-link clock, owed
    /// events, and the timer.
    fn after_activity(&mut self, slot: u32) {
        let now = self.clock.now();
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        s.track_acks(now);
        if s.state == State::Open {
            let id = SessionId {
                slot,
                generation: self.generations[slot as usize],
            };
            let readable = !s.readable_signalled && s.conn.peek_size().is_some();
            let writable = s.want_writable && s.conn.wait_snd() < send_limit(&s.conn);
            let datagram = !s.datagram_signalled && s.conn.datagrams_waiting() > 0;
            s.readable_signalled |= readable;
            s.datagram_signalled |= datagram;
            s.want_writable &= !writable;
            if readable {
                self.push_event(Event::Readable(id));
            }
            if datagram {
                self.push_event(Event::Datagram(id));
            }
            if writable {
                self.push_event(Event::Writable(id));
            }
        }
        self.rearm(slot);
    }

    /// Closes an open session for `reason` (an event, when the application
    /// holds it; freed at once otherwise).
    fn end(&mut self, slot: u32, reason: CloseReason) {
        self.say_close(slot, secure::wire_reason(reason)); // secure.rs
        self.forget_hello(slot); // secure.rs
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        if self.by_addr.get(&s.addr) == Some(&slot) {
            self.by_addr.remove(&s.addr);
        }
        if let Some(cid) = s.cid() {
            self.by_cid.remove(&cid);
        }
        self.timers.disarm(slot);
        match s.state {
            // Not handed out: freed now (`free_slot` counts it out of
            // `curr_estab`).
            State::Open if !s.handed_out => self.free_slot(slot),
            State::Open => {
                self.stats.curr_estab -= 1;
                self.closed_owned += 1;
                s.state = State::Closed(reason);
                let generation = self.generations[slot as usize];
                self.push_event(Event::Closed(SessionId { slot, generation }, reason));
            }
            State::Draining { .. } => self.free_slot(slot),
            State::Closed(_) => {}
        }
    }

    fn free_slot(&mut self, slot: u32) {
        self.say_close(slot, crate::secure::frames::CloseReason::Application); // secure.rs
        self.forget_hello(slot); // secure.rs
        self.release_memory(slot); // budget.rs
        let s = self.slots[slot as usize].take().expect("live slot");
        if self.by_addr.get(&s.addr) == Some(&slot) {
            self.by_addr.remove(&s.addr);
        }
        if let Some(cid) = s.cid() {
            if self.by_cid.get(&cid) == Some(&slot) {
                self.by_cid.remove(&cid);
            }
        }
        match s.state {
            State::Open => self.stats.curr_estab -= 1,
            State::Closed(_) => self.closed_owned -= 1,
            State::Draining { .. } => {}
        }
        self.timers.disarm(slot);
        self.generations[slot as usize] = self.generations[slot as usize].wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
    }

    // ----- datagrams out, events -----

    /// The datagrams to send, with their destinations, in order. The socket
    /// layer sends them, then calls [`Endpoint::clear_transmits`].
    pub fn transmits(&self) -> &Transmits {
        &self.tx
    }

    /// Forgets the transmits (sent or given up).
    pub fn clear_transmits(&mut self) {
        if !self.tx.is_empty() {
            self.quiet.busy(self.clock.now());
        }
        let bytes = self.tx.out.byte_len();
        self.stats.out_pkts += self.tx.len() as u64;
        self.stats.out_bytes += bytes as u64;
        let (b, d, r) = &mut self.tx_peak;
        (*b, *d, *r) = ((*b).max(bytes), (*d).max(self.tx.len()), (*r).max(self.tx.runs.len()));
        self.tx.clear();
        // Once a second (at most), the buffer follows the load down.
        let now = self.clock.now();
        if now >= self.tx_peak_since + SHED_AFTER_MS {
            self.tx.trim(self.tx_peak);
            self.tx_peak = (0, 0, 0);
            self.tx_peak_since = now;
        }
    }

    /// Whether [`Endpoint::poll_event`] has an event to return.
    pub fn has_events(&mut self) -> bool {
        if self.peeked.is_none() {
            self.peeked = self.next_event();
        }
        self.peeked.is_some()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.peeked.take().or_else(|| self.next_event())
    }

    /// Queues an event. The queue stays in proportion to the sessions: when
    /// it outgrows them (an application that reads without polling events,
    /// or accepts with `accept` only), stale and repeated events are dropped.
    fn push_event(&mut self, ev: Event) {
        self.events.push_back(ev);
        if self.events.len() > 5 * self.live + 64 {
            self.compact_events();
        }
    }

    /// Keeps the events `next_event` would still deliver, each once: at
    /// most five per session (accept, readable, datagram, writable, closed).
    fn compact_events(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for ev in core::mem::take(&mut self.events) {
            let Some(s) = self.get_mut(ev.session()) else { continue };
            let keep = match ev {
                Event::Accept(_) => !s.handed_out && s.state == State::Open,
                Event::Readable(_) if !s.handed_out => {
                    s.readable_signalled = false;
                    false
                }
                Event::Datagram(_) if !s.handed_out => {
                    s.datagram_signalled = false;
                    false
                }
                _ => s.handed_out && !matches!(s.state, State::Draining { .. }),
            };
            if keep && seen.insert(ev) {
                self.events.push_back(ev);
            }
        }
    }

    fn next_event(&mut self) -> Option<Event> {
        while let Some(ev) = self.events.pop_front() {
            let Some(s) = self.get_mut(ev.session()) else { continue };
            match ev {
                Event::Accept(_) if s.handed_out || s.state != State::Open => continue,
                Event::Accept(id) => {
                    self.hand_out(id.slot);
                    return Some(ev);
                }
                Event::Readable(_) if !s.handed_out => {
                    // Re-signalled when the application takes it.
                    s.readable_signalled = false;
                    continue;
                }
                Event::Datagram(_) if !s.handed_out => {
                    s.datagram_signalled = false;
                    continue;
                }
                _ if !s.handed_out || matches!(s.state, State::Draining { .. }) => continue,
                _ => {}
            }
            return Some(ev);
        }
        None
    }

    /// The next new session not yet handed out (by an Accept event or an
    /// earlier call), if any.
    pub fn accept(&mut self) -> Option<SessionId> {
        while let Some(id) = self.accept_queue.pop_front() {
            let Some(s) = self.get_mut(id) else { continue };
            if s.handed_out || s.state != State::Open {
                continue;
            }
            let readable = s.conn.peek_size().is_some();
            let datagram = s.conn.datagrams_waiting() > 0;
            s.readable_signalled = readable;
            s.datagram_signalled = datagram;
            self.hand_out(id.slot);
            if readable {
                self.push_event(Event::Readable(id));
            }
            if datagram {
                self.push_event(Event::Datagram(id));
            }
            return Some(id);
        }
        None
    }

    /// The application takes a waiting session: it starts sending (the
    /// ACKs of what it received leave at the next write, or in its reply).
    fn hand_out(&mut self, slot: u32) {
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        s.handed_out = true;
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(slot);
        }
        self.rearm(slot);
    }
}

/// A secure connection's connection ID.
fn conn_cid(conn: &Conn) -> Option<crate::secure::wire::ConnectionId> {
    conn.connection_id()
}

/// Segments a session's send queue may hold (queued and in flight) before
/// `send` refuses with [`Error::Again`]: twice the send window.
pub fn send_limit(conn: &Conn) -> usize {
    2 * conn.kcp().snd_wnd() as usize
}

#[cfg(test)]
mod datagram_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod secure_tests;
#[cfg(test)]
mod tests;
