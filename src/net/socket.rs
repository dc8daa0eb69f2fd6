//! One non-blocking UDP socket driving one [`Endpoint`]: reads every
//! pending datagram into the endpoint, runs its timers, sends its transmits.
//!
//! On Linux the socket is read with `recvmmsg` into a reused batch of
//! buffers (with UDP GRO where the kernel has it: one buffer then holds
//! several datagrams of a peer, split here by the segment size the kernel
//! reports), and the endpoint's transmits (one ordered batch of every
//! session's datagrams, in runs per destination) are written with
//! `sendmmsg`, a run of same-size datagrams to one destination as one UDP
//! GSO message. Support is detected per socket when it is made; a socket
//! whose GSO sends the kernel refuses (EIO/EINVAL) falls back to one datagram
//! per message, for good, and counts it. The system calls themselves are in
//! `sys.rs`. Elsewhere: plain `recv_from`/`send_to`, same behaviour.
//!
//! Every time here is on kcpx's clock, [`now_ms`] (see "One clock" in
//! `net`'s documentation): the methods that take `now_ms` are given it by
//! `Listener` and `Dialer` (tests give them virtual times), the others read
//! it themselves.

use super::{now_ms, Config, ListenerStats};
use crate::endpoint::{Endpoint, SessionId};
use crate::error::Error;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
#[cfg(not(target_os = "linux"))]
use std::time::Duration;

#[cfg(target_os = "linux")]
use super::sys;

/// Receive buffer per datagram without GRO: larger than kcp-go's 1500-byte
/// limit, so oversized datagrams are seen (and refused by the endpoint)
/// rather than silently truncated.
const RX_BUFFER: usize = 2048;
/// Datagrams read per update at most, so that one busy socket cannot starve
/// the caller's loop.
pub(crate) const RX_BUDGET: usize = 4096;
/// Datagrams that session operations (send, close) may queue before they
/// are written at once; below this they wait for the caller's next `check`,
/// `update`, `wait` or `write_queued`, so that the replies a loop sends to
/// many sessions after one read leave in one `sendmmsg`.
const TX_EAGER: usize = 64;
/// Transmits kept while the kernel's send buffer is full, at most; beyond,
/// they are dropped and counted (KCP retransmits).
const TX_BACKLOG: usize = 65536;
/// GRO receive buffers (64 KiB each) of a listener's batch, at most: 1 MiB.
/// Without GRO a batch holds up to 64 buffers of 2 KiB (128 KiB). The batch
/// starts at one buffer and doubles each time a `recvmmsg` fills it, so a
/// quiet socket stays small.
pub(crate) const RX_SLOTS_LISTENER: usize = 16;
/// The same for a dialer's socket (one session: 256 KiB with GRO).
pub(crate) const RX_SLOTS_DIALER: usize = 4;

/// Counters of the socket layer. Datagrams per system call are
/// `recv_datagrams / recv_syscalls` and `sent_datagrams / send_syscalls`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Receive and send system calls made (`recvmmsg`/`sendmmsg` on Linux,
    /// `recv_from`/`send_to` elsewhere), those that found nothing to read or
    /// no room to write included.
    pub recv_syscalls: u64,
    /// Send system calls made.
    pub send_syscalls: u64,
    /// Datagrams read and written (each segment of a GRO buffer or GSO send
    /// counts).
    pub recv_datagrams: u64,
    /// Datagrams written.
    pub sent_datagrams: u64,
    /// GSO messages sent (each several datagrams) and GRO buffers received
    /// holding more than one datagram.
    pub gso_sends: u64,
    /// GRO buffers received holding more than one datagram.
    pub gro_receives: u64,
    /// Times the kernel refused a GSO send (EIO/EINVAL) and the socket fell
    /// back to one datagram per message (at most once per socket).
    pub gso_fallbacks: u64,
    /// Whether the socket uses GSO and GRO now (Linux, when the kernel has
    /// them and [`Config::offload`] is on).
    pub gso: bool,
    /// Whether the socket uses GRO now.
    pub gro: bool,
    /// Whether the socket learns each datagram's local address (Linux, a
    /// listener bound to 0.0.0.0 or `[::]`): its sessions then reply from
    /// the address their peer sent to.
    pub pktinfo: bool,
    /// Sends refused for a full socket buffer (kept for the next update).
    pub send_would_block: u64,
    /// Sends that failed otherwise, and transmits dropped past the backlog.
    pub send_errors: u64,
    /// Transmits dropped past the backlog.
    pub send_dropped: u64,
    /// Times the listener went quiet after traffic and gave its receive
    /// batch and free heap back (glibc's `malloc_trim`).
    pub heap_trims: u64,
    /// The socket's receive and send buffer sizes as the kernel set them.
    pub rcvbuf: u64,
    /// The send buffer size as the kernel set it.
    pub sndbuf: u64,
}

/// A socket and the endpoint it drives.
pub(crate) struct Driver {
    pub(crate) endpoint: Endpoint,
    socket: UdpSocket,
    /// Receive buffers: `rx.len() / rx_slot` slots of `rx_slot` bytes
    /// (elsewhere than Linux: one).
    rx: Vec<u8>,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    rx_slot: usize,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    rx_max_slots: usize,
    #[cfg(target_os = "linux")]
    rx_meta: Vec<sys::Received>,
    /// The most slots one `recvmmsg` filled since `rx_peak_since` (the
    /// caller's clock): once a second the batch shrinks to what was used.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    rx_peak: usize,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    rx_peak_since: Option<u32>,
    /// Transmits of the endpoint already sent.
    tx_sent: usize,
    /// [`Config::coalesce_us`].
    coalesce_us: u32,
    /// Whether the last update read datagrams (so more are likely coming).
    busy: bool,
    /// Whether the last update stopped at [`RX_BUDGET`] with datagrams
    /// still waiting: the next update is due at once (an edge-triggered
    /// poll would not wake for them).
    more_waiting: bool,
    stats: SocketStats,
}

impl Driver {
    /// Binds a non-blocking UDP socket to `addr` with the configured kernel
    /// buffers (capped by the kernel's rmem_max/wmem_max) and offloads;
    /// reads at most `rx_slots` GRO buffers per system call.
    pub(crate) fn bind(
        addr: SocketAddr,
        config: &Config,
        rx_slots: usize,
        endpoint: Endpoint,
    ) -> Result<Driver, Error> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_recv_buffer_size(config.sockbuf)?;
        socket.set_send_buffer_size(config.sockbuf)?;
        socket.set_nonblocking(true)?;
        if config.reuseport {
            #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
            socket.set_reuse_port(true)?;
            #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
            return Err(Error::Invalid);
        }
        socket.bind(&addr.into())?;
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut stats = SocketStats {
            rcvbuf: socket.recv_buffer_size()? as u64,
            sndbuf: socket.send_buffer_size()? as u64,
            ..SocketStats::default()
        };
        let socket: UdpSocket = socket.into();
        #[cfg(target_os = "linux")]
        if config.offload {
            stats.gso = sys::enable_gso(&socket);
            stats.gro = sys::enable_gro(&socket);
        }
        // A wildcard-bound listener learns each datagram's local address,
        // so that its sessions reply from the address their peer sent to.
        #[cfg(target_os = "linux")]
        if addr.ip().is_unspecified() && endpoint.is_listener() {
            stats.pktinfo = sys::enable_pktinfo(&socket, addr.is_ipv6());
        }
        #[cfg(target_os = "linux")]
        let (rx_slot, rx_slots) = match stats.gro {
            true => (sys::GRO_BUFFER, rx_slots),
            false => (RX_BUFFER, sys::BATCH),
        };
        #[cfg(not(target_os = "linux"))]
        let rx_slot = RX_BUFFER;
        Ok(Driver {
            endpoint,
            socket,
            rx: vec![0; rx_slot],
            rx_slot,
            rx_max_slots: rx_slots.max(1),
            #[cfg(target_os = "linux")]
            rx_meta: Vec::new(),
            rx_peak: 0,
            rx_peak_since: None,
            tx_sent: 0,
            coalesce_us: config.coalesce_us,
            busy: false,
            more_waiting: false,
            stats,
        })
    }

    pub(crate) fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.socket.local_addr()?)
    }

    #[cfg(test)]
    pub(crate) fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    #[cfg(unix)]
    pub(crate) fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.socket)
    }

    /// The endpoint's and the socket's counters.
    pub(crate) fn stats(&self) -> ListenerStats {
        ListenerStats {
            endpoint: self.endpoint.stats(),
            socket: self.stats,
        }
    }

    /// Milliseconds from `now_ms` until `update` is due, at most a second
    /// (0 while the last update left datagrams waiting). Writes what
    /// session operations queued first: a loop computes its timeout here
    /// before it blocks.
    pub(crate) fn due_in(&mut self, now_ms: u32) -> u32 {
        self.write_queued(now_ms);
        if self.more_waiting {
            return 0;
        }
        self.until_due(now_ms, 1000)
    }

    /// Writes what is queued, blocks until a datagram arrives, a timer is
    /// due or `max_ms` passed, then updates. Returns the datagrams read.
    /// With coalescing on and datagrams read last time, sleeps the
    /// coalescing time (at most until the next deadline) instead of waking
    /// at the next datagram.
    pub(crate) fn turn(&mut self, max_ms: u32) -> Result<usize, Error> {
        self.write_queued(now_ms());
        let wait = match self.more_waiting {
            true => 0,
            false => self.until_due(now_ms(), max_ms),
        };
        if self.busy && self.coalesce_us > 0 && wait > 0 {
            let us = u64::from(self.coalesce_us).min(u64::from(wait) * 1000);
            std::thread::sleep(std::time::Duration::from_micros(us));
        } else {
            self.block(wait)?;
        }
        self.update(now_ms())
    }

    /// Flushes the sessions that received datagrams since the last write
    /// (their ACKs, unless a reply carried them already), then writes what
    /// is queued.
    pub(crate) fn write_queued(&mut self, now_ms: u32) {
        self.endpoint.flush_received(now_ms);
        if self.endpoint.transmits().len() > self.tx_sent {
            self.send();
        }
    }

    /// Writes at once when [`TX_EAGER`] datagrams are queued.
    fn write_if_many_queued(&mut self) {
        if self.endpoint.transmits().len() - self.tx_sent >= TX_EAGER {
            self.send();
        }
    }

    /// `Endpoint::send` now; the socket write waits for the caller's next
    /// check/update/turn unless [`TX_EAGER`] datagrams are queued.
    pub(crate) fn session_send(&mut self, id: SessionId, data: &[u8]) -> Result<usize, Error> {
        let n = self.endpoint.send(id, data, now_ms())?;
        self.write_if_many_queued();
        Ok(n)
    }

    /// `Endpoint::send_datagram`; the socket write as for `session_send`.
    pub(crate) fn session_send_datagram(&mut self, id: SessionId, data: &[u8]) -> Result<usize, Error> {
        let n = self.endpoint.send_datagram(id, data, now_ms())?;
        self.write_if_many_queued();
        Ok(n)
    }

    /// `Endpoint::flush` now, then the socket write.
    pub(crate) fn session_flush(&mut self, id: SessionId) -> Result<(), Error> {
        self.endpoint.flush(id, now_ms())?;
        self.send();
        Ok(())
    }

    /// `Endpoint::close` now; the socket write as for `session_send`.
    pub(crate) fn session_close(&mut self, id: SessionId) -> Result<(), Error> {
        self.endpoint.close(id, now_ms())?;
        self.write_if_many_queued();
        Ok(())
    }

    /// Every session flushes once and is freed (the owner goes away).
    pub(crate) fn close_all(&mut self) {
        self.endpoint.close_all(now_ms());
        self.send();
    }

    /// Never blocks: writes what is queued, reads every pending datagram (up
    /// to [`RX_BUDGET`]; when it stopped there with more waiting, `check`
    /// returns `now_ms` and `turn` does not block until an update read
    /// the socket empty), runs the endpoint's due timers, writes their
    /// datagrams. The sessions that received flush at the next write, so
    /// that the replies the caller sends after this carry their ACKs.
    /// Returns the datagrams read.
    pub(crate) fn update(&mut self, now_ms: u32) -> Result<usize, Error> {
        self.write_queued(now_ms);
        let (mut read, mut more) = (0, true);
        while more && read < RX_BUDGET {
            match self.recv_some(now_ms) {
                Ok((n, filled)) => (read, more) = (read + n, filled),
                Err(e) if e.kind() == ErrorKind::WouldBlock => more = false,
                // A previous send's ICMP error, or a signal: try again later.
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::Interrupted) => more = false,
                Err(e) => return Err(e.into()),
            }
        }
        self.more_waiting = more;
        self.stats.recv_datagrams += read as u64;
        self.busy = read > 0;
        #[cfg(target_os = "linux")]
        self.trim_rx(now_ms);
        self.endpoint.handle_timers(now_ms);
        self.send();
        #[cfg(target_os = "linux")]
        if self.endpoint.take_quiet() {
            self.shrink_quiet();
        }
        Ok(read)
    }

    /// One `recvmmsg`: hands every datagram read to the endpoint (the
    /// segments of a GRO buffer one by one). Returns how many, and whether
    /// the call filled every buffer (so more may be waiting; otherwise the
    /// socket was drained and another call would only find it empty).
    #[cfg(target_os = "linux")]
    fn recv_some(&mut self, now_ms: u32) -> std::io::Result<(usize, bool)> {
        let slots = self.rx.len() / self.rx_slot;
        self.stats.recv_syscalls += 1;
        let n = sys::recv(&self.socket, &mut self.rx, self.rx_slot, &mut self.rx_meta)?;
        let mut datagrams = 0;
        for (i, m) in self.rx_meta.iter().enumerate() {
            let buf = &mut self.rx[i * self.rx_slot..][..m.len];
            let Some(from) = m.from else { continue };
            if m.segment > 0 && m.len > m.segment {
                self.stats.gro_receives += 1;
                for datagram in buf.chunks_mut(m.segment) {
                    deliver(&mut self.endpoint, now_ms, from, m.local, datagram);
                    datagrams += 1;
                }
            } else {
                deliver(&mut self.endpoint, now_ms, from, m.local, buf);
                datagrams += 1;
            }
        }
        self.rx_peak = self.rx_peak.max(n);
        if n == slots && slots < self.rx_max_slots.min(sys::BATCH) {
            self.rx.resize(self.rx.len() * 2, 0);
        }
        Ok((datagrams, n == slots))
    }

    /// Once a second at most: a receive batch more than twice as large as
    /// the most any call of that second filled shrinks to that (a power of
    /// two, at least one buffer), so a listener that had a burst does not
    /// keep up to 1 MiB of buffers while it is quiet.
    #[cfg(target_os = "linux")]
    fn trim_rx(&mut self, now_ms: u32) {
        let since = *self.rx_peak_since.get_or_insert(now_ms);
        if now_ms.wrapping_sub(since) < 1000 {
            return;
        }
        let keep = self.rx_peak.max(1).next_power_of_two();
        if self.rx.len() / self.rx_slot > 2 * keep {
            self.rx.truncate(keep * self.rx_slot);
            self.rx.shrink_to_fit();
        }
        self.rx_peak = 0;
        self.rx_peak_since = Some(now_ms);
    }

    /// The endpoint went quiet after traffic (see `Endpoint::take_quiet`):
    /// the receive batch shrinks to one buffer, and, for a listener, the
    /// heap freed by the endpoint and its sessions goes back to the system
    /// (not for each of a process's dialers: `malloc_trim` walks the whole
    /// heap, and a program with thousands of dialers would pay for that
    /// thousands of times when they go quiet together).
    #[cfg(target_os = "linux")]
    fn shrink_quiet(&mut self) {
        self.rx.truncate(self.rx_slot);
        self.rx.shrink_to_fit();
        self.rx_meta = Vec::new();
        self.rx_peak = 0;
        if self.endpoint.is_listener() {
            self.stats.heap_trims += 1;
            sys::trim_heap();
        }
    }

    /// The receive batch's size in bytes (tests).
    #[cfg(test)]
    pub(crate) fn rx_bytes(&self) -> usize {
        self.rx.capacity()
    }

    /// One `recv_from`.
    #[cfg(not(target_os = "linux"))]
    fn recv_some(&mut self, now_ms: u32) -> std::io::Result<(usize, bool)> {
        self.stats.recv_syscalls += 1;
        let (n, from) = self.socket.recv_from(&mut self.rx)?;
        self.endpoint.handle(now_ms, from, &mut self.rx[..n]);
        Ok((1, true))
    }

    /// Sends the endpoint's transmits; what the kernel refuses for a full
    /// buffer waits for the next call.
    pub(crate) fn send(&mut self) {
        self.send_pending();
        let pending = self.endpoint.transmits().len() - self.tx_sent;
        if pending == 0 || pending > TX_BACKLOG {
            self.stats.send_dropped += pending as u64;
            self.endpoint.clear_transmits();
            self.tx_sent = 0;
        }
    }

    /// `sendmmsg` calls of up to 64 messages until every transmit is sent
    /// or the socket buffer is full; each message one datagram, or a run of
    /// same-size datagrams to one destination (GSO).
    #[cfg(target_os = "linux")]
    fn send_pending(&mut self) {
        let tx = self.endpoint.transmits();
        let mut msgs = [sys::Msg::EMPTY; sys::BATCH];
        let mut counts = [0usize; sys::BATCH];
        while self.tx_sent < tx.len() {
            // Messages from the first unsent datagram on.
            let mut m = 0;
            let mut next = self.tx_sent;
            let mut run = tx.runs.partition_point(|&(_, _, end)| end <= next);
            while m < sys::BATCH && next < tx.len() {
                let (to, from, end) = tx.runs[run];
                let group = gso_group(tx, next, end, self.stats.gso);
                let segment = if group.len() > 1 {
                    tx.out.span(next..next + 1).len() as u16
                } else {
                    0
                };
                msgs[m] = sys::Msg {
                    to,
                    from,
                    data: tx.out.span(group.clone()),
                    segment,
                };
                counts[m] = group.len();
                m += 1;
                next = group.end;
                if next == end {
                    run += 1;
                }
            }
            self.stats.send_syscalls += 1;
            match sys::send(&self.socket, &msgs[..m]) {
                Ok(0) => return,
                Ok(k) => {
                    for (msg, &count) in msgs[..k].iter().zip(&counts[..k]) {
                        self.stats.sent_datagrams += count as u64;
                        self.stats.gso_sends += u64::from(msg.segment != 0);
                        self.tx_sent += count;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.stats.send_would_block += 1;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if msgs[0].segment != 0 && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                    // The kernel cannot segment for this socket (no checksum
                    // offload, path MTU, disabled checksums): one datagram
                    // per message from now on.
                    self.stats.gso = false;
                    self.stats.gso_fallbacks += 1;
                }
                Err(_) => {
                    // This message cannot go (unreachable, too large): skip it.
                    self.stats.send_errors += 1;
                    self.tx_sent += counts[0];
                }
            }
        }
    }

    /// `send_to` per datagram.
    #[cfg(not(target_os = "linux"))]
    fn send_pending(&mut self) {
        let tx = self.endpoint.transmits();
        for (to, datagram) in tx.iter().skip(self.tx_sent) {
            self.stats.send_syscalls += 1;
            match self.socket.send_to(datagram, to) {
                Ok(_) => self.stats.sent_datagrams += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.stats.send_would_block += 1;
                    return;
                }
                Err(_) => self.stats.send_errors += 1,
            }
            self.tx_sent += 1;
        }
    }

    /// Blocks until a datagram is readable or `timeout_ms` passed (0: does
    /// not block). Returns whether a datagram is waiting.
    #[cfg(target_os = "linux")]
    pub(crate) fn block(&mut self, timeout_ms: u32) -> Result<bool, Error> {
        if timeout_ms == 0 {
            return Ok(false);
        }
        Ok(sys::wait_readable(&self.socket, timeout_ms)?)
    }

    /// Blocks until a datagram is readable or `timeout_ms` passed (0: does
    /// not block): a blocking peek with a read timeout, since std has no
    /// poll. Returns whether a datagram is waiting.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn block(&mut self, timeout_ms: u32) -> Result<bool, Error> {
        if timeout_ms == 0 {
            return Ok(false);
        }
        self.socket.set_nonblocking(false)?;
        self.socket
            .set_read_timeout(Some(Duration::from_millis(timeout_ms as u64)))?;
        let mut probe = [0u8; 1];
        let ready = match self.socket.peek_from(&mut probe) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            // A datagram with an error queued (ICMP): readable.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(true),
            Err(e) => Err(e.into()),
        };
        self.socket.set_nonblocking(true)?;
        ready
    }

    /// Milliseconds from `now_ms` until the endpoint's next deadline, at
    /// most `cap`.
    pub(crate) fn until_due(&mut self, now_ms: u32, cap: u32) -> u32 {
        match self.endpoint.poll_timeout() {
            Some(due) => (due.wrapping_sub(now_ms) as i32).clamp(0, cap as i32) as u32,
            None => cap,
        }
    }
}

/// Hands one received datagram to the endpoint, with the local address it
/// arrived at when the socket reports it.
#[cfg(target_os = "linux")]
fn deliver(endpoint: &mut Endpoint, now_ms: u32, from: SocketAddr, local: Option<std::net::IpAddr>, d: &mut [u8]) {
    match local {
        Some(to) => endpoint.handle_to(now_ms, from, to, d),
        None => endpoint.handle(now_ms, from, d),
    }
}

/// The datagrams sent as one message from `first` on, within the run ending
/// at `end`: with `gso`, as many as follow of the first one's size (the
/// last may be shorter), within the kernel's segment and byte limits;
/// otherwise just `first`.
#[cfg(target_os = "linux")]
fn gso_group(tx: &crate::endpoint::Transmits, first: usize, end: usize, gso: bool) -> std::ops::Range<usize> {
    let mut last = first + 1;
    if gso {
        let size = tx.out.span(first..last).len();
        let most = sys::GSO_MAX_SEGMENTS.min(sys::GSO_MAX_BYTES / size.max(1));
        while last < end && last - first < most {
            let next = tx.out.span(last..last + 1).len();
            if next > size || next == 0 {
                break;
            }
            last += 1;
            if next < size {
                break;
            }
        }
    }
    first..last
}
