//! Tests of the lossy UDP relay in `tests/support/relay.rs`, on 127.0.0.1 with
//! plain UDP sockets on both sides. Every relay gets a fixed seed (printed by the
//! relay); every blocking read has a timeout.

#[path = "support/relay.rs"]
mod relay;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/skip.rs"]
mod skip;

use relay::{DirStats, Relay, RelayConfig, RelayStats};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Catches a datagram that never comes, however loaded the machine.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn udp(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

fn cfg(seed: u64) -> RelayConfig {
    RelayConfig {
        seed,
        ..Default::default()
    }
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no datagram within {READ_TIMEOUT:?} on {:?}: {e}", s.local_addr()));
    buf.truncate(n);
    (buf, from)
}

/// Nothing arrives within `wait`.
fn silent(s: &UdpSocket, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let r = s.recv_from(&mut [0u8; 2048]);
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    r.is_err()
}

fn wait_until(what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Seeded test payloads (the tests' one generator, tests/support/sim.rs).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    sim::Rng::new(seed).bytes(len)
}

/// Everything that entered the direction has left it (sent, dropped or failed).
fn settled(d: DirStats, base: DirStats) -> bool {
    let came = d.received - base.received + d.duplicated - base.duplicated;
    let went = (d.forwarded - base.forwarded)
        + (d.dropped - base.dropped)
        + (d.overflow - base.overflow)
        + (d.send_errors - base.send_errors);
    came == went
}

/// Sends `n` numbered 100-byte datagrams from `src` to `dst` in batches of 50 (so
/// no socket buffer overflows), reads what the relay forwards at `sink`, and returns
/// the numbers in arrival order. `dir` reads the direction's counters.
fn pump(src: &UdpSocket, dst: SocketAddr, sink: &UdpSocket, n: u32, dir: impl Fn() -> DirStats) -> Vec<u32> {
    let base = dir();
    let mut got = Vec::new();
    let mut sent = 0;
    while sent < n {
        let end = (sent + 50).min(n);
        for i in sent..end {
            let mut d = i.to_le_bytes().to_vec();
            d.resize(100, 0xa5);
            src.send_to(&d, dst).unwrap();
        }
        sent = end;
        let what = || format!("the relay to take and release a batch: {:?}, base {base:?}", dir());
        wait_until(what, || {
            let d = dir();
            d.received - base.received == u64::from(sent) && settled(d, base)
        });
        let forwarded = dir().forwarded - base.forwarded;
        while (got.len() as u64) < forwarded {
            let (d, _) = recv(sink);
            assert_eq!(d.len(), 100);
            got.push(u32::from_le_bytes(d[..4].try_into().unwrap()));
        }
    }
    got
}

/// The address the upstream sees for `client` (on a fresh relay): sends hellos
/// until one arrives, then reads the other hellos that got through.
fn source_of(client: &UdpSocket, relay: &Relay, upstream: &UdpSocket) -> SocketAddr {
    let mut from = None;
    let mut sent = 0;
    while from.is_none() {
        assert!(sent < 200, "no hello got through");
        client.send_to(b"hello", relay.local_addr()).unwrap();
        sent += 1;
        upstream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        if let Ok((5, a)) = upstream.recv_from(&mut [0u8; 16]) {
            from = Some(a);
        }
        upstream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    }
    wait_until(
        || format!("the hellos to settle: {:?}", relay.stats()),
        || {
            let d = relay.stats().up;
            d.received == sent && settled(d, DirStats::default())
        },
    );
    for _ in 1..relay.stats().up.forwarded {
        assert_eq!(recv(upstream).0, b"hello");
    }
    from.unwrap()
}

#[test]
fn lossless_relay_is_byte_exact_both_ways_with_one_upstream_port_per_client() {
    let upstream = udp("127.0.0.1:0");
    let relay = Relay::start(upstream.local_addr().unwrap(), cfg(1)).unwrap();
    let clients: Vec<UdpSocket> = (0..3).map(|_| udp("127.0.0.1:0")).collect();
    let mut sources: Vec<Option<SocketAddr>> = vec![None; clients.len()];
    let (mut sent, mut bytes) = (0u64, 0u64);
    for round in 0..20u64 {
        // 10 datagrams per client of 2..=1400 bytes (the first two bytes name the
        // client); round 0 adds an empty and a maximal one.
        let mut lens: Vec<usize> = (0..10).map(|j| 2 + (round as usize * 131 + j * 97) % 1399).collect();
        if round == 0 {
            lens.push(0);
        }
        let msgs = |k: usize| -> Vec<Vec<u8>> {
            // One maximal datagram from client 0 (three would overflow the relay's
            // receive buffer: 208 KiB by default).
            let big = if round == 0 && k == 0 { Some(65507) } else { None };
            lens.iter()
                .chain(big.iter())
                .enumerate()
                .map(|(j, &len)| {
                    let mut d = payload(round * 1000 + k as u64 * 100 + j as u64, len);
                    if len >= 2 {
                        d[0] = k as u8;
                        d[1] = j as u8;
                    }
                    d
                })
                .collect()
        };
        for (k, c) in clients.iter().enumerate() {
            for m in msgs(k) {
                c.send_to(&m, relay.local_addr()).unwrap();
                sent += 1;
                bytes += m.len() as u64;
            }
        }
        // Upstream: every datagram byte-exact, in order per client, each client from
        // one source address.
        let mut next = vec![0usize; clients.len()];
        for _ in 0..clients.len() * lens.len() + usize::from(round == 0) {
            let (d, from) = recv(&upstream);
            let k = match sources.iter().position(|s| *s == Some(from)) {
                Some(k) => k,
                None => {
                    let k = if d.len() >= 2 {
                        d[0] as usize
                    } else {
                        panic!("first datagram from {from} too short to tell the client")
                    };
                    assert!(sources[k].is_none(), "client {k} seen from two sources");
                    sources[k] = Some(from);
                    k
                }
            };
            assert_eq!(d, msgs(k)[next[k]], "round {round} client {k} datagram {}", next[k]);
            next[k] += 1;
            // Echo it back reversed, to the source the upstream saw.
            let mut r = d.clone();
            r.reverse();
            upstream.send_to(&r, from).unwrap();
        }
        for (k, c) in clients.iter().enumerate() {
            for m in msgs(k) {
                let (d, from) = recv(c);
                assert_eq!(from, relay.local_addr(), "replies come from the relay's front address");
                let mut want = m.clone();
                want.reverse();
                assert_eq!(d, want, "round {round}: reply to client {k}");
            }
        }
    }
    let sources: Vec<SocketAddr> = sources.into_iter().map(Option::unwrap).collect();
    for (i, a) in sources.iter().enumerate() {
        assert_ne!(a.port(), relay.local_addr().port());
        assert!(sources[i + 1..].iter().all(|b| b.port() != a.port()), "{sources:?}");
    }
    // The relay counts a datagram after handing it to the kernel, so a reply
    // can reach its client before the count: wait for the counters to settle.
    wait_until(
        || format!("{:?}", relay.stats()),
        || {
            let st = relay.stats();
            [st.up, st.down].iter().all(|d| d.forwarded == sent && d.bytes == bytes)
        },
    );
    let st = relay.stats();
    eprintln!("{st:?}");
    assert_eq!(st.clients, 3);
    for d in [st.up, st.down] {
        assert_eq!((d.received, d.forwarded, d.bytes), (sent, sent, bytes));
        assert_eq!(d.dropped + d.duplicated + d.reordered + d.overflow + d.send_errors, 0);
    }
    assert_eq!(relay.kernel_drops().unwrap(), 0);
    // Dropping stops the relay's thread and closes its sockets: its port is
    // free again. The deadline only catches a hang.
    let front = relay.local_addr();
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(relay);
        let _ = done.send(());
    });
    dropped
        .recv_timeout(Duration::from_secs(30))
        .expect("dropping the relay hung");
    UdpSocket::bind(front).expect("the relay's port is still bound after the drop");
}

#[test]
fn ipv6_upstream_gets_an_ipv6_relay() {
    let upstream = match UdpSocket::bind("[::1]:0") {
        Ok(s) => s,
        Err(e) => return skip::optional("ipv6_upstream_gets_an_ipv6_relay", &format!("no IPv6 loopback ({e})")),
    };
    upstream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let relay = Relay::start(upstream.local_addr().unwrap(), cfg(2)).unwrap();
    assert!(relay.local_addr().is_ipv6());
    let client = udp("[::1]:0");
    client.send_to(b"ping", relay.local_addr()).unwrap();
    let (d, from) = recv(&upstream);
    assert_eq!(d, b"ping");
    upstream.send_to(b"pong", from).unwrap();
    assert_eq!(recv(&client).0, b"pong");
}

#[test]
fn loss_is_seeded_independent_per_direction_and_near_its_rate() {
    let seed = 0x5eed_0003;
    let n = 2000;
    let run = || {
        let upstream = udp("127.0.0.1:0");
        let c = RelayConfig { loss: 0.3, ..cfg(seed) };
        let relay = Relay::start(upstream.local_addr().unwrap(), c).unwrap();
        let client = udp("127.0.0.1:0");
        let via = source_of(&client, &relay, &upstream);
        let up = pump(&client, relay.local_addr(), &upstream, n, || relay.stats().up);
        let down = pump(&upstream, via, &client, n, || relay.stats().down);
        let st = relay.stats();
        eprintln!("seed {seed:#x}: {st:?}");
        assert_eq!(relay.kernel_drops().unwrap(), 0);
        (up, down, st)
    };
    let (up, down, st) = run();
    // Binomial(2000, 0.3): mean 600, sd 20.5; ±7 sd.
    let bound = 450..=750;
    let up_dropped = st.up.dropped; // includes lost hellos
    assert!(
        bound.contains(&(n as u64 - up.len() as u64)),
        "up lost {}",
        n as usize - up.len()
    );
    assert!(bound.contains(&st.down.dropped), "down dropped {}", st.down.dropped);
    assert_eq!(down.len() as u64, n as u64 - st.down.dropped);
    assert!(up_dropped >= n as u64 - up.len() as u64);
    for got in [&up, &down] {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "no reordering, no duplicates");
    }
    assert_ne!(up, down, "the directions draw from different PRNG streams");
    // The same seed and traffic drop the same datagrams.
    let (up2, down2, _) = run();
    assert_eq!((up, down), (up2, down2), "seed {seed:#x} did not repeat");
}

/// `n` numbered datagrams from one client through a fresh relay configured with
/// `c`; the numbers as the upstream got them, and the relay's counters.
fn one_way(c: RelayConfig, n: u32) -> (Vec<u32>, RelayStats) {
    let seed = c.seed;
    let upstream = udp("127.0.0.1:0");
    let relay = Relay::start(upstream.local_addr().unwrap(), c).unwrap();
    let client = udp("127.0.0.1:0");
    let got = pump(&client, relay.local_addr(), &upstream, n, || relay.stats().up);
    let st = relay.stats();
    eprintln!("seed {seed:#x}: {st:?}");
    assert_eq!(relay.kernel_drops().unwrap(), 0);
    (got, st)
}

#[test]
fn duplication_sends_some_datagrams_twice() {
    let n = 400;
    let c = RelayConfig {
        duplicate: 0.5,
        ..cfg(0x5eed_0004)
    };
    let (got, st) = one_way(c, n);
    // Binomial(400, 0.5): mean 200, sd 10.
    assert!((130..=270).contains(&st.up.duplicated), "{st:?}");
    assert_eq!(got.len() as u64, n as u64 + st.up.duplicated);
    let mut counts = vec![0u32; n as usize];
    for i in got {
        counts[i as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c == 1 || c == 2), "each datagram once or twice");
    assert_eq!(counts.iter().filter(|&&c| c == 2).count() as u64, st.up.duplicated);
}

#[test]
fn reorder_window_changes_order_but_loses_nothing() {
    let n = 400;
    let c = RelayConfig {
        reorder_window: 8,
        ..cfg(0x5eed_0005)
    };
    let (got, st) = one_way(c, n);
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "every datagram exactly once");
    assert_ne!(got, sorted, "order changed");
    assert!(st.up.reordered > 0, "{st:?}");
    // A datagram leaves the window after at most a few batches' worth of others.
    let max_shift = got
        .iter()
        .enumerate()
        .map(|(pos, &i)| (pos as i64 - i as i64).abs())
        .max();
    assert!(max_shift.unwrap() < 50, "displacement {max_shift:?}");
}

#[test]
fn delay_and_jitter() {
    let seed = 0x5eed_0006;
    let upstream = udp("127.0.0.1:0");
    let c = RelayConfig {
        delay_ms: 40,
        ..cfg(seed)
    };
    let relay = Relay::start(upstream.local_addr().unwrap(), c).unwrap();
    let client = udp("127.0.0.1:0");
    let start = Instant::now();
    client.send_to(b"ping", relay.local_addr()).unwrap();
    let (_, from) = recv(&upstream);
    let one_way = start.elapsed();
    upstream.send_to(b"pong", from).unwrap();
    assert_eq!(recv(&client).0, b"pong");
    let rtt = start.elapsed();
    eprintln!("one way {one_way:?}, round trip {rtt:?}");
    assert!(one_way >= Duration::from_millis(40) && rtt >= Duration::from_millis(80));
    // Only catches a delay in the wrong unit (40 s), not a slow machine.
    assert!(rtt < Duration::from_secs(10), "round trip {rtt:?}");

    // Jitter alone reorders (datagrams 2 ms apart, up to 20 ms of jitter).
    relay.set_config(RelayConfig {
        jitter_ms: 20,
        ..cfg(seed)
    });
    let base = relay.stats().up;
    let n = 100u32;
    for i in 0..n {
        client.send_to(&i.to_le_bytes(), relay.local_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let got: Vec<u32> = (0..n)
        .map(|_| u32::from_le_bytes(recv(&upstream).0[..4].try_into().unwrap()))
        .collect();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());
    assert!(relay.stats().up.reordered > base.reordered, "{:?}", relay.stats());
}

#[test]
fn partition_heal_and_rebind() {
    let upstream = udp("127.0.0.1:0");
    let relay = Relay::start(upstream.local_addr().unwrap(), cfg(7)).unwrap();
    let client = udp("127.0.0.1:0");
    let first = source_of(&client, &relay, &upstream);

    relay.set_config(RelayConfig { loss: 1.0, ..cfg(7) });
    for _ in 0..10 {
        client.send_to(b"lost!", relay.local_addr()).unwrap();
    }
    assert!(silent(&upstream, Duration::from_millis(100)));
    assert_eq!(relay.stats().up.dropped, 10);

    relay.set_config(cfg(7));
    relay.rebind();
    client.send_to(b"again", relay.local_addr()).unwrap();
    let (d, second) = recv(&upstream);
    assert_eq!(d, b"again");
    assert_ne!(first.port(), second.port(), "rebind gives a new source port");
    upstream.send_to(b"to old", first).unwrap();
    upstream.send_to(b"to new", second).unwrap();
    assert_eq!(recv(&client).0, b"to new");
    assert!(silent(&client, Duration::from_millis(50)), "the old port is closed");
}

/// Throughput on loopback: a UDP echo upstream, 32 datagrams of 1400 bytes in flight
/// through the relay, for one second; prints MB/s of payload per direction.
/// `cargo test --release --test relay -- --ignored --nocapture throughput`
#[test]
#[ignore = "a measurement; run by hand"]
fn throughput() {
    for (name, c) in [
        ("clean", cfg(9)),
        (
            "loss 5% + reorder 4 + delay 2 ms",
            RelayConfig {
                loss: 0.05,
                reorder_window: 4,
                delay_ms: 2,
                ..cfg(9)
            },
        ),
    ] {
        let upstream = udp("127.0.0.1:0");
        upstream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let relay = Relay::start(upstream.local_addr().unwrap(), c).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let echo = {
            let stop = stop.clone();
            let up = upstream.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok((n, from)) = up.recv_from(&mut buf) {
                        let _ = up.send_to(&buf[..n], from);
                    }
                }
            })
        };
        let client = udp("127.0.0.1:0");
        client.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let msg = payload(1, 1400);
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        for _ in 0..32 {
            client.send_to(&msg, relay.local_addr()).unwrap();
        }
        while start.elapsed() < Duration::from_secs(1) {
            match client.recv_from(&mut buf) {
                Ok(_) => {
                    client.send_to(&msg, relay.local_addr()).unwrap();
                }
                Err(_) => {
                    // The rest of the window is lost or held: send a new one.
                    for _ in 0..32 {
                        client.send_to(&msg, relay.local_addr()).unwrap();
                    }
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let st = relay.stats();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        echo.join().unwrap();
        eprintln!(
            "{name}: up {:.1} MB/s, down {:.1} MB/s ({} datagrams each way), kernel drops {}",
            st.up.bytes as f64 / secs / 1e6,
            st.down.bytes as f64 / secs / 1e6,
            st.up.forwarded,
            relay.kernel_drops().unwrap()
        );
    }
}
