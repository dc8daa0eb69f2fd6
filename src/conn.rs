//! A kcp-go compatible connection: the KCP core, FEC and packet crypto
//! composed, still sans-IO. The caller owns the socket and the clock:
//! received datagrams go to [`Conn::input`], and [`Conn::update`] produces
//! the datagrams to send.
//!
//! Datagram layout (see `crypt.rs` and `fec.rs`):
//! `[nonce 16 | CRC-32 4]` (with a cipher) `[seqid 4 | type 2 | size 2]`
//! (with FEC) `[KCP segments]`. The MTU counts all of it, as in kcp-go.
#![forbid(unsafe_code)]

use crate::crypt::{CryptError, CryptMethod, PacketCrypt};
use crate::fec::{FecConfig, FecDecoder, FecEncoder, FecError, FecInput, FEC_DATA_OVERHEAD, KCPGO_MTU_LIMIT};
use crate::kcp::{Kcp, RecvError, SendError};

/// Settings of a connection. Both ends must agree on FEC and crypto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// Reed-Solomon shards per group, `None` for no FEC header.
    pub fec: Option<FecConfig>,
    /// Cipher and key, `None` for no crypto header.
    pub crypt: Option<(CryptMethod, Vec<u8>)>,
    /// ikcp_nodelay's four settings.
    pub nodelay: (i32, i32, i32, i32),
    /// Send and receive windows, in segments.
    pub window: (u32, u32),
    /// Whole UDP payload, all headers included.
    pub mtu: u32,
    /// Stream mode (byte stream, no message boundaries).
    pub stream: bool,
}

impl Default for ConnConfig {
    /// kcp-go's defaults: no FEC, no crypto, nodelay (0, 100, 0, 0), windows
    /// 32/32, MTU 1400, message mode.
    fn default() -> Self {
        ConnConfig {
            fec: None,
            crypt: None,
            nodelay: (0, 100, 0, 0),
            window: (32, 32),
            mtu: 1400,
            stream: false,
        }
    }
}

/// Why a connection could not be created or refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnError {
    /// The key does not fit the cipher, or the OS random source failed.
    Crypt(CryptError),
    /// FEC shard counts out of range.
    Fec(FecError),
    /// The MTU leaves less than 50 bytes for KCP after the headers, or
    /// exceeds kcp-go's 1500-byte limit.
    Mtu,
    /// A message needs more than 127 fragments.
    TooLarge,
    /// No complete message is waiting.
    Empty,
    /// The buffer is smaller than the next message.
    BufferTooSmall,
    /// A datagram failed the CRC check (wrong key, corruption, forgery).
    Checksum,
    /// A datagram is too short for its headers.
    Short,
    /// KCP refused the segments (another conversation, bad length or command).
    Kcp,
}

impl From<CryptError> for ConnError {
    fn from(e: CryptError) -> Self {
        ConnError::Crypt(e)
    }
}

impl From<FecError> for ConnError {
    fn from(e: FecError) -> Self {
        ConnError::Fec(e)
    }
}

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
}

impl ConnStats {
    /// Counts a rejected datagram under its kind and returns the error.
    fn count(&mut self, e: ConnError) -> ConnError {
        match e {
            ConnError::Checksum => self.in_csum_errors += 1,
            ConnError::Kcp => self.kcp_in_errors += 1,
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
    fn push(&mut self, datagram: &[u8]) {
        self.bytes.extend_from_slice(datagram);
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

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// A KCP connection speaking kcp-go's wire format.
pub struct Conn {
    kcp: Kcp,
    crypt: Option<PacketCrypt>,
    encoder: Option<FecEncoder>,
    decoder: Option<FecDecoder>,
    /// Bytes in front of the KCP data: crypto header, then FEC header + size.
    header_len: usize,
    /// One incoming datagram being opened (decryption is in place).
    inbuf: Vec<u8>,
    outbox: Outbox,
    stats: ConnStats,
}

impl Conn {
    /// A connection for conversation `conv` (both ends use the same).
    pub fn new(conv: u32, config: &ConnConfig) -> Result<Conn, ConnError> {
        let crypt = match &config.crypt {
            Some((method, key)) => Some(PacketCrypt::new(*method, key)?),
            None => None,
        };
        let crypt_len = crypt.as_ref().map_or(0, PacketCrypt::header_len);
        let fec_len = if config.fec.is_some() { FEC_DATA_OVERHEAD } else { 0 };
        let header_len = crypt_len + fec_len;
        let mtu = config.mtu as usize;
        if mtu > KCPGO_MTU_LIMIT || mtu < header_len + 50 {
            return Err(ConnError::Mtu);
        }
        let mut kcp = Kcp::new(conv);
        kcp.set_mtu((mtu - header_len) as u32).map_err(|_| ConnError::Mtu)?;
        let (nodelay, interval, resend, nc) = config.nodelay;
        kcp.set_nodelay(nodelay, interval, resend, nc);
        kcp.set_window(config.window.0, config.window.1);
        kcp.set_stream(config.stream);
        let encoder = config.fec.map(|f| FecEncoder::new(f, crypt_len, mtu));
        // Peers may use a larger MTU than ours, up to kcp-go's limit.
        let decoder = config.fec.map(|f| FecDecoder::new(f, KCPGO_MTU_LIMIT));
        Ok(Conn {
            kcp,
            crypt,
            encoder,
            decoder,
            header_len,
            inbuf: Vec::with_capacity(mtu),
            outbox: Outbox::default(),
            stats: ConnStats::default(),
        })
    }

    /// The KCP core (for its settings and state).
    pub fn kcp(&self) -> &Kcp {
        &self.kcp
    }

    /// Mutable access to the KCP core.
    pub fn kcp_mut(&mut self) -> &mut Kcp {
        &mut self.kcp
    }

    /// Counters of this connection.
    pub fn stats(&self) -> ConnStats {
        let mut s = self.stats;
        s.retrans_segs = self.kcp.xmit() as u64;
        if let Some(d) = &self.decoder {
            let f = d.stats();
            s.fec_recovered = f.recovered;
            s.fec_errs = f.errs;
            s.fec_parity_shards = f.parity_shards;
            s.fec_short_shards = f.short_shards;
        }
        s
    }

    /// Queues data for sending; returns the bytes queued.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, ConnError> {
        let n = self.kcp.send(data).map_err(|e| match e {
            SendError::TooLarge | SendError::NoMss => ConnError::TooLarge,
        })?;
        self.stats.bytes_sent += n as u64;
        Ok(n)
    }

    /// Receives the next message (stream mode: the next chunk) into `buf`.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ConnError> {
        let n = self.kcp.recv(buf).map_err(|e| match e {
            RecvError::Empty | RecvError::Incomplete => ConnError::Empty,
            RecvError::BufferTooSmall => ConnError::BufferTooSmall,
        })?;
        self.stats.bytes_received += n as u64;
        Ok(n)
    }

    /// Size of the next message waiting, if one is complete.
    pub fn peek_size(&self) -> Option<usize> {
        self.kcp.peek_size().ok()
    }

    /// Takes one received datagram. `now_ms` is the caller's clock (the same
    /// one given to [`Conn::update`]); it times RTT samples and FEC expiry.
    pub fn input(&mut self, datagram: &[u8], now_ms: u32) -> Result<(), ConnError> {
        let Conn {
            kcp,
            crypt,
            decoder,
            inbuf,
            stats,
            ..
        } = self;
        stats.in_pkts += 1;
        stats.in_bytes += datagram.len() as u64;
        kcp.v.current = now_ms;
        let payload: &[u8] = match crypt {
            // Decryption is in place: only then is the datagram copied.
            Some(c) => {
                inbuf.clear();
                inbuf.extend_from_slice(datagram);
                match c.open(inbuf) {
                    Ok(p) => p,
                    Err(CryptError::TooShort) => return Err(stats.count(ConnError::Short)),
                    Err(_) => return Err(stats.count(ConnError::Checksum)),
                }
            }
            None => datagram,
        };
        let regular = match decoder {
            None => Some(payload),
            Some(d) => match d.decode(payload, now_ms) {
                FecInput::Data(segments) => Some(segments),
                // kcp-go hands a datagram without FEC header to KCP as it is.
                FecInput::NotFec => Some(payload),
                FecInput::Parity | FecInput::Ignored => None,
                FecInput::Malformed => return Err(stats.count(ConnError::Short)),
            },
        };
        let result = match regular {
            Some(segments) if kcp.input(segments).is_err() => Err(stats.count(ConnError::Kcp)),
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
        if self.kcp.advance_clock(now_ms) {
            self.flush();
        }
    }

    /// Produces everything due now (ACKs, data, retransmissions) into the
    /// outbox, with FEC parity and encryption applied.
    pub fn flush(&mut self) {
        let Conn {
            kcp,
            crypt,
            encoder,
            header_len,
            outbox,
            stats,
            ..
        } = self;
        let (first, start) = (outbox.ends.len(), outbox.bytes.len());
        kcp.flush(|segments| {
            // Framed in place: header space, then the KCP bytes.
            let at = outbox.bytes.len();
            outbox.bytes.resize(at + *header_len, 0);
            outbox.bytes.extend_from_slice(segments);
            outbox.ends.push(outbox.bytes.len());
            let parity = match encoder {
                Some(e) => e.encode(&mut outbox.bytes[at..]).unwrap_or(&mut []),
                None => &mut [],
            };
            stats.out_pkts += 1 + parity.len() as u64;
            stats.out_bytes += (outbox.bytes.len() - at + parity.iter().map(|p| p.len()).sum::<usize>()) as u64;
            for p in parity.iter() {
                outbox.push(p);
            }
        });
        if let Some(c) = crypt {
            // All of this flush's datagrams at once: CFB is serial within a
            // datagram, so sealing several side by side is much faster.
            // Cannot fail: every datagram holds at least the 20 header bytes.
            let _ = c.seal_packed(&mut outbox.bytes, start, &outbox.ends[first..]);
        }
    }

    /// Takes the datagrams produced so far, to be sent in order. Give the
    /// outbox back with [`Conn::restore_outbox`] to reuse its memory.
    pub fn take_outbox(&mut self) -> Outbox {
        core::mem::take(&mut self.outbox)
    }

    /// Returns a drained outbox for reuse.
    pub fn restore_outbox(&mut self, mut outbox: Outbox) {
        if self.outbox.is_empty() {
            outbox.clear();
            self.outbox = outbox;
        }
    }

    /// When to call [`Conn::update`] next (absolute ms).
    pub fn check(&self, now_ms: u32) -> u32 {
        self.kcp.check(now_ms)
    }
}

/// The conversation id of a datagram made with `config`, for a server that
/// must create the connection of a new peer (kcp-go clients pick a random
/// conv). Decrypts a copy (a key schedule per call: use it for unknown
/// peers only). Errors: [`ConnError::Checksum`] or [`ConnError::Short`];
/// [`ConnError::Empty`] for an FEC parity or out-of-band datagram, which
/// carries no KCP header.
pub fn conv_of(config: &ConnConfig, datagram: &[u8]) -> Result<u32, ConnError> {
    let mut copy = datagram.to_vec();
    let payload: &[u8] = match &config.crypt {
        Some((method, key)) => match PacketCrypt::new(*method, key)?.open(&mut copy) {
            Ok(p) => p,
            Err(CryptError::TooShort) => return Err(ConnError::Short),
            Err(_) => return Err(ConnError::Checksum),
        },
        None => &copy,
    };
    let kcp = match config.fec.map(|_| crate::fec::classify(payload)) {
        Some(FecInput::Data(segments)) => segments,
        Some(FecInput::Parity | FecInput::Ignored) => return Err(ConnError::Empty),
        Some(FecInput::Malformed) => return Err(ConnError::Short),
        Some(FecInput::NotFec) | None => payload,
    };
    match kcp.get(..4) {
        Some(c) => Ok(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        None => Err(ConnError::Short),
    }
}

#[cfg(test)]
mod tests;
