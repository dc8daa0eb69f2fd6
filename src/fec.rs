//! kcp-go compatible forward error correction: a pure, sans-IO transform.
//!
//! Every datagram of an FEC-enabled kcp-go session carries, after the optional
//! 20-byte crypto header (see [`crate::crypt`]), an FEC header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | seqid, u32 LE, one counter for data and parity, starting at 0 |
//! | 4 | 2 | type, u16 LE: [`TYPE_DATA`] or [`TYPE_PARITY`] |
//! | 6 | 2 | data shards only: size, u16 LE = 2 + number of KCP bytes that follow |
//! | 8 | … | KCP segments (data) or Reed-Solomon parity (parity) |
//!
//! With `n = data_shards + parity_shards`, seqid `s` is a data shard if
//! `s % n < data_shards`. After every `data_shards`-th data datagram the encoder
//! emits `parity_shards` parity datagrams. A *shard* is the datagram from the size
//! field to its end, zero-padded to the longest shard of its group; parity is
//! Reed-Solomon over GF(2^8) with the Backblaze/klauspost matrix (the
//! `reed-solomon-erasure` crate's `galois_8`), computed on plaintext, and a parity
//! datagram is as long as the longest data datagram of its group.
//!
//! [`FecEncoder`] produces that format; [`FecDecoder`] consumes it, hands data
//! shards straight back for KCP, and rebuilds lost data shards from parity. Both
//! work on caller-owned datagram buffers, take time as a `now_ms` argument and do
//! not allocate once warm, with or without loss: the encoder accumulates parity in
//! a few buffers as data passes (it keeps no data shard), and the decoder keeps
//! shards in pooled buffers sized to them and rebuilds lost ones into buffers of
//! the same pool, with its matrix inversion in reused scratch. Both can give
//! their memory back while a connection is quiet (`shed`, `compact`, `shed_all`).
//!
//! # A connection's datagram path
//!
//! KCP → FEC → CRC → encryption on the way out, the reverse on the way in. With
//! both layers on, a datagram reserves `HEADER_LEN + FEC_DATA_OVERHEAD` (28) bytes
//! in front of the KCP bytes, and the MTU includes them:
//!
//! ```
//! use kcpx::crypt::{CryptMethod, PacketCrypt, HEADER_LEN};
//! use kcpx::fec::{FecConfig, FecDecoder, FecEncoder, FecInput, FEC_DATA_OVERHEAD};
//!
//! let crypt = PacketCrypt::new(CryptMethod::Aes128, &[7; 16])?;
//! let fec = FecConfig::new(2, 1)?;
//! let mut encoder = FecEncoder::new(fec, HEADER_LEN, 1400);
//! let mut decoder = FecDecoder::new(fec, 1400);
//! decoder.set_sync_threshold(0); // both ends configured alike (the default waits 4n shards)
//!
//! // Sending: two KCP datagrams (fake 24-byte segments here) make one group.
//! let mut wire: Vec<Vec<u8>> = Vec::new();
//! for kcp in [[1u8; 24], [2u8; 24]] {
//!     let mut datagram = vec![0u8; HEADER_LEN + FEC_DATA_OVERHEAD];
//!     datagram.extend_from_slice(&kcp);
//!     let parity = encoder.encode(&mut datagram)?; // stamps the FEC header
//!     crypt.seal(&mut datagram)?; // nonce, CRC-32, AES-CFB
//!     wire.push(datagram);
//!     crypt.seal_many(parity)?; // sealed in the encoder's buffers
//!     wire.extend(parity.iter().map(|p| p.to_vec()));
//! }
//! assert_eq!(wire.len(), 3);
//!
//! // Receiving, with the first datagram lost: parity brings its KCP bytes back.
//! let mut regular = Vec::new();
//! let mut recovered = Vec::new();
//! for (now_ms, datagram) in wire.iter_mut().enumerate().skip(1) {
//!     let payload = crypt.open(datagram)?;
//!     if let FecInput::Data(kcp) = decoder.decode(payload, now_ms as u32) {
//!         regular.push(kcp.to_vec()); // → KCP input, regular
//!     }
//!     // → KCP input without RTT sample or window update
//!     recovered.extend(decoder.recovered().map(<[u8]>::to_vec));
//! }
//! assert_eq!(regular, [vec![2u8; 24]]);
//! assert_eq!(recovered, [vec![1u8; 24]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Unsafe code
//!
//! None here: this module denies `unsafe_code`, and its submodules `gf` (entry
//! points and the scalar kernel), `matrix` and `tests` forbid it. The one exception is
//! `simd`, the SIMD kernels chosen at run time for the Reed-Solomon arithmetic,
//! which alone is allowed `unsafe` (to call `#[target_feature]` functions after
//! `is_x86_feature_detected!`, and for SIMD loads and stores); its
//! documentation states the rule. [`gf_kernel`] says which kernel runs.
#![deny(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

mod gf;
mod matrix;
use gf::Multiplier;
use matrix::Matrix;
#[allow(unsafe_code)] // the only one: see the module's documentation
mod simd;

/// The GF(2^8) kernel the Reed-Solomon code uses on this CPU, chosen at run
/// time: `"avx512-gfni"`, `"avx2-gfni"`, `"avx2"` or `"scalar"`. All give the
/// same bytes.
pub fn gf_kernel() -> &'static str {
    simd::Kernel::selected().name()
}

/// Makes the Reed-Solomon code use the kernel called `name` (see [`gf_kernel`])
/// from now on, process-wide; returns false, changing nothing, if this CPU (or
/// this build) lacks it. For benchmarks and tests: every kernel gives the same
/// bytes, only the speed differs.
#[doc(hidden)]
pub fn select_gf_kernel(name: &str) -> bool {
    simd::Kernel::select(name)
}

/// Bytes of the FEC header common to data and parity: seqid + type.
pub const FEC_HEADER_LEN: usize = 6;
/// Bytes a data datagram spends on FEC: header + size field. Callers reserve this
/// (after the crypto header, if any) in front of the KCP bytes.
pub const FEC_DATA_OVERHEAD: usize = FEC_HEADER_LEN + 2;
/// FEC type of a data shard.
pub const TYPE_DATA: u16 = 0x00f1;
/// FEC type of a parity shard.
pub const TYPE_PARITY: u16 = 0x00f2;
/// FEC type that newer kcp-go uses for unreliable out-of-band data; never KCP.
pub const TYPE_OOB: u16 = 0x00f3;
/// Largest `data_shards + parity_shards` (GF(2^8) Reed-Solomon limit).
pub const MAX_TOTAL_SHARDS: usize = 256;
/// The decoder keeps at most this many times `data_shards + parity_shards` shards.
pub const QUEUE_MULTIPLIER: usize = 3;
/// Shards older than this many milliseconds are dropped from the decoder's queue.
pub const SHARD_EXPIRY_MS: u32 = 60_000;
/// kcp-go's receive buffer size: the longest datagram it reads, and the default
/// for the longest shard the decoder stores.
pub const KCPGO_MTU_LIMIT: usize = 1500;

/// Shard counts of an FEC configuration, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FecConfig {
    data_shards: usize,
    parity_shards: usize,
}

impl FecConfig {
    /// Checks `data_shards >= 1`, `parity_shards >= 1` and their sum `<= 256`.
    /// (kcp-go turns FEC off when either is 0: the caller then uses no FEC at all.)
    pub fn new(data_shards: usize, parity_shards: usize) -> Result<FecConfig, FecError> {
        if data_shards == 0 || parity_shards == 0 || data_shards + parity_shards > MAX_TOTAL_SHARDS {
            return Err(FecError::InvalidShards {
                data_shards,
                parity_shards,
            });
        }
        Ok(FecConfig {
            data_shards,
            parity_shards,
        })
    }

    /// Data shards per group.
    pub fn data_shards(self) -> usize {
        self.data_shards
    }

    /// Parity shards per group.
    pub fn parity_shards(self) -> usize {
        self.parity_shards
    }

    /// Shards per group (`data_shards + parity_shards`).
    pub fn total_shards(self) -> usize {
        self.data_shards + self.parity_shards
    }

    /// Whether seqid `seqid` is a data shard in this configuration.
    pub fn is_data_seqid(self, seqid: u32) -> bool {
        (seqid % self.total_shards() as u32) < self.data_shards as u32
    }

    /// Seqids wrap to 0 at this value, a multiple of the group size (kcp-go's `paws`).
    pub fn seqid_wrap(self) -> u32 {
        let n = self.total_shards() as u32;
        u32::MAX / n * n
    }

    /// The Reed-Solomon encoding matrix (`total × data`, identity on top).
    fn matrix(self) -> Matrix {
        Matrix::encoding(self.data_shards, self.total_shards())
    }
}

/// The immutable Reed-Solomon code of one [`FecConfig`]: the encoding matrix
/// and the encoder's multiplication tables (about 1.6 KiB for 10+3). Every
/// encoder and decoder of one configuration can share one
/// (`Arc<FecCode>`): a listener builds it once, not per session.
pub struct FecCode {
    config: FecConfig,
    matrix: Matrix,
    /// `coefficients[i * parity_shards + j]`: weight of data shard `i` in parity `j`.
    coefficients: Vec<Multiplier>,
}

impl fmt::Debug for FecCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FecCode")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FecCode {
    /// The code of `config`, ready to share.
    pub fn new(config: FecConfig) -> Arc<FecCode> {
        let (ds, ps) = (config.data_shards, config.parity_shards);
        let matrix = config.matrix();
        // The parity rows of the encoding matrix, by data shard.
        let coefficients = (0..ds)
            .flat_map(|i| (ds..ds + ps).map(move |j| (i, j)))
            .map(|(i, j)| Multiplier::new(matrix.get(j, i)))
            .collect();
        Arc::new(FecCode {
            config,
            matrix,
            coefficients,
        })
    }

    /// The configuration of this code.
    pub fn config(&self) -> FecConfig {
        self.config
    }
}

/// Errors of FEC configuration and encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FecError {
    /// Shard counts outside `1..`, `1..`, sum `<= 256`.
    InvalidShards {
        /// Requested data shards.
        data_shards: usize,
        /// Requested parity shards.
        parity_shards: usize,
    },
    /// The datagram has no room for the reserved crypto and FEC headers.
    TooShort,
    /// The datagram is longer than the encoder's `max_datagram`.
    TooLong,
}

impl fmt::Display for FecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FecError::InvalidShards {
                data_shards,
                parity_shards,
            } => write!(
                f,
                "invalid FEC shards {data_shards}+{parity_shards} (need >= 1 each, sum <= {MAX_TOTAL_SHARDS})"
            ),
            FecError::TooShort => f.write_str("datagram too short for the reserved FEC header"),
            FecError::TooLong => f.write_str("datagram longer than the FEC encoder's maximum"),
        }
    }
}

impl std::error::Error for FecError {}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn write_header(header: &mut [u8], seqid: u32, kind: u16) {
    header[..4].copy_from_slice(&seqid.to_le_bytes());
    header[4..6].copy_from_slice(&kind.to_le_bytes());
}

/// One outgoing parity datagram, owned by the [`FecEncoder`] and reused for every
/// group. Dereferences to the datagram bytes; `AsMut<[u8]>` lets a slice of them
/// go straight to [`crate::crypt::PacketCrypt::seal_many`].
#[derive(Debug)]
pub struct ParityDatagram {
    buf: Vec<u8>,
    len: usize,
}

impl std::ops::Deref for ParityDatagram {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::ops::DerefMut for ParityDatagram {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl AsRef<[u8]> for ParityDatagram {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for ParityDatagram {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// kcp-go's FEC encoder. Parity is accumulated as each data datagram passes
/// through (Reed-Solomon is linear), so data datagrams are not copied.
///
/// Its parity buffers grow to the longest datagram seen (at most
/// `max_datagram`) as datagrams pass; [`FecEncoder::shed`] gives their
/// memory back while a connection is quiet, and [`FecEncoder::compact`]
/// packs an incomplete group's parity into one allocation while it stays
/// quiet.
pub struct FecEncoder {
    code: Arc<FecCode>,
    header_offset: usize,
    max_datagram: usize,
    /// Empty before the first datagram and while compacted.
    parity: Vec<ParityDatagram>,
    /// While compacted with a group incomplete: its parity accumulators,
    /// bytes `header_offset + FEC_HEADER_LEN..max_size` of each, back to back.
    packed: Option<Box<[u8]>>,
    /// The packed parity was taken ([`FecEncoder::take_packed`]).
    lent: bool,
    /// Bytes of the parity buffers that may be non-zero (written or sealed).
    dirty: usize,
    next: u32,
    shard_count: usize,
    max_size: usize,
}

impl fmt::Debug for FecEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FecEncoder")
            .field("config", &self.code.config)
            .field("next", &self.next)
            .field("shard_count", &self.shard_count)
            .finish_non_exhaustive()
    }
}

impl FecEncoder {
    /// An encoder for `config`. `header_offset` is the number of bytes in front of
    /// the FEC header in every datagram (the crypto header: 0 or
    /// [`crate::crypt::HEADER_LEN`]); `max_datagram` the longest datagram it will
    /// be given (the MTU), which sizes its parity buffers.
    pub fn new(config: FecConfig, header_offset: usize, max_datagram: usize) -> FecEncoder {
        FecEncoder::with_code(FecCode::new(config), header_offset, max_datagram)
    }

    /// [`FecEncoder::new`] with a shared code.
    pub fn with_code(code: Arc<FecCode>, header_offset: usize, max_datagram: usize) -> FecEncoder {
        FecEncoder {
            code,
            header_offset,
            max_datagram,
            parity: Vec::new(),
            packed: None,
            lent: false,
            dirty: 0,
            next: 0,
            shard_count: 0,
            max_size: 0,
        }
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> FecConfig {
        self.code.config
    }

    /// Seqid the next datagram (data or parity) will carry.
    pub fn next_seqid(&self) -> u32 {
        self.next
    }

    /// Data datagrams of the current, incomplete group.
    pub fn pending_data(&self) -> usize {
        self.shard_count
    }

    /// Gives back the memory of the parity buffers: all of it between
    /// groups, else all but the bytes the incomplete group's parity has
    /// accumulated so far. The next datagrams grow them again; the bytes
    /// produced are unchanged.
    pub fn shed(&mut self) {
        let keep = if self.shard_count == 0 { 0 } else { self.max_size };
        for parity in &mut self.parity {
            // Beyond `max_size` the accumulators are zero (see `encode`).
            parity.buf.truncate(keep);
            parity.buf.shrink_to_fit();
            parity.len = 0;
        }
        self.dirty = self.dirty.min(keep);
    }

    /// Frees the parity buffers altogether, keeping only the incomplete
    /// group's accumulated parity (if any), packed into one allocation of
    /// `parity_shards` times the group's longest shard so far: for a
    /// connection that stays quiet. The next datagram unpacks it; the bytes
    /// produced are unchanged.
    pub fn compact(&mut self) {
        if self.parity.is_empty() {
            return;
        }
        let start = self.header_offset + FEC_HEADER_LEN;
        if self.shard_count > 0 {
            let mut packed = Vec::with_capacity(self.parity.len() * (self.max_size - start));
            for parity in &self.parity {
                packed.extend_from_slice(&parity.buf[start..self.max_size]);
            }
            self.packed = Some(packed.into_boxed_slice());
        }
        self.parity = Vec::new();
        self.dirty = 0;
    }

    /// Takes the packed parity of [`FecEncoder::compact`] out, for an owner
    /// that keeps many idle encoders' bytes side by side (a listener):
    /// it must hand them back with [`FecEncoder::put_packed`] before the
    /// next [`FecEncoder::encode`], which panics otherwise.
    pub fn take_packed(&mut self) -> Option<Box<[u8]>> {
        let packed = self.packed.take();
        self.lent = packed.is_some();
        packed
    }

    /// Hands back the bytes [`FecEncoder::take_packed`] took.
    pub fn put_packed(&mut self, packed: Box<[u8]>) {
        assert!(self.lent && self.parity.is_empty(), "packed parity handed back twice");
        self.packed = Some(packed);
        self.lent = false;
    }

    /// The parity buffers, after [`FecEncoder::compact`] (or before the
    /// first datagram): the incomplete group's accumulators unpacked.
    fn unpack(&mut self) {
        assert!(!self.lent, "FecEncoder::encode while its packed parity is taken");
        let ps = self.code.config.parity_shards;
        let start = self.header_offset + FEC_HEADER_LEN;
        self.parity = (0..ps)
            .map(|_| ParityDatagram {
                buf: Vec::new(),
                len: 0,
            })
            .collect();
        if let Some(packed) = self.packed.take() {
            let row = packed.len() / ps;
            for (parity, accumulated) in self.parity.iter_mut().zip(packed.chunks_exact(row)) {
                parity.buf.reserve_exact(self.max_size);
                parity.buf.resize(start, 0);
                parity.buf.extend_from_slice(accumulated);
            }
            self.dirty = self.max_size;
        }
    }

    /// Heap bytes held by the parity buffers.
    pub fn heap_bytes(&self) -> usize {
        self.parity.iter().map(|p| p.buf.capacity()).sum::<usize>()
            + self.parity.capacity() * core::mem::size_of::<ParityDatagram>()
            + self.packed.as_ref().map_or(0, |p| p.len())
    }

    /// Stamps a data datagram and folds it into the group's parity.
    ///
    /// `datagram[..header_offset]` is left alone (crypto header space),
    /// `datagram[header_offset..header_offset + 8]` receives the FEC header and
    /// size field, the KCP bytes follow. When this datagram completes a group, the
    /// group's parity datagrams are returned (otherwise an empty slice): send them
    /// right after this one, each with its crypto header space at the front still
    /// to be sealed. They stay valid, and may be modified in place (sealed), until
    /// the next call.
    pub fn encode(&mut self, datagram: &mut [u8]) -> Result<&mut [ParityDatagram], FecError> {
        let shard_start = self.header_offset + FEC_HEADER_LEN;
        if datagram.len() < self.header_offset + FEC_DATA_OVERHEAD {
            return Err(FecError::TooShort);
        }
        if datagram.len() > self.max_datagram || datagram.len() - shard_start > usize::from(u16::MAX) {
            return Err(FecError::TooLong);
        }
        if self.parity.is_empty() {
            self.unpack();
        }
        if self.shard_count == 0 && self.dirty > 0 {
            for parity in &mut self.parity {
                parity.buf[..self.dirty].fill(0);
            }
            self.dirty = 0;
        }

        write_header(&mut datagram[self.header_offset..], self.next, TYPE_DATA);
        self.next = self.next.wrapping_add(1);
        let shard_len = datagram.len() - shard_start;
        datagram[shard_start..shard_start + 2].copy_from_slice(&(shard_len as u16).to_le_bytes());

        let ds = self.code.config.data_shards;
        let ps = self.code.config.parity_shards;
        let shard = &datagram[shard_start..];
        let weights = &self.code.coefficients[self.shard_count * ps..][..ps];
        let unused = Multiplier::new(0);
        let mut rows: [(&Multiplier, &mut [u8]); 4] = core::array::from_fn(|_| (&unused, &mut [][..]));
        // The buffers grow (zero-filled) to the longest datagram yet: beyond
        // `dirty` they hold zeros, as the accumulators must.
        if self.parity[0].buf.len() < datagram.len() {
            // Twice the old size (at most the MTU) when they must grow: a few
            // growths to the traffic's largest datagram, none after that.
            let room = (2 * self.parity[0].buf.capacity()).clamp(datagram.len(), self.max_datagram);
            for p in &mut self.parity {
                p.buf.reserve_exact(room - p.buf.len());
                p.buf.resize(datagram.len(), 0);
            }
        }
        let mut parity = self.parity.iter_mut();
        for weights in weights.chunks(rows.len()) {
            let group = &mut rows[..weights.len()];
            for ((row, weight), p) in group.iter_mut().zip(weights).zip(&mut parity) {
                *row = (weight, &mut p.buf[shard_start..datagram.len()]);
            }
            gf::mul_add(shard, group);
        }
        self.max_size = self.max_size.max(datagram.len());
        self.dirty = self.max_size;
        self.shard_count += 1;
        if self.shard_count < ds {
            return Ok(&mut []);
        }

        let wrap = self.code.config.seqid_wrap();
        for parity in &mut self.parity {
            write_header(&mut parity.buf[self.header_offset..], self.next, TYPE_PARITY);
            self.next = self.next.wrapping_add(1) % wrap;
            parity.len = self.max_size;
        }
        self.shard_count = 0;
        self.max_size = 0;
        Ok(&mut self.parity)
    }
}

/// What [`FecDecoder::decode`] made of one datagram (crypto header removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FecInput<'a> {
    /// A data shard: feed these KCP bytes to KCP as regular input (RTT sample and
    /// remote window taken from it). As kcp-go 5.6.1 does, this is everything after
    /// the 8-byte FEC header, whatever the size field says; it is returned for
    /// every data shard, duplicates and shards the decoder does not keep included.
    Data(&'a [u8]),
    /// A parity shard (kept for reconstruction, nothing for KCP).
    Parity,
    /// Type [`TYPE_OOB`]: newer kcp-go's out-of-band data, ignored.
    Ignored,
    /// FEC type but shorter than the 8 bytes every FEC datagram carries (kcp-go
    /// counts this as InErrs and drops it).
    Malformed,
    /// A data shard whose size field disagrees with its length (truncated, or
    /// with bytes appended), or a parity shard shorter than another shard of
    /// its group. Never kept for reconstruction, never for KCP: zero-padding
    /// it would rebuild a lost sibling with wrong bytes that pass KCP's
    /// checks. kcp-go 5.6.1 hands such a data shard to KCP and keeps it.
    Inconsistent,
    /// Not an FEC datagram: shorter than 6 bytes or of another type. kcp-go hands
    /// such a datagram to KCP as it is; that is the caller's choice.
    NotFec,
}

/// What a datagram (crypto header removed) is, without any decoder state: what
/// [`FecDecoder::decode`] returns for it, minus reconstruction. A listener can use
/// it to read the conv of a new peer's first data datagram (the first 4 KCP
/// bytes) before it has a decoder for that peer.
pub fn classify(datagram: &[u8]) -> FecInput<'_> {
    if datagram.len() < FEC_HEADER_LEN {
        return FecInput::NotFec;
    }
    let data = match read_u16(datagram, 4) {
        TYPE_DATA => true,
        TYPE_PARITY => false,
        TYPE_OOB => return FecInput::Ignored,
        _ => return FecInput::NotFec,
    };
    if datagram.len() < FEC_DATA_OVERHEAD {
        FecInput::Malformed
    } else if data && usize::from(read_u16(datagram, FEC_HEADER_LEN)) != datagram.len() - FEC_HEADER_LEN {
        FecInput::Inconsistent
    } else if data {
        FecInput::Data(&datagram[FEC_DATA_OVERHEAD..])
    } else {
        FecInput::Parity
    }
}

/// Counters, named after kcp-go's SNMP fields where one applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FecStats {
    /// FECRecovered: data shards rebuilt and handed out by [`FecDecoder::recovered`]
    /// (kcp-go counts only those KCP then accepts: subtract the caller's rejects).
    pub recovered: u64,
    /// FECErrs: rebuilt data shards whose size field was impossible (dropped).
    pub errs: u64,
    /// FECParityShards: parity datagrams received.
    pub parity_shards: u64,
    /// FECShortShards: data shards pushed out of the full queue while their group
    /// could not be completed.
    pub short_shards: u64,
    /// FEC-typed datagrams shorter than 8 bytes ([`FecInput::Malformed`]).
    pub malformed: u64,
    /// [`TYPE_OOB`] datagrams ignored.
    pub oob_ignored: u64,
    /// Shards whose type disagreed with this decoder's data/parity pattern: the
    /// peer uses other shard counts (or the datagram is forged).
    pub pattern_mismatches: u64,
    /// Reconstructions refused because the pattern was not (yet) confirmed.
    pub refused: u64,
    /// Shards longer than the decoder's `max_shard` (not kept).
    pub oversized: u64,
    /// Shards whose length disagrees with their size field (data) or with
    /// their group (parity shorter than another shard of the group): never
    /// used for reconstruction ([`FecInput::Inconsistent`]).
    pub inconsistent: u64,
    /// Kept shards dropped to stay within the byte cap
    /// ([`FecDecoder::set_keep_cap`]) or by [`FecDecoder::drop_kept`]: they
    /// could only have helped rebuild a lost shard (KCP retransmits it).
    pub capped: u64,
}

/// A kept shard: from the size field (data) or first parity byte to the end.
#[derive(Debug)]
struct Shard {
    seqid: u32,
    ts: u32,
    data: bool,
    buf: Vec<u8>,
}

impl Shard {
    /// What a kept shard of `len` bytes counts for in
    /// [`FecDecoder::kept_bytes`]: its bytes and its queue entry.
    fn charge(len: usize) -> usize {
        len + core::mem::size_of::<Shard>()
    }
}

/// A rebuilt data shard waiting to be read through [`FecDecoder::recovered`].
#[derive(Debug)]
struct Recovered {
    buf: Vec<u8>,
    end: usize,
    /// Its index in the group (a data shard: `< data_shards`).
    index: usize,
}

/// How many completed groups the decoder remembers, to drop their late shards.
const DONE_GROUPS: usize = 8;

/// kcp-go's FEC decoder, with bounded memory and a guard against peers whose
/// shard counts differ from ours.
///
/// kcp-go 5.6.1 reconstructs whenever a group has enough shards; when the two
/// ends use different shard counts it "recovers" garbage that can pass KCP's
/// checks. This decoder checks every shard's type against its own pattern
/// (`seqid % n < data_shards` means data), never keeps a shard that disagrees,
/// and reconstructs only after [`FecDecoder::sync_threshold`] consecutive
/// agreeing shards (at session start and after any disagreement). Differing shard
/// counts produce a disagreement within about `2n` consecutive seqids (checked
/// exhaustively for every peer configuration against common local ones), so at
/// `4n` a mismatched peer never gets to reconstruction unless loss hides every
/// disagreement for that long.
///
/// Its buffers are sized to the shards they hold and reused: the free ones
/// wait in a pool, and the loss path (reconstruction) takes its output
/// buffers and its matrix scratch from the decoder too, so decoding, with
/// or without loss, allocates nothing once every buffer in circulation has
/// grown to the longest shard of the traffic. Their number is bounded: at
/// most `3n + 1` kept shards plus `data_shards` rebuilt ones.
pub struct FecDecoder {
    code: Arc<FecCode>,
    max_shard: u32,
    limit: u32,
    streak: u32,
    sync_threshold: u32,
    queue: VecDeque<Shard>,
    /// What the kept shards in `queue` count for ([`Shard::charge`]), kept
    /// as they come and go.
    kept_bytes: usize,
    /// Most `kept_bytes` (see [`FecDecoder::set_keep_cap`]).
    keep_cap: usize,
    /// The buffers of an active decoder (none while it is shed).
    spare: Option<Box<Spare>>,
    /// Groups completed lately (the first `done_len` entries are valid).
    done: [u32; DONE_GROUPS],
    done_len: u8,
    done_next: u8,
    stats: FecStats,
}

/// A decoder's reusable buffers, allocated when it first needs one.
#[derive(Debug, Default)]
struct Spare {
    /// Free buffers, used in turn (first in, first out): each meets the
    /// traffic's longest shards soon, and grows once.
    pool: VecDeque<Vec<u8>>,
    recovered: Vec<Recovered>,
    /// Reconstruction's matrix inversion (`2 · data_shards²` bytes).
    scratch: Vec<u8>,
}

impl Spare {
    /// An empty buffer from the pool (or a new one) with room for `len`
    /// bytes. A buffer is either small, sized to the short shard it was made
    /// for (a connection exchanging short messages keeps its buffers
    /// short), or `max_shard` long: one made for a shard over half that,
    /// or one that had to grow. So each buffer in circulation grows at most
    /// once and the pool is soon warm; [`FecDecoder::shed`] frees them.
    fn take_buffer(&mut self, len: usize, max_shard: usize) -> Vec<u8> {
        Spare::take_buffer_from(&mut self.pool, len, max_shard)
    }

    /// [`Spare::take_buffer`] from `pool` (while other fields are borrowed).
    fn take_buffer_from(pool: &mut VecDeque<Vec<u8>>, len: usize, max_shard: usize) -> Vec<u8> {
        let full = max_shard.max(len);
        match pool.pop_front() {
            Some(mut buf) => {
                buf.clear();
                if buf.capacity() < len {
                    buf.reserve_exact(full);
                }
                buf
            }
            None if 2 * len > max_shard => Vec::with_capacity(full),
            None => Vec::with_capacity(len),
        }
    }

    fn release_recovered(&mut self) {
        self.pool.extend(self.recovered.drain(..).map(|r| r.buf));
    }

    fn heap_bytes(&self) -> usize {
        core::mem::size_of::<Spare>()
            + self.pool.iter().map(Vec::capacity).sum::<usize>()
            + self.recovered.iter().map(|r| r.buf.capacity()).sum::<usize>()
            + self.pool.capacity() * core::mem::size_of::<Vec<u8>>()
            + self.recovered.capacity() * core::mem::size_of::<Recovered>()
            + self.scratch.capacity()
    }
}

impl fmt::Debug for FecDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FecDecoder")
            .field("config", &self.code.config)
            .field("queued", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FecDecoder {
    /// A decoder for `config` that keeps shards of at most `max_shard` bytes (a
    /// datagram's length after the crypto header minus the 6-byte FEC header;
    /// kcp-go's limit is `KCPGO_MTU_LIMIT - 6`). Memory is bounded by about
    /// `(3n + 1 + data_shards) * max_shard` bytes; buffers are sized to the
    /// shards they hold, not to `max_shard`.
    pub fn new(config: FecConfig, max_shard: usize) -> FecDecoder {
        FecDecoder::with_code(FecCode::new(config), max_shard)
    }

    /// [`FecDecoder::new`] with a shared code.
    pub fn with_code(code: Arc<FecCode>, max_shard: usize) -> FecDecoder {
        let config = code.config;
        FecDecoder {
            code,
            max_shard: u32::try_from(max_shard).unwrap_or(u32::MAX),
            limit: (QUEUE_MULTIPLIER * config.total_shards()) as u32,
            queue: VecDeque::new(),
            kept_bytes: 0,
            keep_cap: usize::MAX,
            spare: None,
            done: [0; DONE_GROUPS],
            done_len: 0,
            done_next: 0,
            streak: 0,
            sync_threshold: 4 * config.total_shards() as u32,
            stats: FecStats::default(),
        }
    }

    /// The configuration this decoder was built with.
    pub fn config(&self) -> FecConfig {
        self.code.config
    }

    /// Counters so far.
    pub fn stats(&self) -> FecStats {
        self.stats
    }

    /// Consecutive pattern-conforming shards needed before reconstruction
    /// (`4n` unless changed with [`FecDecoder::set_sync_threshold`]).
    pub fn sync_threshold(&self) -> usize {
        self.sync_threshold as usize
    }

    /// Changes the number of consecutive pattern-conforming shards required before
    /// reconstruction. 0 trusts the configuration from the first shard on, which
    /// is only safe when both ends are known to use the same shard counts.
    pub fn set_sync_threshold(&mut self, shards: usize) {
        self.sync_threshold = u32::try_from(shards).unwrap_or(u32::MAX);
    }

    /// Whether reconstruction is currently allowed (pattern confirmed).
    pub fn in_sync(&self) -> bool {
        self.streak >= self.sync_threshold
    }

    /// Shards currently kept (at most `3n`).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Bytes held by the shards kept for incomplete groups (their lengths
    /// plus a queue entry each; the pool of free buffers not included). O(1).
    pub fn kept_bytes(&self) -> usize {
        self.kept_bytes
    }

    /// Caps [`FecDecoder::kept_bytes`]: beyond `bytes` the oldest kept
    /// shards are dropped (counted in [`FecStats::capped`]), as the count
    /// bound (`3n` shards) drops them. `None` (the default) leaves only the
    /// count bound. A kept shard only ever serves to rebuild a lost one, so
    /// dropping it loses no data: KCP retransmits what FEC cannot rebuild.
    pub fn set_keep_cap(&mut self, bytes: Option<usize>) {
        self.keep_cap = bytes.unwrap_or(usize::MAX);
    }

    /// Drops every kept shard now (counted in [`FecStats::capped`]), and the
    /// free buffers with them: for an owner short of memory.
    pub fn drop_kept(&mut self) {
        self.stats.capped += self.queue.len() as u64;
        self.shed_all();
    }

    /// Drops every kept shard and recovered segment and forgets the pattern
    /// history (counters are kept).
    pub fn reset(&mut self) {
        while let Some(shard) = self.queue.pop_front() {
            self.free(shard.buf);
        }
        self.release_recovered();
        self.done_len = 0;
        self.streak = 0;
    }

    /// KCP bytes of the data shards rebuilt by the last [`FecDecoder::decode`]
    /// call, size field checked (`2 <= size <= shard length`). Feed each to KCP
    /// as *non-regular* input: no RTT sample, no remote-window update.
    pub fn recovered(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let recovered = self.spare.iter().flat_map(|s| s.recovered.iter());
        recovered.map(|r| &r.buf[2..r.end])
    }

    /// Takes one datagram (after the crypto layer; `datagram[0]` is the FEC
    /// seqid). Never panics, whatever the bytes; `now_ms` is any millisecond
    /// clock (wrapping), used only to expire kept shards after 60 s.
    pub fn decode<'a>(&mut self, datagram: &'a [u8], now_ms: u32) -> FecInput<'a> {
        self.release_recovered();
        let result = classify(datagram);
        let data = match result {
            FecInput::Data(_) => true,
            FecInput::Parity => false,
            FecInput::Ignored => {
                self.stats.oob_ignored += 1;
                return result;
            }
            FecInput::Malformed => {
                self.stats.malformed += 1;
                return result;
            }
            FecInput::Inconsistent => {
                self.stats.inconsistent += 1;
                return result;
            }
            FecInput::NotFec => return result,
        };
        if !data {
            self.stats.parity_shards += 1;
        }
        self.expire(now_ms);

        let seqid = read_u32(datagram, 0);
        let config = self.code.config;
        if config.is_data_seqid(seqid) != data {
            self.stats.pattern_mismatches += 1;
            self.streak = 0;
            return result;
        }
        self.streak = self.streak.saturating_add(1);
        let shard = &datagram[FEC_HEADER_LEN..];
        if shard.len() > self.max_shard as usize {
            self.stats.oversized += 1;
            return result;
        }
        let group = seqid - seqid % config.total_shards() as u32;
        if self.done[..usize::from(self.done_len)].contains(&group) {
            return result;
        }
        let Some(at) = self.insertion_point(seqid) else {
            return result; // duplicate
        };
        let max_shard = self.max_shard as usize;
        let mut buf = self.spare().take_buffer(shard.len(), max_shard);
        buf.extend_from_slice(shard);
        self.queue.insert(
            at,
            Shard {
                seqid,
                ts: now_ms,
                data,
                buf,
            },
        );

        self.kept_bytes += Shard::charge(shard.len());
        let kept = self.try_group(group, at);
        while self.queue.len() > self.limit as usize || self.kept_bytes > self.keep_cap {
            let over_count = self.queue.len() > self.limit as usize;
            let Some(evicted) = self.queue.pop_front() else { break };
            if !over_count {
                self.stats.capped += 1;
            } else if evicted.data {
                self.stats.short_shards += 1;
            }
            self.free(evicted.buf);
        }
        if kept {
            result
        } else {
            FecInput::Inconsistent
        }
    }

    /// The reusable buffers (allocated on first use).
    fn spare(&mut self) -> &mut Spare {
        self.spare.get_or_insert_with(Box::default)
    }

    /// Returns the buffer of a shard leaving the queue to the pool.
    fn free(&mut self, buf: Vec<u8>) {
        self.kept_bytes -= Shard::charge(buf.len());
        self.spare().pool.push_back(buf);
    }

    /// Gives back the memory only an active connection needs: the pool of
    /// free buffers, the reconstruction scratch, and the slack of the kept
    /// shards (which stay, with their group's state). Decoding goes on
    /// unchanged.
    pub fn shed(&mut self) {
        self.spare = None;
        for shard in &mut self.queue {
            shard.buf.shrink_to_fit();
        }
        self.queue.shrink_to_fit();
    }

    /// [`FecDecoder::shed`], and forgets the kept shards of incomplete
    /// groups too: for a connection quiet for long enough that they can no
    /// longer help (its peer has retransmitted whatever was lost meanwhile).
    /// A group that goes on after the pause is rebuilt only from shards
    /// received after it; nothing else changes.
    pub fn shed_all(&mut self) {
        self.queue = VecDeque::new();
        self.kept_bytes = 0;
        self.shed();
    }

    /// Heap bytes held (kept shards, pool, queues; not the shared code).
    pub fn heap_bytes(&self) -> usize {
        self.queue.iter().map(|s| s.buf.capacity()).sum::<usize>()
            + self.queue.capacity() * core::mem::size_of::<Shard>()
            + self.spare.as_ref().map_or(0, |s| s.heap_bytes())
    }

    fn release_recovered(&mut self) {
        if let Some(spare) = &mut self.spare {
            spare.release_recovered();
        }
    }

    fn expire(&mut self, now_ms: u32) {
        while let Some(front) = self.queue.front() {
            if (now_ms.wrapping_sub(front.ts) as i32) <= SHARD_EXPIRY_MS as i32 {
                break;
            }
            let expired = self.queue.pop_front().expect("front exists");
            self.free(expired.buf);
        }
    }

    /// Position keeping the queue ordered by seqid (wrapping comparison, searched
    /// from the back as most shards arrive in order); `None` for a duplicate.
    fn insertion_point(&self, seqid: u32) -> Option<usize> {
        for (i, shard) in self.queue.iter().enumerate().rev() {
            if shard.seqid == seqid {
                return None;
            }
            if (seqid.wrapping_sub(shard.seqid) as i32) > 0 {
                return Some(i + 1);
            }
        }
        Some(0)
    }

    /// Checks the group of the shard just inserted at `at`: drops its parity
    /// shards that are shorter than another shard of the group (truncated), then
    /// frees the group when all its data arrived, or reconstructs when it has
    /// enough shards but misses data. Returns false if the shard just inserted
    /// was dropped as truncated.
    fn try_group(&mut self, group: u32, at: usize) -> bool {
        let n = self.code.config.total_shards();
        let ds = self.code.config.data_shards;
        let lo = at.saturating_sub(n - 1);
        let mut hi = (at + n).min(self.queue.len());
        let in_group = |s: &Shard| s.seqid.wrapping_sub(group) < n as u32;
        let new_seqid = self.queue[at].seqid;
        // Parity is exactly as long as the longest data shard of its group
        // (whose size field was checked): a shorter shard was cut short and
        // would zero-pad wrong bytes into every rebuilt sibling.
        let longest = self
            .queue
            .range(lo..hi)
            .filter(|s| in_group(s))
            .map(|s| s.buf.len())
            .max();
        let mut kept = true;
        let mut i = lo;
        while i < hi {
            let s = &self.queue[i];
            if in_group(s) && !s.data && Some(s.buf.len()) < longest {
                kept &= s.seqid != new_seqid;
                let shard = self.queue.remove(i).expect("index in range");
                self.free(shard.buf);
                self.stats.inconsistent += 1;
                hi -= 1;
            } else {
                i += 1;
            }
        }
        let (mut count, mut data) = (0, 0);
        for shard in self.queue.range(lo..hi).filter(|s| in_group(s)) {
            count += 1;
            data += usize::from(shard.data);
        }
        if data < ds {
            if count < ds {
                return kept;
            }
            if !self.in_sync() {
                self.stats.refused += 1;
                return kept;
            }
            self.reconstruct(group, lo..hi, longest.unwrap_or(0));
        }
        // Complete or reconstructed (successfully or not): forget the group.
        let mut i = lo;
        while i < hi {
            if in_group(&self.queue[i]) {
                let shard = self.queue.remove(i).expect("index in range");
                self.free(shard.buf);
                hi -= 1;
            } else {
                i += 1;
            }
        }
        self.done[usize::from(self.done_next)] = group;
        self.done_next = (self.done_next + 1) % DONE_GROUPS as u8;
        self.done_len = (self.done_len + 1).min(DONE_GROUPS as u8);
        kept
    }

    /// Rebuilds the missing data shards of `group` from the kept shards in
    /// `queue[range]`, all padded to `max_len`, into `self.recovered`.
    /// Allocates nothing once the pool and the scratch are warm.
    fn reconstruct(&mut self, group: u32, range: std::ops::Range<usize>, max_len: usize) {
        let n = self.code.config.total_shards();
        let ds = self.code.config.data_shards;
        let mut present = [false; MAX_TOTAL_SHARDS];
        for shard in self.queue.range(range.clone()) {
            let index = shard.seqid.wrapping_sub(group);
            if index < n as u32 {
                present[index as usize] = true;
            }
        }
        // Any `ds` shards determine the data: use the first ones present.
        // Indices fit a byte: n <= MAX_TOTAL_SHARDS = 256.
        let mut used = [0u8; MAX_TOTAL_SHARDS];
        for (slot, k) in used.iter_mut().zip((0..n).filter(|&k| present[k])) {
            *slot = k as u8;
        }
        let used = &used[..ds];
        let max_shard = self.max_shard as usize;
        let FecDecoder {
            queue,
            code,
            spare,
            stats,
            ..
        } = self;
        let Spare {
            pool,
            recovered,
            scratch,
        } = &mut **spare.get_or_insert_with(Box::default);
        if !code.matrix.invert_rows_into(used, scratch) {
            return; // cannot happen: every `ds` rows of the matrix are independent
        }
        let first = recovered.len();
        for k in (0..ds).filter(|&k| !present[k]) {
            let mut buf = Spare::take_buffer_from(pool, max_len, max_shard);
            buf.resize(max_len, 0);
            recovered.push(Recovered { buf, end: 0, index: k });
        }
        // missing[k] = sum over the used shards c of inverse[k][c] · shard c
        // (a shorter shard is zero-padded: mul_add leaves the rest alone).
        let inverse = &scratch[ds * ds..];
        let unused = Multiplier::new(0);
        for shard in queue.range(range) {
            let index = shard.seqid.wrapping_sub(group) as usize;
            let Some(column) = used.iter().position(|&k| usize::from(k) == index) else {
                continue;
            };
            for missing in recovered[first..].chunks_mut(4) {
                let weights: [Multiplier; 4] = core::array::from_fn(|i| {
                    missing
                        .get(i)
                        .map_or(unused, |r| Multiplier::new(inverse[r.index * ds + column]))
                });
                let count = missing.len();
                let mut rows: [(&Multiplier, &mut [u8]); 4] = core::array::from_fn(|_| (&unused, &mut [][..]));
                for ((row, weight), r) in rows.iter_mut().zip(&weights).zip(missing.iter_mut()) {
                    *row = (weight, &mut r.buf[..]);
                }
                gf::mul_add(&shard.buf, &mut rows[..count]);
            }
        }

        let mut i = first;
        while i < recovered.len() {
            let r = &mut recovered[i];
            let size = usize::from(read_u16(&r.buf, 0));
            if (2..=r.buf.len()).contains(&size) {
                stats.recovered += 1;
                r.end = size;
                i += 1;
            } else {
                stats.errs += 1;
                pool.push_back(recovered.remove(i).buf);
            }
        }
    }
}

#[cfg(test)]
mod tests;
