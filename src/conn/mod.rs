//! A kcp-go compatible connection: the KCP core, FEC and packet crypto
//! composed, still sans-IO. The caller owns the socket and the clock:
//! received datagrams go to [`Conn::input`], and [`Conn::update`] produces
//! the datagrams to send.
//!
//! Datagram layout (see `crypt.rs` and `fec.rs`):
//! `[nonce 16 | CRC-32 4]` (with a cipher) `[seqid 4 | type 2 | size 2]`
//! (with FEC) `[KCP segments]`. The MTU counts all of it, as in kcp-go.
#![forbid(unsafe_code)]

mod config;

pub use config::{ConnConfig, MAX_WINDOW, MIN_KCP_BYTES};

use crate::crypt::PacketCrypt;
use crate::error::Error;
use crate::fec::{FecCode, FecDecoder, FecEncoder, FecInput, KCPGO_MTU_LIMIT};
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
    pub in_bytes: u64,
    /// OutPkts / OutBytes: datagrams and bytes produced (parity included).
    pub out_pkts: u64,
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
}

/// The counters a connection keeps itself (the rest of [`ConnStats`] is
/// read from the core and the FEC decoder): smaller than `ConnStats`, as
/// every session of a listener holds one.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    bytes_sent: u64,
    bytes_received: u64,
    in_pkts: u64,
    in_bytes: u64,
    out_pkts: u64,
    out_bytes: u64,
    in_errs: u64,
    in_csum_errors: u64,
    kcp_in_errors: u64,
    fec_encode_errs: u64,
    fec_unconfigured: u64,
}

impl Counters {
    /// Counts a datagram of `len` bytes refused before it reached FEC or
    /// KCP, and returns the error.
    fn refuse(&mut self, len: usize, e: Error) -> Error {
        self.in_pkts += 1;
        self.in_bytes += len as u64;
        self.count(e)
    }

    /// Counts a rejected datagram under its kind and returns the error.
    fn count(&mut self, e: Error) -> Error {
        match e {
            Error::Checksum => self.in_csum_errors += 1,
            Error::Kcp => self.kcp_in_errors += 1,
            _ => self.in_errs += 1,
        }
        e
    }
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

/// A KCP connection speaking kcp-go's wire format.
pub struct Conn {
    kcp: Kcp,
    crypt: Option<Arc<PacketCrypt>>,
    encoder: Option<FecEncoder>,
    decoder: Option<FecDecoder>,
    /// Bytes in front of the KCP data: crypto header, then FEC header + size.
    header_len: usize,
    stream: bool,
    /// Buffers some owners never use (a listener's sessions do without):
    /// allocated on first use.
    side: Option<Box<SideBuffers>>,
    stats: Counters,
}

/// The buffers of a [`Conn`] that only some ways of driving it need.
#[derive(Default)]
struct SideBuffers {
    /// One incoming datagram being opened (decryption is in place): for
    /// [`Conn::input`], not [`Conn::input_opened`].
    inbuf: Vec<u8>,
    /// Stream mode: bytes of a received chunk the caller's buffer could
    /// not take yet, from `pending_at` on.
    pending: Vec<u8>,
    pending_at: usize,
    /// The connection's own outbox: for [`Conn::update`] and
    /// [`Conn::flush`], not their `_into` forms.
    outbox: Outbox,
}

impl SideBuffers {
    fn buffered(&self) -> usize {
        self.pending.len() - self.pending_at
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
        if fec.as_ref().map(|f| f.config()) != config.fec {
            return Err(Error::Invalid);
        }
        let header_len = config.header_len();
        let crypt_len = crypt.as_ref().map_or(0, |c| c.header_len());
        let mtu = config.mtu as usize;
        let mut kcp = Kcp::new(conv);
        // As kcp-go: the MTU holds the crypto header and trailer (AES-GCM's tag) too.
        kcp.set_mtu((mtu - header_len - config.trailer_len()) as u32)
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
            crypt,
            encoder,
            decoder,
            header_len,
            stream: config.stream,
            side: None,
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
            in_pkts: c.in_pkts,
            in_bytes: c.in_bytes,
            out_pkts: c.out_pkts,
            out_bytes: c.out_bytes,
            in_errs: c.in_errs,
            in_csum_errors: c.in_csum_errors,
            kcp_in_errors: c.kcp_in_errors,
            fec_encode_errs: c.fec_encode_errs,
            fec_unconfigured: c.fec_unconfigured,
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
    pub fn input(&mut self, datagram: &[u8], now_ms: u32) -> Result<(), Error> {
        if datagram.len() > KCPGO_MTU_LIMIT {
            return Err(self.stats.refuse(datagram.len(), Error::Short));
        }
        let Some(c) = self.crypt.clone() else {
            return self.input_opened(datagram, now_ms);
        };
        // Decryption is in place: only then is the datagram copied.
        let mut inbuf = core::mem::take(&mut self.side.get_or_insert_with(Box::default).inbuf);
        inbuf.clear();
        inbuf.extend_from_slice(datagram);
        let result = match c.open(&mut inbuf) {
            Ok(p) => self.input_opened(p, now_ms),
            Err(e) => Err(self.stats.refuse(datagram.len(), e.into())),
        };
        self.side.get_or_insert_with(Box::default).inbuf = inbuf;
        result
    }

    /// Takes a datagram the caller already opened (decrypted and
    /// CRC-checked with this connection's cipher, as
    /// [`PacketCrypt::open`] returns it), or a datagram of a connection
    /// without cipher: what a listener that opened a datagram to find its
    /// session hands on, without decrypting twice.
    pub fn input_opened(&mut self, payload: &[u8], now_ms: u32) -> Result<(), Error> {
        let crypt_len = self.crypt.as_ref().map_or(0, |c| c.overhead());
        if payload.len() + crypt_len > KCPGO_MTU_LIMIT {
            return Err(self.stats.refuse(payload.len() + crypt_len, Error::Short));
        }
        let Conn {
            kcp, decoder, stats, ..
        } = self;
        stats.in_pkts += 1;
        stats.in_bytes += (payload.len() + crypt_len) as u64;
        kcp.set_current(now_ms);
        // kcp-go reads FEC framing whatever its own setting (a KCP command
        // never looks like an FEC type), so FEC on one side only works.
        // Without a decoder the peer's data shards go to KCP and its parity
        // is dropped: nothing is rebuilt.
        let input = match decoder {
            None => {
                let input = crate::fec::classify(payload);
                stats.fec_unconfigured += u64::from(input != FecInput::NotFec);
                input
            }
            Some(d) => d.decode(payload, now_ms),
        };
        let regular = match input {
            FecInput::Data(segments) => Some(segments),
            // kcp-go hands a datagram without FEC header to KCP as it is.
            FecInput::NotFec => Some(payload),
            FecInput::Parity | FecInput::Ignored => None,
            FecInput::Malformed | FecInput::Inconsistent => return Err(stats.count(Error::Short)),
        };
        let result = match regular {
            Some(segments) if kcp.input(segments).is_err() => Err(stats.count(Error::Kcp)),
            _ => Ok(()),
        };
        for segments in decoder.iter().flat_map(FecDecoder::recovered) {
            if kcp.input_recovered(segments).is_err() {
                stats.kcp_in_errors += 1;
            }
        }
        result
    }

    /// Advances the clock and produces the datagrams due now into the
    /// outbox (see [`Conn::take_outbox`]).
    pub fn update(&mut self, now_ms: u32) {
        if self.kcp.is_quiet() && self.outbox_is_empty() {
            // A quiet connection frees its buffers (the outbox, the core's
            // flush buffer, FEC's): one large flush must not pin their
            // size for the connection's lifetime.
            self.shed_idle_memory();
        }
        let mut out = self.take_outbox();
        self.update_into(now_ms, &mut out);
        self.side.get_or_insert_with(Box::default).outbox = out;
    }

    fn outbox_is_empty(&self) -> bool {
        self.side.as_ref().map_or(true, |s| s.outbox.is_empty())
    }

    /// [`Conn::update`] into a caller's outbox (appended, several
    /// connections may share one). Returns whether it flushed.
    pub fn update_into(&mut self, now_ms: u32, out: &mut Outbox) -> bool {
        let due = self.kcp.advance_clock(now_ms);
        if due {
            self.flush_into(out);
        }
        due
    }

    /// Produces everything due now (ACKs, data, retransmissions) into the
    /// outbox, with FEC parity and encryption applied.
    pub fn flush(&mut self) {
        let mut out = self.take_outbox();
        self.flush_into(&mut out);
        self.side.get_or_insert_with(Box::default).outbox = out;
    }

    /// [`Conn::flush`] into a caller's outbox (appended).
    pub fn flush_into(&mut self, outbox: &mut Outbox) {
        let Conn {
            kcp,
            crypt,
            encoder,
            header_len,
            stats,
            ..
        } = self;
        let (first, start) = (outbox.ends.len(), outbox.bytes.len());
        // AES-GCM's tag goes after every datagram (FEC shards exclude it).
        let trailer = crypt.as_ref().map_or(0, |c| c.trailer_len());
        kcp.flush(|segments| {
            // Framed in place: header space, then the KCP bytes.
            let at = outbox.bytes.len();
            outbox.bytes.resize(at + *header_len, 0);
            outbox.bytes.extend_from_slice(segments);
            let parity = match encoder {
                Some(e) => match e.encode(&mut outbox.bytes[at..]) {
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
            stats.out_bytes +=
                (outbox.bytes.len() - at + parity.iter().map(|p| p.len() + trailer).sum::<usize>()) as u64;
            for p in parity.iter() {
                outbox.bytes.extend_from_slice(p);
                outbox.push_trailer(trailer);
            }
        });
        if let Some(c) = crypt {
            // All of this flush's datagrams at once: CFB is serial within a
            // datagram, so sealing several side by side is much faster.
            // Cannot fail: every datagram holds at least the header and trailer bytes.
            let _ = c.seal_packed(&mut outbox.bytes, start, &outbox.ends[first..]);
        }
    }

    /// Takes the datagrams produced so far, to be sent in order. Give the
    /// outbox back with [`Conn::restore_outbox`] to reuse its memory.
    pub fn take_outbox(&mut self) -> Outbox {
        self.side
            .as_mut()
            .map(|s| core::mem::take(&mut s.outbox))
            .unwrap_or_default()
    }

    /// Returns a drained outbox for reuse.
    pub fn restore_outbox(&mut self, mut outbox: Outbox) {
        if self.outbox_is_empty() {
            outbox.clear();
            self.side.get_or_insert_with(Box::default).outbox = outbox;
        }
    }

    /// Frees what only an active connection needs: the core's flush buffer
    /// and pooled payloads, FEC's parity and shard buffers (an incomplete
    /// group keeps its state), the incoming-datagram copy, an empty outbox.
    /// Nothing on the wire changes; the next datagrams allocate again.
    /// [`Conn::update`] does this when it finds the connection quiet; a
    /// session layer calling [`Conn::update_into`] decides when.
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
            if side.outbox.is_empty() {
                side.outbox = Outbox::default();
            }
        }
    }

    /// For a connection that stays quiet (a listener's session after
    /// [`crate::endpoint::SHED_AFTER_MS`]): what
    /// [`Conn::shed_idle_memory`] frees, and FEC's receive state of
    /// incomplete groups (see [`FecDecoder::shed_all`]); FEC's send state
    /// packed into one allocation ([`FecEncoder::compact`]), the side
    /// buffers freed when empty. Nothing on the wire changes.
    pub fn compact_idle_memory(&mut self) {
        self.shed_idle_memory();
        if let Some(e) = &mut self.encoder {
            e.compact();
        }
        if let Some(d) = &mut self.decoder {
            d.shed_all();
        }
        if self
            .side
            .as_ref()
            .is_some_and(|s| s.buffered() == 0 && s.outbox.is_empty())
        {
            self.side = None;
        }
    }

    /// Takes FEC's packed send state out after
    /// [`Conn::compact_idle_memory`] (see [`FecEncoder::take_packed`]), for
    /// an owner that keeps it beside other idle connections'. It must come
    /// back through [`Conn::put_packed_fec`] before the next flush.
    pub fn take_packed_fec(&mut self) -> Option<Box<[u8]>> {
        self.encoder.as_mut()?.take_packed()
    }

    /// Hands back what [`Conn::take_packed_fec`] took.
    pub fn put_packed_fec(&mut self, packed: Box<[u8]>) {
        if let Some(e) = &mut self.encoder {
            e.put_packed(packed);
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
            + self.side.as_ref().map_or(0, |s| s.buffered())
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
    /// outbox, incoming datagram); the shared cipher and Reed-Solomon code
    /// not included.
    pub fn heap_bytes(&self) -> usize {
        self.kcp.heap_bytes()
            + self.encoder.as_ref().map_or(0, FecEncoder::heap_bytes)
            + self.decoder.as_ref().map_or(0, FecDecoder::heap_bytes)
            + self.side.as_ref().map_or(0, |s| {
                core::mem::size_of::<SideBuffers>()
                    + s.outbox.bytes.capacity()
                    + s.outbox.ends.capacity() * core::mem::size_of::<usize>()
                    + s.inbuf.capacity()
                    + s.pending.capacity()
            })
    }

    /// When to call [`Conn::update`] next (absolute ms).
    pub fn check(&self, now_ms: u32) -> u32 {
        self.kcp.check(now_ms)
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
/// conv). Decrypts a copy (a key schedule per call: a listener uses
/// [`conv_of_opened`] with its one expanded cipher instead). Errors:
/// [`Error::Checksum`] or [`Error::Short`]; [`Error::Again`] for an FEC
/// parity or out-of-band datagram, which carries no KCP header.
pub fn conv_of(config: &ConnConfig, datagram: &[u8]) -> Result<u32, Error> {
    let mut copy = datagram.to_vec();
    let payload: &[u8] = match &config.crypt {
        Some((method, key)) => PacketCrypt::new(*method, key)?.open(&mut copy)?,
        None => &copy,
    };
    conv_of_opened(payload)
}

/// The KCP bytes of an opened datagram (decrypted, or of a connection
/// without cipher) and their conv: what a listener reads from a datagram of
/// an unknown peer. FEC framing is read whether or not this side uses FEC
/// (as kcp-go does: a peer may have it on when this side has it off).
pub fn conv_of_opened(payload: &[u8]) -> Result<u32, Error> {
    let kcp = match crate::fec::classify(payload) {
        FecInput::Data(segments) => segments,
        FecInput::Parity | FecInput::Ignored => return Err(Error::Again),
        FecInput::Malformed | FecInput::Inconsistent => return Err(Error::Short),
        FecInput::NotFec => payload,
    };
    match kcp.get(..4) {
        Some(c) => Ok(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        None => Err(Error::Short),
    }
}

#[cfg(test)]
mod tests;
