//! The socket layer's batching on real loopback sockets: GSO runs arrive
//! through GRO byte-exact, the kernel's refusal of GSO falls back per socket,
//! and listener/dialer echoes stay byte-exact with offloads on and off.
#![forbid(unsafe_code)]

use super::*;
use crate::error::Error;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use super::sys;

/// Seeded bytes (the suite's PRNG), so a corruption shows where it happened.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    crate::sim::Rng::new(seed).bytes(len)
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
                from: None,
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
        from: None,
        data: &data,
        segment: 1400,
    }];
    let err = sys::send(&tx, &gso).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    let plain = [sys::Msg {
        to,
        from: None,
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
    let loopback = std::net::Ipv4Addr::LOCALHOST.into();
    echo_at((loopback, 0).into(), loopback, server_cfg, client_cfg, len, prepare)
}

/// [`echo`] with the listener bound to `listen` and dialed at `dial` (its
/// port).
fn echo_at(
    listen: SocketAddr,
    dial: std::net::IpAddr,
    server_cfg: &Config,
    client_cfg: &Config,
    len: usize,
    prepare: impl FnOnce(&Dialer),
) -> (ListenerStats, ListenerStats) {
    let data = bytes(len as u64, len);
    let mut server = Listener::bind(listen, server_cfg).unwrap();
    let port = server.local_addr().unwrap().port();
    let mut client = Dialer::connect((dial, port).into(), client_cfg).unwrap();
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

/// A listener bound to 0.0.0.0 replies from the address it was sent to:
/// dialed at 127.0.0.2 (Linux routes all of 127/8 to lo, and the kernel's
/// own choice of source towards the dialer, 127.0.0.1, is what a
/// multi-homed host's primary address would be), its replies come from
/// 127.0.0.2, which the dialer accepts; before, every reply came from
/// 127.0.0.1 and the dialer dropped it. With offloads on (GSO runs carry
/// the source too) and off; and over `[::]` dialed at ::1 (the IPv6 control
/// message).
#[cfg(target_os = "linux")]
#[test]
fn a_wildcard_listener_replies_from_the_address_it_was_sent_to() {
    let secondary: std::net::IpAddr = [127, 0, 0, 2].into();
    if std::net::UdpSocket::bind((secondary, 0)).is_err() {
        eprintln!("*** SKIPPED: 127.0.0.2 is not a local address here ***");
        return;
    }
    let any4: SocketAddr = "0.0.0.0:0".parse().unwrap();
    for offload in [true, false] {
        let (server, client) = echo_at(any4, secondary, &config(offload), &config(offload), 1 << 20, |_| {});
        assert!(server.socket.pktinfo, "{:?}", server.socket);
        assert_eq!(client.endpoint.dropped_unknown, 0, "{:?}", client.endpoint);
        assert_eq!(server.socket.send_errors, 0, "{:?}", server.socket);
        assert!(!client.socket.pktinfo, "a dialer does without");
    }
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        let any6: SocketAddr = "[::]:0".parse().unwrap();
        let (server, _) = echo_at(
            any6,
            "::1".parse().unwrap(),
            &config(true),
            &config(true),
            256 << 10,
            |_| {},
        );
        assert!(
            server.socket.pktinfo && server.socket.send_errors == 0,
            "{:?}",
            server.socket
        );
    }
    // A listener bound to one address needs none of it.
    let (server, _) = echo(&config(true), &config(true), 64 << 10, |_| {});
    assert!(!server.socket.pktinfo);
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

/// Replies to many sessions after one read leave in one `sendmmsg` at the
/// next write, each carrying the ACK of the request it answers: one
/// datagram per session and one system call for all of them.
#[test]
fn replies_to_many_sessions_leave_together_with_their_acks() {
    const N: usize = 32;
    let cfg = config(true);
    let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let addr = server.local_addr().unwrap();
    let mut clients: Vec<Dialer> = (0..N).map(|_| Dialer::connect(addr, &cfg).unwrap()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.send(&bytes(i as u64, 100)).unwrap(), 100);
        c.check(now_ms()); // writes the request
    }
    // Every request waits in the server's socket; one update reads them all.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.update(now_ms()).unwrap(), N);
    let mut ids = Vec::new();
    while let Some(id) = server.accept() {
        ids.push(id);
    }
    assert_eq!(ids.len(), N);
    let mut buf = [0u8; 256];
    for &id in &ids {
        let n = server.recv(id, &mut buf).unwrap();
        assert_eq!(server.send(id, &buf[..n]).unwrap(), n);
    }
    let before = server.stats().socket;
    server.write_queued();
    let after = server.stats().socket;
    eprintln!("before {before:?}\nafter {after:?}");
    assert_eq!(after.send_syscalls - before.send_syscalls, 1, "one sendmmsg");
    assert_eq!(
        after.sent_datagrams - before.sent_datagrams,
        N as u64,
        "ACKs ride in the replies"
    );
    // Each client gets its own request back.
    let start = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        loop {
            assert!(start.elapsed() < Duration::from_secs(10), "client {i} got no reply");
            c.update(now_ms()).unwrap();
            if let Ok(n) = c.recv(&mut buf) {
                assert_eq!(&buf[..n], &bytes(i as u64, 100)[..]);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A listener with receive coalescing, driven by `wait` on its own thread,
/// echoes many dialers byte-exact and reads several datagrams per system
/// call although they arrive one by one.
#[test]
fn coalescing_listener_echoes_and_batches_reads() {
    const N: usize = 8;
    const MESSAGES: usize = 100;
    let mut cfg = config(true);
    assert_eq!(cfg.set_coalesce(COALESCE_MAX_US + 1), Err(Error::Invalid));
    cfg.set_coalesce(3000).unwrap();
    let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            server.wait(10).unwrap();
            while let Some(ev) = server.poll_event() {
                if let crate::endpoint::Event::Readable(id) = ev {
                    while let Ok(n) = server.recv(id, &mut buf) {
                        assert_eq!(server.send(id, &buf[..n]).unwrap(), n);
                    }
                }
            }
        }
        server.stats().socket
    });
    let mut clients: Vec<Dialer> = (0..N).map(|_| Dialer::connect(addr, &cfg).unwrap()).collect();
    let data: Vec<Vec<u8>> = (0..N).map(|i| bytes(i as u64 + 100, 64 * MESSAGES)).collect();
    let mut got = vec![Vec::new(); N];
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    for m in 0..MESSAGES {
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(&data[i][m * 64..][..64]).unwrap();
            c.update(now_ms()).unwrap();
            while let Ok(n) = c.recv(&mut buf) {
                got[i].extend_from_slice(&buf[..n]);
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    while got.iter().zip(&data).any(|(g, d)| g.len() < d.len()) {
        assert!(start.elapsed() < Duration::from_secs(30), "echo stalled");
        for (i, c) in clients.iter_mut().enumerate() {
            c.update(now_ms()).unwrap();
            while let Ok(n) = c.recv(&mut buf) {
                got[i].extend_from_slice(&buf[..n]);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, data, "byte-exact echo");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let s = thread.join().unwrap();
    eprintln!("listener {s:?}");
    assert!(s.recv_datagrams >= 2 * s.recv_syscalls, "reads batch: {s:?}");
}

/// The receive batch grows with a burst and shrinks back to one buffer once
/// the listener has been quiet for a second or two.
#[cfg(target_os = "linux")]
#[test]
fn receive_batch_shrinks_after_a_burst() {
    let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), &config(true)).unwrap();
    let to = server.local_addr().unwrap();
    let first = server.driver.rx_bytes();
    // Junk from many sockets (dropped and counted): recvmmsg fills its
    // batch, which doubles up to its limit.
    let blasters: Vec<_> = (0..64).map(|_| loopback()).collect();
    let junk = bytes(5, 1200);
    let t0 = now_ms();
    for round in 0..40 {
        for b in &blasters {
            let _ = b.send_to(&junk, to);
        }
        server.driver.update(t0).unwrap();
        if round % 8 == 7 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let peak = server.driver.rx_bytes();
    assert!(peak >= 8 * first, "the batch grew: {first} -> {peak}");
    // Quiet: within two seconds (the burst's second still counts), the
    // batch is trimmed.
    server.driver.update(t0.wrapping_add(1100)).unwrap();
    server.driver.update(t0.wrapping_add(2200)).unwrap();
    let after = server.driver.rx_bytes();
    eprintln!("receive batch {first} -> {peak} -> {after} bytes");
    assert_eq!(after, first, "back to one buffer");
    // Quiet for QUIET_AFTER_MS after traffic: the endpoint shrank and the
    // heap went back to the system, once.
    assert_eq!(server.stats().socket.heap_trims, 1);
    server.driver.update(t0.wrapping_add(4400)).unwrap();
    assert_eq!(server.stats().socket.heap_trims, 1);
}

/// A dialer that goes quiet after traffic shrinks its receive batch too,
/// but leaves `malloc_trim` to listeners (a process may hold thousands of
/// dialers going quiet together); its listener trims once.
#[cfg(target_os = "linux")]
#[test]
fn only_listeners_trim_the_heap_when_quiet() {
    let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), &config(true)).unwrap();
    let mut client = Dialer::connect(server.local_addr().unwrap(), &config(true)).unwrap();
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 64];
    let mut got = 0;
    for _ in 0..500 {
        client.wait(2).unwrap();
        server.wait(2).unwrap();
        while let Some(ev) = server.poll_event() {
            if let Event::Readable(id) = ev {
                while let Ok(n) = server.recv(id, &mut buf) {
                    got += n;
                }
            }
        }
        if got == 5 {
            break;
        }
    }
    assert_eq!(got, 5);
    let t = now_ms();
    for dt in [500, 1000, 1500, 2000, 2500, 3000] {
        client.driver.update(t.wrapping_add(dt)).unwrap();
        server.driver.update(t.wrapping_add(dt)).unwrap();
    }
    assert_eq!(server.stats().socket.heap_trims, 1);
    assert_eq!(client.stats().endpoint.quiet_shrinks, 1);
    assert_eq!(client.stats().socket.heap_trims, 0);
}

/// An update reads a bounded batch: with more datagrams waiting after it,
/// `check` says "now" (an edge-triggered epoll would not wake for them, and
/// a datagram behind 6,000 junk ones waited a second), and `wait` does not
/// block; once the socket is read empty, `check` is a timer's time again.
#[test]
fn check_is_due_now_while_the_read_budget_left_datagrams() {
    let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &Config::default()).unwrap();
    let to = l.local_addr().unwrap();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let n = socket::RX_BUDGET + 1904;
    for i in 0..n {
        junk.send_to(&[i as u8; 8], to).unwrap();
    }
    // A loopback send_to returns once the datagram is in the listener's queue.
    let now = now_ms();
    let first = l.update(now).unwrap();
    assert!(
        (socket::RX_BUDGET..n).contains(&first),
        "one update reads the budget: {first}"
    );
    assert_eq!(l.check(now), now, "datagrams left: due now");
    let second = l.wait(1000).unwrap();
    assert_eq!(first + second, n, "the rest read at once");
    let now = now_ms();
    assert_ne!(l.check(now), now, "read empty: nothing due now");
    assert_eq!(
        l.stats().endpoint.in_errs + l.stats().endpoint.dropped_unknown,
        n as u64
    );
}

/// A listener driven with the caller's own clock, far from kcpx's (10^9 ms
/// ahead, or about to wrap past `u32::MAX`): the session layer runs its
/// timers on one clock whatever `update` and `check` are given, so an echo
/// keeps a sane RTT and no spurious close, `check`'s answer is on the
/// caller's clock, and a peer that goes silent times out as idle (not as a
/// dead link). With the caller's time in `update` and kcpx's in `send`,
/// the session saw a 10^9 ms RTT and closed as a dead link.
#[test]
fn a_listener_on_the_callers_own_clock_keeps_its_timers() {
    for offset in [1_000_000_000u32, u32::MAX - now_ms() - 300] {
        let clock = || now_ms().wrapping_add(offset);
        let mut cfg = config(true);
        cfg.endpoint.set_idle_timeout(800);
        let mut server = Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
        let mut client = Dialer::connect(server.local_addr().unwrap(), &config(true)).unwrap();
        let (mut id, mut echoed, mut buf) = (None, 0usize, vec![0u8; 4096]);
        let start = Instant::now();
        for round in 0..40u8 {
            client.send(&[round; 100]).unwrap();
            let want = 100 * (usize::from(round) + 1);
            while echoed < want {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "offset {offset}: echo stalled at {echoed}"
                );
                client.update(now_ms()).unwrap();
                server.update(clock()).unwrap();
                id = id.or_else(|| server.accept());
                if let Some(id) = id {
                    while let Ok(n) = server.recv(id, &mut buf) {
                        assert_eq!(server.send(id, &buf[..n]).unwrap(), n);
                    }
                }
                let now = clock();
                let due = server.check(now);
                assert!(
                    due.wrapping_sub(now) <= 1000,
                    "offset {offset}: check {due} is not on the caller's clock {now}"
                );
                while let Ok(n) = client.recv(&mut buf) {
                    echoed += n;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let id = id.unwrap();
        assert_eq!(server.endpoint().close_reason(id), Ok(None), "offset {offset}");
        let (srtt, rto) = server.endpoint().rtt(id).unwrap();
        assert!(
            (0..1000).contains(&srtt) && rto < 5000,
            "offset {offset}: srtt {srtt} rto {rto}"
        );
        // Let the last ACKs through, then the client goes silent.
        for _ in 0..20 {
            client.update(now_ms()).unwrap();
            server.update(clock()).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(client);
        let reason = loop {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "offset {offset}: no idle close"
            );
            server.wait(50).unwrap();
            let _ = server.update(clock());
            if let Ok(Some(r)) = server.endpoint().close_reason(id) {
                break r;
            }
        };
        assert_eq!(reason, CloseReason::Idle, "offset {offset}");
    }
}
