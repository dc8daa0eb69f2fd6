//! 2,000 concurrent sessions on one listener: dialers in this process, 500
//! per thread (each dialer has its own UDP socket), exchange seeded
//! messages with an echoing listener, ping-pong, every byte checked. All
//! sessions are open at once (the listener's MaxConn reaches 2,000) and the
//! run is bounded in time (CI: well under 60 s in a debug build).
//! `KCPX_SCALE_SESSIONS` changes the count.

#[path = "support/echo.rs"]
mod echo;
#[path = "support/sim.rs"]
mod sim;

use echo::{config, EchoServer};
use kcpx::error::Error;
use kcpx::net::{now_ms, Dialer, Listener};
use sim::Rng;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
/// Messages each session sends and gets back, one at a time.
const MESSAGES: usize = 4;
const LIMIT: Duration = Duration::from_secs(120);

/// Raises the soft limit on open files to what `want` descriptors need
/// (up to the hard limit); returns the soft limit.
#[cfg(unix)]
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write the one rlimit on our stack.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

/// One dialer and the messages it exchanges.
struct Client {
    dialer: Dialer,
    data: Vec<u8>,
    /// Where each message ends in `data`.
    ends: Vec<usize>,
    sent: usize,
    got: usize,
    seed: u64,
}

/// Runs `count` clients on this thread until every echo is back; keeps
/// them open until every thread is done (so all sessions overlap).
fn run_clients(to: SocketAddr, first_seed: u64, count: usize, connected: Arc<Barrier>, done: Arc<Barrier>) {
    let mut cfg = config(true, true);
    cfg.set_sockbuf(256 << 10).unwrap();
    let mut clients: Vec<Client> = (0..count as u64)
        .map(|i| {
            let seed = first_seed + i;
            let mut rng = Rng::new(seed);
            let ends: Vec<usize> = (0..MESSAGES)
                .scan(0, |end, _| {
                    *end += 1 + rng.below(1500) as usize;
                    Some(*end)
                })
                .collect();
            Client {
                dialer: Dialer::connect(to, &cfg).unwrap(),
                data: rng.bytes(ends[MESSAGES - 1]),
                ends,
                sent: 0,
                got: 0,
                seed,
            }
        })
        .collect();
    connected.wait();
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    let mut finished = 0;
    while finished < count {
        assert!(
            start.elapsed() < LIMIT,
            "{finished} of {count} sessions done in {LIMIT:?}"
        );
        let now = now_ms();
        let mut progress = false;
        for c in clients.iter_mut() {
            if c.got == c.data.len() {
                continue;
            }
            if c.got == c.sent {
                // The previous message is back: send the next one.
                let end = c.ends[c.ends.partition_point(|&e| e <= c.sent)];
                match c.dialer.send(&c.data[c.sent..end]) {
                    Ok(n) => c.sent += n,
                    Err(Error::Again) => {}
                    Err(e) => panic!("seed {}: send: {e}", c.seed),
                }
            }
            c.dialer.update(now).unwrap();
            while c.dialer.poll_event().is_some() {}
            loop {
                match c.dialer.recv(&mut buf) {
                    Ok(n) => {
                        assert!(
                            c.data[c.got..].starts_with(&buf[..n]),
                            "seed {}: echo corrupted at {}",
                            c.seed,
                            c.got
                        );
                        c.got += n;
                        progress = true;
                        if c.got == c.data.len() {
                            finished += 1;
                        }
                    }
                    Err(Error::Again) => break,
                    Err(e) => panic!(
                        "seed {}: recv: {e} (close reason {:?}, {} of {} bytes echoed, session {:?})",
                        c.seed,
                        c.dialer.endpoint().close_reason(c.dialer.id()),
                        c.got,
                        c.data.len(),
                        c.dialer.endpoint().session_stats(c.dialer.id())
                    ),
                }
            }
        }
        if !progress {
            thread::sleep(Duration::from_millis(1));
        }
    }
    // Keep every session open until all threads are done (the dialers
    // sent their last ACKs when they received).
    done.wait();
    drop(clients);
}

#[test]
fn two_thousand_sessions_on_one_listener() {
    let sessions: usize = std::env::var("KCPX_SCALE_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    #[cfg(unix)]
    {
        let limit = raise_fd_limit(sessions as u64 + 256);
        assert!(
            limit >= sessions as u64 + 64,
            "open-file limit {limit} is too low for {sessions} dialer sockets (ulimit -n)"
        );
    }
    let mut cfg = config(true, true);
    cfg.endpoint.set_limits(sessions + 128, sessions + 128).unwrap();
    let server = EchoServer::serve(Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap());
    let to = server.addr;
    let start = Instant::now();
    let (connected, done) = (Arc::new(Barrier::new(THREADS)), Arc::new(Barrier::new(THREADS)));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let per = sessions / THREADS + usize::from(t < sessions % THREADS);
            let (connected, done) = (connected.clone(), done.clone());
            thread::spawn(move || run_clients(to, 10_000 * t as u64, per, connected, done))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    let stats = server.stop();
    let (e, s) = (stats.endpoint, stats.socket);
    eprintln!(
        "{sessions} sessions x {MESSAGES} messages echoed in {elapsed:?}; listener: {} datagrams in {} recvmmsg, \
         {} out in {} sendmmsg, {e:?}",
        s.recv_datagrams, s.recv_syscalls, s.sent_datagrams, s.send_syscalls
    );
    assert_eq!(e.passive_opens, sessions as u64);
    assert_eq!(e.max_conn, sessions as u64, "all sessions open at once");
    assert_eq!(
        e.dropped_backlog + e.dropped_limit + e.in_csum_errors + e.kcp_in_errors,
        0,
        "{e:?}"
    );
}
