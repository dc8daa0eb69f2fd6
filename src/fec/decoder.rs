//! The FEC decoder: shards kept per group, lost data shards rebuilt from parity.

use super::wire::{read_u16, read_u32};
use super::*;

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
    /// [`TYPE_OOB`] datagrams passed over: they are the connection's
    /// unreliable messages, nothing for FEC.
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
pub(super) struct Shard {
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
pub(super) struct Recovered {
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
    pub(super) queue: VecDeque<Shard>,
    /// What the kept shards in `queue` count for ([`Shard::charge`]), kept
    /// as they come and go.
    kept_bytes: usize,
    /// Most `kept_bytes` (see [`FecDecoder::set_keep_cap`]).
    keep_cap: usize,
    /// The buffers of an active decoder (none while it is shed).
    pub(super) spare: Option<Box<Spare>>,
    /// Groups completed lately (the first `done_len` entries are valid).
    done: [u32; DONE_GROUPS],
    done_len: u8,
    done_next: u8,
    stats: FecStats,
}

/// A decoder's reusable buffers, allocated when it first needs one.
#[derive(Debug, Default)]
pub(super) struct Spare {
    /// Free buffers, used in turn (first in, first out): each meets the
    /// traffic's longest shards soon, and grows once.
    pub(super) pool: VecDeque<Vec<u8>>,
    pub(super) recovered: Vec<Recovered>,
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
        self.decode_classified(datagram, classify(datagram), now_ms)
    }

    /// [`FecDecoder::decode`] of a datagram the caller has classified
    /// already: `result` must be [`classify`]`(datagram)` (a connection
    /// reads each datagram's headers once, to route it first).
    pub fn decode_classified<'a>(&mut self, datagram: &'a [u8], result: FecInput<'a>, now_ms: u32) -> FecInput<'a> {
        debug_assert_eq!(result, classify(datagram));
        self.release_recovered();
        let data = match result {
            FecInput::Data(_) => true,
            FecInput::Parity => false,
            FecInput::Oob(_) => {
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
