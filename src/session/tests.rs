//! The socket layer's batching on real loopback sockets: GSO runs arrive
//! through GRO byte-exact, the kernel's refusal of GSO falls back per socket,
//! and listener/dialer echoes stay byte-exact with offloads on and off.
#![forbid(unsafe_code)]

use super::*;
use crate::error::Error;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use super::sys;

/// Seeded bytes (xorshift), so a corruption shows where it happened.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[cfg(target_os = "linux")]
fn loopback() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// Reads with recvmmsg until `want` datagrams arrived (or 5 s passed),
/// splitting GRO buffers by the reported segment size. Returns the datagrams
/// and how many buffers held more than one.
#[cfg(target_os = "linux")]
fn receive(rx: &std::net::UdpSocket, slot: usize, want: usize) -> (Vec<Vec<u8>>, usize) {
    let mut buf = vec![0u8; slot * 8];
    let mut meta = Vec::new();
    let (mut got, mut coalesced) = (Vec::new(), 0);
    let start = Instant::now();
    while got.len() < want && start.elapsed() < Duration::from_secs(5) {
        match sys::recv(rx, &mut buf, slot, &mut meta) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => panic!("recvmmsg: {e}"),
        }
        for (i, m) in meta.iter().enumerate() {
            let data = &buf[i * slot..][..m.len];
            if m.segment > 0 && m.len > m.segment {
                coalesced += 1;
                got.extend(data.chunks(m.segment).map(<[u8]>::to_vec));
            } else {
                got.push(data.to_vec());
            }
        }
    }
    (got, coalesced)
}

/// Runs of same-size datagrams (the last of a run shorter) sent as GSO
/// messages in one sendmmsg arrive as the same datagrams, in order, through
/// GRO; and the same runs without GRO at the receiver.
#[cfg(target_os = "linux")]
#[test]
fn gso_runs_arrive_through_gro_byte_exact() {
    let tx = loopback();
    assert!(sys::enable_gso(&tx), "this kernel (Linux 4.18+) has UDP GSO");
    for gro in [true, false] {
        let rx = loopback();
        if gro {
            assert!(sys::enable_gro(&rx), "this kernel (Linux 5.0+) has UDP GRO");
        }
        let to = rx.local_addr().unwrap();
        // (segment size, datagrams, size of the last): full runs, a short
        // tail, the 64-segment limit, a single datagram.
        let shapes = [
            (1400usize, 10usize, 700usize),
            (1400, 46, 1400),
            (512, 64, 1),
            (1200, 1, 1200),
        ];
        let mut expected = Vec::new();
        let mut runs = Vec::new();
        for (k, &(size, count, last)) in shapes.iter().enumerate() {
            let run: Vec<Vec<u8>> = (0..count)
                .map(|i| bytes((k * 1000 + i) as u64, if i + 1 == count { last } else { size }))
                .collect();
            runs.push((run.concat(), if count > 1 { size as u16 } else { 0 }));
            expected.extend(run);
        }
        let msgs: Vec<sys::Msg> = runs
            .iter()
            .map(|(data, segment)| sys::Msg {
                to,
                data,
                segment: *segment,
            })
            .collect();
        assert_eq!(sys::send(&tx, &msgs).unwrap(), msgs.len());
        let slot = if gro { sys::GRO_BUFFER } else { 2048 };
        let (got, coalesced) = receive(&rx, slot, expected.len());
        assert_eq!(got.len(), expected.len(), "gro {gro}");
        assert!(got == expected, "gro {gro}: datagrams differ");
        if gro {
            assert!(coalesced > 0, "GRO coalesced nothing on loopback");
        } else {
            assert_eq!(coalesced, 0);
        }
    }
}

/// With UDP checksums off the kernel refuses GSO (EINVAL): the error the
/// driver's fallback catches.
#[cfg(target_os = "linux")]
#[test]
fn the_kernel_refuses_gso_without_checksums() {
    let (tx, rx) = (loopback(), loopback());
    assert!(sys::enable_gso(&tx));
    sys::disable_checksums(&tx).unwrap();
    let data = bytes(1, 2800);
    let to = rx.local_addr().unwrap();
    let gso = [sys::Msg {
        to,
        data: &data,
        segment: 1400,
    }];
    let err = sys::send(&tx, &gso).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    let plain = [sys::Msg {
        to,
        data: &data[..1400],
        segment: 0,
    }];
    assert_eq!(sys::send(&tx, &plain).unwrap(), 1);
}

fn config(offload: bool) -> Config {
    let mut cfg = Config::default();
    let c = &mut cfg.endpoint.conn;
    c.set_nodelay(1, 10, 2, 1);
    c.set_window(1024, 1024).unwrap();
    c.set_stream(true);
    c.set_crypt(Some("aes-128"), &[7; 16]).unwrap();
    cfg.offload = offload;
    cfg
}

/// Echoes `len` bytes between a dialer and a listener driven by this one
/// thread; `prepare` may change the dialer's socket first. Returns the
/// listener's and the dialer's counters.
fn echo(
    server_cfg: &Config,
    client_cfg: &Config,
    len: usize,
    prepare: impl FnOnce(&Dialer),
) -> (ListenerStats, ListenerStats) {
    let data = bytes(len as u64, len);
    let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let mut client = Dialer::connect(server.local_addr().unwrap(), client_cfg).unwrap();
    prepare(&client);
    let (mut sent, mut got, mut echo_queue) = (0, Vec::new(), Vec::new());
    let mut id = None;
    let mut buf = vec![0u8; 1 << 16];
    let start = Instant::now();
    while got.len() < len {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {len} echoed",
            got.len()
        );
        while sent < len {
            match client.send(&data[sent..(sent + 65536).min(len)]) {
                Ok(n) => sent += n,
                Err(Error::Again) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        client.update(now_ms()).unwrap();
        server.update(now_ms()).unwrap();
        id = id.or_else(|| server.accept());
        if let Some(id) = id {
            while let Ok(n) = server.recv(id, &mut buf) {
                echo_queue.extend_from_slice(&buf[..n]);
            }
            while !echo_queue.is_empty() {
                match server.send(id, &echo_queue) {
                    Ok(n) => drop(echo_queue.drain(..n)),
                    Err(_) => break,
                }
            }
        }
        while let Ok(n) = client.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert!(data.starts_with(&got), "echo corrupted at {}", got.len());
        std::thread::sleep(Duration::from_micros(200));
    }
    (server.stats(), client.stats())
}

/// A bulk echo with offloads on: byte-exact, several datagrams per system
/// call, GSO sends and (on loopback) GRO buffers at both ends.
#[test]
fn echo_with_batching_and_offloads() {
    let (server, client) = echo(&config(true), &config(true), 4 << 20, |_| {});
    eprintln!("listener {:?}\ndialer {:?}", server.socket, client.socket);
    for s in [server.socket, client.socket] {
        assert!(s.sent_datagrams > s.send_syscalls, "{s:?}");
        assert!(s.recv_datagrams > s.recv_syscalls / 2, "{s:?}");
        #[cfg(target_os = "linux")]
        {
            assert!(s.gso && s.gro && s.gso_sends > 0 && s.gro_receives > 0, "{s:?}");
            assert_eq!(s.gso_fallbacks, 0);
        }
    }
}

/// Offloads off at one end: still byte-exact, no GSO or GRO there.
#[test]
fn echo_without_offloads() {
    let (server, client) = echo(&config(false), &config(true), 1 << 20, |_| {});
    assert!(!server.socket.gso && !server.socket.gro && server.socket.gso_sends == 0);
    assert_eq!(server.socket.gro_receives, 0);
    assert!(server.socket.sent_datagrams > 0 && client.socket.sent_datagrams > 0);
}

/// A socket whose GSO sends the kernel refuses falls back to one datagram
/// per message once, counts it, and loses nothing.
#[cfg(target_os = "linux")]
#[test]
fn echo_falls_back_when_the_kernel_refuses_gso() {
    let (_, client) = echo(&config(true), &config(true), 2 << 20, |d| {
        sys::disable_checksums(d.driver.socket()).unwrap()
    });
    let s = client.socket;
    eprintln!("dialer {s:?}");
    assert_eq!(s.gso_fallbacks, 1, "{s:?}");
    assert!(!s.gso && s.gro, "{s:?}");
    assert!(s.sent_datagrams > s.send_syscalls, "sendmmsg still batches: {s:?}");
}
