//! The secure wire in the endpoint (`docs/secure-wire.md`, section 15):
//! long headers go to the stateless handshake (a listener's
//! [`Server`](crate::secure::Server), a dialer's
//! [`Client`](crate::secure::Client)), short headers to the session of
//! their connection ID, and the control frames a session's connection
//! queued are answered (PING) or end it (CLOSE).
//!
//! A session's conv is the low 32 bits of its connection ID (big-endian
//! bytes 4..8), on both sides. A datagram of a session from another address
//! is taken if it opens (counted in
//! [`EndpointStats::secure_addr_changed`](super::EndpointStats)); at a
//! listener, a newest one starts a path check (`secure::path`), and the
//! session moves when the new address answers it.

use super::{CloseReason, Endpoint, Role, Session, SessionId, State};
use crate::conn::Conn;
use crate::error::Error;
use crate::secure::frames::{CloseReason as WireReason, Frame};
use crate::secure::handshake::Now;
use crate::secure::handshake::SERVER_HELLO_LEN;
use crate::secure::liveness::{Liveness, LivenessAction};
use crate::secure::path::{Challenge, Paths};
use crate::secure::wire::{self, ConnectionId, Form};
use crate::secure::{Client, ClientProgress, OsEntropy, ServerAction};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The conv both sides give a secure session's KCP: the connection ID's
/// low 32 bits.
pub(super) fn conv_of(cid: &ConnectionId) -> u32 {
    u32::from_be_bytes([cid[4], cid[5], cid[6], cid[7]])
}

/// The reason a CLOSE frame carries for a local end of a session.
pub(super) fn wire_reason(r: CloseReason) -> WireReason {
    match r {
        CloseReason::Local => WireReason::Application,
        CloseReason::Idle => WireReason::Idle,
        CloseReason::DeadLink => WireReason::DeadLink,
        CloseReason::Evicted => WireReason::Evicted,
        CloseReason::Listener => WireReason::Shutdown,
        CloseReason::Replaced | CloseReason::Remote { .. } => WireReason::Protocol,
    }
}

/// What a secure session holds beyond its connection.
pub(super) struct SecureSlot {
    /// Its connection ID.
    cid: ConnectionId,
    /// The code its owner closed it with (sent in its CLOSE frame).
    close_code: u32,
    /// Its CLOSE frame was sent (or the peer's received): never twice.
    close_sent: bool,
    /// A listener's session until its first datagram opens: the client's
    /// random and the SERVER_HELLO, resent for a repeated echo.
    hello: Option<Box<([u8; 32], [u8; SERVER_HELLO_LEN])>>,
    /// The path check, from the first datagram that opened from another
    /// address.
    paths: Option<Box<Paths>>,
    /// The keepalive and dead-link timer (section 9).
    live: Liveness,
}

impl SecureSlot {
    pub(super) fn new(cid: ConnectionId, keepalive_ms: u32, now_ms: u64) -> SecureSlot {
        SecureSlot {
            live: Liveness::new(keepalive_ms, now_ms),
            cid,
            close_code: 0,
            close_sent: false,
            hello: None,
            paths: None,
        }
    }
}

impl Session {
    /// A secure session's connection ID.
    pub(super) fn cid(&self) -> Option<ConnectionId> {
        self.secure.as_ref().map(|x| x.cid)
    }

    /// When its path check or its keepalive wants its timer.
    pub(super) fn secure_deadline(&self) -> Option<u64> {
        let x = self.secure.as_ref()?;
        let path = x.paths.as_ref().and_then(|p| p.poll_timeout());
        [path, x.live.poll_timeout()].into_iter().flatten().min()
    }
}

impl Endpoint {
    /// A secure dialer starts its handshake: the CLIENT_HELLO leaves now.
    pub(super) fn start_handshake(&mut self, t: u64) -> Result<(), Error> {
        let Some(super::SecureRole::Dial(cfg)) = self.config.secure.as_ref().map(|s| s.role()) else {
            return Ok(());
        };
        let client = Client::new(cfg, t, &mut OsEntropy)?;
        self.queue_raw(client.message());
        self.client = Some(Box::new(client));
        Ok(())
    }

    /// Whether session `id` is a dialer's whose handshake is not done: it
    /// cannot send yet.
    pub(super) fn handshaking(&self) -> bool {
        self.client.is_some()
    }

    /// The dialer's handshake retransmission deadline.
    pub(super) fn handshake_deadline(&self) -> Option<u64> {
        self.client.as_ref()?.poll_timeout()
    }

    /// Runs the dialer's handshake timer: resend, or give up (the session
    /// closes with [`CloseReason::DeadLink`]).
    pub(super) fn handshake_timeout(&mut self, t: u64) {
        let Some(client) = self.client.as_mut() else { return };
        if client.poll_timeout().map_or(true, |d| d > t) {
            return;
        }
        match client.handle_timeout(t) {
            Ok(true) => {
                let msg = client.message().to_vec();
                self.queue_raw(&msg);
            }
            Ok(false) => {}
            Err(_) => {
                self.client = None;
                self.stats.closed_dead_link += 1;
                if let Some(slot) = self.dialer_slot() {
                    if self.session_at(slot).state == State::Open {
                        self.end(slot, CloseReason::DeadLink);
                    }
                }
            }
        }
    }

    /// The dialer's one session's slot, while it lives.
    fn dialer_slot(&self) -> Option<u32> {
        let Role::Dialer { remote } = self.role else {
            return None;
        };
        self.by_addr.get(&remote).copied()
    }

    /// Queues one handshake datagram to the dialer's peer.
    fn queue_raw(&mut self, d: &[u8]) {
        if let Role::Dialer { remote } = self.role {
            self.queue_raw_to(d, remote, None);
        }
    }

    fn queue_raw_to(&mut self, d: &[u8], to: SocketAddr, local: Option<IpAddr>) {
        self.tx.out.push_datagram(d);
        self.tx.close_run(to, local);
    }

    /// A datagram at a secure endpoint.
    pub(super) fn handle_secure(
        &mut self,
        now_ms: u32,
        t: u64,
        from: SocketAddr,
        to: Option<IpAddr>,
        datagram: &mut [u8],
    ) {
        match wire::classify(datagram) {
            Form::Long(_) => self.handle_long(t, from, to, datagram),
            Form::Short(cid) => self.handle_short(now_ms, t, from, to, cid, datagram),
            Form::Other => self.stats.refused_kcpgo += 1,
        }
    }

    fn handle_long(&mut self, t: u64, from: SocketAddr, to: Option<IpAddr>, d: &[u8]) {
        if let Role::Dialer { remote } = self.role {
            let progress = match self.client.as_mut() {
                Some(client) if from == remote => client.handle(d, t),
                // A repeated SERVER_HELLO after the handshake, or another
                // address's message.
                _ => {
                    self.stats.secure_refused += 1;
                    return;
                }
            };
            match progress {
                Ok(ClientProgress::Send) => {
                    let msg = self.client.as_ref().expect("handshaking").message().to_vec();
                    self.queue_raw(&msg);
                }
                Ok(ClientProgress::Nothing) => {}
                Ok(ClientProgress::Established(session)) => self.established(*session),
                Err(_) => self.stats.secure_refused += 1,
            }
            return;
        }
        let Some(server) = self.server.as_mut() else { return };
        let named = match self.config.secure.as_ref().map(|s| s.role()) {
            Some(super::SecureRole::Listen { addr, .. }) => *addr,
            _ => None,
        };
        let local = named.unwrap_or_else(|| SocketAddr::new(to.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 0));
        // Token expiry and the used-token table read Unix seconds: the one
        // wall-clock read of the endpoint.
        let now = Now {
            ms: t,
            unix_s: unix_now().unwrap_or(t / 1000),
        };
        let by_cid = &self.by_cid;
        let action = server.handle(d, from, local, now, &mut OsEntropy, &|cid| by_cid.contains_key(cid));
        match action {
            Ok(ServerAction::Challenge(c)) => {
                self.stats.secure_challenges += 1;
                self.queue_raw_to(&c, from, to);
            }
            Ok(ServerAction::Accept(acc)) => {
                if !self.admit(t) {
                    return;
                }
                let cid = acc.session.cid;
                let conv = conv_of(&cid);
                let Ok(conn) = Conn::secure_shared(conv, &self.config.conn, acc.session, self.fec.clone()) else {
                    self.count(Error::Invalid);
                    return;
                };
                self.queue_raw_to(&acc.server_hello, from, to);
                let id = self.open_conn(from, conv, conn);
                self.by_cid.insert(cid, id.slot);
                self.stats.secure_established += 1;
                let s = self.slots[id.slot as usize].as_mut().expect("live slot");
                s.local = to;
                if let Some(x) = s.secure.as_mut() {
                    x.hello = Some(Box::new((acc.client_random, acc.server_hello)));
                    self.by_hello.insert(acc.client_random, id.slot);
                }
                self.queue_accept(id);
            }
            Ok(ServerAction::Duplicate(random)) => {
                // The session whose SERVER_HELLO may have been lost.
                let found = self.by_hello.get(&random).and_then(|&slot| {
                    let s = self.slots[slot as usize].as_ref()?;
                    let (_, hello) = s.secure.as_deref()?.hello.as_deref()?;
                    (s.addr == from).then_some(*hello)
                });
                if let Some(hello) = found {
                    self.queue_raw_to(&hello, from, to);
                }
            }
            Err(_) => self.stats.secure_refused += 1,
        }
    }

    /// Drops the SERVER_HELLO kept for a repeated echo of `slot`'s client
    /// (it showed it has it, or the session ends), and its `by_hello` entry.
    pub(super) fn forget_hello(&mut self, slot: u32) {
        let Some(x) = self.slots[slot as usize].as_mut().and_then(|s| s.secure.as_mut()) else {
            return;
        };
        if let Some(hello) = x.hello.take() {
            if self.by_hello.get(&hello.0) == Some(&slot) {
                self.by_hello.remove(&hello.0);
            }
        }
    }

    /// The dialer's handshake is done: its session's connection speaks the
    /// secure wire from now on.
    fn established(&mut self, session: crate::secure::Session) {
        self.client = None;
        let Some(slot) = self.dialer_slot() else { return };
        let cid = session.cid;
        let conv = conv_of(&cid);
        let conn = match Conn::secure_shared(conv, &self.config.conn, session, self.fec.clone()) {
            Ok(conn) => conn,
            Err(e) => return self.count(e),
        };
        self.stats.secure_established += 1;
        self.by_cid.insert(cid, slot);
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        s.conn = conn;
        s.conn.set_linear_backoff(self.config.dead_link_ms > 0);
        s.conv = conv;
        s.secure = Some(Box::new(SecureSlot::new(
            cid,
            self.config.keepalive_ms,
            self.clock.now(),
        )));
        // `send` said Again until now.
        s.want_writable = true;
        self.after_activity(slot);
    }

    fn handle_short(
        &mut self,
        now_ms: u32,
        t: u64,
        from: SocketAddr,
        to: Option<IpAddr>,
        cid: ConnectionId,
        datagram: &mut [u8],
    ) {
        let Some(&slot) = self.by_cid.get(&cid) else {
            self.stats.dropped_unknown += 1;
            return;
        };
        let len = datagram.len();
        let s = self.slots[slot as usize].as_mut().expect("mapped slots are live");
        let result = s.conn.input_in_place(datagram, now_ms);
        if let Err(e) = result {
            return self.count(e);
        }
        if s.addr != from {
            // Taken (it opened); the session moves only after a path check.
            self.stats.secure_addr_changed += 1;
            if self.role == Role::Listener {
                self.path_datagram(slot, from, to, len, t);
            }
        }
        // The client has its SERVER_HELLO.
        self.forget_hello(slot);
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        s.wake();
        if s.addr == from {
            s.heard(t);
            if to.is_some() {
                s.local = to;
            }
        }
        if let Some(x) = s.secure.as_mut() {
            x.live.on_authenticated(t);
        }
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(slot);
        }
        if self.controls(slot, from, to) {
            return;
        }
        self.after_activity(slot);
        self.enforce_memory_budget(); // budget.rs
    }

    /// Acts on the control frames session `slot` received; `true` when a
    /// CLOSE ended it.
    fn controls(&mut self, slot: u32, from: SocketAddr, to: Option<IpAddr>) -> bool {
        loop {
            let s = self.slots[slot as usize].as_mut().expect("live slot");
            let Some(control) = s.conn.poll_control() else {
                return false;
            };
            match control {
                Frame::Ping(id) => {
                    let sent = s.conn.send_control(Frame::Pong(id), &mut self.tx.out);
                    if sent.is_ok() {
                        self.tx.close_run(s.addr, s.local);
                    }
                }
                Frame::Close { reason, code } => {
                    if let Some(x) = s.secure.as_mut() {
                        x.close_sent = true;
                    }
                    match s.state {
                        State::Open => self.end(slot, CloseReason::Remote { reason, code }),
                        State::Draining { .. } => self.free_slot(slot),
                        State::Closed(_) => {}
                    }
                    return true;
                }
                // Answered from where it came in, to where it came from.
                Frame::PathChallenge(data) => {
                    let sent = s.conn.send_control(Frame::PathResponse(data), &mut self.tx.out);
                    if sent.is_ok() {
                        self.tx.close_run(from, to);
                    }
                }
                Frame::PathResponse(data) => {
                    let paths = s.secure.as_mut().and_then(|x| x.paths.as_mut());
                    let moved = paths.is_some_and(|p| p.on_response(from, &data));
                    if moved {
                        s.addr = from;
                        s.local = to;
                        if let Some(x) = s.secure.as_mut() {
                            x.paths = None;
                        }
                        self.stats.secure_migrated += 1;
                    }
                }
                // PONG answers a PING this side never sends yet.
                _ => {}
            }
        }
    }

    /// A datagram of session `slot` opened from `from`, not its address:
    /// a newest one starts a path check (a PATH_CHALLENGE, within the
    /// anti-amplification budget).
    fn path_datagram(&mut self, slot: u32, from: SocketAddr, to: Option<IpAddr>, len: usize, t: u64) {
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        let newest = s.conn.last_opened().is_some_and(|o| o.newest);
        let srtt = s.conn.kcp().srtt().max(0) as u64;
        let addr = s.addr;
        let Some(x) = s.secure.as_mut() else { return };
        let paths = x.paths.get_or_insert_with(|| Box::new(Paths::new(addr)));
        if let Ok(Some(c)) = paths.on_datagram(from, len, newest, t, srtt, &mut OsEntropy) {
            self.send_path_challenge(slot, c, to);
        }
    }

    /// Session `slot`'s secure timer is due: its keepalive (a PING, or
    /// the end of a dead link) and its path check.
    pub(super) fn secure_timeout(&mut self, slot: u32, t: u64) {
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        let Some(x) = s.secure.as_mut() else { return };
        match x.live.handle_timeout(t) {
            LivenessAction::Ping(id) => {
                let sent = s.conn.send_control(Frame::Ping(id), &mut self.tx.out);
                if sent.is_ok() {
                    self.tx.close_run(s.addr, s.local);
                }
            }
            LivenessAction::Dead if s.state == State::Open => {
                self.stats.closed_dead_link += 1;
                return self.end(slot, CloseReason::DeadLink);
            }
            _ => {}
        }
        self.path_timeout(slot, t);
    }

    /// Session `slot`'s path check, if due: retried, or given up (the
    /// session stays where it was).
    fn path_timeout(&mut self, slot: u32, t: u64) {
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        let srtt = s.conn.kcp().srtt().max(0) as u64;
        let Some(x) = s.secure.as_mut() else { return };
        let Some(paths) = x.paths.as_mut() else { return };
        match paths.handle_timeout(t, srtt, &mut OsEntropy) {
            Ok(Some(c)) => self.send_path_challenge(slot, c, None),
            _ if paths.checking().is_none() => x.paths = None,
            _ => {}
        }
    }

    fn send_path_challenge(&mut self, slot: u32, c: Challenge, local: Option<IpAddr>) {
        let s = self.slots[slot as usize].as_mut().expect("live slot");
        let at = self.tx.out.byte_len();
        let Some(paths) = s.secure.as_mut().and_then(|x| x.paths.as_mut()) else {
            return;
        };
        // Header, frame and tag: what the control datagram takes.
        if !paths.may_send(c.to, wire::SHORT_OVERHEAD + 9) {
            return;
        }
        if s.conn
            .send_control(Frame::PathChallenge(c.data), &mut self.tx.out)
            .is_ok()
        {
            paths.on_sent(c.to, self.tx.out.byte_len() - at);
            self.tx.close_run(c.to, local);
            self.stats.secure_path_checks += 1;
        }
    }

    /// Sends session `slot`'s CLOSE frame once (a secure session that did
    /// not hear its peer's), with the code its owner gave.
    pub(super) fn say_close(&mut self, slot: u32, reason: WireReason) {
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let Some(x) = s.secure.as_mut() else { return };
        if x.close_sent {
            return;
        }
        x.close_sent = true;
        let code = x.close_code;
        if s.conn
            .send_control(Frame::Close { reason, code }, &mut self.tx.out)
            .is_ok()
        {
            self.tx.close_run(s.addr, s.local);
        }
    }

    /// [`Endpoint::close`] with an application code: a secure session's
    /// peer gets [`CloseReason::Remote`] with it (after what was queued
    /// was acknowledged). On kcp-go's wire the code goes nowhere.
    pub fn close_with_code(&mut self, id: SessionId, code: u32, now_ms: u32) -> Result<(), Error> {
        if let Some(x) = self.session_mut(id)?.secure.as_mut() {
            x.close_code = code;
        }
        self.close(id, now_ms)
    }

    /// The client's ID from its connect token, on either side of a secure
    /// session whose client used one (`None` with a PSK, on kcp-go's wire
    /// and before a dialer's handshake is done).
    pub fn client_id(&self, id: SessionId) -> Result<Option<u64>, Error> {
        self.get(id).map(|s| s.conn.client_id()).ok_or(Error::Closed)
    }

    /// The secure listener's handshake counters, if it is one.
    pub fn handshake_stats(&self) -> Option<crate::secure::handshake::ServerStats> {
        self.server.as_ref().map(|s| s.stats())
    }

    /// The connection ID of secure session `id` (`None` on kcp-go's wire
    /// and before a dialer's handshake is done).
    pub fn connection_id(&self, id: SessionId) -> Result<Option<ConnectionId>, Error> {
        self.get(id).map(|s| s.cid()).ok_or(Error::Closed)
    }

    /// Whether `id` has no secure session yet (a dialer's handshake).
    pub(super) fn not_ready(&mut self, id: SessionId) -> bool {
        if !self.handshaking() {
            return false;
        }
        if let Some(s) = self.get_mut(id) {
            s.want_writable = true;
        }
        true
    }
}

/// The wall clock's Unix seconds.
fn unix_now() -> Option<u64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(d.as_secs())
}
