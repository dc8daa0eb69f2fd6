//! Hostile traffic on real loopback sockets (issue 17): forged and replayed
//! datagrams from spoofed source addresses (`tests/support/spoof.rs`, a raw
//! socket: root or CAP_NET_RAW, else the tests skip loudly, or fail where
//! `CI` is set unless `KCPX_SKIP_SPOOF=1`), captured through a recording
//! relay (`tests/support/tap.rs`).
//!
//! - item 1: a dialed session survives a forged sn-0 datagram of another conv
//!   from its server's address (no cipher), and a replayed datagram the server
//!   sent to another client (AES-128);
//! - item 2: a listener does not let a forged sn-0 datagram (no cipher) or a
//!   replay of client A's first datagram from B's address (AES-128) replace
//!   B's active session, and its application never reads the attacker's bytes;
//! - item 3: during a flood of one datagram from each of many spoofed
//!   addresses (no cipher; AES-128: one captured datagram replayed from each),
//!   ≥ 99% of legitimate connection attempts are served and established active
//!   sessions are untouched;
//! - the soak (`soak_*`): one listener (FEC 10/3 + AES-128) in a child process
//!   serving kcpx dialers and kcp-go 5.6.1 clients byte-exact while every
//!   class of hostile traffic runs, its RSS and `curr_estab` sampled every
//!   100 ms and bounded.
//!
//! Seeds: `KCPX_HOSTILE_SEED` (else the clock), printed by every test.
#![cfg(target_os = "linux")]

#[path = "support/echo.rs"]
mod echo;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/skip.rs"]
mod skip;
#[path = "support/spoof.rs"]
mod spoof;
#[path = "support/tap.rs"]
mod tap;

use kcpx::error::Error;
use kcpx::session::{CloseReason, Config, Dialer, Event, Listener, ListenerStats, SessionId};
use sim::Rng;
use spoof::{hostile_addr, kcp_segment, Spoofer, CMD_PUSH};
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const KEY: [u8; 16] = [0x11; 16];
/// What an attacker's forged datagrams carry; the application must never read it.
const MARKER: &[u8] = b"\xa5ATTACKER-BYTES-0123456789\x5a";

fn seed() -> u64 {
    let seed = std::env::var("KCPX_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64
        });
    eprintln!("seed {seed} (KCPX_HOSTILE_SEED={seed} repeats it)");
    seed
}

/// 127.0.0.1 and the port of a socket bound to the wildcard address.
fn loopback(a: SocketAddr) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], a.port()))
}

// ----- the server side: an echo that records what the application sees -----

/// What the echoing application saw.
#[derive(Debug, Default)]
struct Seen {
    /// (peer address, conv) of every accepted session.
    accepts: Vec<(SocketAddr, u32)>,
    /// (peer address, conv, reason) of every closed session.
    closes: Vec<(SocketAddr, u32, CloseReason)>,
    /// Sessions whose bytes contained [`MARKER`].
    marker_reads: Vec<(SocketAddr, u32)>,
    stats: ListenerStats,
}

impl Seen {
    fn closed(&self, addr: SocketAddr) -> Vec<(u32, CloseReason)> {
        self.closes.iter().filter(|c| c.0 == addr).map(|c| (c.1, c.2)).collect()
    }
}

struct Sess {
    addr: SocketAddr,
    conv: u32,
    /// Received, not yet accepted by send.
    pending: Vec<u8>,
    /// The last bytes read, to find a marker split between reads.
    tail: Vec<u8>,
    marked: bool,
}

/// Echoes every session of `listener` until `stop`, driven by its events;
/// `tick` runs every 100 ms (the soak samples there).
fn serve(mut listener: Listener, stop: &AtomicBool, mut tick: impl FnMut(&Listener, &Seen)) -> Seen {
    let mut seen = Seen::default();
    let mut sessions: HashMap<SessionId, Sess> = HashMap::new();
    let mut busy: HashSet<SessionId> = HashSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        listener.wait(5).expect("listener wait");
        while let Some(ev) = listener.poll_event() {
            match ev {
                Event::Accept(id) => {
                    let ep = listener.endpoint();
                    let (addr, conv) = (ep.remote_addr(id).unwrap(), ep.conv(id).unwrap());
                    seen.accepts.push((addr, conv));
                    sessions.insert(
                        id,
                        Sess {
                            addr,
                            conv,
                            pending: Vec::new(),
                            tail: Vec::new(),
                            marked: false,
                        },
                    );
                    busy.insert(id);
                }
                Event::Readable(id) | Event::Writable(id) => {
                    busy.insert(id);
                }
                Event::Closed(id, reason) => {
                    if let Some(s) = sessions.remove(&id) {
                        seen.closes.push((s.addr, s.conv, reason));
                    }
                    busy.remove(&id);
                    let _ = listener.close_session(id);
                }
            }
        }
        busy.retain(|id| {
            let Some(s) = sessions.get_mut(id) else { return false };
            pump(&mut listener, *id, s, &mut buf, &mut seen)
        });
        if Instant::now() >= next_tick {
            next_tick += Duration::from_millis(100);
            seen.stats = listener.stats();
            tick(&listener, &seen);
        }
    }
    seen.stats = listener.stats();
    seen
}

/// Echoes what session `id` has; true while it has more to do.
fn pump(l: &mut Listener, id: SessionId, s: &mut Sess, buf: &mut [u8], seen: &mut Seen) -> bool {
    loop {
        if !s.pending.is_empty() {
            match l.send(id, &s.pending) {
                Ok(n) => drop(s.pending.drain(..n)),
                Err(Error::Again) => return true,
                Err(_) => return false,
            }
            if !s.pending.is_empty() {
                return true;
            }
        }
        match l.recv(id, buf) {
            Ok(n) => {
                s.tail.extend_from_slice(&buf[..n]);
                if !s.marked && s.tail.windows(MARKER.len()).any(|w| w == MARKER) {
                    s.marked = true;
                    seen.marker_reads.push((s.addr, s.conv));
                }
                let keep = s.tail.len().min(MARKER.len());
                s.tail.drain(..s.tail.len() - keep);
                s.pending.extend_from_slice(&buf[..n]);
            }
            Err(_) => return false,
        }
    }
}

/// A listener echoing on its own thread; `stop` returns what it saw.
struct Server {
    addr: SocketAddr,
    /// The listener's counters, refreshed every 100 ms.
    stats: Arc<Mutex<ListenerStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Seen>>,
}

impl Server {
    fn start(cfg: &Config) -> Server {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), cfg).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let stats = Arc::new(Mutex::new(ListenerStats::default()));
        let shared = stats.clone();
        let thread = thread::spawn(move || serve(listener, &flag, |l, _| *shared.lock().unwrap() = l.stats()));
        Server {
            addr,
            stats,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the listener thread panicked")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ----- the client side -----

/// Sends `data` through `d` and reads the echo back byte for byte within
/// `limit`; an error says what went wrong, with the dialer's counters.
fn echo(d: &mut Dialer, data: &[u8], limit: Duration) -> Result<(), String> {
    let (mut sent, mut got) = (0usize, Vec::with_capacity(data.len()));
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let why = |d: &Dialer, what: String| {
        format!(
            "{what}; close reason {:?}; session {:?}; dialer {:?}",
            d.endpoint().close_reason(d.id()),
            d.endpoint().session_stats(d.id()).ok(),
            d.stats().endpoint
        )
    };
    while got.len() < data.len() {
        if start.elapsed() > limit {
            return Err(why(
                d,
                format!("{} of {} bytes echoed in {limit:?}", got.len(), data.len()),
            ));
        }
        while sent < data.len() {
            match d.send(&data[sent..(sent + 16384).min(data.len())]) {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => return Err(why(d, format!("send: {e}"))),
            }
        }
        d.wait(5).map_err(|e| format!("wait: {e}"))?;
        while let Some(ev) = d.poll_event() {
            if let Event::Closed(_, reason) = ev {
                return Err(why(
                    d,
                    format!("dialed session CLOSED ({reason:?}) after {} bytes", got.len()),
                ));
            }
        }
        loop {
            match d.recv(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Error::Again) => break,
                Err(e) => return Err(why(d, format!("recv: {e} after {} bytes", got.len()))),
            }
        }
        if !data.starts_with(&got) {
            return Err(why(d, format!("echo differs at byte {}", first_diff(data, &got))));
        }
    }
    Ok(())
}

fn first_diff(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Drives `d` for `ms` (its timers, ACKs, whatever arrives).
fn idle(d: &mut Dialer, ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        let _ = d.wait(5);
        while d.poll_event().is_some() {}
    }
}

fn client_config(crypt: bool) -> Config {
    echo::config(false, crypt)
}

/// A transfer that must go through, with its seed for the message.
fn must_echo(d: &mut Dialer, rng: &mut Rng, len: usize, what: &str) {
    let data = rng.bytes(len);
    if let Err(e) = echo(d, &data, Duration::from_secs(20)) {
        panic!("{what}: {e}");
    }
}

// ----- the spoofer works on this machine -----

#[test]
fn spoofed_datagrams_reach_a_loopback_socket() {
    let Some(mut spoofer) = Spoofer::open("spoofed_datagrams_reach_a_loopback_socket") else {
        return;
    };
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let to = sock.local_addr().unwrap();
    let mut buf = [0u8; 2048];
    for (i, len) in [(0u32, 0usize), (1, 24), (77, 1400), (3_999_999, 1472)] {
        let from = hostile_addr(i);
        let payload: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
        spoofer.send(from, to, &payload).unwrap();
        let (n, got_from) = sock.recv_from(&mut buf).expect("the spoofed datagram never arrived");
        assert_eq!(got_from, from, "the kernel reported another source");
        assert_eq!(&buf[..n], &payload[..]);
    }
    // A forged source equal to a real socket's address: the receiver cannot tell.
    let real = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    spoofer.send(real, to, b"same as a real peer").unwrap();
    let (n, got_from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!((got_from, &buf[..n]), (real, &b"same as a real peer"[..]));
}

// ----- item 1: a dialed session is not closed by one datagram -----

/// No cipher: 24 forged bytes (another conv, PUSH, sn 0) from the server's
/// address.
#[test]
fn dialer_survives_forged_sn0_from_its_server() {
    let Some(mut spoofer) = Spoofer::open("dialer_survives_forged_sn0_from_its_server") else {
        return;
    };
    let mut rng = Rng::new(seed());
    let cfg = client_config(false);
    let server = Server::start(&cfg);
    let mut d = Dialer::connect(server.addr, &cfg).unwrap();
    must_echo(&mut d, &mut rng, 20_000, "before the forgery");
    let me = loopback(d.local_addr().unwrap());
    let conv = d.endpoint().conv(d.id()).unwrap();
    let forged = kcp_segment(conv ^ 0x5a5a_5a5a, CMD_PUSH, 0, 0, &[]);
    assert_eq!(forged.len(), 24);
    spoofer.send(server.addr, me, &forged).unwrap();
    idle(&mut d, 50);
    let before = d.stats().endpoint;
    must_echo(
        &mut d,
        &mut rng,
        50_000,
        "after 24 forged bytes from the server's address",
    );
    assert_eq!(d.endpoint().close_reason(d.id()).unwrap(), None);
    eprintln!("dialer counters after the forgery: {before:?}");
    drop(d);
    let seen = server.stop();
    assert_eq!(seen.accepts.len(), 1, "{seen:?}");
}

/// AES-128: datagrams the server sent to another client, replayed from the
/// server's address (no key needed).
#[test]
fn dialer_survives_replay_of_another_clients_datagrams() {
    let Some(mut spoofer) = Spoofer::open("dialer_survives_replay_of_another_clients_datagrams") else {
        return;
    };
    let mut rng = Rng::new(seed());
    let cfg = client_config(true);
    let server = Server::start(&cfg);
    let tap = tap::Tap::start(server.addr, 16).unwrap();
    let mut a = Dialer::connect(tap.local_addr(), &cfg).unwrap();
    must_echo(&mut a, &mut rng, 5_000, "client A through the tap");
    let replies = tap.down();
    assert!(!replies.is_empty(), "nothing captured from the server");
    let mut b = Dialer::connect(server.addr, &cfg).unwrap();
    must_echo(&mut b, &mut rng, 20_000, "client B before the replay");
    let me = loopback(b.local_addr().unwrap());
    for c in &replies {
        spoofer.send(server.addr, me, &c.bytes).unwrap();
    }
    idle(&mut b, 50);
    must_echo(&mut b, &mut rng, 50_000, "client B after the replay of A's replies");
    assert_eq!(b.endpoint().close_reason(b.id()).unwrap(), None);
    eprintln!(
        "replayed {} datagrams; B's counters: {:?}",
        replies.len(),
        b.stats().endpoint
    );
    must_echo(&mut a, &mut rng, 5_000, "client A after the replay");
}

// ----- item 2: a listener's active session is not taken over -----

/// Runs B's transfer of `len` bytes while `inject` sends from another thread
/// (after 30 ms, three times 20 ms apart), then checks what the server's
/// application saw.
fn takeover_attempt(
    cfg: &Config,
    mut inject: impl FnMut(&mut Spoofer, SocketAddr, SocketAddr) + Send,
    spoofer: Spoofer,
) {
    let mut rng = Rng::new(seed());
    let server = Server::start(cfg);
    let mut b = Dialer::connect(server.addr, cfg).unwrap();
    must_echo(&mut b, &mut rng, 10_000, "B before the attack");
    let b_addr = loopback(b.local_addr().unwrap());
    let b_conv = b.endpoint().conv(b.id()).unwrap();
    let to = server.addr;
    let data = rng.bytes(400_000);
    let result = thread::scope(|s| {
        let mut spoofer = spoofer;
        let inject = &mut inject;
        s.spawn(move || {
            for _ in 0..3 {
                thread::sleep(Duration::from_millis(20));
                inject(&mut spoofer, b_addr, to);
            }
        });
        thread::sleep(Duration::from_millis(10));
        echo(&mut b, &data, Duration::from_secs(20))
    });
    let after = must_echo_result(&mut b, &mut rng);
    drop(b);
    let seen = server.stop();
    eprintln!("server counters: {:?}", seen.stats.endpoint);
    eprintln!(
        "accepts {:?}\ncloses {:?}\nsessions whose bytes the application read held the marker: {:?}",
        seen.accepts, seen.closes, seen.marker_reads
    );
    if let Err(e) = result {
        panic!(
            "B's transfer during the attack: {e}\nserver saw closes {:?}",
            seen.closed(b_addr)
        );
    }
    if let Err(e) = after {
        panic!("B's transfer after the attack: {e}");
    }
    assert_eq!(
        seen.closed(b_addr),
        vec![],
        "B's active session (conv {b_conv:08x}) was closed by the attack"
    );
    assert!(
        seen.marker_reads.is_empty(),
        "the application read the attacker's bytes: {:?}",
        seen.marker_reads
    );
    let b_accepts: Vec<_> = seen.accepts.iter().filter(|a| a.0 == b_addr).collect();
    assert_eq!(
        b_accepts,
        vec![&(b_addr, b_conv)],
        "another session was opened for B's address"
    );
}

fn must_echo_result(d: &mut Dialer, rng: &mut Rng) -> Result<(), String> {
    let data = rng.bytes(20_000);
    echo(d, &data, Duration::from_secs(10))
}

/// No cipher: a forged sn-0 datagram of another conv with B's address,
/// carrying the attacker's bytes.
#[test]
fn listener_keeps_active_session_against_forged_sn0() {
    let Some(spoofer) = Spoofer::open("listener_keeps_active_session_against_forged_sn0") else {
        return;
    };
    let mut cfg = client_config(false);
    cfg.endpoint.conn.set_window(128, 128).unwrap();
    let forged = kcp_segment(0x0bad_c0de, CMD_PUSH, 0, 0, MARKER);
    takeover_attempt(&cfg, move |sp, from, to| sp.send(from, to, &forged).unwrap(), spoofer);
}

/// AES-128: client A's first datagram (its first message holds the marker),
/// captured, replayed with B's address.
#[test]
fn listener_keeps_active_session_against_replayed_first_datagram() {
    let Some(spoofer) = Spoofer::open("listener_keeps_active_session_against_replayed_first_datagram") else {
        return;
    };
    let mut cfg = client_config(true);
    cfg.endpoint.conn.set_window(128, 128).unwrap();
    // A is a real client whose first datagram the attacker recorded.
    let first = {
        let server = Server::start(&cfg);
        let tap = tap::Tap::start(server.addr, 4).unwrap();
        let mut a = Dialer::connect(tap.local_addr(), &cfg).unwrap();
        echo(&mut a, MARKER, Duration::from_secs(10)).unwrap();
        drop(a);
        let seen = server.stop();
        assert_eq!(seen.marker_reads.len(), 1, "A's own message carries the marker");
        tap.up()[0].bytes.clone()
    };
    takeover_attempt(&cfg, move |sp, from, to| sp.send(from, to, &first).unwrap(), spoofer);
}

// ----- item 3: a flood of single datagrams from many addresses -----

/// The listener's session limit in the flood tests: 1/16 of the default
/// (16,384), with the flood scaled alike (the 16,400 addresses
/// against 16,384 is a ratio of 1.001; here 1,300 against 1,024, 1.27, and
/// more arrive while the legitimate clients connect). The backlog stays at
/// its default (128): the application accepts at once, so it is not what
/// fills.
const FLOOD_LIMIT: usize = 1024;
const FLOOD_FIRST_WAVE: u32 = 1300;
const FLOOD_TOTAL: u32 = 6000;
const LEGIT_ATTEMPTS: usize = 100;

/// One flood run: `payload(i)` is the datagram sent from hostile address i.
fn flood(crypt: bool, payload: impl Fn(u32) -> Vec<u8> + Send + Sync, mut spoofer: Spoofer, server: Server) {
    let seed = seed();
    let client_cfg = client_config(crypt);
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    // Established, active sessions: they echo all along and must never fail.
    let mut active = Vec::new();
    for _ in 0..3 {
        let mut d = Dialer::connect(server.addr, &client_cfg).unwrap();
        let mut rng = Rng::new(seed);
        must_echo(&mut d, &mut rng, 4096, "an established session before the flood");
        active.push(d);
    }
    let active_addrs: Vec<SocketAddr> = active.iter().map(|d| loopback(d.local_addr().unwrap())).collect();
    let active_errors = Mutex::new(Vec::new());
    let (served, failed) = thread::scope(|s| {
        let to = server.addr;
        let (stop, sent, payload) = (&stop, &sent, &payload);
        s.spawn(move || {
            let t0 = Instant::now();
            let mut i = 0u32;
            while i < FLOOD_TOTAL && !stop.load(Ordering::Relaxed) {
                spoofer.send(hostile_addr(i), to, &payload(i)).unwrap();
                i += 1;
                sent.store(u64::from(i), Ordering::Relaxed);
                if i >= FLOOD_FIRST_WAVE {
                    // Then 1,000 new addresses a second.
                    let due = Duration::from_millis(u64::from(i - FLOOD_FIRST_WAVE));
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        thread::sleep(wait);
                    }
                } else if i % 16 == 0 {
                    // Paced so that the accept backlog (128) does not refuse
                    // them: the flood is meant to fill the session table.
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        for (k, mut d) in active.into_iter().enumerate() {
            let errors = &active_errors;
            s.spawn(move || {
                let mut rng = Rng::new(seed ^ k as u64);
                while !stop.load(Ordering::Relaxed) {
                    let data = rng.bytes(16_384);
                    if let Err(e) = echo(&mut d, &data, Duration::from_secs(10)) {
                        errors.lock().unwrap().push(format!("active session {k}: {e}"));
                        return;
                    }
                }
            });
        }
        // Legitimate clients connect while the flood goes on, from two
        // threads; after 2 failures (< 99% of 100) the verdict is known.
        while sent.load(Ordering::Relaxed) < u64::from(FLOOD_FIRST_WAVE) {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(200));
        eprintln!(
            "first wave sent; listener now: {:?}",
            server.stats.lock().unwrap().endpoint
        );
        let next = AtomicU64::new(0);
        let t0 = Instant::now();
        let results = Mutex::new((0usize, Vec::<String>::new()));
        thread::scope(|s2| {
            for _ in 0..2 {
                s2.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if k >= LEGIT_ATTEMPTS || results.lock().unwrap().1.len() >= 2 {
                        return;
                    }
                    // One attempt every 30 ms: spread over the flood.
                    let due = Duration::from_millis(30 * k as u64);
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        thread::sleep(wait);
                    }
                    let mut rng = Rng::new(seed.wrapping_add(k as u64 + 1000));
                    let data = rng.bytes(1000);
                    let outcome = Dialer::connect(server.addr, &client_cfg)
                        .map_err(|e| format!("connect: {e}"))
                        .and_then(|mut d| echo(&mut d, &data, Duration::from_secs(5)));
                    let mut r = results.lock().unwrap();
                    match outcome {
                        Ok(()) => r.0 += 1,
                        Err(e) => r.1.push(format!("attempt {k}: {e}")),
                    }
                });
            }
        });
        stop.store(true, Ordering::Relaxed);
        let (served, failed) = results.into_inner().unwrap();
        (served, failed)
    });
    let active_errors = active_errors.into_inner().unwrap();
    let seen = server.stop();
    let st = seen.stats.endpoint;
    let attempted = served + failed.len();
    eprintln!(
        "flood ({}): {} spoofed datagrams; legitimate attempts served {served} of {attempted} (of {LEGIT_ATTEMPTS} planned)\n\
         listener: passive_opens {} curr_estab {} max_conn {} dropped_limit {} dropped_backlog {} evicted {} closed_idle {} replaced {} in_csum_errors {} kcp_in_errors {}",
        if crypt { "AES-128, one captured datagram replayed" } else { "no cipher, forged sn 0" },
        sent.load(Ordering::Relaxed),
        st.passive_opens, st.curr_estab, st.max_conn, st.dropped_limit, st.dropped_backlog, st.evicted,
        st.closed_idle, st.replaced, st.in_csum_errors, st.kcp_in_errors
    );
    for f in &failed {
        eprintln!("  failed: {f}");
    }
    let active_closed: Vec<_> = active_addrs.iter().flat_map(|a| seen.closed(*a)).collect();
    assert!(
        active_errors.is_empty(),
        "established sessions hurt by the flood: {active_errors:?}"
    );
    assert!(
        active_closed.is_empty(),
        "established sessions closed: {active_closed:?}"
    );
    assert!(
        failed.is_empty() || (served * 100 >= LEGIT_ATTEMPTS * 99 && attempted == LEGIT_ATTEMPTS),
        "only {served} of {attempted} legitimate connection attempts served during the flood (goal: ≥ 99% of {LEGIT_ATTEMPTS})"
    );
    assert_eq!(attempted, LEGIT_ATTEMPTS);
}

fn flood_server_config(crypt: bool) -> Config {
    let mut cfg = Config::default();
    cfg.endpoint.conn.set_stream(true);
    if crypt {
        cfg.endpoint.conn.set_crypt(Some("aes-128"), &KEY).unwrap();
    }
    let backlog = cfg.endpoint.backlog;
    cfg.endpoint.set_limits(backlog, FLOOD_LIMIT).unwrap();
    cfg
}

#[test]
fn flood_of_forged_first_datagrams_leaves_room_for_clients() {
    let Some(spoofer) = Spoofer::open("flood_of_forged_first_datagrams_leaves_room_for_clients") else {
        return;
    };
    let server = Server::start(&flood_server_config(false));
    let forged = |i: u32| kcp_segment(0x7000_0000 ^ i.wrapping_mul(2_654_435_761), CMD_PUSH, 0, 0, b"hello");
    flood(false, forged, spoofer, server);
}

#[test]
fn flood_of_one_replayed_datagram_leaves_room_for_clients() {
    let Some(spoofer) = Spoofer::open("flood_of_one_replayed_datagram_leaves_room_for_clients") else {
        return;
    };
    let cfg = flood_server_config(true);
    let server = Server::start(&cfg);
    // One real client's first datagram, recorded on its way to this listener.
    let captured = {
        let tap = tap::Tap::start(server.addr, 1).unwrap();
        let mut d = Dialer::connect(tap.local_addr(), &client_config(true)).unwrap();
        echo(&mut d, b"a real client's first message", Duration::from_secs(10)).unwrap();
        tap.up()[0].bytes.clone()
    };
    flood(true, move |_| captured.clone(), spoofer, server);
}
