//! One-way throughput of one kcpx session over loopback, with the socket
//! offloads (UDP GSO/GRO) on and then off, and the datagrams moved per
//! system call at each end:
//!
//! ```sh
//! cargo run --release --example session_throughput -- [MiB, default 256] [--crypt]
//! ```
//!
//! Stream mode, windows 1024, nodelay(1, 10, 2, 1), no FEC; `--crypt` adds
//! AES-128. A measurement, not a test: figures depend on the machine's load.

use kcpx::error::Error;
use kcpx::net::{now_ms, Config, Dialer, Listener, ListenerStats};
use std::time::Instant;

fn config(offload: bool, crypt: bool) -> Config {
    let mut cfg = Config::default();
    let c = &mut cfg.endpoint.conn;
    c.set_nodelay(1, 10, 2, 1);
    c.set_window(1024, 1024).unwrap();
    c.set_stream(true);
    if crypt {
        c.set_crypt(Some("aes-128"), &[7; 16]).unwrap();
    }
    cfg.offload = offload;
    cfg
}

/// Sends `total` bytes from a dialer to a listener on another thread;
/// returns seconds, both ends' counters and the segments retransmitted.
fn run(cfg: &Config, total: usize) -> (f64, ListenerStats, ListenerStats, u64) {
    let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), cfg).unwrap();
    let addr = server.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut got, mut id, mut buf) = (0, None, vec![0u8; 1 << 16]);
        while got < total {
            server.wait(5).unwrap();
            id = id.or_else(|| server.accept());
            if let Some(id) = id {
                while let Ok(n) = server.recv(id, &mut buf) {
                    got += n;
                }
            }
        }
        server.stats()
    });
    let start = Instant::now();
    let mut client = Dialer::connect(addr, cfg).unwrap();
    let chunk = vec![0x5au8; 1 << 16];
    let mut sent = 0;
    while !sink.is_finished() {
        while sent < total {
            match client.send(&chunk[..chunk.len().min(total - sent)]) {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        client.wait(2).unwrap();
        while client.poll_event().is_some() {}
        client.update(now_ms()).unwrap();
    }
    let server = sink.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let retrans = client
        .endpoint()
        .session_stats(client.id())
        .map_or(0, |s| s.retrans_segs);
    (secs, server, client.stats(), retrans)
}

fn per_call(datagrams: u64, calls: u64) -> f64 {
    datagrams as f64 / calls.max(1) as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(256);
    let crypt = args.iter().any(|a| a == "--crypt");
    println!(
        "{mib} MiB one way over 127.0.0.1, {}",
        if crypt { "AES-128" } else { "no cipher" }
    );
    for offload in [true, false, true, false] {
        let (secs, server, client, retrans) = run(&config(offload, crypt), mib << 20);
        let (s, c) = (server.socket, client.socket);
        println!(
            "offload {:5}: {:7.1} MB/s  sender: {:5.1} datagrams/sendmmsg ({} GSO sends, gso {})  \
             receiver: {:5.1} datagrams/recvmmsg ({} GRO buffers)  ACKs back: {:4.1}/sendmmsg  \
             retransmitted {}",
            offload,
            (mib << 20) as f64 / secs / 1e6,
            per_call(c.sent_datagrams, c.send_syscalls),
            c.gso_sends,
            c.gso,
            per_call(s.recv_datagrams, s.recv_syscalls),
            s.gro_receives,
            per_call(s.sent_datagrams, s.send_syscalls),
            retrans,
        );
    }
}
