//! Echo helpers over real sockets shared by the session tests: the usual
//! test configuration, a listener on its own thread echoing every session,
//! and a dialer that sends seeded bytes and checks the echo byte for byte.
#![allow(dead_code)] // each test file uses a part

use super::sim::Rng;
use kcpx::error::Error;
use kcpx::net::{Config, Dialer, Event, Listener, SessionId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub fn config(fec: bool, crypt: bool) -> Config {
    let mut cfg = Config::default();
    let c = &mut cfg.endpoint.conn;
    c.set_nodelay(1, 10, 2, 1);
    c.set_window(1024, 1024).unwrap();
    c.set_stream(true);
    if fec {
        c.set_fec(10, 3).unwrap();
    }
    if crypt {
        c.set_crypt(Some("aes-128"), &[0x11; 16]).unwrap();
    }
    cfg
}

/// A listener on its own thread echoing every session's bytes until `stop`,
/// which returns its counters after reading every datagram that arrived
/// before it.
pub struct EchoServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<kcpx::net::ListenerStats>>,
}

impl EchoServer {
    pub fn start(bind: &str, cfg: &Config) -> EchoServer {
        EchoServer::serve(Listener::bind(bind.parse().unwrap(), cfg).unwrap())
    }

    /// Echoes on `listener` from a new thread.
    pub fn serve(mut listener: Listener) -> EchoServer {
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            // Bytes received but not yet accepted by send, per session.
            let mut pending: HashMap<SessionId, Vec<u8>> = HashMap::new();
            let mut buf = vec![0u8; 64 * 1024];
            while !flag.load(Ordering::Relaxed) {
                listener.wait(5).unwrap();
                while let Some(ev) = listener.poll_event() {
                    match ev {
                        Event::Accept(id) => drop(pending.insert(id, Vec::new())),
                        // Unreliable messages come back at once, as they are.
                        Event::Datagram(id) => {
                            while let Ok(n) = listener.recv_datagram(id, &mut buf) {
                                let _ = listener.send_datagram(id, &buf[..n]);
                            }
                        }
                        _ => {}
                    }
                }
                for (id, queue) in pending.iter_mut() {
                    loop {
                        if !queue.is_empty() {
                            match listener.send(*id, queue) {
                                Ok(n) => drop(queue.drain(..n)),
                                Err(Error::Again | Error::Closed) => break,
                                Err(e) => panic!("echo send: {e}"),
                            }
                            if !queue.is_empty() {
                                break;
                            }
                        }
                        match listener.recv(*id, &mut buf) {
                            Ok(n) => queue.extend_from_slice(&buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
            }
            // Count what arrived before `stop` too.
            while listener.update(kcpx::net::now_ms()).unwrap() > 0 {}
            listener.stats()
        });
        EchoServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> kcpx::net::ListenerStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Sends `len` seeded bytes through a dialer to `to` and checks the echo
/// byte for byte, within `limit`. Returns the dialer's session counters.
pub fn echo_through(to: SocketAddr, cfg: &Config, seed: u64, len: usize, limit: Duration) -> kcpx::conn::ConnStats {
    eprintln!("echo_through {to} seed {seed} {len} bytes");
    let data = Rng::new(seed).bytes(len);
    let mut client = Dialer::connect(to, cfg).unwrap();
    let (mut sent, mut got) = (0usize, Vec::with_capacity(len));
    let mut buf = vec![0u8; 50_000];
    let start = Instant::now();
    while got.len() < len {
        assert!(
            start.elapsed() < limit,
            "seed {seed}: {} of {len} bytes echoed in {limit:?}",
            got.len()
        );
        while sent < len {
            match client.send(&data[sent..(sent + 65536).min(len)]) {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => panic!("seed {seed}: send: {e}"),
            }
        }
        client.wait(5).unwrap();
        while client.poll_event().is_some() {}
        loop {
            match client.recv(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Error::Again) => break,
                Err(e) => panic!("seed {seed}: recv: {e}"),
            }
        }
        assert!(data.starts_with(&got), "seed {seed}: echo corrupted at {}", got.len());
    }
    let stats = client.endpoint().session_stats(client.id()).unwrap();
    client.close(500);
    stats
}
