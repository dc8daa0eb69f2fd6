//! The application's side of an endpoint's sessions: send, receive, flush,
//! close, and queries by [`SessionId`].

use super::{send_limit, Endpoint, Session, State, DRAIN_LIMIT_MS};
use super::{CloseReason, SessionId};
use crate::conn::ConnStats;
use crate::error::Error;
use std::net::SocketAddr;

impl Endpoint {
    // ----- one session -----

    pub(super) fn get(&self, id: SessionId) -> Option<&Session> {
        let s = self.slots.get(id.slot as usize)?.as_ref()?;
        (self.generations[id.slot as usize] == id.generation).then_some(s)
    }

    pub(super) fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let s = self.slots.get_mut(id.slot as usize)?.as_mut()?;
        (self.generations[id.slot as usize] == id.generation).then_some(s)
    }

    pub(super) fn session_at(&self, slot: u32) -> &Session {
        self.slots[slot as usize].as_ref().expect("live slot")
    }

    /// The slot of session `id`, unless freed or closed by the application.
    pub(super) fn owned_slot(&self, id: SessionId) -> Result<usize, Error> {
        match self.get(id) {
            Some(s) if !matches!(s.state, State::Draining { .. }) => Ok(id.slot as usize),
            _ => Err(Error::Closed),
        }
    }

    /// The session, unless freed or closed by the application.
    pub(super) fn session_mut(&mut self, id: SessionId) -> Result<&mut Session, Error> {
        let slot = self.owned_slot(id)?;
        Ok(self.slots[slot].as_mut().expect("live slot"))
    }

    /// Queues `data` on session `id` at the caller's time `now_ms`, and
    /// (with `flush_on_send`) hands it to the wire at once as far as the
    /// window allows. Returns the bytes queued: in stream mode as many as
    /// the send queue has room for; in message mode the whole message. The
    /// send queue holds at most [`send_limit`] segments (twice the send
    /// window): [`Error::Again`] when it is full. After `Again` and after a
    /// short write (stream mode: fewer bytes queued than given) an
    /// [`Event::Writable`](super::Event::Writable) follows once there is room. An empty `data`
    /// queues nothing. [`Error::Closed`] after the session closed,
    /// [`Error::TooLarge`] for a message over 127 segments. A secure
    /// dialer's session says [`Error::Again`] until its handshake is done
    /// (then a Writable event follows).
    pub fn send(&mut self, id: SessionId, data: &[u8], now_ms: u32) -> Result<usize, Error> {
        self.tick(now_ms);
        let flush = self.config.flush_on_send;
        let slot = self.owned_slot(id)?;
        if self.not_ready(id) {
            return Err(Error::Again);
        }
        let s = self.slots[slot].as_mut().expect("live slot");
        if s.state != State::Open {
            return Err(Error::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let (waiting, limit) = (s.conn.wait_snd(), send_limit(&s.conn));
        if waiting >= limit {
            s.want_writable = true;
            return Err(Error::Again);
        }
        let n = if s.conn.kcp().mss() > 0 && self.config.conn.stream {
            data.len().min((limit - waiting) * s.conn.kcp().mss() as usize)
        } else {
            data.len()
        };
        s.conn.send(&data[..n])?;
        // A short write means "full for now", as `Again` does: the caller
        // waits for the Writable event that says there is room again.
        s.want_writable |= n < data.len();
        s.wake();
        s.conn.set_clock(now_ms);
        if flush {
            s.conn.flush(&mut self.tx.out);
            self.tx.close_run(s.addr, s.local);
        }
        self.after_activity(id.slot);
        Ok(n)
    }

    /// Receives from session `id`: see [`Conn::recv`](crate::conn::Conn::recv) (stream mode fills
    /// any buffer; message mode one whole message). [`Error::Again`] when
    /// nothing is waiting; [`Error::BufferTooSmall`] when something is
    /// waiting that `buf` cannot hold (any data for an empty `buf`). After a
    /// close event, what was received before it can still be read, then
    /// [`Error::Closed`].
    pub fn recv(&mut self, id: SessionId, buf: &mut [u8]) -> Result<usize, Error> {
        let s = self.session_mut(id)?;
        let open = s.state == State::Open;
        if buf.is_empty() {
            return match s.conn.peek_size() {
                Some(_) => Err(Error::BufferTooSmall),
                None if open => Err(Error::Again),
                None => Err(Error::Closed),
            };
        }
        match s.conn.recv(buf) {
            Ok(n) => {
                if open {
                    // Reading may reopen the receive window: KCP then owes
                    // the peer a window update.
                    self.after_activity(id.slot);
                }
                Ok(n)
            }
            Err(Error::Again) if !open => Err(Error::Closed),
            Err(Error::Again) => {
                s.readable_signalled = false;
                Err(Error::Again)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `data` as one unreliable message on session `id` (see
    /// [`Conn::send_datagram`](crate::conn::Conn::send_datagram)): it
    /// leaves with the next write, beside the stream and never behind it.
    /// Returns its length; [`Error::TooLarge`] over
    /// [`Endpoint::datagram_max`], [`Error::Again`] when the session's rate
    /// limit has no room for it now, [`Error::Closed`] after the session
    /// closed.
    pub fn send_datagram(&mut self, id: SessionId, data: &[u8], now_ms: u32) -> Result<usize, Error> {
        self.tick(now_ms);
        let slot = self.owned_slot(id)?;
        if self.not_ready(id) {
            return Err(Error::Again);
        }
        let s = self.slots[slot].as_mut().expect("live slot");
        if s.state != State::Open {
            return Err(Error::Closed);
        }
        s.conn.set_clock(now_ms);
        let n = s.conn.send_datagram(data, &mut self.tx.out)?;
        self.tx.close_run(s.addr, s.local);
        Ok(n)
    }

    /// The longest unreliable message session `id` sends (kcp-go's
    /// `GetOOBMaxSize`).
    pub fn datagram_max(&self, id: SessionId) -> Result<usize, Error> {
        self.get(id).map(|s| s.conn.datagram_max()).ok_or(Error::Closed)
    }

    /// Caps what session `id` sends (see
    /// [`RateLimit`](crate::conn::RateLimit); `None` lifts the cap), in
    /// place of the listener's or dialer's configured one.
    pub fn set_rate_limit(&mut self, id: SessionId, limit: Option<crate::conn::RateLimit>) -> Result<(), Error> {
        self.session_mut(id)?.conn.set_rate_limit(limit);
        Ok(())
    }

    /// Unreliable messages waiting on session `id`.
    pub fn datagrams_waiting(&self, id: SessionId) -> Result<usize, Error> {
        self.get(id).map(|s| s.conn.datagrams_waiting()).ok_or(Error::Closed)
    }

    /// Receives the oldest unreliable message of session `id` into `buf`:
    /// its length; [`Error::Again`] when none waits (the next
    /// [`Event::Datagram`](super::Event::Datagram) says when one does);
    /// [`Error::BufferTooSmall`] when `buf` cannot hold it (it stays).
    /// After a close event, what arrived before it can still be read, then
    /// [`Error::Closed`].
    pub fn recv_datagram(&mut self, id: SessionId, buf: &mut [u8]) -> Result<usize, Error> {
        let s = self.session_mut(id)?;
        match s.conn.recv_datagram(buf) {
            Err(Error::Again) if s.state != State::Open => Err(Error::Closed),
            Err(Error::Again) => {
                s.datagram_signalled = false;
                Err(Error::Again)
            }
            other => other,
        }
    }

    /// Size of the next message (stream mode: bytes ready), `None` when
    /// nothing is waiting on an open session; after a close event the size
    /// of what is left, then [`Error::Closed`] once everything was read.
    pub fn peek_size(&self, id: SessionId) -> Result<Option<usize>, Error> {
        match self.get(id) {
            Some(s) if !matches!(s.state, State::Draining { .. }) => match s.conn.peek_size() {
                None if s.state != State::Open => Err(Error::Closed),
                size => Ok(size),
            },
            _ => Err(Error::Closed),
        }
    }

    /// Whether `send` on session `id` would queue something now (its send
    /// queue holds fewer than [`send_limit`] segments).
    pub fn has_send_room(&self, id: SessionId) -> Result<bool, Error> {
        self.get(id)
            .map(|s| s.conn.wait_snd() < send_limit(&s.conn))
            .ok_or(Error::Closed)
    }

    /// Sends what session `id` has queued now, without waiting for its
    /// next update; [`Error::Closed`] after the session closed.
    pub fn flush(&mut self, id: SessionId, now_ms: u32) -> Result<(), Error> {
        self.tick(now_ms);
        let slot = self.owned_slot(id)?;
        let s = self.slots[slot].as_mut().expect("live slot");
        if s.state != State::Open {
            return Err(Error::Closed);
        }
        s.conn.set_clock(now_ms);
        s.conn.flush(&mut self.tx.out);
        self.tx.close_run(s.addr, s.local);
        self.after_activity(id.slot);
        Ok(())
    }

    /// The application is done with session `id`: an open session keeps
    /// sending what it had queued until the peer acknowledged it (or the
    /// link died, or the idle timeout — [`DRAIN_LIMIT_MS`] without one —
    /// passed), then is freed; a closed one is freed now. The id is invalid
    /// afterwards.
    pub fn close(&mut self, id: SessionId, now_ms: u32) -> Result<(), Error> {
        let t = self.tick(now_ms);
        let limit = match self.config.idle_timeout_ms {
            0 => DRAIN_LIMIT_MS,
            ms => ms as u64,
        };
        let slot = self.owned_slot(id)?;
        let s = self.slots[slot].as_mut().expect("live slot");
        match s.state {
            State::Open if s.conn.wait_snd() > 0 => {
                s.conn.set_clock(now_ms);
                s.conn.flush(&mut self.tx.out);
                self.tx.close_run(s.addr, s.local);
                s.state = State::Draining { until: t + limit };
                self.stats.curr_estab -= 1;
                self.rearm(id.slot);
            }
            _ => self.free_slot(id.slot),
        }
        Ok(())
    }

    /// Closes every session as the endpoint goes away: each open one the
    /// application took flushes once (as kcp-go's close does), all are
    /// freed.
    pub fn close_all(&mut self, now_ms: u32) {
        self.tick(now_ms);
        for slot in 0..self.slots.len() as u32 {
            let Some(s) = self.slots[slot as usize].as_mut() else {
                continue;
            };
            // A session still waiting to be accepted sent nothing and sends
            // nothing now (see `rearm`).
            if s.handed_out && matches!(s.state, State::Open | State::Draining { .. }) {
                s.conn.set_clock(now_ms);
                s.conn.flush(&mut self.tx.out);
                self.tx.close_run(s.addr, s.local);
            }
            self.say_close(slot, crate::secure::frames::CloseReason::Shutdown); // secure.rs
            self.free_slot(slot);
        }
        self.accept_queue.clear();
        self.events.clear();
        self.peeked = None;
    }

    /// Counters of session `id`.
    pub fn session_stats(&self, id: SessionId) -> Result<ConnStats, Error> {
        self.get(id).map(|s| s.conn.stats()).ok_or(Error::Closed)
    }

    /// The peer's address of session `id`.
    pub fn remote_addr(&self, id: SessionId) -> Result<SocketAddr, Error> {
        self.get(id).map(|s| s.addr).ok_or(Error::Closed)
    }

    /// The conversation id of session `id`.
    pub fn conv(&self, id: SessionId) -> Result<u32, Error> {
        self.get(id).map(|s| s.conv).ok_or(Error::Closed)
    }

    /// The session's RTT estimate (ms) and retransmission timeout (ms).
    pub fn rtt(&self, id: SessionId) -> Result<(i32, i32), Error> {
        self.get(id)
            .map(|s| (s.conn.kcp().srtt(), s.conn.kcp().rto()))
            .ok_or(Error::Closed)
    }

    /// Why session `id` closed, `None` while it is open.
    pub fn close_reason(&self, id: SessionId) -> Result<Option<CloseReason>, Error> {
        match self.get(id).map(|s| s.state) {
            Some(State::Open) => Ok(None),
            Some(State::Closed(r)) => Ok(Some(r)),
            _ => Err(Error::Closed),
        }
    }

    /// Segments queued or in flight on session `id`.
    pub fn wait_snd(&self, id: SessionId) -> Result<usize, Error> {
        self.get(id).map(|s| s.conn.wait_snd()).ok_or(Error::Closed)
    }

    /// Timer entries held (stale ones included): at most about two per
    /// session. For tests of the scheduler's bounds.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }
}
