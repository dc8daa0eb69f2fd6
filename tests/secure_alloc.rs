//! The secure wire allocates nothing per datagram in steady state: frames
//! encoded, sealed by a `Sender`, opened by a `Receiver` (replay window
//! included), frames parsed; for both AEADs. Only a key update boxes the
//! next key, once per 2²² datagrams. Nor does a server answering a flood of
//! hellos or refusing forged echoes, nor a pair of `Conn::secure`
//! connections exchanging messages with FEC once warm. Counted per thread (a thread-local
//! counter in a global allocator wrapper), so the tests of this binary do
//! not disturb each other's counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kcpx::secure::frames::{self, Frame};
use kcpx::secure::wire::{SHORT_HEADER_LEN, TAG_LEN};
use kcpx::secure::{AeadAlg, Receiver, Sender};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct PerThread;

// SAFETY: forwards every call unchanged to the system allocator; the
// counter is a const-initialised thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: PerThread = PerThread;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn sealing_and_opening_allocate_nothing_once_set_up() {
    let probe = allocations();
    drop(std::hint::black_box(vec![1u8; 10]));
    assert!(allocations() > probe, "the counter sees this thread's allocations");
    for alg in [AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305] {
        let cid = [3; 8];
        let mut s = Sender::new(alg, cid, [4; 32]);
        let mut r = Receiver::new(alg, cid, [4; 32]);
        let mut d = vec![0u8; 1500];
        let payload = vec![0x55u8; 1400];
        let before = allocations();
        for i in 0..10_000usize {
            let len = 1 + (i * 131) % 1400;
            let frame = Frame::Kcp(&payload[..len]);
            let n = SHORT_HEADER_LEN + frame.len() + TAG_LEN;
            frame.encode(&mut d[SHORT_HEADER_LEN..]).unwrap();
            s.seal(&mut d[..n]).unwrap();
            let o = r.open(&mut d[..n]).unwrap();
            assert_eq!(o.pn, i as u64);
            assert!(matches!(frames::parse(o.frames).next(), Some(Ok(Frame::Kcp(p))) if p.len() == len));
            // Every fourth datagram is replayed: refused, still no allocation.
            if i % 4 == 0 {
                assert!(r.open(&mut d[..n]).is_err());
            }
        }
        assert_eq!(allocations() - before, 0, "{alg:?}: allocations in 10,000 datagrams");
    }
}

/// A flood of hellos (PSK and token) from spoofed addresses, and of echoes
/// with forged cookies, allocates nothing on the server: no state before a
/// valid echo, not even a transient buffer.
#[test]
fn a_hello_flood_allocates_nothing_on_the_server() {
    use kcpx::secure::handshake::{Now, ServerAction};
    use kcpx::secure::{token, Client, ClientConfig, SeededEntropy, Server, ServerConfig};
    use std::net::{Ipv4Addr, SocketAddr};

    let local: SocketAddr = "198.51.100.1:7000".parse().unwrap();
    let now = Now {
        ms: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let mut cfg = ServerConfig::default();
    cfg.set_psk(&[7; 32]).unwrap();
    cfg.set_token_key(&[8; 32]).unwrap();
    let mut server = Server::new(&cfg).unwrap();
    let mut e = SeededEntropy::new(5);
    let psk = Client::new(&ClientConfig::psk(&[7; 32]).unwrap(), now.ms, &mut e).unwrap();
    let blob = token::make(&[8; 32], 1, now.unix_s, 60, &[local], &mut e).unwrap();
    let tok = Client::new(&ClientConfig::token(&blob).unwrap(), now.ms, &mut e).unwrap();
    let mut echo = psk.message().to_vec();
    echo[0] = 0xC2;
    echo[1170] = 1; // a cookie never issued
    let no_cid = |_: &[u8; 8]| false;
    // Warm: the first hello draws the window's cookie secret.
    let first = server.handle(
        psk.message(),
        "192.0.2.1:1".parse().unwrap(),
        local,
        now,
        &mut e,
        &no_cid,
    );
    assert!(matches!(first, Ok(ServerAction::Challenge(_))));

    let before = allocations();
    for i in 0..3_000u32 {
        let from = SocketAddr::new(Ipv4Addr::from(0x0A00_0000 + i).into(), 1024 + (i % 5000) as u16);
        let hello = if i % 2 == 0 { psk.message() } else { tok.message() };
        let r = server.handle(hello, from, local, now, &mut e, &no_cid);
        assert!(matches!(r, Ok(ServerAction::Challenge(_))));
        assert!(server.handle(&echo, from, local, now, &mut e, &no_cid).is_err());
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations for 3,000 hellos and 3,000 forged echoes"
    );
    assert_eq!(server.used_entries(), 0);
}

/// Two connections on the secure wire (keys from a real PSK handshake),
/// FEC 10/3, exchanging messages both ways on a virtual clock: once warm,
/// sealing into the outbox, opening, FEC and KCP allocate nothing per
/// datagram, unreliable messages and replays included.
#[test]
fn a_secure_conn_allocates_nothing_per_datagram_once_warm() {
    use kcpx::conn::{Conn, ConnConfig, Outbox};
    use kcpx::fec::FecConfig;
    use kcpx::secure::handshake::{Now, ServerAction};
    use kcpx::secure::{ClientProgress, SeededEntropy, Server, ServerConfig};

    let now = Now {
        ms: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let (caddr, saddr) = ("192.0.2.7:4000".parse().unwrap(), "198.51.100.1:7000".parse().unwrap());
    let mut cfg = ServerConfig::default();
    cfg.set_psk(&[7; 32]).unwrap();
    let mut server = Server::new(&cfg).unwrap();
    let mut e = SeededEntropy::new(0x5ec);
    let mut c = kcpx::secure::Client::new(&kcpx::secure::ClientConfig::psk(&[7; 32]).unwrap(), now.ms, &mut e).unwrap();
    let no_cid = |_: &[u8; 8]| false;
    let Ok(ServerAction::Challenge(ch)) = server.handle(c.message(), caddr, saddr, now, &mut e, &no_cid) else {
        panic!("no challenge")
    };
    c.handle(&ch, now.ms).unwrap();
    let Ok(ServerAction::Accept(accepted)) = server.handle(c.message(), caddr, saddr, now, &mut e, &no_cid) else {
        panic!("not accepted")
    };
    let Ok(ClientProgress::Established(session)) = c.handle(&accepted.server_hello, now.ms) else {
        panic!("not established")
    };
    let conf = ConnConfig {
        fec: Some(FecConfig::new(10, 3).unwrap()),
        nodelay: (1, 10, 2, 1),
        ..ConnConfig::default()
    };
    let mut a = Conn::secure(7, &conf, *session).unwrap();
    let mut b = Conn::secure(7, &conf, accepted.session).unwrap();
    let (mut out_a, mut out_b) = (Outbox::default(), Outbox::default());
    let mut buf = vec![0u8; 4096];
    let mut step = |t: u32, a: &mut Conn, b: &mut Conn, out_a: &mut Outbox, out_b: &mut Outbox| {
        let msg = [t as u8; 900];
        a.send(&msg).unwrap();
        a.send_datagram(&msg[..300], out_a).unwrap();
        a.update(t, out_a);
        for (i, d) in out_a.iter().enumerate() {
            b.input(d, t).unwrap();
            if i == 0 {
                assert!(b.input(d, t).is_err(), "a replay");
            }
        }
        let mut datagrams = out_a.len() as u64;
        out_a.clear();
        while let Ok(n) = b.recv(&mut buf) {
            b.send(&buf[..n]).unwrap();
        }
        while b.recv_datagram(&mut buf).is_ok() {}
        b.update(t, out_b);
        for d in out_b.iter() {
            a.input(d, t).unwrap();
        }
        datagrams += out_b.len() as u64;
        out_b.clear();
        while a.recv(&mut buf).is_ok() {}
        datagrams
    };
    for t in 0..500u32 {
        step(t * 10, &mut a, &mut b, &mut out_a, &mut out_b);
    }
    let before = allocations();
    let d: u64 = (500..3_000u32)
        .map(|t| step(t * 10, &mut a, &mut b, &mut out_a, &mut out_b))
        .sum();
    let n = allocations() - before;
    println!("{n} allocations over {d} warm secure datagrams");
    assert!(d > 5_000, "{d} datagrams");
    assert_eq!(n, 0, "{n} allocations over {d} warm secure datagrams");
    let s = b.secure_stats().unwrap();
    assert_eq!((s.forged, s.malformed), (0, 0));
    assert!(s.replayed >= 2_500);
}
