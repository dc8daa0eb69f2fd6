//! A kcp-go compatible connection: the KCP core, FEC and packet crypto
//! composed, still sans-IO. The caller owns the socket and the clock:
//! received datagrams go to [`Conn::input`], and [`Conn::update`] appends
//! the datagrams to send to the caller's [`Outbox`] (one API: a listener's
//! sessions share one outbox, a C `kcpx_conn` owns one).
//!
//! Datagram layout (see [`crate::crypt`] and [`crate::fec`]):
//! `[nonce 16 | CRC-32 4]` (with a cipher) `[seqid 4 | type 2 | size 2]`
//! (with FEC) `[KCP segments]`. The MTU counts all of it, as in kcp-go.
//!
//! Beside the reliable stream, a connection sends and receives unreliable
//! messages in kcp-go's out-of-band datagrams ([`Conn::send_datagram`],
//! [`Conn::recv_datagram`]): `[crypto header][seqid 0xFFFFFFFF | type 0xF3
//! | size][conv][payload]`, never retransmitted, never FEC-protected.
//!
//! A connection made with [`Conn::secure`] speaks kcpx's secure wire
//! instead (`docs/secure-wire.md`; `secure.rs`): each of those datagrams,
//! without kcp-go's crypto header, becomes the KCP frame of one sealed short
//! datagram `[short header 13][0x01][payload][tag 16]`, and the control
//! frames that arrive wait for the owner ([`Conn::poll_control`]).
#![forbid(unsafe_code)]

mod config;
mod incoming;
mod messages;
mod rate;
mod secure;

pub use config::{ConnConfig, MAX_WINDOW, MIN_KCP_BYTES};
pub use incoming::{InCounters, Incoming, Route};
use messages::MessageQueue;
pub use messages::{QUEUE_BYTES as DATAGRAM_QUEUE_BYTES, QUEUE_MESSAGES as DATAGRAM_QUEUE_MESSAGES};
pub use rate::RateLimit;
pub use secure::{Control, OpenedInfo, SecureStats, CONTROL_QUEUE, SECURE_PREFIX_LEN};
use secure::{SecureKeys, Wire};

use crate::crypt::PacketCrypt;
use crate::error::Error;
use crate::fec::{
    frame_oob, FecCode, FecDecoder, FecEncoder, FecInput, FEC_DATA_OVERHEAD, KCPGO_MTU_LIMIT, OOB_CONV_LEN,
};
use crate::kcp::consts::MAX_FRAGMENTS;
use crate::kcp::{Kcp, NoDelay, RecvError, SendError};
use core::num::NonZeroU32;
use std::sync::Arc;

/// kcp-go's SNMP counters that apply to one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// BytesSent: payload bytes accepted by `send`.
    pub bytes_sent: u64,
    /// BytesReceived: payload bytes returned by `recv`.
    pub bytes_received: u64,
    /// InPkts / InBytes: datagrams and bytes given to `input`.
    pub in_pkts: u64,
    /// Bytes of those datagrams.
    pub in_bytes: u64,
    /// OutPkts / OutBytes: datagrams and bytes produced (parity included).
    pub out_pkts: u64,
    /// Bytes of those datagrams.
    pub out_bytes: u64,
    /// InErrs: datagrams too short for their headers.
    pub in_errs: u64,
    /// InCsumErrors: datagrams failing the CRC check.
    pub in_csum_errors: u64,
    /// KCPInErrors: datagrams KCP refused.
    pub kcp_in_errors: u64,
    /// RetransSegs: segments retransmitted after a timeout.
    pub retrans_segs: u64,
    /// FECRecovered: data shards rebuilt from parity.
    pub fec_recovered: u64,
    /// FECErrs: rebuilt shards with an impossible size (dropped).
    pub fec_errs: u64,
    /// FECParityShards: parity datagrams received.
    pub fec_parity_shards: u64,
    /// FECShortShards: data shards dropped from the decoder before their
    /// group could be completed.
    pub fec_short_shards: u64,
    /// Datagrams the FEC encoder refused (none with a validated MTU; counted
    /// so that it could never go unnoticed).
    pub fec_encode_errs: u64,
    /// FEC shards whose length disagrees with their size field or group,
    /// never used for reconstruction (see [`FecInput::Inconsistent`]).
    pub fec_inconsistent: u64,
    /// FEC shards whose data/parity type disagrees with this connection's
    /// shard counts: the peer uses other FEC settings. Data still arrives
    /// (the shards go to KCP), but nothing lost is rebuilt.
    pub fec_pattern_mismatches: u64,
    /// FEC datagrams received by a connection without FEC: the peer has FEC
    /// on. As kcp-go does, their KCP data is read (parity is dropped, so
    /// nothing lost is rebuilt: give both ends the same FEC for that).
    pub fec_unconfigured: u64,
    /// OOBPackets: unreliable messages received and queued for
    /// [`Conn::recv_datagram`].
    pub datagrams_in: u64,
    /// Unreliable messages dropped from the full receive queue (the oldest
    /// first; see [`DATAGRAM_QUEUE_MESSAGES`]).
    pub datagrams_dropped: u64,
    /// Unreliable messages of another conversation, dropped.
    pub datagrams_foreign: u64,
    /// Unreliable messages sent.
    pub datagrams_out: u64,
}

/// The counters a connection keeps itself (the rest of [`ConnStats`] is
/// read from the core and the FEC decoder): smaller than `ConnStats`, as
/// every session of a listener holds one.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    bytes_sent: u64,
    bytes_received: u64,
    input: InCounters,
    out_pkts: u64,
    out_bytes: u64,
    fec_encode_errs: u64,
    fec_unconfigured: u64,
    datagrams_in: u64,
    datagrams_dropped: u64,
    datagrams_foreign: u64,
    datagrams_out: u64,
}

/// Datagrams produced by one [`Conn::update`], stored back to back.
#[derive(Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Outbox {
    /// Ends the datagram being written after `trailer` more bytes (space for
    /// AES-GCM's tag, sealed later).
    fn push_trailer(&mut self, trailer: usize) {
        self.bytes.resize(self.bytes.len() + trailer, 0);
        self.ends.push(self.bytes.len());
    }

    /// Appends one whole datagram (a handshake message the endpoint sends).
    pub(crate) fn push_datagram(&mut self, d: &[u8]) {
        self.bytes.extend_from_slice(d);
        self.ends.push(self.bytes.len());
    }

    /// The datagrams, in sending order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = core::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(move |(a, b)| &self.bytes[a..b])
    }

    /// Number of datagrams.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Datagram `i` (in sending order), if there are that many.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    /// Datagrams `range` as one contiguous slice (what one GSO send takes).
    pub(crate) fn span(&self, range: core::ops::Range<usize>) -> &[u8] {
        if range.is_empty() {
            return &[];
        }
        let start = if range.start == 0 {
            0
        } else {
            self.ends[range.start - 1]
        };
        &self.bytes[start..self.ends[range.end - 1]]
    }

    /// Forgets the datagrams, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Bytes of all the datagrams.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes it can hold without growing.
    pub(crate) fn byte_capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Gives capacity back down to `bytes` bytes and `datagrams` datagrams
    /// (what it holds stays).
    pub(crate) fn shrink_to(&mut self, bytes: usize, datagrams: usize) {
        self.bytes.shrink_to(bytes);
        self.ends.shrink_to(datagrams);
    }

    /// Forgets the datagrams and gives memory back beyond `keep_bytes` of
    /// capacity (after a burst, so an idle owner stays small).
    pub fn clear_and_trim(&mut self, keep_bytes: usize) {
        self.clear();
        if self.bytes.capacity() > keep_bytes {
            self.bytes = Vec::new();
            self.ends = Vec::new();
        }
    }
}

/// Whether the KCP bytes of one datagram hold a data segment. The core
/// writes a flush's control segments (24 bytes each, no payload) before its
/// data, so the scan stops at the first data segment or the end.
fn carries_data(segments: &[u8]) -> bool {
    segments
        .chunks(crate::kcp::OVERHEAD as usize)
        .any(|seg| seg.get(4) == Some(&crate::kcp::consts::CMD_PUSH))
}

/// A KCP connection speaking kcp-go's wire format.
pub struct Conn {
    kcp: Kcp,
    /// kcp-go's cipher (or none), or the secure wire's session keys.
    wire: Wire,
    encoder: Option<FecEncoder>,
    decoder: Option<FecDecoder>,
    /// Bytes in front of the KCP data: crypto header (or the secure wire's
    /// short header and KCP frame byte), then FEC header + size.
    header_len: usize,
    stream: bool,
    /// Buffers some owners never use (a listener's sessions do without):
    /// allocated on first use.
    side: Option<Box<SideBuffers>>,
    /// The rate limit's bucket, if one is set.
    rate: Option<Box<rate::Bucket>>,
    stats: Counters,
}

/// The buffers of a [`Conn`] that only some ways of driving it need.
#[derive(Default)]
struct SideBuffers {
    /// One incoming datagram being opened (decryption is in place): for
    /// [`Conn::input`] with a cipher, not [`Conn::input_incoming`].
    inbuf: Vec<u8>,
    /// Stream mode: bytes of a received chunk the caller's buffer could
    /// not take yet, from `pending_at` on.
    pending: Vec<u8>,
    pending_at: usize,
    /// Unreliable messages received, not yet read.
    messages: MessageQueue,
}

impl SideBuffers {
    fn buffered(&self) -> usize {
        self.pending.len() - self.pending_at
    }

    fn is_empty(&self) -> bool {
        self.buffered() == 0 && self.messages.len() == 0
    }
}

impl Conn {
    /// A connection for conversation `conv` (both ends use the same).
    /// Expands the key; see [`Conn::with_crypt`] to share one expanded key.
    pub fn new(conv: u32, config: &ConnConfig) -> Result<Conn, Error> {
        config.validate()?;
        let crypt = match &config.crypt {
            Some((method, key)) => Some(Arc::new(PacketCrypt::new(*method, key)?)),
            None => None,
        };
        Conn::with_crypt(conv, config, crypt)
    }

    /// A connection using an already expanded cipher (shared by the sessions
    /// of one listener). `crypt` must be `Some` exactly when `config.crypt`
    /// is, else [`Error::Key`].
    pub fn with_crypt(conv: u32, config: &ConnConfig, crypt: Option<Arc<PacketCrypt>>) -> Result<Conn, Error> {
        Conn::with_shared(conv, config, crypt, config.fec.map(FecCode::new))
    }

    /// A connection using an already expanded cipher and an already built
    /// Reed-Solomon code, both shared by the sessions of one listener (they
    /// are immutable). `crypt` must be `Some` exactly when `config.crypt` is
    /// (else [`Error::Key`]), `fec` the code of `config.fec` (else
    /// [`Error::Invalid`]).
    pub fn with_shared(
        conv: u32,
        config: &ConnConfig,
        crypt: Option<Arc<PacketCrypt>>,
        fec: Option<Arc<FecCode>>,
    ) -> Result<Conn, Error> {
        config.validate()?;
        if crypt.is_some() != config.crypt.is_some() {
            return Err(Error::Key);
        }
        Conn::build(conv, config, Wire::KcpGo(crypt), fec)
    }

    /// A connection speaking kcpx's secure wire (`docs/secure-wire.md`)
    /// with the keys of a finished handshake (`session`, from
    /// [`crate::secure::Client`] or [`crate::secure::Server`]). Every
    /// datagram it emits is one sealed short datagram `[short header 13]
    /// [0x01 KCP frame ‖ the kcp-go-form payload][tag 16]`, so the MTU
    /// loses 30 bytes (as a cipher's header does); [`Conn::input`] opens
    /// and replay-checks what arrives and queues its control frames for
    /// [`Conn::poll_control`]. `config.crypt` must be `None` (else
    /// [`Error::Key`]): the session's keys are the cipher. Both ends use
    /// the same `conv`.
    pub fn secure(conv: u32, config: &ConnConfig, session: crate::secure::Session) -> Result<Conn, Error> {
        Conn::secure_shared(conv, config, session, config.fec.map(FecCode::new))
    }

    /// [`Conn::secure`] with a Reed-Solomon code shared by the sessions of
    /// one listener (the code of `config.fec`, else [`Error::Invalid`]).
    pub fn secure_shared(
        conv: u32,
        config: &ConnConfig,
        session: crate::secure::Session,
        fec: Option<Arc<FecCode>>,
    ) -> Result<Conn, Error> {
        config.validate()?;
        if config.crypt.is_some() {
            return Err(Error::Key);
        }
        if (config.mtu as usize) < config.header_len() + secure::OVERHEAD + MIN_KCP_BYTES {
            return Err(Error::Mtu);
        }
        Conn::build(conv, config, Wire::Secure(Box::new(SecureKeys::new(session))), fec)
    }

    fn build(conv: u32, config: &ConnConfig, wire: Wire, fec: Option<Arc<FecCode>>) -> Result<Conn, Error> {
        if fec.as_ref().map(|f| f.config()) != config.fec {
            return Err(Error::Invalid);
        }
        // The FEC header comes after the crypto header (or the secure
        // wire's short header and frame byte).
        let crypt_len = wire.prefix_len();
        let header_len = crypt_len + if config.fec.is_some() { FEC_DATA_OVERHEAD } else { 0 };
        let mtu = config.mtu as usize;
        let mut kcp = Kcp::new(conv);
        // As kcp-go: the MTU holds the crypto header and trailer (AES-GCM's tag) too.
        kcp.set_mtu((mtu - header_len - wire.trailer_len()) as u32)
            .map_err(|_| Error::Mtu)?;
        // ConnConfig keeps ikcp_nodelay's form: a negative value keeps the
        // core's default.
        let (nodelay, interval, resend, nc) = config.nodelay;
        let keep_if_negative = |x: i32| u32::try_from(x).ok();
        kcp.set_nodelay(NoDelay {
            nodelay: keep_if_negative(nodelay),
            interval: keep_if_negative(interval),
            resend: keep_if_negative(resend),
            nc: keep_if_negative(nc),
        });
        // Validated to 1..=65535 (ConnConfig::set_window); 0 would keep the
        // default.
        kcp.set_window(NonZeroU32::new(config.window.0), NonZeroU32::new(config.window.1));
        kcp.set_stream(config.stream);
        // Freed by `shed_idle_memory` (or `update`), not by every quiet flush.
        kcp.set_retain_idle_memory(true);
        let encoder = fec.clone().map(|f| FecEncoder::with_code(f, crypt_len, mtu));
        // Peers may use a larger MTU than ours, up to kcp-go's limit.
        let decoder = fec.map(|f| FecDecoder::with_code(f, KCPGO_MTU_LIMIT));
        Ok(Conn {
            kcp,
            wire,
            encoder,
            decoder,
            header_len,
            stream: config.stream,
            side: None,
            rate: config.rate_limit.map(|r| Box::new(rate::Bucket::new(r, config.mtu))),
            stats: Counters::default(),
        })
    }

    /// The KCP core (for its settings and state).
    pub fn kcp(&self) -> &Kcp {
        &self.kcp
    }

    /// kcp-go's retransmission backoff (linear, capped at 60 s) instead of
    /// ikcp.c's; see [`Kcp::set_linear_backoff`].
    pub fn set_linear_backoff(&mut self, on: bool) {
        self.kcp.set_linear_backoff(on);
    }

    /// Caps what this connection sends (see [`RateLimit`]; `None` lifts
    /// the cap). The bucket starts full.
    pub fn set_rate_limit(&mut self, limit: Option<RateLimit>) {
        let mtu = self.kcp.mtu() as usize + self.header_len + self.trailer_len();
        self.rate = limit.map(|r| Box::new(rate::Bucket::new(r, mtu as u32)));
    }

    fn trailer_len(&self) -> usize {
        self.wire.trailer_len()
    }

    /// Whether the peer acknowledged any segment this connection sent (it
    /// then receives at the address its datagrams come from).
    pub fn peer_acked(&self) -> bool {
        self.kcp.snd_una() != 0
    }

    /// Segments received in order from the peer so far (its sn 0 up to
    /// here; wraps after 2^32).
    pub fn received_in_order(&self) -> u32 {
        self.kcp.rcv_nxt()
    }

    /// The oldest unacknowledged sequence number while segments are in
    /// flight; `None` when everything sent was acknowledged.
    pub fn unacked(&self) -> Option<u32> {
        (self.kcp.snd_una() != self.kcp.snd_nxt()).then(|| self.kcp.snd_una())
    }

    /// Counters of this connection.
    pub fn stats(&self) -> ConnStats {
        let c = self.stats;
        let mut s = ConnStats {
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            in_pkts: c.input.in_pkts,
            in_bytes: c.input.in_bytes,
            out_pkts: c.out_pkts,
            out_bytes: c.out_bytes,
            in_errs: c.input.in_errs,
            in_csum_errors: c.input.in_csum_errors,
            kcp_in_errors: c.input.kcp_in_errors,
            fec_encode_errs: c.fec_encode_errs,
            fec_unconfigured: c.fec_unconfigured,
            datagrams_in: c.datagrams_in,
            datagrams_dropped: c.datagrams_dropped,
            datagrams_foreign: c.datagrams_foreign,
            datagrams_out: c.datagrams_out,
            ..ConnStats::default()
        };
        s.retrans_segs = self.kcp.xmit() as u64;
        if let Some(d) = &self.decoder {
            let f = d.stats();
            s.fec_recovered = f.recovered;
            s.fec_errs = f.errs;
            s.fec_parity_shards = f.parity_shards;
            s.fec_short_shards = f.short_shards;
            s.fec_inconsistent = f.inconsistent;
            s.fec_pattern_mismatches = f.pattern_mismatches;
        }
        s
    }

    /// Queues data for sending; returns the bytes queued. An empty `data`
    /// queues nothing (kcp-go never sends an empty segment, and its reader
    /// stalls on one). Message mode: one message of at most 127 segments,
    /// else [`Error::TooLarge`]. Stream mode: any length, cut into segments
    /// here. The send queue is not bounded here: see [`Conn::wait_snd`] (the
    /// session layer bounds it).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        if data.is_empty() {
            return Ok(0);
        }
        let kcp_err = |e| match e {
            SendError::TooLarge => Error::TooLarge,
        };
        if self.stream {
            let most = self.kcp.mss() as usize * MAX_FRAGMENTS as usize;
            for chunk in data.chunks(most.max(1)) {
                self.kcp.send(chunk).map_err(kcp_err)?;
            }
        } else {
            self.kcp.send(data).map_err(kcp_err)?;
        }
        self.stats.bytes_sent += data.len() as u64;
        Ok(data.len())
    }

    /// Receives into `buf`. Message mode: the next whole message, or
    /// [`Error::BufferTooSmall`] (see [`Conn::peek_size`]). Stream mode:
    /// as many of the next bytes as fit, whatever the buffer's size.
    /// [`Error::Again`] when nothing is waiting.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = if self.stream {
            self.recv_stream(buf)?
        } else {
            self.recv_message(buf)?
        };
        self.stats.bytes_received += n as u64;
        Ok(n)
    }

    fn recv_message(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        kcp_recv(&mut self.kcp, buf)
    }

    fn recv_stream(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        while n < buf.len() {
            if let Some(side) = self.side.as_mut().filter(|s| s.buffered() > 0) {
                let take = side.buffered().min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&side.pending[side.pending_at..side.pending_at + take]);
                side.pending_at += take;
                n += take;
                continue;
            }
            let Ok(size) = self.kcp.peek_size() else { break };
            if size <= buf.len() - n {
                n += self.recv_message(&mut buf[n..])?;
            } else {
                let side = self.side.get_or_insert_with(Box::default);
                side.pending.resize(size, 0);
                let got = kcp_recv(&mut self.kcp, &mut side.pending[..])?;
                side.pending.truncate(got);
                side.pending_at = 0;
            }
        }
        if let Some(side) = self
            .side
            .as_mut()
            .filter(|s| s.buffered() == 0 && s.pending.capacity() > 0)
        {
            side.pending = Vec::new();
            side.pending_at = 0;
        }
        if n == 0 {
            return Err(Error::Again);
        }
        Ok(n)
    }

    /// Size of the next message waiting (stream mode: bytes ready now), if any.
    pub fn peek_size(&self) -> Option<usize> {
        let buffered = self.side.as_ref().map_or(0, |s| s.buffered());
        match self.kcp.peek_size() {
            Ok(n) if self.stream => Some(buffered + n),
            Ok(n) => Some(n),
            Err(_) if buffered > 0 => Some(buffered),
            Err(_) => None,
        }
    }

    /// Segments queued or in flight, not yet acknowledged.
    pub fn wait_snd(&self) -> usize {
        self.kcp.wait_snd() as usize
    }

    /// Whether KCP gave up on the link: a segment was retransmitted
    /// `dead_link` times (20 by default) without an acknowledgement.
    pub fn is_dead(&self) -> bool {
        self.kcp.is_dead()
    }

    /// Sets the clock without flushing (the time the next flush stamps its
    /// segments with, and RTT samples are measured against).
    pub fn set_clock(&mut self, now_ms: u32) {
        self.kcp.set_current(now_ms);
    }

    /// Nothing to send, acknowledge or probe (see [`Kcp::is_idle`]).
    pub fn is_idle(&self) -> bool {
        self.kcp.is_idle()
    }

    /// Takes one received datagram. `now_ms` is the caller's clock (the same
    /// one given to [`Conn::update`]); it times RTT samples and FEC expiry.
    /// Datagrams longer than kcp-go's 1500-byte limit are refused
    /// ([`Error::Short`], counted in `in_errs`): KCP buffers segments of any
    /// length, and a peer could otherwise grow the connection without bound.
    /// The datagram is copied once, to be opened in place; see
    /// [`Conn::input_incoming`] for a datagram already read.
    ///
    /// A secure connection ([`Conn::secure`]) opens the datagram with its
    /// session's receive keys: a forged, corrupted, reflected or replayed
    /// datagram changes nothing and is counted (`in_csum_errors`, and by
    /// kind in [`Conn::secure_stats`]); one with broken frames after it
    /// opened is a protocol error (`in_errs`). Its KCP frame goes to FEC
    /// and KCP as a kcp-go datagram's payload does; its control frames wait
    /// for [`Conn::poll_control`].
    pub fn input(&mut self, datagram: &[u8], now_ms: u32) -> Result<(), Error> {
        let secure = match &self.wire {
            Wire::KcpGo(None) => {
                return match Incoming::unsealed(datagram) {
                    Ok(incoming) => self.deliver(incoming, now_ms),
                    Err(e) => Err(self.refuse(datagram.len(), e)),
                };
            }
            Wire::KcpGo(Some(_)) => false,
            Wire::Secure(_) => true,
        };
        if datagram.len() > KCPGO_MTU_LIMIT {
            return Err(self.refuse(datagram.len(), Error::Short));
        }
        // Decryption is in place: only then is the datagram copied.
        let mut inbuf = core::mem::take(&mut self.side.get_or_insert_with(Box::default).inbuf);
        inbuf.clear();
        inbuf.extend_from_slice(datagram);
        let result = if secure {
            self.input_secure(&mut inbuf, now_ms)
        } else {
            match Incoming::open(self.wire.kcpgo_crypt(), &mut inbuf) {
                Ok(incoming) => self.deliver(incoming, now_ms),
                Err(e) => Err(self.refuse(datagram.len(), e)),
            }
        };
        self.side.get_or_insert_with(Box::default).inbuf = inbuf;
        result
    }

    /// [`Conn::input`] for a datagram in the caller's buffer, opened (and
    /// so modified) in place there: no copy. For an owner that reads each
    /// datagram into a buffer of its own and hands it to one connection
    /// (the secure wire's endpoint, which routes by connection ID).
    pub fn input_in_place(&mut self, datagram: &mut [u8], now_ms: u32) -> Result<(), Error> {
        if datagram.len() > KCPGO_MTU_LIMIT {
            return Err(self.refuse(datagram.len(), Error::Short));
        }
        if let Wire::Secure(_) = self.wire {
            return self.input_secure(datagram, now_ms);
        }
        let wire_len = datagram.len();
        match Incoming::open(self.wire.kcpgo_crypt(), datagram) {
            Ok(incoming) => self.deliver(incoming, now_ms),
            Err(e) => Err(self.refuse(wire_len, e)),
        }
    }

    /// Opens a secure datagram (a copy, in place), queues its control
    /// frames and delivers its KCP frame.
    fn input_secure(&mut self, datagram: &mut [u8], now_ms: u32) -> Result<(), Error> {
        let wire_len = datagram.len();
        let Wire::Secure(keys) = &mut self.wire else {
            return Err(Error::Internal);
        };
        let kcp_frame = match keys.open(datagram) {
            Ok(kcp_frame) => kcp_frame,
            Err(e) => return Err(self.refuse(wire_len, e)),
        };
        match kcp_frame {
            Some(payload) => self.deliver(Incoming::opened(payload, wire_len), now_ms),
            None => {
                self.stats.input.datagram(wire_len);
                Ok(())
            }
        }
    }

    fn refuse(&mut self, len: usize, e: Error) -> Error {
        self.stats.input.datagram(len);
        self.stats.input.count(e)
    }

    /// Takes a datagram already opened and read with this connection's
    /// cipher (see [`Incoming::open`]): what a listener that read a
    /// datagram to route it hands on, without reading it twice. A secure
    /// connection refuses it ([`Error::Key`], nothing counted): its
    /// datagrams must be opened with its session's keys, by [`Conn::input`].
    pub fn input_incoming(&mut self, incoming: Incoming<'_>, now_ms: u32) -> Result<(), Error> {
        if let Wire::Secure(_) = self.wire {
            return Err(Error::Key);
        }
        self.deliver(incoming, now_ms)
    }

    /// A datagram's kcp-go-form payload, authenticated, into FEC and KCP.
    fn deliver(&mut self, incoming: Incoming<'_>, now_ms: u32) -> Result<(), Error> {
        let Conn {
            kcp,
            decoder,
            stats,
            side,
            ..
        } = self;
        stats.input.datagram(incoming.wire_len);
        if let Route::Message { conv } = incoming.route() {
            if conv != kcp.conv() {
                stats.datagrams_foreign += 1;
                return Err(stats.input.count(Error::Kcp));
            }
            let message = incoming.message().unwrap_or_default();
            stats.datagrams_in += 1;
            stats.datagrams_dropped += side.get_or_insert_with(Box::default).messages.push(message);
            return Ok(());
        }
        let payload = incoming.payload;
        kcp.set_current(now_ms);
        // kcp-go reads FEC framing whatever its own setting (a KCP command
        // never looks like an FEC type), so FEC on one side only works.
        // Without a decoder the peer's data shards go to KCP and its parity
        // is dropped: nothing is rebuilt.
        let input = match decoder {
            None => {
                stats.fec_unconfigured += u64::from(incoming.fec != FecInput::NotFec);
                incoming.fec
            }
            Some(d) => d.decode_classified(payload, incoming.fec, now_ms),
        };
        let regular = match input {
            FecInput::Data(segments) => Some(segments),
            // kcp-go hands a datagram without FEC header to KCP as it is.
            FecInput::NotFec => Some(payload),
            FecInput::Parity | FecInput::Oob(_) => None,
            FecInput::Malformed | FecInput::Inconsistent => return Err(stats.input.count(Error::Short)),
        };
        let result = match regular {
            Some(segments) if kcp.input(segments).is_err() => Err(stats.input.count(Error::Kcp)),
            _ => Ok(()),
        };
        for segments in decoder.iter().flat_map(FecDecoder::recovered) {
            if kcp.input_recovered(segments).is_err() {
                stats.input.kcp_in_errors += 1;
            }
        }
        result
    }

    // ----- the secure wire's control frames -----

    /// The oldest control frame (PING, PONG, CLOSE, PATH_CHALLENGE,
    /// PATH_RESPONSE) received on a secure connection and not yet taken,
    /// for its owner to act on (`Conn` answers none itself). At most
    /// [`CONTROL_QUEUE`] wait; beyond, the oldest are dropped (counted in
    /// [`SecureStats::controls_dropped`]). Always `None` on a kcp-go
    /// connection.
    pub fn poll_control(&mut self) -> Option<Control> {
        match &mut self.wire {
            Wire::Secure(keys) => keys.poll_control(),
            Wire::KcpGo(_) => None,
        }
    }

    /// Appends to `out` one sealed datagram holding `control` alone (a
    /// PING, a CLOSE, a PATH_RESPONSE... for the owner to send). Not
    /// charged to the rate limit. [`Error::Invalid`] on a kcp-go connection
    /// or for a KCP frame;
    /// [`Error::Closed`] once the packet numbers are exhausted (nothing
    /// appended).
    pub fn send_control(&mut self, control: Control, out: &mut Outbox) -> Result<(), Error> {
        let Wire::Secure(keys) = &mut self.wire else {
            return Err(Error::Invalid);
        };
        let at = out.bytes.len();
        match keys.seal_control(control, &mut out.bytes) {
            Ok(()) => {
                out.ends.push(out.bytes.len());
                self.stats.out_pkts += 1;
                self.stats.out_bytes += (out.bytes.len() - at) as u64;
                Ok(())
            }
            Err(e) => {
                out.bytes.truncate(at);
                Err(e)
            }
        }
    }

    /// The secure wire's counters, `None` on a kcp-go connection.
    pub fn secure_stats(&self) -> Option<SecureStats> {
        match &self.wire {
            Wire::Secure(keys) => Some(keys.stats()),
            Wire::KcpGo(_) => None,
        }
    }

    /// The packet number of the last datagram that opened on a secure
    /// connection and whether it was the newest so far (a datagram from a
    /// new address may start a path check only then); `None` before the
    /// first and on a kcp-go connection.
    pub fn last_opened(&self) -> Option<OpenedInfo> {
        match &self.wire {
            Wire::Secure(keys) => keys.last_opened(),
            Wire::KcpGo(_) => None,
        }
    }

    /// The connection ID of a secure connection's session (`None`: kcp-go).
    pub fn connection_id(&self) -> Option<crate::secure::wire::ConnectionId> {
        match &self.wire {
            Wire::Secure(keys) => Some(keys.cid()),
            Wire::KcpGo(_) => None,
        }
    }

    /// The client's ID from its connect token, on either side of a secure
    /// session whose client used one (`None` with a PSK).
    pub fn client_id(&self) -> Option<u64> {
        match &self.wire {
            Wire::Secure(keys) => keys.client_id(),
            Wire::KcpGo(_) => None,
        }
    }

    /// Whether this connection speaks the secure wire ([`Conn::secure`]).
    pub fn is_secure(&self) -> bool {
        matches!(self.wire, Wire::Secure(_))
    }

    // ----- unreliable messages -----

    /// The longest unreliable message [`Conn::send_datagram`] takes: what
    /// one datagram holds after the crypto header, the 8-byte out-of-band
    /// header and the conv (kcp-go's `GetOOBMaxSize`: KCP's MTU − 4). With
    /// the default MTU of 1,400, FEC and a CFB cipher: 1,368 bytes; with
    /// AES-GCM (nonce and tag): 1,360; on the secure wire
    /// ([`Conn::secure`]): 1,358.
    pub fn datagram_max(&self) -> usize {
        let crypt_len = self.wire.prefix_len();
        let mtu = self.kcp.mtu() as usize + self.header_len;
        mtu.saturating_sub(crypt_len + FEC_DATA_OVERHEAD + OOB_CONV_LEN)
    }

    /// Sends `data` as one unreliable message, appended to `out` sealed
    /// and ready to send (kcp-go's `SendOOB`): never retransmitted, never
    /// FEC-protected, not ordered with the stream or other messages, no
    /// head-of-line blocking behind either. Returns its length;
    /// [`Error::TooLarge`] if it is longer than [`Conn::datagram_max`];
    /// [`Error::Again`] when the rate limit has no room for it now (at the
    /// connection's clock; nothing is sent).
    /// kcp-go requires FEC on for this; the bytes on the wire do not
    /// depend on it (the out-of-band header is there either way), so a
    /// connection without FEC sends them too, and a kcp-go peer without FEC
    /// drops them (it has no handler). A kcp-go 5.6.1 peer must never get
    /// one: it reads it as a KCP segment of conversation 0xFFFFFFFF.
    pub fn send_datagram(&mut self, data: &[u8], out: &mut Outbox) -> Result<usize, Error> {
        if data.len() > self.datagram_max() {
            return Err(Error::TooLarge);
        }
        let wire = self.header_len_oob() + data.len() + self.trailer_len();
        if let Some(r) = &mut self.rate {
            r.refill(self.kcp.current());
            if (r.available() as usize) < wire {
                return Err(Error::Again);
            }
            r.charge(wire);
        }
        let crypt_len = self.wire.prefix_len();
        let at = out.bytes.len();
        out.bytes.resize(at + crypt_len + FEC_DATA_OVERHEAD, 0);
        out.bytes.extend_from_slice(&self.kcp.conv().to_le_bytes());
        out.bytes.extend_from_slice(data);
        frame_oob(&mut out.bytes[at..], crypt_len);
        out.push_trailer(self.trailer_len());
        self.wire.seal_one(&mut out.bytes[at..]);
        self.stats.out_pkts += 1;
        self.stats.out_bytes += (out.bytes.len() - at) as u64;
        self.stats.datagrams_out += 1;
        Ok(data.len())
    }

    /// Bytes in front of an unreliable message: crypto header, out-of-band
    /// header, conv.
    fn header_len_oob(&self) -> usize {
        self.wire.prefix_len() + FEC_DATA_OVERHEAD + OOB_CONV_LEN
    }

    /// Copies the oldest unreliable message received into `buf` and
    /// removes it: its length; [`Error::Again`] when none waits;
    /// [`Error::BufferTooSmall`] when `buf` is shorter (the message stays:
    /// see [`Conn::peek_datagram_size`]). At most
    /// [`DATAGRAM_QUEUE_MESSAGES`] messages and [`DATAGRAM_QUEUE_BYTES`]
    /// bytes wait; beyond, the oldest are dropped (counted).
    pub fn recv_datagram(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.side.as_mut().ok_or(Error::Again)?.messages.pop(buf)
    }

    /// Length of the oldest unreliable message waiting, if any.
    pub fn peek_datagram_size(&self) -> Option<usize> {
        self.side.as_ref()?.messages.peek()
    }

    /// Unreliable messages waiting to be read.
    pub fn datagrams_waiting(&self) -> usize {
        self.side.as_ref().map_or(0, |s| s.messages.len())
    }

    /// Advances the clock to `now_ms` and, when a flush is due, appends the
    /// datagrams due into `out` (the caller's: several connections may
    /// share one, and it keeps its memory between calls). Returns whether
    /// it flushed.
    pub fn update(&mut self, now_ms: u32, out: &mut Outbox) -> bool {
        let due = self.kcp.advance_clock(now_ms);
        if due || self.rate_ready(now_ms) {
            self.flush(out);
            true
        } else if self.kcp.ack_flush_due() {
            self.flush_acks(out);
            true
        } else {
            false
        }
    }

    /// Data held back by the rate limit can go now.
    fn rate_ready(&self, now_ms: u32) -> bool {
        self.kcp.held_back()
            && self
                .rate
                .as_ref()
                .is_some_and(|r| r.wait_ms(now_ms, self.kcp.mtu()) == 0)
    }

    /// Pending ACKs fill a datagram (kcp-go's clocking rule, see
    /// [`Kcp::ack_flush_due`]): [`Conn::flush_acks`] should run now.
    pub fn ack_flush_due(&self) -> bool {
        self.kcp.ack_flush_due()
    }

    /// Sends the pending ACKs alone (see [`Kcp::flush_acks`]): what
    /// [`Conn::update`] does between intervals once they fill a datagram.
    pub fn flush_acks(&mut self, outbox: &mut Outbox) {
        self.emit(outbox, true);
    }

    /// When nothing is in flight, queued or owed to the peer, gives back
    /// what [`Conn::shed_idle_memory`] frees and returns true (the owner
    /// frees its outbox too): one large flush must not pin its buffers'
    /// size for the connection's lifetime. What `kcpx_conn_update` does
    /// before each update; a listener waits [`crate::endpoint::SHED_AFTER_MS`]
    /// of quiet instead.
    pub fn shed_if_quiet(&mut self) -> bool {
        let quiet = self.kcp.is_quiet();
        if quiet {
            self.shed_idle_memory();
        }
        quiet
    }

    /// Produces everything due now (ACKs, data, retransmissions) into
    /// `outbox` (appended), with FEC parity and encryption applied. Under a
    /// rate limit, data waits for its tokens; ACKs do not.
    pub fn flush(&mut self, outbox: &mut Outbox) {
        self.emit(outbox, false);
    }

    /// A flush (of the pending ACKs only, when `acks_only`) into `outbox`.
    fn emit(&mut self, outbox: &mut Outbox, acks_only: bool) {
        let Conn {
            kcp,
            wire,
            encoder,
            header_len,
            stats,
            rate,
            ..
        } = self;
        if let (Some(r), false) = (rate.as_mut(), acks_only) {
            r.refill(kcp.current());
            kcp.set_send_budget(Some(r.available()));
        }
        let (first, start) = (outbox.ends.len(), outbox.bytes.len());
        let now = kcp.current();
        let trailer = wire.trailer_len();
        let out = |segments: &[u8]| frame(outbox, segments, *header_len, encoder, trailer, stats, now);
        if acks_only {
            kcp.flush_acks(out);
        } else {
            kcp.flush(out);
        }
        seal(outbox, start, first, wire, rate);
    }

    /// Frees what only an active connection needs: the core's flush buffer
    /// and pooled payloads, FEC's parity and shard buffers (an incomplete
    /// group keeps its state), the incoming-datagram copy. Nothing on the
    /// wire changes; the next datagrams allocate again. The owner decides
    /// when (see [`Conn::shed_if_quiet`]): a listener after
    /// [`crate::endpoint::SHED_AFTER_MS`] of quiet.
    pub fn shed_idle_memory(&mut self) {
        self.kcp.release_idle_queues();
        if let Some(e) = &mut self.encoder {
            e.shed();
        }
        if let Some(d) = &mut self.decoder {
            d.shed();
        }
        if let Some(side) = &mut self.side {
            side.inbuf = Vec::new();
            side.messages.shed();
        }
    }

    /// For a connection that stays quiet (a listener's session after
    /// [`crate::endpoint::SHED_AFTER_MS`]): what
    /// [`Conn::shed_idle_memory`] frees, and FEC's receive state of
    /// incomplete groups (see [`FecDecoder::shed_all`]), FEC's send state
    /// (an incomplete group is ended without its parity, see
    /// [`FecEncoder::compact`]), the side buffers freed when empty. Nothing
    /// the peer needs is lost: KCP retransmits what a missing parity would
    /// have rebuilt.
    pub fn compact_idle_memory(&mut self) {
        self.shed_idle_memory();
        if let Some(e) = &mut self.encoder {
            e.compact();
        }
        if let Some(d) = &mut self.decoder {
            d.shed_all();
        }
        if self.side.as_ref().is_some_and(|s| s.is_empty()) {
            self.side = None;
        }
        if let Wire::Secure(keys) = &mut self.wire {
            keys.shed();
        }
    }

    // ----- receive-side memory (see ARCHITECTURE.md, "Memory of a listener's sessions") -----

    /// Bytes this connection holds for delivery: KCP's receive buffer (out
    /// of order) and receive queue (in order, not yet read), FEC's kept
    /// shards of incomplete groups, and a stream-mode chunk the caller's
    /// buffer could not take yet. Payload bytes plus a few dozen per segment
    /// or shard for bookkeeping. O(1).
    pub fn buffered_bytes(&self) -> usize {
        self.kcp.out_of_order_bytes()
            + self.kcp.rcv_queue_bytes()
            + self.decoder.as_ref().map_or(0, FecDecoder::kept_bytes)
            + self
                .side
                .as_ref()
                .map_or(0, |s| s.buffered() + s.messages.queued_bytes())
    }

    /// The part of [`Conn::buffered_bytes`] the application cannot read
    /// yet: KCP's receive buffer and FEC's kept shards. O(1).
    pub fn undeliverable_bytes(&self) -> usize {
        self.kcp.out_of_order_bytes() + self.decoder.as_ref().map_or(0, FecDecoder::kept_bytes)
    }

    /// Caps the undeliverable data at `bytes` each for KCP's out-of-order
    /// segments ([`Kcp::set_out_of_order_cap`]: beyond it they are dropped
    /// unacknowledged, the next in order always passes) and FEC's kept
    /// shards ([`FecDecoder::set_keep_cap`]: the oldest are dropped).
    /// `None` (the default for a `Conn`) removes both caps. Cheap: a
    /// session layer may set it before every datagram.
    pub fn set_buffer_cap(&mut self, bytes: Option<usize>) {
        self.kcp.set_out_of_order_cap(bytes);
        if let Some(d) = &mut self.decoder {
            d.set_keep_cap(bytes);
        }
    }

    /// Drops what does not advance delivery and can go without losing data:
    /// FEC's kept shards (and its free buffers). KCP's out-of-order segments
    /// stay: they were acknowledged.
    pub fn drop_fec_shards(&mut self) {
        if let Some(d) = &mut self.decoder {
            d.drop_kept();
        }
    }

    /// Frees everything received and not yet read (KCP's receive buffer and
    /// queue, FEC's kept shards, a pending stream chunk): for a connection
    /// given up on, whose owner must not hold its data meanwhile. `recv`
    /// then finds nothing.
    pub fn discard_received(&mut self) {
        self.kcp.discard_received();
        self.drop_fec_shards();
        if let Some(side) = &mut self.side {
            side.pending = Vec::new();
            side.pending_at = 0;
            side.messages.clear();
        }
    }

    /// What the caps of [`Conn::set_buffer_cap`] (and
    /// [`Conn::drop_fec_shards`]) dropped so far: KCP segments (wrapping
    /// u32) and FEC shards.
    pub fn memory_drops(&self) -> (u32, u64) {
        let shards = self.decoder.as_ref().map_or(0, |d| d.stats().capped);
        (self.kcp.out_of_order_refused(), shards)
    }

    /// Bytes the application has received from this connection.
    pub fn delivered_bytes(&self) -> u64 {
        self.stats.bytes_received
    }

    /// Heap bytes held by the connection's buffers (KCP core, FEC buffers,
    /// incoming datagram, unreliable messages); the shared cipher and Reed-Solomon code
    /// not included.
    pub fn heap_bytes(&self) -> usize {
        self.kcp.heap_bytes()
            + self.wire.heap_bytes()
            + self.encoder.as_ref().map_or(0, FecEncoder::heap_bytes)
            + self.decoder.as_ref().map_or(0, FecDecoder::heap_bytes)
            + self.side.as_ref().map_or(0, |s| {
                core::mem::size_of::<SideBuffers>()
                    + s.inbuf.capacity()
                    + s.pending.capacity()
                    + s.messages.heap_bytes()
            })
    }

    /// When to call [`Conn::update`] next (absolute ms).
    /// Now when ACKs fill a datagram; under a rate limit that holds data
    /// back, no sooner than its tokens or the next interval allow.
    pub fn check(&self, now_ms: u32) -> u32 {
        if self.kcp.ack_flush_due() {
            return now_ms;
        }
        match &self.rate {
            Some(r) if self.kcp.held_back() => {
                let tokens = now_ms.wrapping_add(r.wait_ms(now_ms, self.kcp.mtu()));
                let interval = self.kcp.next_flush(now_ms);
                if (tokens.wrapping_sub(interval) as i32) < 0 {
                    tokens
                } else {
                    interval
                }
            }
            _ => self.kcp.check(now_ms),
        }
    }
}

/// Appends one datagram of KCP `segments` to `outbox`, framed in place
/// (header space, the segments, FEC parity after it, each with room for
/// the cipher's trailer); sealing comes after the flush ([`seal`]). `now_ms`
/// is the connection's clock (FEC skips the parity of sparse groups).
fn frame(
    outbox: &mut Outbox,
    segments: &[u8],
    header_len: usize,
    encoder: &mut Option<FecEncoder>,
    trailer: usize,
    stats: &mut Counters,
    now_ms: u32,
) {
    // AES-GCM's (or the secure wire's) tag goes after every datagram (FEC
    // shards exclude it).
    let crypt_len = header_len - encoder.as_ref().map_or(0, |_| FEC_DATA_OVERHEAD);
    // A datagram of control segments only (ACKs, window probes) goes
    // without FEC framing: kcp-go reads a datagram without it as KCP
    // whatever its FEC setting, as kcpx does (`Incoming`), and a lost ACK
    // is repaired by the next one (they are cumulative), not by parity; so
    // it costs no parity share and no shard in the peer's decoder.
    let fec = encoder.as_mut().filter(|_| carries_data(segments));
    let at = outbox.bytes.len();
    outbox
        .bytes
        .resize(at + if fec.is_some() { header_len } else { crypt_len }, 0);
    outbox.bytes.extend_from_slice(segments);
    let parity = match fec {
        Some(e) => match e.encode(&mut outbox.bytes[at..], now_ms) {
            Ok(p) => p,
            // Cannot happen with a validated MTU; counted, never silent.
            Err(_) => {
                stats.fec_encode_errs += 1;
                &mut []
            }
        },
        None => &mut [],
    };
    outbox.push_trailer(trailer);
    stats.out_pkts += 1 + parity.len() as u64;
    stats.out_bytes += (outbox.bytes.len() - at + parity.iter().map(|p| p.len() + trailer).sum::<usize>()) as u64;
    for p in parity.iter() {
        outbox.bytes.extend_from_slice(p);
        outbox.push_trailer(trailer);
    }
}

/// Seals the datagrams a flush appended from `start` (the `first`-th on)
/// and charges them to the rate limit.
fn seal(outbox: &mut Outbox, start: usize, first: usize, wire: &mut Wire, rate: &mut Option<Box<rate::Bucket>>) {
    wire.seal_packed(&mut outbox.bytes, start, &outbox.ends[first..]);
    if let Some(r) = rate {
        r.charge(outbox.bytes.len() - start);
    }
}

fn kcp_recv(kcp: &mut Kcp, buf: &mut [u8]) -> Result<usize, Error> {
    kcp.recv(buf).map_err(|e| match e {
        RecvError::Empty | RecvError::Incomplete => Error::Again,
        RecvError::BufferTooSmall => Error::BufferTooSmall,
    })
}

/// The conversation id of a datagram made with `config`, for a server that
/// must create the connection of a new peer (kcp-go clients pick a random
/// conv). Decrypts a copy (a key schedule per call: a listener reads its
/// datagrams with [`Incoming::open`] and its one expanded cipher instead).
/// Errors: [`Error::Checksum`], [`Error::Short`] or [`Error::Kcp`];
/// [`Error::Again`] for an FEC parity datagram, which names no
/// conversation. An unreliable message gives its conv.
pub fn conv_of(config: &ConnConfig, datagram: &[u8]) -> Result<u32, Error> {
    let mut copy = datagram.to_vec();
    let crypt = match &config.crypt {
        Some((method, key)) => Some(PacketCrypt::new(*method, key)?),
        None => None,
    };
    match Incoming::open(crypt.as_ref(), &mut copy)?.route() {
        Route::Segment { conv, .. } | Route::Message { conv } => Ok(conv),
        Route::Parity => Err(Error::Again),
        Route::Invalid(e) => Err(e),
    }
}

#[cfg(test)]
mod master_tests;
#[cfg(test)]
mod rate_tests;
#[cfg(test)]
mod secure_tests;
#[cfg(test)]
pub(crate) mod tests;
