//! A lossy UDP relay for tests: loss, duplication, reordering and delay on real
//! sockets, because this kernel has no netem.
//!
//! Include it with `#[path = "support/relay.rs"] mod relay;` (integration tests) or
//! `#[path = "../tests/support/relay.rs"] mod relay;` (examples), and its seeded
//! generator beside it (`#[path = "support/sim.rs"] mod sim;`, or
//! `"../tests/support/sim.rs"`). It uses std, and socket2 (a dependency of kcpx)
//! for the socket buffer sizes.
//!
//! ```ignore
//! let relay = Relay::start(server_addr, RelayConfig { loss: 0.1, reorder_window: 4, seed: 7, ..Default::default() })?;
//! // clients send to relay.local_addr() instead of server_addr
//! println!("{:?}", relay.stats());
//! ```
//!
//! Topology: clients send to one front socket on `127.0.0.1:0` (`[::1]:0` when the
//! upstream is IPv6). Each client address gets its own upstream-facing socket on an
//! ephemeral port, as behind a NAT, so the upstream server sees one distinct source
//! address per client; what the upstream sends to that socket goes back to that client
//! from the front socket. Datagrams from anyone but the upstream are ignored there.
//!
//! Each direction ("up": client → upstream, "down": upstream → client) has its own
//! PRNG (derived from `seed`), reorder window and delay queue. A datagram goes through:
//! loss → duplication (the copy follows the same path) → reorder window → delay queue
//! → send. The decisions of one direction depend only on the seed and the order of the
//! datagrams in that direction, so a run with the same traffic repeats exactly.
//!
//! One thread, non-blocking sockets. Each pass reads up to [`BATCH`] datagrams from
//! every socket, releases what is due, and when a pass found nothing it yields a few
//! times, then sleeps 50 µs doubling up to [`MAX_NAP`] (never past the next release
//! time). While traffic flows the loop never sleeps; after a pause the first datagram
//! waits at most [`MAX_NAP`] in the kernel. The sockets' SO_RCVBUF and SO_SNDBUF are
//! [`RelayConfig::sockbuf`] (default 4 MiB, as kcpx's sessions; the kernel caps it at
//! `net.core.rmem_max`). With the kernel's default (`net.core.rmem_default`, 208 KiB
//! here: about 150 datagrams of 1400 bytes) a KCP window of 1024 segments bursting into
//! the relay lost about half its datagrams in the kernel, outside these statistics.
//! [`Relay::kernel_drops`] reads that count from `/proc/net/udp*`, so a test can assert
//! it stayed 0.
//! Measured on loopback here (`tests/relay.rs::throughput`, 1400-byte datagrams, 32
//! in flight through a UDP echo, 2 shared vCPUs at load 6): 30–44 MB/s of payload
//! in each direction at once, in debug and release builds alike.
//!
//! Memory is bounded: at most [`RelayConfig::max_held_bytes`] of payload held per
//! direction (reorder window + delay queue; beyond it a datagram is dropped and counted
//! as `overflow`), the window at most [`MAX_WINDOW`] datagrams, at most
//! [`RelayConfig::max_clients`] clients (datagrams from more are dropped as `overflow`).
//! Dropping the [`Relay`] stops the thread within about [`MAX_NAP`] plus one pass and
//! closes every socket; datagrams still held are discarded.
#![allow(dead_code)]

use std::borrow::Cow;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Datagrams read from one socket per pass before the others get their turn.
pub const BATCH: usize = 64;
/// Longest sleep of an idle relay.
pub const MAX_NAP: Duration = Duration::from_micros(500);
/// Largest reorder window.
pub const MAX_WINDOW: usize = 1024;

/// What the relay does to the datagrams; applied independently in each direction.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Probability of dropping a datagram (0.0–1.0; 1.0 is a partition).
    pub loss: f64,
    /// Probability of sending a datagram twice (the copy goes through the same
    /// reorder window and delay queue).
    pub duplicate: f64,
    /// 0 or 1: no reordering. N ≥ 2: datagrams are held until N are waiting, then a
    /// random one of them is released (capped at [`MAX_WINDOW`]).
    pub reorder_window: usize,
    /// A datagram stays in the reorder window at most this long; then the whole
    /// window is released in random order (so the tail of a burst is not stuck).
    pub reorder_timeout_ms: u32,
    /// Fixed one-way delay added to every datagram.
    pub delay_ms: u32,
    /// Extra uniform random delay in `0..=jitter_ms` (reorders datagrams too).
    pub jitter_ms: u32,
    /// Seed of both directions' PRNGs. The default reads `KCPX_RELAY_SEED`, else
    /// takes the clock; the relay prints it on start.
    pub seed: u64,
    /// Payload bytes held per direction (reorder window + delay queue) at most.
    pub max_held_bytes: usize,
    /// Distinct client addresses at most.
    pub max_clients: usize,
    /// SO_RCVBUF and SO_SNDBUF of every relay socket, in bytes (0: the kernel's
    /// default); [`Relay::set_config`] does not change it.
    pub sockbuf: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        let seed = super::sim::seed_from_env("KCPX_RELAY_SEED");
        RelayConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder_window: 0,
            reorder_timeout_ms: 20,
            delay_ms: 0,
            jitter_ms: 0,
            seed,
            max_held_bytes: 16 << 20,
            max_clients: 1024,
            sockbuf: 4 << 20,
        }
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Datagrams read from the socket (from the upstream only, for "down").
    pub received: u64,
    /// Datagrams sent on (duplicates included).
    pub forwarded: u64,
    /// Payload bytes sent on.
    pub bytes: u64,
    /// Datagrams dropped by `loss`.
    pub dropped: u64,
    /// Datagrams that were sent twice.
    pub duplicated: u64,
    /// Datagrams sent after one that arrived later (overtaken by the reorder window
    /// or jitter).
    pub reordered: u64,
    /// Datagrams dropped because a bound was reached (held bytes, clients).
    pub overflow: u64,
    /// Sends that failed (e.g. the socket buffer was full); the datagram is lost.
    pub send_errors: u64,
}

/// A snapshot of the relay's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Client → upstream.
    pub up: DirStats,
    /// Upstream → client.
    pub down: DirStats,
    /// Distinct client addresses seen.
    pub clients: u64,
}

/// A running relay; dropping it stops the thread and closes the sockets.
pub struct Relay {
    local: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `127.0.0.1:0` (`[::1]:0` when `upstream` is IPv6) and relays every
    /// client to `upstream`. Prints the configuration and seed to stderr.
    pub fn start(upstream: SocketAddr, cfg: RelayConfig) -> io::Result<Relay> {
        let listen = match upstream {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
        };
        Relay::start_at(listen, upstream, cfg)
    }

    /// As [`Relay::start`], listening on `listen` (e.g. a fixed port).
    pub fn start_at(listen: SocketAddr, upstream: SocketAddr, cfg: RelayConfig) -> io::Result<Relay> {
        let front = UdpSocket::bind(listen)?;
        front.set_nonblocking(true)?;
        set_sockbuf(&front, cfg.sockbuf)?;
        let local = front.local_addr()?;
        eprintln!(
            "relay {local} -> {upstream}: loss {} duplicate {} reorder_window {} delay {}+{} ms, seed {}",
            cfg.loss, cfg.duplicate, cfg.reorder_window, cfg.delay_ms, cfg.jitter_ms, cfg.seed
        );
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            applied: AtomicU64::new(0),
            ports: Mutex::new(vec![local.port()]),
            up: Counters::default(),
            down: Counters::default(),
            clients: AtomicU64::new(0),
        });
        let worker = Worker {
            up: Lane::new(true, cfg.seed),
            down: Lane::new(false, cfg.seed),
            env: Env {
                io: Io {
                    front,
                    upstream,
                    clients: Vec::new(),
                    by_addr: HashMap::new(),
                    sockbuf: cfg.sockbuf,
                },
                cfg,
                shared: shared.clone(),
            },
        };
        let thread = std::thread::Builder::new()
            .name("kcpx-relay".into())
            .spawn(move || worker.run())?;
        Ok(Relay {
            local,
            upstream,
            shared,
            thread: Some(thread),
        })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address everything is relayed to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The counters so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            up: self.shared.up.snapshot(),
            down: self.shared.down.snapshot(),
            clients: self.shared.clients.load(Ordering::Relaxed),
        }
    }

    /// Changes loss, duplication, reordering, delay and bounds (e.g. `loss: 1.0`
    /// for a partition, then back); returns once the relay's thread uses them, so
    /// that the next datagram sent meets the new ones. The PRNGs go on; `seed` is
    /// ignored. Datagrams already held keep their release times.
    pub fn set_config(&self, cfg: RelayConfig) {
        eprintln!(
            "relay {}: now loss {} duplicate {} reorder_window {} delay {}+{} ms",
            self.local, cfg.loss, cfg.duplicate, cfg.reorder_window, cfg.delay_ms, cfg.jitter_ms
        );
        self.request(|p| p.config = Some(cfg));
    }

    /// Gives every client a new upstream-facing socket (a new source port), as a NAT
    /// rebinding does; replies the upstream sends to the old ports are lost. Returns
    /// once done.
    pub fn rebind(&self) {
        self.request(|p| p.rebind = true);
    }

    /// Hands a change to the relay's thread and waits (30 s at most: a deadline
    /// that catches a hang) until it has applied it.
    fn request(&self, change: impl FnOnce(&mut Pending)) {
        let generation = {
            let mut p = self.shared.pending.lock().unwrap();
            change(&mut p);
            p.generation += 1;
            p.generation
        };
        self.shared.dirty.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shared.applied.load(Ordering::Acquire) < generation {
            assert!(Instant::now() < deadline, "the relay's thread took no change in 30 s");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Datagrams the kernel dropped at the relay's sockets (receive buffer full),
    /// summed from `/proc/net/udp` or `/proc/net/udp6` (Linux only).
    pub fn kernel_drops(&self) -> io::Result<u64> {
        let file = if self.local.is_ipv4() {
            "/proc/net/udp"
        } else {
            "/proc/net/udp6"
        };
        let table = std::fs::read_to_string(file)?;
        let ports = self.shared.ports.lock().unwrap().clone();
        let mut drops = 0;
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let port = cols
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if port.is_some_and(|p| ports.contains(&p)) {
                drops += cols.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        Ok(drops)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Default)]
struct Pending {
    config: Option<RelayConfig>,
    rebind: bool,
    /// Changes requested so far.
    generation: u64,
}

struct Shared {
    stop: AtomicBool,
    dirty: AtomicBool,
    pending: Mutex<Pending>,
    /// The last `Pending::generation` the relay's thread applied.
    applied: AtomicU64,
    /// Local ports of all the relay's sockets, for `kernel_drops`.
    ports: Mutex<Vec<u16>>,
    up: Counters,
    down: Counters,
    clients: AtomicU64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    overflow: AtomicU64,
    send_errors: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> DirStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirStats {
            received: g(&self.received),
            forwarded: g(&self.forwarded),
            bytes: g(&self.bytes),
            dropped: g(&self.dropped),
            duplicated: g(&self.duplicated),
            reordered: g(&self.reordered),
            overflow: g(&self.overflow),
            send_errors: g(&self.send_errors),
        }
    }
}

// The tests' one seeded generator: a test that includes this file includes
// tests/support/sim.rs beside it (`#[path = "support/sim.rs"] mod sim;`).
use super::sim::Rng;

struct Client {
    addr: SocketAddr,
    sock: UdpSocket,
}

struct Io {
    front: UdpSocket,
    upstream: SocketAddr,
    clients: Vec<Client>,
    by_addr: HashMap<SocketAddr, usize>,
    /// [`RelayConfig::sockbuf`] as the relay started.
    sockbuf: usize,
}

impl Io {
    fn send(&self, up: bool, client: usize, data: &[u8]) -> io::Result<usize> {
        let c = &self.clients[client];
        if up {
            c.sock.send_to(data, self.upstream)
        } else {
            self.front.send_to(data, c.addr)
        }
    }

    /// Replies must come from the upstream (any address of it when it was given as
    /// the unspecified address).
    fn is_upstream(&self, from: SocketAddr) -> bool {
        from == self.upstream || (self.upstream.ip().is_unspecified() && from.port() == self.upstream.port())
    }

    fn upstream_socket(&self) -> io::Result<UdpSocket> {
        let any: IpAddr = match self.upstream {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let sock = UdpSocket::bind((any, 0))?;
        sock.set_nonblocking(true)?;
        set_sockbuf(&sock, self.sockbuf)?;
        Ok(sock)
    }
}

/// Sets a socket's SO_RCVBUF and SO_SNDBUF (0: leaves the kernel's default).
fn set_sockbuf(sock: &UdpSocket, bytes: usize) -> io::Result<()> {
    if bytes > 0 {
        let s = socket2::SockRef::from(sock);
        s.set_recv_buffer_size(bytes)?;
        s.set_send_buffer_size(bytes)?;
    }
    Ok(())
}

struct Held {
    seq: u64,
    since: Instant,
    client: usize,
    data: Vec<u8>,
}

struct Queued {
    due: Instant,
    tie: u64,
    seq: u64,
    client: usize,
    data: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.tie) == (o.due, o.tie)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.due, self.tie).cmp(&(o.due, o.tie))
    }
}

/// What a lane needs from the worker during one pass.
struct Ctx<'a> {
    io: &'a Io,
    c: &'a Counters,
    cfg: &'a RelayConfig,
    now: Instant,
}

/// One direction's impairment state.
struct Lane {
    up: bool,
    rng: Rng,
    window: Vec<Held>,
    queue: BinaryHeap<Reverse<Queued>>,
    held_bytes: usize,
    /// Arrival number of the next datagram.
    next_seq: u64,
    /// Highest arrival number sent so far (for `reordered`).
    max_sent: Option<u64>,
    /// Insertion counter: equal release times leave in insertion order.
    tie: u64,
}

impl Lane {
    fn new(up: bool, seed: u64) -> Lane {
        let mut mix = Rng::new(seed ^ if up { 0x7570_7570 } else { 0x646f_776e });
        Lane {
            up,
            rng: Rng::new(mix.next_u64()),
            window: Vec::new(),
            queue: BinaryHeap::new(),
            held_bytes: 0,
            next_seq: 0,
            max_sent: None,
            tie: 0,
        }
    }

    fn arrive(&mut self, x: &Ctx, client: usize, data: &[u8]) {
        bump(&x.c.received, 1);
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.rng.chance(x.cfg.loss) {
            bump(&x.c.dropped, 1);
            return;
        }
        if self.rng.chance(x.cfg.duplicate) {
            bump(&x.c.duplicated, 1);
            self.hold(x, seq, client, data);
        }
        self.hold(x, seq, client, data);
    }

    fn reserve(&mut self, x: &Ctx, len: usize) -> bool {
        if self.held_bytes + len > x.cfg.max_held_bytes {
            bump(&x.c.overflow, 1);
            return false;
        }
        self.held_bytes += len;
        true
    }

    fn hold(&mut self, x: &Ctx, seq: u64, client: usize, data: &[u8]) {
        let window = x.cfg.reorder_window.min(MAX_WINDOW);
        if window < 2 {
            return self.schedule(x, seq, client, Cow::Borrowed(data));
        }
        if !self.reserve(x, data.len()) {
            return;
        }
        self.window.push(Held {
            seq,
            since: x.now,
            client,
            data: data.to_vec(),
        });
        while self.window.len() >= window {
            self.release_one(x);
        }
    }

    fn release_one(&mut self, x: &Ctx) {
        let h = self.window.swap_remove(self.rng.index(self.window.len()));
        self.held_bytes -= h.data.len();
        self.schedule(x, h.seq, h.client, Cow::Owned(h.data));
    }

    fn schedule(&mut self, x: &Ctx, seq: u64, client: usize, data: Cow<'_, [u8]>) {
        let mut ms = u64::from(x.cfg.delay_ms);
        if x.cfg.jitter_ms > 0 {
            ms += self.rng.below(x.cfg.jitter_ms as u64 + 1);
        }
        if ms == 0 && self.queue.is_empty() {
            return self.send(x, seq, client, &data);
        }
        if !self.reserve(x, data.len()) {
            return;
        }
        self.tie += 1;
        self.queue.push(Reverse(Queued {
            due: x.now + Duration::from_millis(ms),
            tie: self.tie,
            seq,
            client,
            data: data.into_owned(),
        }));
    }

    fn send(&mut self, x: &Ctx, seq: u64, client: usize, data: &[u8]) {
        match self.max_sent {
            Some(m) if seq < m => bump(&x.c.reordered, 1),
            _ => self.max_sent = Some(seq),
        }
        match x.io.send(self.up, client, data) {
            Ok(n) => {
                bump(&x.c.forwarded, 1);
                bump(&x.c.bytes, n as u64);
            }
            Err(_) => bump(&x.c.send_errors, 1),
        }
    }

    /// Releases what is due; returns the next time something will be.
    fn poll(&mut self, x: &Ctx) -> Option<Instant> {
        let (now, hold) = (x.now, Duration::from_millis(u64::from(x.cfg.reorder_timeout_ms)));
        let mut next = None;
        if let Some(oldest) = self.window.iter().map(|h| h.since).min() {
            if now.duration_since(oldest) >= hold {
                while !self.window.is_empty() {
                    self.release_one(x);
                }
            } else {
                next = Some(oldest + hold);
            }
        }
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.due > now {
                next = Some(next.map_or(top.due, |n: Instant| n.min(top.due)));
                break;
            }
            let Reverse(q) = self.queue.pop().unwrap();
            self.held_bytes -= q.data.len();
            self.send(x, q.seq, q.client, &q.data);
        }
        next
    }
}

struct Worker {
    up: Lane,
    down: Lane,
    env: Env,
}

/// The worker's state that the lanes read.
struct Env {
    io: Io,
    cfg: RelayConfig,
    shared: Arc<Shared>,
}

impl Env {
    fn ctx(&self, up: bool, now: Instant) -> Ctx<'_> {
        Ctx {
            io: &self.io,
            c: if up { &self.shared.up } else { &self.shared.down },
            cfg: &self.cfg,
            now,
        }
    }
}

impl Worker {
    fn run(mut self) {
        let mut buf = vec![0u8; 65536];
        let mut idle = 0u32;
        while !self.env.shared.stop.load(Ordering::Acquire) {
            if self.env.shared.dirty.swap(false, Ordering::Acquire) {
                self.apply();
            }
            let mut work = false;
            let now = Instant::now();
            for _ in 0..BATCH {
                match self.env.io.front.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        work = true;
                        match self.client(from) {
                            Some(i) => self.up.arrive(&self.env.ctx(true, now), i, &buf[..n]),
                            None => bump(&self.env.shared.up.overflow, 1),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {} // e.g. ICMP port unreachable from a client that left
                }
            }
            for i in 0..self.env.io.clients.len() {
                for _ in 0..BATCH {
                    match self.env.io.clients[i].sock.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            work = true;
                            if self.env.io.is_upstream(from) {
                                self.down.arrive(&self.env.ctx(false, now), i, &buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {}
                    }
                }
            }
            let now = Instant::now();
            let a = self.up.poll(&self.env.ctx(true, now));
            let b = self.down.poll(&self.env.ctx(false, now));
            if work {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle <= 3 {
                std::thread::yield_now();
                continue;
            }
            let mut nap = Duration::from_micros(50 << (idle - 4).min(4)).min(MAX_NAP);
            if let Some(due) = [a, b].into_iter().flatten().min() {
                nap = nap.min(due.saturating_duration_since(now));
            }
            if !nap.is_zero() {
                std::thread::sleep(nap);
            }
        }
    }

    /// The index of the client at `addr`, creating its upstream socket if new.
    fn client(&mut self, addr: SocketAddr) -> Option<usize> {
        if let Some(&i) = self.env.io.by_addr.get(&addr) {
            return Some(i);
        }
        if self.env.io.clients.len() >= self.env.cfg.max_clients {
            return None;
        }
        let sock = self.env.io.upstream_socket().ok()?;
        if let Ok(a) = sock.local_addr() {
            self.env.shared.ports.lock().unwrap().push(a.port());
        }
        self.env.io.clients.push(Client { addr, sock });
        self.env.io.by_addr.insert(addr, self.env.io.clients.len() - 1);
        bump(&self.env.shared.clients, 1);
        Some(self.env.io.clients.len() - 1)
    }

    fn apply(&mut self) {
        let (config, rebind, generation) = {
            let mut p = self.env.shared.pending.lock().unwrap();
            (p.config.take(), std::mem::take(&mut p.rebind), p.generation)
        };
        if let Some(cfg) = config {
            self.env.cfg = cfg;
        }
        if rebind {
            for i in 0..self.env.io.clients.len() {
                if let Ok(sock) = self.env.io.upstream_socket() {
                    let mut ports = self.env.shared.ports.lock().unwrap();
                    if let Ok(old) = self.env.io.clients[i].sock.local_addr() {
                        ports.retain(|&p| p != old.port());
                    }
                    if let Ok(a) = sock.local_addr() {
                        ports.push(a.port());
                    }
                    self.env.io.clients[i].sock = sock;
                }
            }
        }
        self.env.shared.applied.store(generation, Ordering::Release);
    }
}
