//! A recording UDP relay for replay attacks: clients send to the tap, which
//! forwards to the upstream from one socket per client (so the upstream sees
//! one address per client, as behind a NAT) and relays the replies back,
//! keeping a copy of the first [`Tap::start`]`(.., keep)` datagrams of each
//! direction. Nothing is altered or dropped. Loopback only; bounded: at most
//! `keep` copies per direction, [`MAX_CLIENTS`] clients; dropping the tap
//! stops its thread within a few milliseconds and closes its sockets.
//! Include with `#[path = "support/tap.rs"] mod tap;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Clients one tap relays at most.
pub const MAX_CLIENTS: usize = 64;

/// One recorded datagram: the client it belongs to (its address as the tap
/// saw it) and the bytes.
#[derive(Clone, Debug)]
pub struct Captured {
    pub client: SocketAddr,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Log {
    up: Vec<Captured>,
    down: Vec<Captured>,
}

/// A running tap.
pub struct Tap {
    local: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tap {
    /// Listens on 127.0.0.1:0 and relays to `upstream` (a loopback address),
    /// recording the first `keep` datagrams of each direction.
    pub fn start(upstream: SocketAddr, keep: usize) -> io::Result<Tap> {
        assert!(upstream.ip().is_loopback(), "the tap relays to loopback only");
        let front = UdpSocket::bind("127.0.0.1:0")?;
        front.set_read_timeout(Some(Duration::from_millis(1)))?;
        let local = front.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || relay(front, upstream, keep, &l, &s));
        Ok(Tap {
            local,
            log,
            stop,
            thread: Some(thread),
        })
    }

    /// Where clients send.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Copies of client → upstream datagrams, in arrival order.
    pub fn up(&self) -> Vec<Captured> {
        self.log.lock().unwrap().up.clone()
    }

    /// Copies of upstream → client datagrams, in arrival order.
    pub fn down(&self) -> Vec<Captured> {
        self.log.lock().unwrap().down.clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay(front: UdpSocket, upstream: SocketAddr, keep: usize, log: &Mutex<Log>, stop: &AtomicBool) {
    let mut clients: Vec<(SocketAddr, UdpSocket)> = Vec::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let record = |up: bool, client: SocketAddr, bytes: &[u8]| {
        let mut log = log.lock().unwrap();
        let list = if up { &mut log.up } else { &mut log.down };
        if list.len() < keep {
            list.push(Captured {
                client,
                bytes: bytes.to_vec(),
            });
        }
    };
    while !stop.load(Ordering::Relaxed) {
        // The front socket blocks up to 1 ms: the loop's only pause.
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            let i = match by_addr.get(&from) {
                Some(&i) => i,
                None if clients.len() < MAX_CLIENTS => {
                    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
                        continue;
                    };
                    let _ = sock.set_nonblocking(true);
                    clients.push((from, sock));
                    by_addr.insert(from, clients.len() - 1);
                    clients.len() - 1
                }
                None => continue,
            };
            record(true, from, &buf[..n]);
            let _ = clients[i].1.send_to(&buf[..n], upstream);
            if front.set_nonblocking(true).is_err() {
                break;
            }
        }
        let _ = front.set_nonblocking(false);
        for (client, sock) in &clients {
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if from == upstream {
                    record(false, *client, &buf[..n]);
                    let _ = front.send_to(&buf[..n], client);
                }
            }
        }
    }
}
