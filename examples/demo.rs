//! The session layer at a glance: a listener and a dialer in this process,
//! each on its own thread and UDP socket, talking over loopback through a
//! lossy relay (tests/support/relay.rs: 10% of datagrams dropped in each
//! direction, 1% duplicated, reordered in a window of 8, seeded). The
//! sessions run in stream mode with FEC 10/3, AES-128 (key derived from a
//! password), nodelay 1/10/2/1 and windows of 1024 segments. The dialer
//! sends 64 MiB of seeded pseudo-random bytes; the listener checks every
//! byte on arrival. A progress line shows the transfer live (redrawn
//! in place on a terminal, else a row a second), then a table sums it up.
//!
//! ```text
//! cargo run --release --example demo
//! cargo run --release --example demo -- --mib 256 --loss 0.2 --seed 7
//! ```
//!
//! tests/demo.rs runs [`run`] on a small transfer.

#[path = "../tests/support/relay.rs"]
mod relay;
#[path = "../tests/support/sim.rs"]
mod sim;

use kcpx::conn::ConnStats;
use kcpx::error::Error;
use kcpx::net::{Config, Dialer, Event, Listener, ListenerStats};
use relay::{Relay, RelayConfig, RelayStats};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: demo [--mib N] [--loss P] [--seed N]
  --mib N    MiB to transfer (default 64)
  --loss P   probability the relay drops a datagram, each way (default 0.1)
  --seed N   seed of the relay and of the data (default: KCPX_RELAY_SEED, else random)";

/// The password both ends derive their AES-128 key from (kcp-go's PBKDF2).
pub const PASSWORD: &[u8] = b"kcpx demo";

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub mib: u64,
    pub loss: f64,
    pub seed: u64,
    /// Give up when no byte arrived for this long.
    pub stall: Duration,
}

impl Options {
    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            mib: 64,
            loss: 0.10,
            seed: std::env::var("KCPX_RELAY_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                    u64::from(t.unwrap_or_default().subsec_nanos() ^ std::process::id()) % 100_000
                }),
            stall: Duration::from_secs(30),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.into());
            }
            let value = args.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
            let bad = || format!("{flag}: cannot use {value:?}\n{USAGE}");
            match flag.as_str() {
                "--mib" => o.mib = value.parse().map_err(|_| bad())?,
                "--loss" => o.loss = value.parse().map_err(|_| bad())?,
                "--seed" => o.seed = value.parse().map_err(|_| bad())?,
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        if o.mib == 0 || !(0.0..1.0).contains(&o.loss) {
            return Err(format!("--mib must be at least 1 and --loss in [0, 1)\n{USAGE}"));
        }
        Ok(o)
    }
}

/// The settings of both ends.
pub fn config() -> Config {
    let mut cfg = Config::default();
    let c = &mut cfg.endpoint.conn;
    c.set_stream(true);
    c.set_fec(10, 3).expect("10 data + 3 parity shards");
    let key = kcpx::crypt::key_from_password(PASSWORD, 16);
    c.set_crypt(Some("aes-128"), &key).expect("a 16-byte key");
    c.set_nodelay(1, 10, 2, 1);
    c.set_window(1024, 1024).expect("windows of 1024 segments");
    cfg
}

/// The bytes at `offset..offset + buf.len()` of the seeded stream: the
/// 8-byte word at index k is SplitMix64 of `seed + k`'s step, little-endian,
/// so any piece can be regenerated on its own.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let (mut at, mut i) = (offset, 0);
    while i < buf.len() {
        let mut z = seed.wrapping_add((at / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let word = (z ^ (z >> 31)).to_le_bytes();
        let skip = (at % 8) as usize;
        let n = (8 - skip).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[skip..skip + n]);
        (at, i) = (at + n as u64, i + n);
    }
}

/// What the threads show while the transfer runs.
#[derive(Clone, Copy, Debug, Default)]
struct Live {
    received: u64,
    srtt_ms: i32,
    retrans: u64,
    fec_listener: u64,
    fec_dialer: u64,
    /// When the listener had every byte.
    received_all: Option<Instant>,
    /// The dialer's data is all acknowledged.
    sender_done: bool,
}

/// One end's final counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct End {
    pub session: ConnStats,
    pub endpoint: ListenerStats,
    /// CRC-32 of the bytes sent (dialer) or received (listener).
    pub crc32: u32,
}

/// The outcome of a run.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub bytes: u64,
    pub received: u64,
    /// The first byte that differed from what was sent, if any.
    pub mismatch_at: Option<u64>,
    pub elapsed: Duration,
    pub dialer: End,
    pub listener: End,
    pub relay: RelayStats,
    /// Datagrams the kernel dropped at the relay's full socket buffers.
    pub relay_kernel_drops: u64,
}

impl Summary {
    /// Every byte arrived, none differed, the checksums agree.
    pub fn byte_exact(&self) -> bool {
        self.received == self.bytes && self.mismatch_at.is_none() && self.dialer.crc32 == self.listener.crc32
    }

    /// Datagrams refused for a bad checksum or by KCP, at either end.
    pub fn errors(&self) -> u64 {
        [self.dialer.session, self.listener.session]
            .iter()
            .map(|s| s.in_csum_errors + s.kcp_in_errors + s.in_errs + s.fec_errs)
            .sum()
    }

    /// Datagrams sent but neither received nor dropped by the relay or the
    /// kernel (data, ACKs): 0 once the relay is quiet.
    pub fn unaccounted(&self) -> (i64, i64) {
        let (d, l, r) = (
            &self.dialer.endpoint.socket,
            &self.listener.endpoint.socket,
            &self.relay,
        );
        let gap = |sent: u64, dir: &relay::DirStats, kernel: u64, received: u64| {
            (sent + dir.duplicated) as i64 - (dir.dropped + dir.overflow + dir.send_errors + kernel + received) as i64
        };
        (
            gap(d.sent_datagrams, &r.up, self.relay_kernel_drops, l.recv_datagrams),
            gap(l.sent_datagrams, &r.down, 0, d.recv_datagrams),
        )
    }

    /// Payload megabytes (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

type Shared = (Mutex<Live>, AtomicBool);

/// Runs the demo, writing the header and the progress lines to `out`
/// (`live`: one line redrawn in place five times a second; otherwise a
/// line a second). Returns the counters; the caller prints the table.
pub fn run(o: &Options, out: &mut dyn Write, live: bool) -> Result<Summary, String> {
    let total = o.mib << 20;
    let cfg = config();
    let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).map_err(|e| format!("bind: {e}"))?;
    let server = listener.local_addr().map_err(|e| e.to_string())?;
    let relay = Relay::start(
        server,
        RelayConfig {
            loss: o.loss,
            duplicate: 0.01,
            reorder_window: 8,
            seed: o.seed,
            ..RelayConfig::default()
        },
    )
    .map_err(|e| format!("relay: {e}"))?;
    let via = relay.local_addr();
    let _ = writeln!(
        out,
        "kcpx session demo: a listener and a dialer in this process, over loopback through a lossy relay\n\
         \x20 dialer -> relay {via} -> listener {server}\n\
         \x20 relay: {:.0}% of datagrams dropped each way, 1% duplicated, reordered in a window of 8, seed {}\n\
         \x20 sessions: stream mode, FEC 10 data + 3 parity shards, AES-128 (key from a password),\n\
         \x20           nodelay 1/10/2/1, windows 1024 segments\n\
         \x20 sending {} MiB of seeded pseudo-random bytes, dialer -> listener, checked byte for byte\n",
        o.loss * 100.0,
        o.seed,
        o.mib
    );

    let shared: Arc<Shared> = Arc::new((Mutex::new(Live::default()), AtomicBool::new(false)));
    let start = Instant::now();
    let seed = o.seed;
    let rx = {
        let shared = shared.clone();
        thread::spawn(move || receive(&mut listener, seed, total, &shared))
    };
    let tx = {
        let (shared, cfg) = (shared.clone(), cfg.clone());
        thread::spawn(move || transmit(via, &cfg, seed, total, &shared))
    };

    // Progress until the listener has every byte and the dialer every ACK.
    let _ = writeln!(
        out,
        "{:>12} {:>5} {:>8} {:>7} {:>14} {:>12} {:>14}",
        "received MiB", "done", "avg MB/s", "RTT ms", "retransmitted", "FEC rebuilt", "relay dropped"
    );
    let tick = Duration::from_millis(if live { 200 } else { 1000 });
    let (mut last_bytes, mut last_change, mut last_line) = (0, Instant::now(), None::<Instant>);
    // Once done, the threads run until the relay is quiet, so that every
    // datagram sent is counted as received or dropped.
    let (mut quiet_since, mut last_relay, mut done_at) = (Instant::now(), RelayStats::default(), None);
    let mut stalled = false;
    loop {
        let (rx_ended, tx_ended) = (rx.is_finished(), tx.is_finished());
        let l = *shared.0.lock().unwrap();
        let r = relay.stats();
        let done = l.received_all.is_some() && l.sender_done;
        if l.received != last_bytes {
            (last_bytes, last_change) = (l.received, Instant::now());
        }
        if r != last_relay {
            (last_relay, quiet_since) = (r, Instant::now());
        }
        if last_line.map_or(true, |t| t.elapsed() >= tick) || (done && done_at.is_none()) {
            last_line = Some(Instant::now());
            let secs = l
                .received_all
                .unwrap_or_else(Instant::now)
                .duration_since(start)
                .as_secs_f64();
            let line = format!(
                "{:>12.1} {:>4.0}% {:>8.1} {:>7} {:>14} {:>12} {:>14}",
                l.received as f64 / (1 << 20) as f64,
                100.0 * l.received as f64 / total as f64,
                l.received as f64 / 1e6 / secs.max(1e-3),
                l.srtt_ms,
                l.retrans,
                l.fec_listener + l.fec_dialer,
                r.up.dropped + r.down.dropped,
            );
            let _ = if live {
                write!(out, "\r{line}")
            } else {
                writeln!(out, "{line}")
            };
            let _ = out.flush();
        }
        // A thread that ended before being told to stop failed.
        if rx_ended || tx_ended {
            break;
        }
        if done {
            let at = *done_at.get_or_insert_with(Instant::now);
            if quiet_since.elapsed() >= Duration::from_millis(100) || at.elapsed() >= Duration::from_secs(3) {
                break;
            }
        } else if last_change.elapsed() > o.stall {
            stalled = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    if live {
        let _ = writeln!(out);
    }
    shared.1.store(true, Ordering::Relaxed);
    let (listener, received, mismatch_at) = rx.join().map_err(|_| "the listener thread panicked")??;
    let dialer = tx.join().map_err(|_| "the dialer thread panicked")??;
    if stalled {
        return Err(format!(
            "seed {seed}: no byte arrived for {:?} ({received} of {total} bytes)",
            o.stall
        ));
    }
    let l = *shared.0.lock().unwrap();
    Ok(Summary {
        bytes: total,
        received,
        mismatch_at,
        elapsed: l.received_all.unwrap_or_else(Instant::now).duration_since(start),
        dialer,
        listener,
        relay: relay.stats(),
        relay_kernel_drops: relay.kernel_drops().unwrap_or(0),
    })
}

/// The listener's thread: accepts the session, receives and checks every
/// byte, and keeps acknowledging until told to stop.
fn receive(listener: &mut Listener, seed: u64, total: u64, shared: &Shared) -> Result<(End, u64, Option<u64>), String> {
    let (mut id, mut got, mut mismatch_at) = (None, 0u64, None);
    let mut crc = crc32fast::Hasher::new();
    let (mut buf, mut want) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    while !shared.1.load(Ordering::Relaxed) {
        listener.wait(5).map_err(|e| format!("listener: {e}"))?;
        while let Some(ev) = listener.poll_event() {
            match ev {
                Event::Accept(s) if id.is_none() => id = Some(s),
                Event::Closed(_, why) => return Err(format!("the listener's session closed: {why:?}")),
                _ => {}
            }
        }
        let Some(s) = id else { continue };
        loop {
            match listener.recv(s, &mut buf) {
                Ok(n) => {
                    let piece = &buf[..n];
                    let want = &mut want[..n];
                    fill(seed, got, want);
                    if mismatch_at.is_none() && (got + n as u64 > total || piece != &want[..]) {
                        let i = piece.iter().zip(want.iter()).take_while(|(a, b)| a == b).count();
                        mismatch_at = Some(got + i as u64);
                    }
                    crc.update(piece);
                    got += n as u64;
                }
                Err(Error::Again) => break,
                Err(e) => return Err(format!("listener recv: {e}")),
            }
        }
        let stats = listener.session_stats(s).map_err(|e| e.to_string())?;
        let mut l = shared.0.lock().unwrap();
        l.received = got;
        l.fec_listener = stats.fec_recovered;
        if got >= total && l.received_all.is_none() {
            l.received_all = Some(Instant::now());
        }
    }
    let session = id.and_then(|s| listener.session_stats(s).ok()).unwrap_or_default();
    let end = End {
        session,
        endpoint: listener.stats(),
        crc32: crc.finalize(),
    };
    Ok((end, got, mismatch_at))
}

/// The dialer's thread: sends `total` bytes as fast as the session takes
/// them, says when all are acknowledged, and keeps receiving until told to
/// stop.
fn transmit(to: SocketAddr, cfg: &Config, seed: u64, total: u64, shared: &Shared) -> Result<End, String> {
    let mut dialer = Dialer::connect(to, cfg).map_err(|e| format!("dial: {e}"))?;
    let id = dialer.id();
    let mut crc = crc32fast::Hasher::new();
    let (mut sent, mut chunk, mut used) = (0u64, Vec::new(), 0);
    while !shared.1.load(Ordering::Relaxed) {
        while sent < total {
            if used == chunk.len() {
                chunk.resize((total - sent).min(64 << 10) as usize, 0);
                fill(seed, sent, &mut chunk);
                crc.update(&chunk);
                used = 0;
            }
            match dialer.send(&chunk[used..]) {
                Ok(n) => {
                    used += n;
                    sent += n as u64;
                }
                Err(Error::Again) => break,
                Err(e) => return Err(format!("dialer send: {e}")),
            }
        }
        let acked = sent == total && dialer.endpoint().wait_snd(id).map_err(|e| e.to_string())? == 0;
        dialer.wait(5).map_err(|e| format!("dialer: {e}"))?;
        while let Some(ev) = dialer.poll_event() {
            if let Event::Closed(_, why) = ev {
                return Err(format!("the dialer's session closed: {why:?}"));
            }
        }
        let stats = dialer.endpoint().session_stats(id).map_err(|e| e.to_string())?;
        let (srtt, _rto) = dialer.endpoint().rtt(id).map_err(|e| e.to_string())?;
        let mut l = shared.0.lock().unwrap();
        (l.srtt_ms, l.retrans, l.fec_dialer) = (srtt, stats.retrans_segs, stats.fec_recovered);
        l.sender_done |= acked;
    }
    let end = End {
        session: dialer.endpoint().session_stats(id).map_err(|e| e.to_string())?,
        endpoint: dialer.stats(),
        crc32: crc.finalize(),
    };
    dialer.close(1000);
    Ok(end)
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut s = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// The summary table.
pub fn report(s: &Summary, o: &Options, out: &mut dyn Write) -> std::io::Result<()> {
    let (d, l, r) = (&s.dialer, &s.listener, &s.relay);
    let row = |out: &mut dyn Write, what: &str, data: u64, acks: u64| {
        writeln!(out, "  {what:<40} {:>17} {:>17}", grouped(data), grouped(acks))
    };
    writeln!(out)?;
    writeln!(out, "  {:<40} {:>17} {:>17}", "", "data", "ACKs")?;
    writeln!(
        out,
        "  {:<40} {:>17} {:>17}",
        "", "dialer->listener", "listener->dialer"
    )?;
    row(
        out,
        "datagrams sent (FEC parity included)",
        d.endpoint.socket.sent_datagrams,
        l.endpoint.socket.sent_datagrams,
    )?;
    row(out, "  dropped by the relay", r.up.dropped, r.down.dropped)?;
    // Both directions' sockets (the ACKs' hardly ever overflow).
    let kernel = format!(
        "  {:<40} {:>17}",
        "  dropped by the kernel at the relay",
        grouped(s.relay_kernel_drops)
    );
    writeln!(out, "{kernel}")?;
    row(out, "  duplicated by the relay", r.up.duplicated, r.down.duplicated)?;
    row(out, "  reordered by the relay", r.up.reordered, r.down.reordered)?;
    if r.up.overflow + r.up.send_errors + r.down.overflow + r.down.send_errors > 0 {
        let lost = |x: &relay::DirStats| x.overflow + x.send_errors;
        row(
            out,
            "  lost by the relay (queue or send full)",
            lost(&r.up),
            lost(&r.down),
        )?;
    }
    row(
        out,
        "datagrams received",
        l.endpoint.socket.recv_datagrams,
        d.endpoint.socket.recv_datagrams,
    )?;
    if s.unaccounted() != (0, 0) {
        let (a, b) = s.unaccounted();
        writeln!(out, "  {:<40} {a:>17} {b:>17}", "not accounted for (still in flight)")?;
    }
    row(
        out,
        "data shards rebuilt by FEC",
        l.session.fec_recovered,
        d.session.fec_recovered,
    )?;
    row(
        out,
        "segments retransmitted after a timeout",
        d.session.retrans_segs,
        l.session.retrans_segs,
    )?;
    let bad = |e: &End| e.session.in_csum_errors + e.session.in_errs + e.session.fec_errs + e.session.kcp_in_errors;
    row(out, "checksum or KCP errors", bad(l), bad(d))?;
    writeln!(out)?;
    writeln!(
        out,
        "  transferred  {} MiB ({} bytes) in {:.2} s",
        o.mib,
        grouped(s.bytes),
        s.elapsed.as_secs_f64()
    )?;
    writeln!(
        out,
        "  throughput   {:.1} MB/s ({:.1} MiB/s) of payload",
        s.mb_per_s(),
        s.mb_per_s() * 1e6 / (1 << 20) as f64
    )?;
    writeln!(out, "  CRC-32       sent {:08x}, received {:08x}", d.crc32, l.crc32)?;
    let result = match (s.byte_exact(), s.mismatch_at) {
        (true, _) => "byte-exact".to_string(),
        (false, Some(at)) => format!("FAILED: the received bytes differ from byte {at} on"),
        (false, None) => format!("FAILED: {} of {} bytes received", s.received, s.bytes),
    };
    writeln!(out, "  result       {result} (seed {})", o.seed)
}

fn main() {
    let o = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let stdout = std::io::stdout();
    let live = stdout.is_terminal();
    let mut out = stdout.lock();
    match run(&o, &mut out, live) {
        Ok(s) => {
            let _ = report(&s, &o, &mut out);
            if !s.byte_exact() || s.errors() > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            let _ = out.flush();
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
