//! Cost of the secure wire (`docs/secure-wire.md`, section 14): seal + open
//! throughput of each AEAD beside kcp-go's AES-128-CFB and AES-128-GCM
//! transforms in the same run, and server handshakes per second of one core
//! (stateless hellos, accepted echoes, refused echoes, whole handshakes),
//! and the stream payload two connections carry per CPU-second on the
//! secure wire beside kcp-go's AES-128-CFB (FEC 10/3, virtual clock).
//!
//! Run with `cargo bench --bench secure` (`-- quick` for a short run). One
//! thread; rates are per second of this thread's CPU time (Linux's
//! `/proc/thread-self/schedstat`; wall time elsewhere), so other load on the
//! machine slows the run but not the figures much. Compare ratios from one
//! run.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kcpx::crypt::{CryptMethod, PacketCrypt};
use kcpx::secure::handshake::{Now, ServerAction};
use kcpx::secure::wire::{ConnectionId, SHORT_HEADER_LEN, TAG_LEN};
use kcpx::secure::{token, AeadAlg, Client, ClientConfig, OsEntropy, Receiver, Sender, Server, ServerConfig};

/// Seconds of CPU this thread has used (its wall clock where Linux's
/// schedstat file is missing).
fn cpu_seconds(wall: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| wall.elapsed().as_secs_f64(), |ns| ns as f64 / 1e9)
}

/// Runs `step` (which handles `units` units) for about `budget`, best of
/// three rounds: units per CPU-second.
fn rate(budget: Duration, units: f64, mut step: impl FnMut()) -> f64 {
    let origin = Instant::now();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let cpu = cpu_seconds(origin);
        let mut n = 0u64;
        while start.elapsed() < budget / 3 {
            for _ in 0..16 {
                step();
            }
            n += 16;
        }
        best = best.max(n as f64 * units / (cpu_seconds(origin) - cpu));
    }
    best
}

const DATAGRAM: usize = 1500;
const PSK: &[u8] = b"kcpx bench pre-shared key 32 byt";
const TOKEN_KEY: [u8; 32] = [9; 32];

fn client_addr() -> SocketAddr {
    "192.0.2.1:1000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "198.51.100.1:7000".parse().unwrap()
}

fn no_cid(_: &ConnectionId) -> bool {
    false
}

fn now() -> Now {
    Now {
        ms: 1_000_000,
        unix_s: 1_700_000_000,
    }
}

fn server(capacity: usize) -> Server {
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    cfg.set_token_key(&TOKEN_KEY).unwrap();
    cfg.used_capacity = capacity;
    Server::new(&cfg).unwrap()
}

/// What `srv` does with a datagram from the client's address.
fn handle(srv: &mut Server, d: &[u8]) -> Result<ServerAction, kcpx::secure::SecureError> {
    srv.handle(d, client_addr(), server_addr(), now(), &mut OsEntropy, &no_cid)
}

/// `n` clients' echoes, ready for `srv` (made outside the timing).
fn echoes(srv: &mut Server, cfg: &ClientConfig, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut c = Client::new(cfg, now().ms, &mut OsEntropy).unwrap();
            let ch = match handle(srv, c.message()) {
                Ok(ServerAction::Challenge(ch)) => ch,
                other => panic!("{other:?}"),
            };
            c.handle(&ch, now().ms).unwrap();
            c.message().to_vec()
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });

    // Seal + open of one 1500-byte datagram, counted as 2 x 1500 bytes (as
    // benches/wire.rs and kcp-go's benchCrypt count).
    println!("seal + open, one {DATAGRAM}-byte datagram, counted twice:");
    let mut rows = Vec::new();
    for (name, method) in [
        ("kcp-go aes-128 (CFB + CRC-32)", CryptMethod::Aes128),
        ("kcp-go aes-128-gcm", CryptMethod::Aes128Gcm),
    ] {
        let c = PacketCrypt::new(method, &vec![0x42; method.key_len()]).unwrap();
        let mut d = vec![0x5Au8; DATAGRAM];
        let r = rate(budget, 2.0 * DATAGRAM as f64, || {
            c.seal(&mut d).unwrap();
            black_box(c.open(&mut d).unwrap());
        });
        rows.push((name, r));
    }
    for (name, alg) in [
        ("secure aes-256-gcm", AeadAlg::Aes256Gcm),
        ("secure chacha20-poly1305", AeadAlg::ChaCha20Poly1305),
    ] {
        let cid = [7; 8];
        let (mut s, mut r) = (Sender::new(alg, cid, [1; 32]), Receiver::new(alg, cid, [1; 32]));
        let mut d = vec![0x5Au8; DATAGRAM];
        let x = rate(budget, 2.0 * DATAGRAM as f64, || {
            d[SHORT_HEADER_LEN] = 0x01; // a KCP frame
            s.seal(&mut d).unwrap();
            black_box(r.open(&mut d).unwrap().pn);
        });
        rows.push((name, x));
    }
    let cfb = rows[0].1;
    for (name, r) in &rows {
        println!("  {name:<40} {:>7.0} MB/s  {:.2}x CFB", r / 1e6, r / cfb);
    }
    println!(
        "  (payload per datagram: CFB {} B, secure {} B)",
        DATAGRAM - 20,
        DATAGRAM - SHORT_HEADER_LEN - TAG_LEN - 1
    );

    conn_rates(budget);

    println!("server handshake work per second of one core:");
    let psk = ClientConfig::psk(PSK).unwrap();
    let mut srv = server(1 << 20);
    let hello = Client::new(&psk, now().ms, &mut OsEntropy).unwrap().message().to_vec();
    let hellos = rate(budget, 1.0, || {
        let r = handle(&mut srv, &hello);
        assert!(matches!(black_box(r), Ok(ServerAction::Challenge(_))));
    });
    println!("  {:<52} {hellos:>9.0}/s", "PSK hellos answered (stateless CHALLENGE)");

    let blob = token::make(&TOKEN_KEY, 1, now().unix_s, 600, &[server_addr()], &mut OsEntropy).unwrap();
    let tok = ClientConfig::token(&blob).unwrap();
    let token_hello = Client::new(&tok, now().ms, &mut OsEntropy).unwrap().message().to_vec();
    let token_hellos = rate(budget, 1.0, || {
        let r = handle(&mut srv, &token_hello);
        assert!(matches!(black_box(r), Ok(ServerAction::Challenge(_))));
    });
    println!(
        "  {:<52} {token_hellos:>9.0}/s",
        "token hellos answered (token opened, CHALLENGE)"
    );

    let mut forged = echoes(&mut srv, &psk, 1).pop().unwrap();
    forged[1170] ^= 1;
    let refused = rate(budget, 1.0, || {
        let r = handle(&mut srv, &forged);
        assert!(black_box(r).is_err());
    });
    println!("  {:<52} {refused:>9.0}/s", "echoes with a forged cookie refused");

    // Accepted echoes: each a different client (the table deduplicates).
    let n = if quick { 2_000 } else { 10_000 };
    let mut srv = server(1 << 20);
    let es = echoes(&mut srv, &psk, n);
    let origin = Instant::now();
    let cpu = cpu_seconds(origin);
    for e in &es {
        let r = handle(&mut srv, e);
        assert!(matches!(black_box(r), Ok(ServerAction::Accept(_))));
    }
    let accepted = n as f64 / (cpu_seconds(origin) - cpu);
    println!(
        "  {:<52} {accepted:>9.0}/s",
        "PSK echoes accepted (X25519, keys, SERVER_HELLO)"
    );
    let server_total = 1.0 / (1.0 / hellos + 1.0 / accepted);
    println!(
        "  {:<52} {server_total:>9.0}/s",
        "whole PSK handshakes, server side (hello + echo)"
    );

    let scalar = x25519_dalek::StaticSecret::from([5u8; 32]);
    let peer = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([6u8; 32]));
    let dh = rate(budget, 1.0, || {
        black_box(scalar.diffie_hellman(black_box(&peer)));
    });
    let keygen = rate(budget, 1.0, || {
        black_box(x25519_dalek::PublicKey::from(black_box(&scalar)));
    });
    let rng = ring::rand::SystemRandom::new();
    let peer_bytes = *peer.as_bytes();
    let ring_both = rate(budget, 1.0, || {
        use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, X25519};
        let k = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        black_box(k.compute_public_key().unwrap());
        black_box(agree_ephemeral(k, &UnparsedPublicKey::new(&X25519, &peer_bytes), |s| s[0]).unwrap());
    });
    println!(
        "  {:<52} {ring_both:>9.0}/s",
        "  (ring's X25519: a key pair and a shared secret)"
    );
    println!("  {:<52} {dh:>9.0}/s", "  of which: X25519 shared secrets alone");
    println!("  {:<52} {keygen:>9.0}/s", "  of which: X25519 public keys alone");

    // Both sides of a handshake on one core.
    let mut srv = server(1 << 22);
    let both = rate(budget, 1.0, || {
        black_box(handshake(&mut srv, &psk));
    });
    println!(
        "  {:<52} {both:>9.0}/s",
        "whole PSK handshakes, client and server on one core"
    );
}

/// A whole handshake of a client with `cfg` and `srv`: (the client's
/// session, the server's).
fn handshake(srv: &mut Server, cfg: &ClientConfig) -> (kcpx::secure::Session, kcpx::secure::Session) {
    let mut c = Client::new(cfg, now().ms, &mut OsEntropy).unwrap();
    let ServerAction::Challenge(ch) = handle(srv, c.message()).unwrap() else {
        panic!("challenge")
    };
    c.handle(&ch, now().ms).unwrap();
    let ServerAction::Accept(a) = handle(srv, c.message()).unwrap() else {
        panic!("accept")
    };
    match c.handle(&a.server_hello, now().ms).unwrap() {
        kcpx::secure::ClientProgress::Established(s) => (*s, a.session),
        other => panic!("{other:?}"),
    }
}

/// Stream payload from one connection to another (both driven here, no
/// loss, a virtual clock): bytes delivered per CPU-second of the thread.
fn conn_rate(budget: Duration, mut a: kcpx::conn::Conn, mut b: kcpx::conn::Conn) -> f64 {
    use kcpx::conn::Outbox;
    let chunk = vec![0x5Au8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let (mut out_a, mut out_b) = (Outbox::default(), Outbox::default());
    let mut t = 0u32;
    let mut delivered = 0u64;
    let origin = Instant::now();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let (start, cpu, from) = (Instant::now(), cpu_seconds(origin), delivered);
        while start.elapsed() < budget / 3 {
            while a.wait_snd() < 512 {
                a.send(&chunk).unwrap();
            }
            t += 10;
            a.update(t, &mut out_a);
            for d in out_a.iter() {
                let _ = b.input(d, t);
            }
            out_a.clear();
            b.update(t, &mut out_b);
            for d in out_b.iter() {
                let _ = a.input(d, t);
            }
            out_b.clear();
            while let Ok(n) = b.recv(&mut buf) {
                delivered += n as u64;
            }
        }
        best = best.max((delivered - from) as f64 / (cpu_seconds(origin) - cpu));
    }
    best
}

fn conn_rates(budget: Duration) {
    use kcpx::conn::{Conn, ConnConfig};
    let mut cfg = ConnConfig {
        fec: Some(kcpx::fec::FecConfig::new(10, 3).unwrap()),
        nodelay: (1, 10, 2, 1),
        window: (1024, 1024),
        stream: true,
        ..ConnConfig::default()
    };
    println!("two connections, stream payload per CPU-second (FEC 10/3, MTU 1400, no loss):");
    let (c, s) = handshake(&mut server(16), &ClientConfig::psk(PSK).unwrap());
    let alg = c.alg;
    let secure = conn_rate(
        budget,
        Conn::secure(1, &cfg, c).unwrap(),
        Conn::secure(1, &cfg, s).unwrap(),
    );
    cfg.crypt = Some((CryptMethod::Aes128, vec![0x42; 16]));
    let cfb = conn_rate(budget, Conn::new(1, &cfg).unwrap(), Conn::new(1, &cfg).unwrap());
    println!("  {:<40} {:>7.1} MB/s", "kcp-go aes-128 (CFB + CRC-32)", cfb / 1e6);
    println!(
        "  {:<40} {:>7.1} MB/s  {:.2}x CFB",
        format!("secure wire (Conn::secure, {alg:?})"),
        secure / 1e6,
        secure / cfb
    );
}
