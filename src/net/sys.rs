//! Batched UDP system calls on Linux: `recvmmsg`, `sendmmsg`, UDP GSO
//! (`UDP_SEGMENT`) and UDP GRO (`UDP_GRO`); and glibc's `malloc_trim`
//! once a listener goes quiet ([`trim_heap`]).
//!
//! # Unsafe code
//!
//! **This is the only module of the socket layer that uses `unsafe`** (the
//! crate's other ones are `src/fec/simd.rs` and `src/ffi/`): `src/net/`
//! denies `unsafe_code` and allows it for this module alone. Every `unsafe`
//! block carries a SAFETY comment. What this module exports is safe to call:
//! functions take a `&UdpSocket` (so the descriptor is open for the whole
//! call) and ordinary Rust buffers; the kernel's message headers, address
//! storage, iovecs and control buffers are built on the stack for one call
//! and point only into those buffers and into that stack frame; results come
//! back as lengths, addresses and segment sizes.
//!
//! # What the kernel does (facts the caller relies on)
//!
//! - GSO: one `sendmmsg` message with a `UDP_SEGMENT` control message of
//!   size `s` is cut by the kernel into datagrams of `s` bytes, the last one
//!   possibly shorter, all to the message's destination; at most
//!   [`GSO_MAX_SEGMENTS`] segments and [`GSO_MAX_BYTES`] bytes. The kernel
//!   answers EINVAL (segment above the path MTU, checksums disabled) or EIO
//!   (no checksum offload) where it cannot: the caller then sends one datagram
//!   per message from that socket on.
//! - GRO: with `UDP_GRO` set, one received buffer may hold several datagrams
//!   of one flow, all of the size reported in a `UDP_GRO` control message
//!   except the last, which may be shorter; buffers must hold
//!   [`GRO_BUFFER`] bytes or the kernel truncates.
//! - Local addresses: with `IP_PKTINFO` (IPv4) or `IPV6_RECVPKTINFO` (IPv6)
//!   set, each received message carries the local address it was sent to
//!   (an `IP_PKTINFO` message's `ipi_spec_dst`, an `IPV6_PKTINFO` message's
//!   `ipi6_addr`); a sent message with such a control message leaves from
//!   that address (`ipi_spec_dst` / `ipi6_addr`, interface 0: the kernel's
//!   route). A socket bound to 0.0.0.0 or `[::]` needs it on a multi-homed
//!   host: otherwise its replies leave from the kernel's preferred address
//!   for the peer, which a peer that sent to another address drops.

use socket2::SockAddr;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Messages per `sendmmsg`/`recvmmsg` call, at most.
pub(crate) const BATCH: usize = 64;
/// Segments of one GSO message, at most (the kernel's `UDP_MAX_SEGMENTS`
/// before 6.x; newer kernels take 128).
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;
/// Bytes of one GSO message, at most (the largest IPv4 UDP payload).
pub(crate) const GSO_MAX_BYTES: usize = 65_507;
/// A receive buffer that holds whatever GRO coalesces.
pub(crate) const GRO_BUFFER: usize = 65_536;

/// Room for the control messages of one message: an `int` (`UDP_GRO`) or
/// a `u16` (`UDP_SEGMENT`), `CMSG_SPACE(4)` = 24 bytes on 64-bit Linux, and
/// an `in_pktinfo` (12 bytes: `CMSG_SPACE` 32) or an `in6_pktinfo` (20
/// bytes: 40); 64 bytes in all. `u64`s keep it aligned for `cmsghdr`.
type CmsgBuf = [u64; 8];

/// `SO_NO_CHECK` (asm-generic and x86): disables UDP checksums on send.
#[cfg(test)]
const SO_NO_CHECK: libc::c_int = 11;

/// One message for [`send`]: `data` to `to`, cut into `segment`-byte
/// datagrams by the kernel when `segment` is not 0 (GSO).
/// `from`: the local address to send from (an `IP_PKTINFO` or
/// `IPV6_PKTINFO` control message; of `to`'s family), None for the
/// kernel's choice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Msg<'a> {
    pub(crate) to: SocketAddr,
    pub(crate) from: Option<IpAddr>,
    pub(crate) data: &'a [u8],
    pub(crate) segment: u16,
}

impl Msg<'_> {
    pub(crate) const EMPTY: Msg<'static> = Msg {
        to: SocketAddr::V4(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        from: None,
        data: &[],
        segment: 0,
    };
}

/// One buffer filled by [`recv`]: `len` bytes from `from` (None: an address
/// family other than IPv4/IPv6), holding datagrams of `segment` bytes each
/// (the last may be shorter) when GRO coalesced several, else one datagram
/// (`segment` 0). `local`: the local address they were sent to, when the
/// socket has [`enable_pktinfo`] on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) from: Option<SocketAddr>,
    pub(crate) local: Option<IpAddr>,
    pub(crate) segment: usize,
}

fn setsockopt_int(socket: &UdpSocket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open (borrowed socket); the option value is a
    // live c_int on the stack and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this kernel takes `UDP_SEGMENT` on this socket. Sets the socket's
/// default segment size to 0 (no segmentation unless a message asks).
pub(crate) fn enable_gso(socket: &UdpSocket) -> bool {
    setsockopt_int(socket, libc::SOL_UDP, libc::UDP_SEGMENT, 0).is_ok()
}

/// Gives the free memory at the top and in the middle of glibc's heap back
/// to the system (`malloc_trim(0)`): glibc keeps freed pages mapped, so
/// without it a listener's RSS stays at the peak of a burst although the
/// burst's buffers were freed. Called once per quiet spell of a listener
/// (after [`crate::endpoint::QUIET_AFTER_MS`] without traffic), never per
/// datagram. Does nothing where the C library is not glibc.
pub(crate) fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes a plain integer and has no precondition on
    // the caller's state: it only returns glibc's own free pages (under its
    // arena locks, so concurrent allocations on other threads stay sound);
    // no pointer the program holds is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Blocks until `socket` is readable (a datagram or a queued error) or
/// `timeout_ms` passed; returns whether it is. A signal counts as "not yet".
/// One `poll` call: the socket stays non-blocking.
pub(crate) fn wait_readable(socket: &UdpSocket, timeout_ms: u32) -> io::Result<bool> {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = timeout_ms.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: one pollfd on the stack, valid for the call, and its count 1;
    // the descriptor is open (borrowed socket).
    let r = unsafe { libc::poll(&mut fd, 1, timeout) };
    match r {
        0 => Ok(false),
        r if r > 0 => Ok(true),
        _ => match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            e => Err(e),
        },
    }
}

/// Has the kernel report each received datagram's local address
/// (`IP_PKTINFO` for an IPv4 socket, `IPV6_RECVPKTINFO` for IPv6); false
/// if it refuses.
pub(crate) fn enable_pktinfo(socket: &UdpSocket, ipv6: bool) -> bool {
    match ipv6 {
        false => setsockopt_int(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1),
        true => setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1),
    }
    .is_ok()
}

/// Turns UDP GRO on; false if this kernel does not have it.
pub(crate) fn enable_gro(socket: &UdpSocket) -> bool {
    setsockopt_int(socket, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// Turns UDP checksums off on send (tests: the kernel then refuses GSO
/// with EINVAL, which exercises the fallback).
#[cfg(test)]
pub(crate) fn disable_checksums(socket: &UdpSocket) -> io::Result<()> {
    setsockopt_int(socket, libc::SOL_SOCKET, SO_NO_CHECK, 1)
}

/// The kernel-facing arrays of one `sendmmsg`/`recvmmsg` of up to `N`
/// messages, on the caller's stack for the duration of the call. `N` is
/// chosen per call (see [`send`]): the arrays are zeroed before each call,
/// 15 KiB at [`BATCH`], which a call for one datagram should not pay.
struct Headers<const N: usize> {
    names: [libc::sockaddr_storage; N],
    namelens: [libc::socklen_t; N],
    iovs: [libc::iovec; N],
    cmsgs: [CmsgBuf; N],
    hdrs: [libc::mmsghdr; N],
}

impl<const N: usize> Headers<N> {
    fn zeroed() -> Headers<N> {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for
        // which all-zero bytes are a valid value (null pointers, zero lengths).
        let (names, iovs, hdrs) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Headers {
            names,
            namelens: [0; N],
            iovs,
            cmsgs: [CmsgBuf::default(); N],
            hdrs,
        }
    }

    /// Points headers `..n` at their address, iovec and (where
    /// `controllen(i)` is not 0) control buffer; every pointer comes from
    /// one base pointer per array, taken once, so none invalidates another.
    fn link(&mut self, n: usize, controllen: impl Fn(usize) -> usize) {
        let (names, iovs, cmsgs) = (self.names.as_mut_ptr(), self.iovs.as_mut_ptr(), self.cmsgs.as_mut_ptr());
        for (i, hdr) in self.hdrs[..n].iter_mut().enumerate() {
            let h = &mut hdr.msg_hdr;
            h.msg_name = names.wrapping_add(i).cast();
            h.msg_namelen = self.namelens[i];
            h.msg_iov = iovs.wrapping_add(i);
            h.msg_iovlen = 1;
            let len = controllen(i);
            if len != 0 {
                h.msg_control = cmsgs.wrapping_add(i).cast();
                h.msg_controllen = len as _;
            }
        }
    }
}

/// Sends up to [`BATCH`] messages with one `sendmmsg`. Returns how many
/// were sent (fewer than asked when the kernel refused one: the next call
/// starting there reports why), or the error of the first.
pub(crate) fn send(socket: &UdpSocket, msgs: &[Msg<'_>]) -> io::Result<usize> {
    match msgs.len() {
        0 => Ok(0),
        1..=4 => send_n::<4>(socket, msgs),
        5..=16 => send_n::<16>(socket, msgs),
        _ => send_n::<BATCH>(socket, msgs),
    }
}

/// [`send`] with headers for `N` messages.
fn send_n<const N: usize>(socket: &UdpSocket, msgs: &[Msg<'_>]) -> io::Result<usize> {
    let n = msgs.len().min(N);
    let mut h = Headers::<N>::zeroed();
    for (i, m) in msgs[..n].iter().enumerate() {
        let addr = SockAddr::from(m.to);
        h.namelens[i] = addr.len();
        h.names[i] = addr.as_storage();
        // The kernel only reads through iov_base on send.
        h.iovs[i] = libc::iovec {
            iov_base: m.data.as_ptr() as *mut libc::c_void,
            iov_len: m.data.len(),
        };
    }
    h.link(n, |i| control_len(&msgs[i]));
    for (hdr, m) in h.hdrs[..n].iter().zip(msgs) {
        let mut c = core::ptr::null_mut::<libc::cmsghdr>();
        if m.segment != 0 {
            // SAFETY: msg_control points at this message's CmsgBuf, a live,
            // zeroed, 8-byte-aligned buffer of 64 bytes, and msg_controllen
            // (control_len ≤ 24 + 40) covers every message written here, so
            // CMSG_FIRSTHDR returns a pointer to its start (never null)
            // with room for the header and the u16, written unaligned
            // through CMSG_DATA.
            unsafe {
                c = libc::CMSG_FIRSTHDR(&hdr.msg_hdr);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), m.segment);
            }
        }
        if let Some(from) = m.from {
            // SAFETY: as above: msg_controllen counts this message's space
            // after the UDP_SEGMENT one (if any), so CMSG_FIRSTHDR (the
            // first message) or CMSG_NXTHDR (after the one written above,
            // whose cmsg_len is set) returns a header inside the CmsgBuf
            // with room for the pktinfo struct (null is checked anyway).
            unsafe {
                c = match c.is_null() {
                    true => libc::CMSG_FIRSTHDR(&hdr.msg_hdr),
                    false => libc::CMSG_NXTHDR(&hdr.msg_hdr, c),
                };
                if !c.is_null() {
                    write_pktinfo(c, from);
                }
            }
        }
    }
    // SAFETY: the descriptor is open; hdrs[..n] are initialised and point
    // only at `h`'s arrays and at the callers' data slices, all alive and
    // unmoved until the call returns; n ≤ N.
    let r = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            h.hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Bytes of control messages `m` needs (0: none).
fn control_len(m: &Msg<'_>) -> usize {
    let segment = match m.segment {
        0 => 0,
        _ => size_of::<u16>(),
    };
    let pktinfo = match m.from {
        None => 0,
        Some(IpAddr::V4(_)) => size_of::<libc::in_pktinfo>(),
        Some(IpAddr::V6(_)) => size_of::<libc::in6_pktinfo>(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = |len: usize| match len {
        0 => 0,
        _ => unsafe { libc::CMSG_SPACE(len as u32) as usize },
    };
    space(segment) + space(pktinfo)
}

/// Writes an `IP_PKTINFO` or `IPV6_PKTINFO` control message asking to send
/// from `from` (interface 0: the kernel routes).
///
/// # Safety
/// `c` points at a control message header inside a live buffer with room
/// for `CMSG_SPACE` of the pktinfo struct from `c` on.
unsafe fn write_pktinfo(c: *mut libc::cmsghdr, from: IpAddr) {
    // SAFETY: per the contract: the header and CMSG_DATA's bytes are inside
    // the buffer; the struct is written unaligned.
    unsafe {
        match from {
            IpAddr::V4(ip) => {
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(ip.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), info);
            }
            IpAddr::V6(ip) => {
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: ip.octets() },
                    ipi6_ifindex: 0,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
            }
        }
    }
}

/// Receives with one `recvmmsg` into `buf`, cut into slots of `slot` bytes
/// (at most [`BATCH`] slots). Fills `out` with one entry per slot filled,
/// in order (slot `i` starts at `i * slot`); returns how many.
pub(crate) fn recv(socket: &UdpSocket, buf: &mut [u8], slot: usize, out: &mut Vec<Received>) -> io::Result<usize> {
    out.clear();
    match (buf.len() / slot.max(1)).min(BATCH) {
        0 => Ok(0),
        1..=4 => recv_n::<4>(socket, buf, slot, out),
        5..=16 => recv_n::<16>(socket, buf, slot, out),
        _ => recv_n::<BATCH>(socket, buf, slot, out),
    }
}

/// [`recv`] with headers for `N` messages.
fn recv_n<const N: usize>(
    socket: &UdpSocket,
    buf: &mut [u8],
    slot: usize,
    out: &mut Vec<Received>,
) -> io::Result<usize> {
    let n = (buf.len() / slot.max(1)).min(N);
    let mut h = Headers::<N>::zeroed();
    let base = buf.as_mut_ptr();
    for (i, iov) in h.iovs[..n].iter_mut().enumerate() {
        // In bounds: (i + 1) * slot ≤ n * slot ≤ buf.len().
        *iov = libc::iovec {
            iov_base: base.wrapping_add(i * slot).cast(),
            iov_len: slot,
        };
    }
    h.namelens = [size_of::<libc::sockaddr_storage>() as libc::socklen_t; N];
    h.link(n, |_| size_of::<CmsgBuf>());
    // SAFETY: the descriptor is open; hdrs[..n] point at `h`'s arrays (with
    // their true sizes) and at n disjoint `slot`-byte pieces of `buf`, which
    // is exclusively borrowed for the call; n ≤ N; a null timeout is
    // allowed.
    let r = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            h.hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    for (hdr, name) in h.hdrs[..r as usize].iter().zip(&h.names) {
        let h = &hdr.msg_hdr;
        // SAFETY: the kernel wrote a socket address of msg_namelen bytes
        // (at most the storage's size, as we passed) into this name.
        let from = unsafe { SockAddr::new(*name, h.msg_namelen) }.as_socket();
        let (mut segment, mut local) = (0, None);
        // SAFETY: after recvmmsg, msg_control/msg_controllen describe the
        // control messages the kernel wrote into this message's CmsgBuf (msg_controllen
        // shrunk to what was written; a message that did not fit is
        // dropped by the kernel, MSG_CTRUNC); CMSG_FIRSTHDR/CMSG_NXTHDR stay
        // within it and return null past the end; a UDP_GRO message carries
        // an int, IP_PKTINFO an in_pktinfo, IPV6_PKTINFO an in6_pktinfo (the
        // kernel writes the whole struct), each read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_UDP, libc::UDP_GRO) => {
                        segment = std::ptr::read_unaligned(data.cast::<libc::c_int>()).max(0) as usize;
                    }
                    (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                        let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                        local = Some(IpAddr::V4(Ipv4Addr::from(info.ipi_spec_dst.s_addr.to_ne_bytes())));
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                        let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                        local = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        out.push(Received {
            len: (hdr.msg_len as usize).min(slot),
            from,
            local,
            segment,
        });
    }
    Ok(r as usize)
}
