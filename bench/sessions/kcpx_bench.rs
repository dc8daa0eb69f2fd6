//! The kcpx side of `bench/sessions/run.sh` (kcpx against kcp-go 5.6.1, each
//! with its own clients); `bench/sessions/kcpgo/main.go` is the kcp-go side,
//! with the same command line and the same output. A measurement tool, not a
//! test.
//!
//! ```text
//! kcpx_bench server -addr A [-plain] [-stats FILE]
//! kcpx_bench bulk   -addr A -bytes N [-echo] [-plain]   one session
//! kcpx_bench idle   -addr A -n N -hold SECS            N sessions, one 64-byte echo each, then quiet
//! kcpx_bench active -addr A -n N -rate HZ -secs SECS   N sessions, 64-byte records at HZ, echoed
//! ```
//!
//! Every session is a stream: its first 8 bytes (u64 LE) say how many bytes
//! the server should swallow before answering one byte `K` (a sink), 0 for
//! an echo. FEC 10/3 + AES-128 unless `-plain`; `bulk` uses windows 1024
//! and kcp-go's fast profile nodelay(1, 10, 2, 1), the others the fast
//! profile with windows 128/128 (both sides must agree: pass the same
//! flags). Socket buffers 4 MiB. Clients print one line `key=value ...`.

use kcpx::error::Error;
use kcpx::net::{now_ms, Config, Dialer, Event, Listener, SessionId};
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Args {
    mode: String,
    addr: SocketAddr,
    plain: bool,
    echo: bool,
    bytes: u64,
    n: usize,
    hold: f64,
    rate: f64,
    secs: f64,
    stats: Option<String>,
    /// Receive coalescing of the listener (server) in µs.
    coalesce_us: u32,
    /// Client threads of the active mode.
    threads: usize,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().expect("mode");
    let mut a = Args {
        mode,
        addr: "127.0.0.1:29950".parse().unwrap(),
        plain: false,
        echo: false,
        bytes: 0,
        n: 1,
        hold: 0.0,
        rate: 20.0,
        secs: 10.0,
        stats: None,
        coalesce_us: 0,
        threads: 2,
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("value");
        match k.as_str() {
            "-addr" => a.addr = v().parse().unwrap(),
            "-plain" => a.plain = true,
            "-echo" => a.echo = true,
            "-bytes" => a.bytes = v().parse().unwrap(),
            "-n" => a.n = v().parse().unwrap(),
            "-hold" => a.hold = v().parse().unwrap(),
            "-rate" => a.rate = v().parse().unwrap(),
            "-secs" => a.secs = v().parse().unwrap(),
            "-stats" => a.stats = Some(v()),
            // Receive coalescing in µs: the server's listener, and the
            // client's loop over its dialers.
            "-coalesce" => a.coalesce_us = v().parse().unwrap(),
            "-threads" => a.threads = v().parse::<usize>().unwrap().max(1),
            _ => panic!("unknown flag {k}"),
        }
    }
    a
}

fn config(a: &Args, bulk: bool) -> Config {
    let mut cfg = Config::default();
    let c = &mut cfg.endpoint.conn;
    c.set_nodelay(1, 10, 2, 1);
    if bulk {
        c.set_window(1024, 1024).unwrap();
    } else {
        c.set_window(128, 128).unwrap();
    }
    c.set_stream(true);
    if !a.plain {
        c.set_fec(10, 3).unwrap();
        c.set_crypt(Some("aes-128"), &[0x42; 16]).unwrap();
    }
    cfg.set_sockbuf(4 << 20).unwrap();
    cfg.set_coalesce(a.coalesce_us).unwrap();
    cfg
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// One server session: the header, then a sink count or an echo backlog.
/// Holds no heap memory while idle (the header is inline, the backlog is
/// freed once sent): the server's RSS per idle session is the library's.
#[derive(Default)]
struct Served {
    header: [u8; 8],
    header_len: usize,
    sink: Option<u64>,
    got: u64,
    pending: Vec<u8>,
}

fn server(a: &Args) {
    // The bulk and session profiles differ only in windows: the server
    // takes the larger one (windows are per side; the client's sets the pace).
    let cfg = config(a, true);
    let mut l = Listener::bind(a.addr, &cfg).expect("bind");
    let mut sessions: HashMap<SessionId, Served> = HashMap::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut last_stats = Instant::now();
    loop {
        l.wait(10).expect("wait");
        let mut ready: Vec<SessionId> = Vec::new();
        while let Some(ev) = l.poll_event() {
            match ev {
                Event::Accept(id) => {
                    sessions.insert(id, Served::default());
                    ready.push(id);
                }
                Event::Readable(id) | Event::Writable(id) => ready.push(id),
                Event::Datagram(_) => {} // the benchmark sends none
                Event::Closed(id, _) => {
                    sessions.remove(&id);
                    let _ = l.close_session(id);
                }
            }
        }
        for id in ready {
            let Some(s) = sessions.get_mut(&id) else { continue };
            loop {
                while !s.pending.is_empty() {
                    match l.send(id, &s.pending) {
                        Ok(n) => {
                            s.pending.drain(..n);
                        }
                        Err(_) => break,
                    }
                }
                if !s.pending.is_empty() {
                    break;
                }
                s.pending = Vec::new();
                let Ok(mut n) = l.recv(id, &mut buf) else { break };
                let mut at = 0;
                while s.sink.is_none() && at < n {
                    s.header[s.header_len] = buf[at];
                    s.header_len += 1;
                    at += 1;
                    if s.header_len == 8 {
                        s.sink = Some(u64::from_le_bytes(s.header));
                    }
                }
                n -= at;
                match s.sink {
                    // Echoed straight from the read buffer, as Go's
                    // io.CopyBuffer does; only what the send queue refuses
                    // waits (allocated then).
                    Some(0) => {
                        let sent = l.send(id, &buf[at..at + n]).unwrap_or(0);
                        s.pending.extend_from_slice(&buf[at + sent..at + n]);
                    }
                    Some(total) => {
                        s.got += n as u64;
                        if s.got >= total && s.got - (n as u64) < total {
                            let _ = l.send(id, b"K");
                        }
                    }
                    None => {}
                }
            }
        }
        if last_stats.elapsed() >= Duration::from_millis(500) {
            last_stats = Instant::now();
            // No malloc_trim here: the listener gives freed heap back to the
            // system itself once it goes quiet (Endpoint::take_quiet).
            if let Some(path) = &a.stats {
                let st = l.stats().socket;
                let line = format!(
                    "recv_syscalls={} recv_datagrams={} send_syscalls={} sent_datagrams={} sessions={} serviced={} in_bytes={} out_bytes={}\n",
                    st.recv_syscalls,
                    st.recv_datagrams,
                    st.send_syscalls,
                    st.sent_datagrams,
                    sessions.len(),
                    l.stats().endpoint.serviced,
                    l.stats().endpoint.in_bytes,
                    l.stats().endpoint.out_bytes
                );
                let _ = std::fs::write(path, line);
            }
        }
    }
}

fn bulk(a: &Args) {
    let cfg = config(a, true);
    let start = Instant::now();
    let mut d = Dialer::connect(a.addr, &cfg).expect("dial");
    let header = if a.echo { 0u64 } else { a.bytes };
    let mut out = header.to_le_bytes().to_vec();
    let chunk = vec![0x5au8; 1 << 16];
    let (mut sent, mut got) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    let want = if a.echo { a.bytes } else { 1 };
    while got < want {
        loop {
            if !out.is_empty() {
                match d.send(&out) {
                    Ok(n) => {
                        out.drain(..n);
                        continue;
                    }
                    Err(Error::Again) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
            if sent >= a.bytes {
                break;
            }
            let n = chunk.len().min((a.bytes - sent) as usize);
            match d.send(&chunk[..n]) {
                Ok(n) => sent += n as u64,
                Err(Error::Again) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        d.wait(2).expect("wait");
        while d.poll_event().is_some() {}
        while let Ok(n) = d.recv(&mut buf) {
            got += n as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("secs={secs:.3} cpu={:.3} bytes={}", cpu_seconds(), a.bytes);
}

/// Many dialers in one thread: epoll on their sockets plus a heap of their
/// deadlines (an entry that is not the dialer's current deadline is stale
/// and skipped).
struct Many {
    dialers: Vec<Dialer>,
    epfd: i32,
    due: BinaryHeap<std::cmp::Reverse<(u32, usize)>>,
    /// Each dialer's deadline in the heap (None: none there).
    deadline: Vec<Option<u32>>,
    /// Coalescing as the listener's (`-coalesce`): after a turn that found
    /// datagrams, sleep this long rather than wake for the next one.
    coalesce_us: u32,
    busy: bool,
}

impl Many {
    fn new(a: &Args, n: usize, cfg: &Config) -> Many {
        // SAFETY: plain system call.
        let epfd = unsafe { libc::epoll_create1(0) };
        assert!(epfd >= 0, "epoll_create1");
        let mut m = Many {
            dialers: Vec::new(),
            epfd,
            due: BinaryHeap::new(),
            deadline: Vec::new(),
            coalesce_us: a.coalesce_us,
            busy: false,
        };
        for i in 0..n {
            let d = Dialer::connect(a.addr, cfg).expect("dial (raise ulimit -n?)");
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: valid descriptors and event struct.
            let rc = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, d.fd(), &mut ev) };
            assert_eq!(rc, 0, "epoll_ctl");
            m.dialers.push(d);
            m.deadline.push(Some(now_ms()));
            m.due.push(std::cmp::Reverse((now_ms(), i)));
        }
        m
    }

    /// Waits at most `max_ms` for datagrams or deadlines; returns the
    /// dialers updated.
    fn turn(&mut self, max_ms: u32, touched: &mut Vec<usize>) {
        touched.clear();
        let now = now_ms();
        let next = self.due.peek().map_or(max_ms, |r| {
            (r.0 .0.wrapping_sub(now) as i32).clamp(0, max_ms as i32) as u32
        });
        let mut next = next;
        if self.busy && self.coalesce_us > 0 && next > 0 {
            std::thread::sleep(Duration::from_micros(u64::from(self.coalesce_us.min(next * 1000))));
            next = 0;
        }
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 256];
        // SAFETY: the buffer holds 256 events.
        let n = unsafe { libc::epoll_wait(self.epfd, events.as_mut_ptr(), 256, next as i32) };
        self.busy = n > 0;
        let now = now_ms();
        for ev in events.iter().take(n.max(0) as usize) {
            touched.push(ev.u64 as usize);
        }
        while let Some(&std::cmp::Reverse((t, i))) = self.due.peek() {
            if (now.wrapping_sub(t) as i32) < 0 {
                break;
            }
            self.due.pop();
            if self.deadline[i] == Some(t) {
                self.deadline[i] = None;
                touched.push(i);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for &i in touched.iter() {
            let d = &mut self.dialers[i];
            d.update(now).expect("update");
            self.rearm(i, now);
        }
    }

    /// Writes what dialer `i` queued and keeps its next deadline.
    fn rearm(&mut self, i: usize, now: u32) {
        let c = self.dialers[i].check(now);
        if self.deadline[i] != Some(c) {
            self.deadline[i] = Some(c);
            self.due.push(std::cmp::Reverse((c, i)));
        }
    }

    fn send(&mut self, i: usize, data: &[u8]) {
        let d = &mut self.dialers[i];
        let n = d.send(data).expect("send");
        assert_eq!(n, data.len());
        self.rearm(i, now_ms());
    }
}

fn idle(a: &Args) {
    let cfg = config(a, false);
    let mut m = Many::new(a, a.n, &cfg);
    let mut first = 0u64.to_le_bytes().to_vec();
    first.extend_from_slice(&[7u8; 64]);
    for i in 0..a.n {
        m.send(i, &first);
    }
    let mut got = vec![0usize; a.n];
    let mut done = 0;
    let mut buf = [0u8; 256];
    let mut touched = Vec::new();
    let start = Instant::now();
    while done < a.n {
        m.turn(10, &mut touched);
        for &i in &touched {
            while let Ok(n) = m.dialers[i].recv(&mut buf) {
                got[i] += n;
                if got[i] == 64 {
                    done += 1;
                }
            }
            while m.dialers[i].poll_event().is_some() {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {done} of {} echoes",
            a.n
        );
    }
    println!("ready n={} secs={:.3}", a.n, start.elapsed().as_secs_f64());
    let hold = Instant::now();
    while hold.elapsed().as_secs_f64() < a.hold {
        m.turn(100, &mut touched);
    }
    println!("cpu={:.3}", cpu_seconds());
}

fn active(a: &Args) {
    // Clients on `threads` threads (as kcp-go's goroutines use every core):
    // one thread of dialers is the bottleneck from about 2,000 sessions on.
    let origin = Instant::now();
    let cpu0 = cpu_seconds();
    let parts: Vec<Part> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..a.threads)
            .map(|k| scope.spawn(move || active_part(a, k, origin)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let cpu = cpu_seconds() - cpu0;
    let mut rtts: Vec<u32> = parts.iter().flat_map(|p| p.rtts.iter().copied()).collect();
    rtts.sort_unstable();
    let pct = |p: f64| {
        rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let sum = |f: fn(&Part) -> u64| parts.iter().map(f).sum::<u64>();
    println!(
        "n={} sent={} echoed={} p50_ms={:.2} p99_ms={:.2} cpu={cpu:.3} client_out_pkts={} client_retrans={} threads={}",
        a.n,
        sum(|p| p.sent),
        rtts.len(),
        pct(0.50),
        pct(0.99),
        sum(|p| p.out_pkts),
        sum(|p| p.retrans),
        a.threads
    );
}

/// What one client thread of `active` measured.
struct Part {
    sent: u64,
    rtts: Vec<u32>,
    /// Its dialers' datagrams out and segments retransmitted.
    out_pkts: u64,
    retrans: u64,
}

/// Client thread `k` of `active`: sessions k, k + threads, k + 2 threads…
/// of the `a.n`, each sending at its own phase of the period.
fn active_part(a: &Args, k: usize, origin: Instant) -> Part {
    let cfg = config(a, false);
    let ids: Vec<usize> = (k..a.n).step_by(a.threads).collect();
    let n = ids.len();
    let mut m = Many::new(a, n, &cfg);
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let mut next: Vec<Duration> = ids.iter().map(|&g| period * g as u32 / a.n as u32).collect();
    let mut inbox: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut rtts: Vec<u32> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut touched = Vec::new();
    for i in 0..n {
        m.send(i, &0u64.to_le_bytes());
    }
    let warm = Duration::from_secs(2);
    let end = Duration::from_secs_f64(a.secs) + warm;
    let mut sent = 0u64;
    // Sessions send in the order of their phases: a cursor, not a scan.
    let mut cursor = 0;
    while origin.elapsed() < end {
        let now = origin.elapsed();
        while n > 0 && next[cursor] <= now {
            next[cursor] += period;
            let mut rec = [0u8; 64];
            rec[..8].copy_from_slice(&(origin.elapsed().as_micros() as u64).to_le_bytes());
            m.send(cursor, &rec);
            sent += 1;
            cursor = (cursor + 1) % n;
        }
        m.turn(1, &mut touched);
        for &i in &touched {
            while let Ok(got) = m.dialers[i].recv(&mut buf) {
                inbox[i].extend_from_slice(&buf[..got]);
            }
            while m.dialers[i].poll_event().is_some() {}
            while inbox[i].len() >= 64 {
                let t = u64::from_le_bytes(inbox[i][..8].try_into().unwrap());
                let us = origin.elapsed().as_micros() as u64 - t;
                if Duration::from_micros(t) >= warm {
                    rtts.push(us as u32);
                }
                inbox[i].drain(..64);
            }
        }
    }
    let (mut out_pkts, mut retrans) = (0, 0);
    for d in &m.dialers {
        if let Ok(st) = d.endpoint().session_stats(d.id()) {
            out_pkts += st.out_pkts;
            retrans += st.retrans_segs;
        }
    }
    Part {
        sent,
        rtts,
        out_pkts,
        retrans,
    }
}

fn main() {
    let a = args();
    match a.mode.as_str() {
        "server" => server(&a),
        "bulk" => bulk(&a),
        "idle" => idle(&a),
        "active" => active(&a),
        m => panic!("unknown mode {m}"),
    }
}
