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
//!     let parity = encoder.encode(&mut datagram, 0)?; // stamps the FEC header (0: the clock)
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
/// FEC type that newer kcp-go uses for unreliable out-of-band messages
/// ([`FecInput::Oob`]); never KCP, never FEC-protected.
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

mod decoder;
mod encoder;
mod wire;
pub use decoder::{FecDecoder, FecStats};
pub use encoder::{FecEncoder, ParityDatagram, PARITY_SKIP_GAP_MS};
pub use wire::{classify, frame_oob, FecInput, OOB_CONV_LEN, OOB_SEQID};

#[cfg(test)]
mod tests;
