//! Test support shared by the Rust tests: one seeded PRNG and one simulated
//! network on a virtual clock (latency, jitter, loss, duplication,
//! reordering), in the spirit of quinn-proto's `Pair` and quiche's `Pipe`.
//! Integration tests include it with `#[path = "support/sim.rs"] mod sim;`,
//! unit tests inside `src/` with a relative `#[path]`. Std only.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

/// A seed for a randomised test: the decimal value of the environment
/// variable `var`, else one from the clock and the process id. It does not
/// print it: the caller does, with `var`, so that a failure can be repeated
/// (`SimNet` and the relay print theirs).
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
    })
}

/// xorshift64*: small, fast, reproducible; the suite's one generator. It
/// prints nothing (it is made per message in places): whoever picks the seed
/// prints or names it.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `0..n` (n > 0), as an index.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// True with probability `p` (0.0..=1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// How the simulated network treats each datagram (both directions).
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    /// One-way delay, ms.
    pub delay_ms: u32,
    /// Extra random delay 0..=jitter_ms (reorders datagrams when larger
    /// than their spacing).
    pub jitter_ms: u32,
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay_ms: 5,
            jitter_ms: 0,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// A datagram in flight.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Datagrams in flight on a virtual clock (ms, u32 like kcpx's).
pub struct SimNet {
    pub rng: Rng,
    pub link: LinkConfig,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    flights: std::collections::HashMap<u64, Datagram>,
    seq: u64,
    /// Datagrams sent, dropped, duplicated.
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

impl SimNet {
    pub fn new(seed: u64, link: LinkConfig) -> SimNet {
        eprintln!("SimNet seed {seed} link {link:?}");
        SimNet {
            rng: Rng::new(seed),
            link,
            queue: BinaryHeap::new(),
            flights: Default::default(),
            seq: 0,
            sent: 0,
            dropped: 0,
            duplicated: 0,
        }
    }

    /// Sends a datagram at time `now`.
    pub fn send(&mut self, now: u64, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.sent += 1;
        if self.rng.chance(self.link.loss) {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(self.link.duplicate) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = if self.link.jitter_ms > 0 {
                self.rng.below(self.link.jitter_ms as u64 + 1)
            } else {
                0
            };
            let at = now + self.link.delay_ms as u64 + jitter;
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq)));
            self.flights.insert(
                self.seq,
                Datagram {
                    from,
                    to,
                    bytes: bytes.to_vec(),
                },
            );
        }
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    /// The datagrams arriving at or before `now`, in arrival order.
    pub fn arrivals(&mut self, now: u64) -> Vec<Datagram> {
        let mut out = Vec::new();
        while let Some(&Reverse((t, seq))) = self.queue.peek() {
            if t > now {
                break;
            }
            self.queue.pop();
            out.extend(self.flights.remove(&seq));
        }
        out
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// The memory attack of issue 17 item 4: datagram number `i` of a peer that
/// sends full KCP data segments of conversation `conv` with sn `first + i`,
/// each carrying `payload` bytes. With `first` 2 (after an sn 0 that opens
/// the session: `first` 0, `i` 0), sn 1 (the one that would let the rest be
/// delivered) never comes; with 0 everything is in order,
/// for an application that does not read. With `fec` (10/3), each in a
/// kcp-go FEC data shard, placed so that every group lacks its first data
/// shard and no parity comes (each group stays incomplete and its shards
/// are kept). No cipher. Std only, independent of the crate under test.
pub fn withheld_sn0_datagram(conv: u32, first: u32, i: u32, payload: usize, fec: bool) -> Vec<u8> {
    let sn = first + i;
    let mut d = Vec::with_capacity(payload + 32);
    if fec {
        let (group, index) = (i / 9, i % 9 + 1);
        d.extend_from_slice(&(group * 13 + index).to_le_bytes());
        d.extend_from_slice(&0x00f1u16.to_le_bytes());
        d.extend_from_slice(&((24 + payload + 2) as u16).to_le_bytes());
    }
    d.extend_from_slice(&conv.to_le_bytes());
    d.extend_from_slice(&[81, 0]); // PUSH, frg 0
    d.extend_from_slice(&128u16.to_le_bytes()); // wnd
    d.extend_from_slice(&0u32.to_le_bytes()); // ts
    d.extend_from_slice(&sn.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes()); // una
    d.extend_from_slice(&(payload as u32).to_le_bytes());
    d.extend(std::iter::repeat(0xa5).take(payload));
    d
}
