//! The FEC encoder: parity accumulated as data datagrams pass.

use super::wire::write_header;
use super::*;

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
/// ends an incomplete group and frees them all while it stays quiet.
pub struct FecEncoder {
    code: Arc<FecCode>,
    pub(super) header_offset: usize,
    max_datagram: usize,
    /// Empty before the first datagram and after [`FecEncoder::compact`].
    parity: Vec<ParityDatagram>,
    /// Bytes of the parity buffers that may be non-zero (written or sealed).
    dirty: usize,
    pub(super) next: u32,
    shard_count: usize,
    max_size: usize,
    /// When the last data datagram was encoded (the caller's clock, ms).
    last_data_ms: Option<u32>,
}

/// A group whose last data datagram came this long (ms) after the one
/// before gets no parity (kcp-go master's `maxFECEncodeLatency`): the
/// traffic is sparse, KCP has retransmitted what parity could rebuild, and
/// the parity datagrams would only cost bandwidth. Sequence ids still
/// advance past the parity, as if it had been sent and lost.
pub const PARITY_SKIP_GAP_MS: u32 = 500;

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
            dirty: 0,
            next: 0,
            shard_count: 0,
            max_size: 0,
            last_data_ms: None,
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

    /// Ends the incomplete group, if any, and frees the parity buffers
    /// altogether: for a connection that stays quiet. The group's parity is
    /// never sent; the seqid jumps to the next group's start, as if the
    /// group's remaining data and parity datagrams had been lost (kcp-go
    /// receivers keep what they got of it, and newer kcp-go senders skip a
    /// group's parity the same way after a pause; see
    /// docs/kcp-go-wire.md). The next datagram starts a new group and
    /// allocates the buffers again. Returns whether a group was ended.
    pub fn compact(&mut self) -> bool {
        let ended = self.shard_count > 0;
        if ended {
            let n = self.code.config.total_shards() as u32;
            let group_start = self.next.wrapping_sub(self.shard_count as u32);
            self.next = group_start.wrapping_add(n) % self.code.config.seqid_wrap();
            self.shard_count = 0;
            self.max_size = 0;
        }
        if self.parity.capacity() != 0 {
            self.parity = Vec::new();
        }
        self.dirty = 0;
        ended
    }

    /// The parity buffers, before the first datagram or after
    /// [`FecEncoder::compact`].
    fn allocate(&mut self) {
        self.parity = (0..self.code.config.parity_shards)
            .map(|_| ParityDatagram {
                buf: Vec::new(),
                len: 0,
            })
            .collect();
        self.dirty = 0;
    }

    /// Heap bytes held by the parity buffers.
    pub fn heap_bytes(&self) -> usize {
        self.parity.iter().map(|p| p.buf.capacity()).sum::<usize>()
            + self.parity.capacity() * core::mem::size_of::<ParityDatagram>()
    }

    /// Stamps a data datagram and folds it into the group's parity.
    ///
    /// `datagram[..header_offset]` is left alone (crypto header space),
    /// `datagram[header_offset..header_offset + 8]` receives the FEC header and
    /// size field, the KCP bytes follow. When this datagram completes a group, the
    /// group's parity datagrams are returned (otherwise an empty slice): send them
    /// right after this one, each with its crypto header space at the front still
    /// to be sealed. They stay valid, and may be modified in place (sealed), until
    /// the next call. `now_ms` is the caller's clock (ms, wrapping): a
    /// group completed [`PARITY_SKIP_GAP_MS`] or more after the data
    /// datagram before gets no parity (an empty slice; its seqids are
    /// skipped).
    pub fn encode(&mut self, datagram: &mut [u8], now_ms: u32) -> Result<&mut [ParityDatagram], FecError> {
        let shard_start = self.header_offset + FEC_HEADER_LEN;
        if datagram.len() < self.header_offset + FEC_DATA_OVERHEAD {
            return Err(FecError::TooShort);
        }
        if datagram.len() > self.max_datagram || datagram.len() - shard_start > usize::from(u16::MAX) {
            return Err(FecError::TooLong);
        }
        if self.parity.is_empty() {
            self.allocate();
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
        let gap = self.last_data_ms.map_or(u32::MAX, |t| now_ms.wrapping_sub(t));
        self.last_data_ms = Some(now_ms);
        if self.shard_count < ds {
            return Ok(&mut []);
        }

        let wrap = self.code.config.seqid_wrap();
        if gap >= PARITY_SKIP_GAP_MS && gap <= i32::MAX as u32 {
            // Sparse traffic: the parity would rebuild nothing KCP has not
            // sent again already. A clock that went back skips nothing.
            self.next = self.next.wrapping_add(ps as u32) % wrap;
            self.shard_count = 0;
            self.max_size = 0;
            return Ok(&mut []);
        }
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
