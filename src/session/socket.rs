//! One non-blocking UDP socket driving one [`Endpoint`]: reads every
//! pending datagram into the endpoint, runs its timers, sends its transmits.
//! The batched system calls (recvmmsg/sendmmsg, GSO/GRO) plug in here: the
//! endpoint already hands out its transmits as one ordered batch with runs
//! per destination.

use crate::endpoint::{Endpoint, EndpointStats};
use crate::error::Error;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Receive buffer per datagram: larger than kcp-go's 1500-byte limit, so
/// oversized datagrams are seen (and refused by the endpoint) rather than
/// silently truncated.
const RX_BUFFER: usize = 2048;
/// Datagrams read per update at most, so that one busy socket cannot starve
/// the caller's loop.
const RX_BUDGET: usize = 4096;
/// Transmits kept while the kernel's send buffer is full, at most; beyond,
/// they are dropped and counted (KCP retransmits).
const TX_BACKLOG: usize = 65536;

/// Counters of the socket layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Receive and send system calls made.
    pub recv_syscalls: u64,
    pub send_syscalls: u64,
    /// Datagrams read and written.
    pub recv_datagrams: u64,
    pub sent_datagrams: u64,
    /// Sends refused for a full socket buffer (kept for the next update).
    pub send_would_block: u64,
    /// Sends that failed otherwise, and transmits dropped past the backlog.
    pub send_errors: u64,
    pub send_dropped: u64,
    /// The socket's receive and send buffer sizes as the kernel set them.
    pub rcvbuf: u64,
    pub sndbuf: u64,
}

/// A socket and the endpoint it drives.
pub(crate) struct Driver {
    pub(crate) endpoint: Endpoint,
    socket: UdpSocket,
    rx: Vec<u8>,
    /// Transmits of the endpoint already sent.
    tx_sent: usize,
    stats: SocketStats,
}

impl Driver {
    /// Binds a non-blocking UDP socket to `addr` with `sockbuf`-byte kernel
    /// buffers (capped by the kernel's rmem_max/wmem_max).
    pub(crate) fn bind(addr: SocketAddr, sockbuf: usize, endpoint: Endpoint) -> Result<Driver, Error> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_recv_buffer_size(sockbuf)?;
        socket.set_send_buffer_size(sockbuf)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let stats = SocketStats {
            rcvbuf: socket.recv_buffer_size()? as u64,
            sndbuf: socket.send_buffer_size()? as u64,
            ..SocketStats::default()
        };
        Ok(Driver {
            endpoint,
            socket: socket.into(),
            rx: vec![0; RX_BUFFER],
            tx_sent: 0,
            stats,
        })
    }

    pub(crate) fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.socket.local_addr()?)
    }

    #[cfg(unix)]
    pub(crate) fn fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.socket)
    }

    pub(crate) fn stats(&self) -> SocketStats {
        self.stats
    }

    pub(crate) fn endpoint_stats(&self) -> EndpointStats {
        self.endpoint.stats()
    }

    /// Never blocks: reads every pending datagram (up to a budget), runs
    /// the endpoint's due timers, sends. Returns the datagrams read.
    pub(crate) fn update(&mut self, now_ms: u32) -> Result<usize, Error> {
        let mut read = 0;
        while read < RX_BUDGET {
            self.stats.recv_syscalls += 1;
            match self.socket.recv_from(&mut self.rx) {
                Ok((n, from)) => {
                    read += 1;
                    self.endpoint.handle(now_ms, from, &mut self.rx[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // A previous send's ICMP error, or a signal: try again later.
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::Interrupted) => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.stats.recv_datagrams += read as u64;
        self.endpoint.handle_timeout(now_ms);
        self.send();
        Ok(read)
    }

    /// Sends the endpoint's transmits; what the kernel refuses for a full
    /// buffer waits for the next call.
    pub(crate) fn send(&mut self) {
        let tx = self.endpoint.transmits();
        for (to, datagram) in tx.iter().skip(self.tx_sent) {
            self.stats.send_syscalls += 1;
            match self.socket.send_to(datagram, to) {
                Ok(_) => self.stats.sent_datagrams += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.stats.send_would_block += 1;
                    break;
                }
                Err(_) => self.stats.send_errors += 1,
            }
            self.tx_sent += 1;
        }
        let pending = tx.len() - self.tx_sent;
        if pending == 0 || pending > TX_BACKLOG {
            self.stats.send_dropped += pending as u64;
            self.endpoint.clear_transmits();
            self.tx_sent = 0;
        }
    }

    /// Blocks until a datagram is readable or `timeout_ms` passed (0: does
    /// not block). Returns whether a datagram is waiting.
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
