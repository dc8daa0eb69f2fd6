//! Sessions over real UDP sockets: a [`Listener`] serves many peers from one
//! socket, a [`Dialer`] is one session on its own socket. Both drive the
//! sans-IO [`crate::endpoint::Endpoint`] and are driven in turn by the
//! caller: from its own poll/epoll loop (`fd`, `update`, `check`) or with
//! the blocking `wait`.
//!
//! ```no_run
//! use kcpx::net::{now_ms, Config, Dialer, Listener};
//! let mut cfg = Config::default();
//! cfg.endpoint.conn.set_stream(true);
//! let mut server = Listener::bind("127.0.0.1:0".parse()?, &cfg)?;
//! let mut client = Dialer::connect(server.local_addr()?, &cfg)?;
//! client.send(b"hello")?;
//! let id = loop {
//!     client.update(now_ms())?;
//!     server.wait(10)?;
//!     if let Some(id) = server.accept() { break id; }
//! };
//! let mut buf = [0u8; 64];
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # One clock
//!
//! The session layer owns its clock: every timer of a listener or dialer
//! (retransmission, RTT, idle and dead-link timeouts, batching) runs on
//! [`now_ms`], kcpx's monotonic millisecond clock, whatever the caller
//! passes. The `now_ms` argument of [`Listener::update`] and
//! [`Dialer::update`] is not used, and that of `check` only says which
//! clock its answer is on: the caller's own (a game server's tick clock,
//! `CLOCK_MONOTONIC` in ms, any origin, wrapping at 2^32), so a loop that
//! passes its own time gets its own deadline back and cannot put the
//! timers of `send`, `flush`, `close` and `wait` (which read kcpx's clock
//! themselves) out of step. The sans-IO layers below take the caller's time
//! on every call instead ([`crate::endpoint::Endpoint`], `kcpx_conn_*`).
//!
//! Threading: a listener and its sessions are used by one thread at a time
//! (`Send`, not `Sync`); distinct listeners and dialers are independent.
//!
//! Socket I/O on Linux is batched: `recvmmsg` and `sendmmsg` of up to 64
//! messages, UDP GSO for runs of same-size datagrams to one peer and UDP GRO
//! on receive, each detected per socket at run time with a fallback
//! ([`SocketStats`] counts system calls, datagrams, GSO/GRO use and
//! fallbacks; [`Config::offload`] turns GSO/GRO off). Other platforms use
//! plain `send_to`/`recv_from`.
//!
//! # Unsafe code
//!
//! None here: this module denies `unsafe_code`, and only its Linux
//! submodule `sys` (the `recvmmsg`/`sendmmsg`/control-message calls) is
//! allowed it; that module's documentation states the rule.
#![deny(unsafe_code)]

mod socket;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the only one: see the module's documentation
mod sys;
#[cfg(test)]
mod tests;

pub use crate::endpoint::{CloseReason, EndpointConfig, EndpointStats, Event, SessionId};
pub use socket::SocketStats;

use crate::conn::{ConnStats, RateLimit};
use crate::endpoint::Endpoint;
use crate::error::Error;
use socket::Driver;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

/// Default of [`Config::sockbuf`]: 4 MiB, as kcptun (the kernel's default
/// overflows under load; it caps the request at net.core.rmem_max).
pub const DEFAULT_SOCKBUF: usize = 4 << 20;

/// The monotonic millisecond clock kcpx's session layer runs its timers on
/// (any origin; wraps at 2^32; see "One clock" in the module documentation).
pub fn now_ms() -> u32 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u32
}

/// Settings of listeners and dialers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The sessions' settings and the endpoint's policies.
    pub endpoint: EndpointConfig,
    /// SO_RCVBUF and SO_SNDBUF in bytes.
    pub sockbuf: usize,
    /// Use UDP GSO and GRO where the kernel has them (Linux; default on).
    /// Off: `sendmmsg`/`recvmmsg` of one datagram per message.
    pub offload: bool,
    /// Set `SO_REUSEPORT` before binding (Unix; default off), so that
    /// several listeners, one per thread or process, bind the same address
    /// and port. The kernel spreads peers over them by a hash of the
    /// 4-tuple: a peer stays on one listener while the set of listeners
    /// stays the same (a listener that closes or joins moves some peers,
    /// whose sessions then restart on another listener; see docs/sessions.md,
    /// "Several threads, several machines"). Every socket on the port must set it.
    pub reuseport: bool,
    /// Receive coalescing in µs (0: off, the default; at most
    /// [`COALESCE_MAX_US`]): while datagrams keep arriving, `wait` sleeps
    /// this long instead of waking for each one, then reads the batch that
    /// accumulated. Fewer wake-ups and system calls per datagram for a busy
    /// listener, for up to this much latency; an idle socket still wakes at
    /// its first datagram.
    pub coalesce_us: u32,
}

/// Largest [`Config::coalesce_us`]: 100 ms.
pub const COALESCE_MAX_US: u32 = 100_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: EndpointConfig::default(),
            sockbuf: DEFAULT_SOCKBUF,
            offload: true,
            reuseport: false,
            coalesce_us: 0,
        }
    }
}

/// Smallest and largest [`Config::sockbuf`].
pub const SOCKBUF_RANGE: core::ops::RangeInclusive<usize> = 4096..=(1 << 30);

impl Config {
    /// SO_RCVBUF and SO_SNDBUF in bytes, within [`SOCKBUF_RANGE`] (the
    /// kernel caps it at net.core.rmem_max/wmem_max), else
    /// [`Error::Invalid`].
    pub fn set_sockbuf(&mut self, bytes: usize) -> Result<(), Error> {
        if !SOCKBUF_RANGE.contains(&bytes) {
            return Err(Error::Invalid);
        }
        self.sockbuf = bytes;
        Ok(())
    }

    /// [`Config::coalesce_us`], at most [`COALESCE_MAX_US`], else
    /// [`Error::Invalid`].
    pub fn set_coalesce(&mut self, us: u32) -> Result<(), Error> {
        if us > COALESCE_MAX_US {
            return Err(Error::Invalid);
        }
        self.coalesce_us = us;
        Ok(())
    }
}

/// A listener's counters: the endpoint's and the socket's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// The sessions' and datagrams' counters (kcp-go's SNMP names).
    pub endpoint: EndpointStats,
    /// The socket's: system calls, batching, buffers.
    pub socket: SocketStats,
}

/// Serves many peers from one UDP socket (kcp-go's `Listener`).
pub struct Listener {
    driver: Driver,
}

impl Listener {
    /// Binds `addr` (port 0: any free port).
    pub fn bind(addr: SocketAddr, config: &Config) -> Result<Listener, Error> {
        let endpoint = Endpoint::listener(config.endpoint.clone())?;
        Ok(Listener {
            driver: Driver::bind(addr, config, socket::RX_SLOTS_LISTENER, endpoint)?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.driver.local_addr()
    }

    /// The socket, for the caller's poll/epoll loop: readable means call
    /// [`Listener::update`], and block next for [`Listener::check`]'s
    /// time. An update reads a bounded batch; when datagrams are still
    /// waiting after it, `check` returns `now_ms` (update again before
    /// blocking), so an edge-triggered poll (EPOLLET), which does not wake
    /// again for them, loses no time either.
    #[cfg(unix)]
    pub fn fd(&self) -> i32 {
        self.driver.fd()
    }

    /// Never blocks: writes what sends queued, reads the pending datagrams
    /// (at most about 4,096: see [`Listener::fd`]), demultiplexes, runs due
    /// timers and writes their datagrams. The ACKs of what it read leave at
    /// the next write (check, update, wait or [`Listener::write_queued`]),
    /// in the replies sent meanwhile. Returns the datagrams read.
    /// `_caller_ms` is not used: the timers run on [`now_ms`] (see "One
    /// clock" in the module documentation).
    pub fn update(&mut self, _caller_ms: u32) -> Result<usize, Error> {
        self.driver.update(now_ms())
    }

    /// The time on the caller's clock, of which `caller_ms` is the current
    /// value, at which [`Listener::update`] is due next: at most a second
    /// away (`caller_ms + 1000` when nothing is scheduled; `caller_ms` when
    /// the last update left datagrams waiting). Writes the datagrams that
    /// sends queued first, so a loop that computes its timeout here before
    /// it blocks leaves nothing behind.
    pub fn check(&mut self, caller_ms: u32) -> u32 {
        caller_ms.wrapping_add(self.driver.due_in(now_ms()))
    }

    /// Writes what sends queued, blocks until a datagram arrives, a timer is
    /// due or `timeout_ms` passed (with [`Config::coalesce_us`], after
    /// reading datagrams last time, sleeps that long instead), then updates.
    /// Returns the datagrams read.
    pub fn wait(&mut self, timeout_ms: u32) -> Result<usize, Error> {
        self.driver.turn(timeout_ms)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.driver.endpoint.poll_event()
    }

    /// The next new session not handed out yet.
    pub fn accept(&mut self) -> Option<SessionId> {
        self.driver.endpoint.accept()
    }

    /// Queues data on a session and makes the datagrams the window allows
    /// at once (with flush-on-send, the default); see [`Endpoint::send`] for
    /// the bound and the codes. The datagrams of all sessions are written
    /// together, with one `sendmmsg`, at the next [`Listener::check`],
    /// [`Listener::update`], [`Listener::wait`] or
    /// [`Listener::write_queued`] (or at once when 64 are waiting): the
    /// replies a loop sends after one read cost one system call, not one
    /// each. [`Listener::flush`] writes at once.
    pub fn send(&mut self, id: SessionId, data: &[u8]) -> Result<usize, Error> {
        self.driver.session_send(id, data)
    }

    /// Writes now the datagrams that [`Listener::send`] and
    /// [`Listener::close_session`] queued (see there), and the ACKs of the
    /// sessions that received since the last write and sent no reply.
    pub fn write_queued(&mut self) {
        self.driver.write_queued(now_ms());
    }

    /// Receives from a session; see [`Endpoint::recv`].
    pub fn recv(&mut self, id: SessionId, buf: &mut [u8]) -> Result<usize, Error> {
        self.driver.endpoint.recv(id, buf)
    }

    /// Sends one unreliable message on a session (see
    /// [`Endpoint::send_datagram`]); written with the session's other
    /// datagrams, as for [`Listener::send`].
    pub fn send_datagram(&mut self, id: SessionId, data: &[u8]) -> Result<usize, Error> {
        self.driver.session_send_datagram(id, data)
    }

    /// Receives one unreliable message; see [`Endpoint::recv_datagram`].
    pub fn recv_datagram(&mut self, id: SessionId, buf: &mut [u8]) -> Result<usize, Error> {
        self.driver.endpoint.recv_datagram(id, buf)
    }

    /// The longest unreliable message a session sends.
    pub fn datagram_max(&self, id: SessionId) -> Result<usize, Error> {
        self.driver.endpoint.datagram_max(id)
    }

    /// Caps what a session sends; see [`Endpoint::set_rate_limit`].
    pub fn set_rate_limit(&mut self, id: SessionId, limit: Option<RateLimit>) -> Result<(), Error> {
        self.driver.endpoint.set_rate_limit(id, limit)
    }

    /// Sends what a session has queued now, and writes every queued
    /// datagram.
    pub fn flush(&mut self, id: SessionId) -> Result<(), Error> {
        self.driver.session_flush(id)
    }

    /// Closes a session: what it queued is still sent, then it is freed.
    pub fn close_session(&mut self, id: SessionId) -> Result<(), Error> {
        self.driver.session_close(id)
    }

    /// The endpoint (for per-session queries: counters, address, conv, RTT).
    pub fn endpoint(&self) -> &Endpoint {
        &self.driver.endpoint
    }

    /// A session's counters.
    pub fn session_stats(&self, id: SessionId) -> Result<ConnStats, Error> {
        self.driver.endpoint.session_stats(id)
    }

    /// The listener's counters.
    pub fn stats(&self) -> ListenerStats {
        self.driver.stats()
    }
}

impl Drop for Listener {
    /// Closing a listener closes its sessions: each flushes once.
    fn drop(&mut self) {
        self.driver.close_all();
    }
}

/// One session to a server, on its own UDP socket (kcp-go's `DialWithOptions`):
/// a random conv, datagrams accepted only from the dialed address.
pub struct Dialer {
    driver: Driver,
    id: SessionId,
    /// `send` refused data (`Again`, or a short write) since `wait` last
    /// reported room: `wait` returns when there is room again.
    refused: bool,
}

impl Dialer {
    /// Opens a session to `remote` from an ephemeral local port.
    pub fn connect(remote: SocketAddr, config: &Config) -> Result<Dialer, Error> {
        let local: SocketAddr = match remote {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let (endpoint, id) = Endpoint::dialer(config.endpoint.clone(), remote, now_ms())?;
        let mut driver = Driver::bind(local, config, socket::RX_SLOTS_DIALER, endpoint)?;
        driver.endpoint.handle_timeout(now_ms());
        driver.send();
        Ok(Dialer {
            driver,
            id,
            refused: false,
        })
    }

    /// The session's id in [`Dialer::endpoint`].
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The local address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.driver.local_addr()
    }

    /// The socket, for the caller's poll/epoll loop.
    #[cfg(unix)]
    pub fn fd(&self) -> i32 {
        self.driver.fd()
    }

    /// Never blocks: writes what [`Dialer::send`] queued, reads, runs
    /// timers and writes their datagrams (the ACKs of what it read leave at
    /// the next write, as for [`Listener::update`]). Returns the datagrams
    /// read. `_caller_ms` is not used, as for [`Listener::update`].
    pub fn update(&mut self, _caller_ms: u32) -> Result<usize, Error> {
        self.driver.update(now_ms())
    }

    /// When [`Dialer::update`] is due next, on the caller's clock of which
    /// `caller_ms` is the current value (as [`Listener::check`]). Writes
    /// what [`Dialer::send`] queued first.
    pub fn check(&mut self, caller_ms: u32) -> u32 {
        caller_ms.wrapping_add(self.driver.due_in(now_ms()))
    }

    /// The blocking convenience for programs without a loop of their own
    /// (events need not be taken): runs the session's I/O and timers — at
    /// least one non-blocking update on every call, whatever is pending —
    /// and blocks until there is something to do or `timeout_ms` passed.
    /// Returns `true` when there is: data or an unreliable message to read
    /// ([`Dialer::recv`], [`Dialer::recv_datagram`]; level-triggered, so
    /// `true` at once while either waits unread), room to send
    /// after [`Dialer::send`] refused data (`Again` or a short write; once
    /// per refusal), or the session closed ([`Dialer::recv`] and
    /// [`Dialer::send`] answer at once: what is left, then
    /// [`Error::Closed`]). `false` after the timeout. It never sleeps past
    /// a datagram's arrival or a due timer, and never returns `true` with
    /// nothing to do.
    pub fn wait(&mut self, timeout_ms: u32) -> Result<bool, Error> {
        let start = now_ms();
        self.driver.update(start)?;
        loop {
            if self.ready() {
                return Ok(true);
            }
            let left = timeout_ms.saturating_sub(now_ms().wrapping_sub(start));
            if left == 0 {
                return Ok(false);
            }
            self.driver.turn(left)?;
        }
    }

    /// What [`Dialer::wait`] returns `true` for (and clears the refusal it
    /// reports).
    fn ready(&mut self) -> bool {
        let ep = &self.driver.endpoint;
        let readable =
            matches!(ep.peek_size(self.id), Ok(Some(_))) || ep.datagrams_waiting(self.id).is_ok_and(|n| n > 0);
        let closed = !matches!(ep.close_reason(self.id), Ok(None));
        let room = self.refused && ep.has_send_room(self.id).unwrap_or(true);
        self.refused &= !room;
        readable || closed || room
    }

    /// The session's next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.driver.endpoint.poll_event()
    }

    /// Queues data and makes the datagrams the window allows at once; they
    /// are written at the next check, update, wait or flush (or at once when
    /// 64 are waiting), as for [`Listener::send`].
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        let sent = self.driver.session_send(self.id, data);
        self.refused |= match sent {
            Ok(n) => n < data.len(),
            Err(e) => e == Error::Again,
        };
        sent
    }

    /// Receives; see [`Endpoint::recv`].
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.driver.endpoint.recv(self.id, buf)
    }

    /// Sends one unreliable message (see [`Endpoint::send_datagram`]);
    /// written with the session's other datagrams, as for [`Dialer::send`].
    pub fn send_datagram(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.driver.session_send_datagram(self.id, data)
    }

    /// Receives one unreliable message; see [`Endpoint::recv_datagram`].
    pub fn recv_datagram(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.driver.endpoint.recv_datagram(self.id, buf)
    }

    /// The longest unreliable message the session sends.
    pub fn datagram_max(&self) -> Result<usize, Error> {
        self.driver.endpoint.datagram_max(self.id)
    }

    /// Caps what the session sends; see [`Endpoint::set_rate_limit`].
    pub fn set_rate_limit(&mut self, limit: Option<RateLimit>) -> Result<(), Error> {
        self.driver.endpoint.set_rate_limit(self.id, limit)
    }

    /// Sends and writes what is queued now.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.driver.session_flush(self.id)
    }

    /// The endpoint (for the session's counters, conv, RTT, close reason).
    pub fn endpoint(&self) -> &Endpoint {
        &self.driver.endpoint
    }

    /// The dialer's counters.
    pub fn stats(&self) -> ListenerStats {
        self.driver.stats()
    }

    /// Closes the session: blocks up to `linger_ms` while what it queued is
    /// sent and acknowledged, then frees it (dropping a dialer flushes once
    /// and does not wait).
    pub fn close(mut self, linger_ms: u32) {
        let start = now_ms();
        let _ = self.driver.session_close(self.id);
        while self.driver.endpoint.sessions_alive() > 0 && now_ms().wrapping_sub(start) < linger_ms {
            if self.driver.turn(10).is_err() {
                break;
            }
        }
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        self.driver.close_all();
    }
}
