//! Connections on a virtual clock and a lossy in-memory wire.

use super::*;
use crate::crypt::CryptMethod;
use crate::fec::FecConfig;

use crate::sim::{LinkConfig, Rng, SimNet};

/// Test scaffolding: a connection with the outbox it writes into, driven
/// as `kcpx_conn` drives one (its memory shed while quiet).
pub(crate) struct Driven {
    pub(crate) conn: Conn,
    pub(crate) out: Outbox,
}

impl Driven {
    pub(crate) fn new(conv: u32, config: &ConnConfig) -> Result<Driven, Error> {
        Ok(Driven {
            conn: Conn::new(conv, config)?,
            out: Outbox::default(),
        })
    }

    pub(crate) fn update(&mut self, now_ms: u32) {
        if self.out.is_empty() && self.conn.shed_if_quiet() {
            self.out = Outbox::default();
        }
        self.conn.update(now_ms, &mut self.out);
    }

    pub(crate) fn flush(&mut self) {
        self.conn.flush(&mut self.out);
    }

    pub(crate) fn take_outbox(&mut self) -> Outbox {
        core::mem::take(&mut self.out)
    }

    pub(crate) fn restore_outbox(&mut self, mut out: Outbox) {
        if self.out.is_empty() {
            out.clear();
            self.out = out;
        }
    }
}

impl core::ops::Deref for Driven {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl core::ops::DerefMut for Driven {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// The in-memory wire of these tests (`tests/support/sim.rs`): no delay, so
/// a datagram arrives in the same step; drops `loss_percent`% of datagrams.
pub(super) fn wire(seed: u64, loss_percent: u64) -> SimNet {
    SimNet::new(
        seed,
        LinkConfig {
            delay_ms: 0,
            jitter_ms: 0,
            loss: loss_percent as f64 / 100.0,
            duplicate: 0.0,
        },
    )
}

/// Updates `from` and delivers its datagrams to `to` over `net`. Returns
/// the datagrams delivered.
pub(super) fn deliver(from: &mut Driven, to: &mut Driven, now: u32, net: &mut SimNet) -> Vec<Vec<u8>> {
    let (src, dst) = (
        std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        std::net::SocketAddr::from(([127, 0, 0, 1], 2)),
    );
    from.update(now);
    let out = from.take_outbox();
    for d in out.iter() {
        net.send(u64::from(now), src, dst, d);
    }
    from.restore_outbox(out);
    let kept: Vec<Vec<u8>> = net.arrivals(u64::from(now)).into_iter().map(|d| d.bytes).collect();
    for d in &kept {
        let _ = to.input(d, now);
    }
    kept
}

pub(super) fn config(crypt: Option<(CryptMethod, usize)>, fec: Option<(usize, usize)>) -> ConnConfig {
    ConnConfig {
        fec: fec.map(|(d, p)| FecConfig::new(d, p).unwrap()),
        crypt: crypt.map(|(m, n)| (m, vec![0x5a; n])),
        nodelay: (1, 10, 2, 1),
        window: (256, 256),
        mtu: 1400,
        stream: true,
        rate_limit: None,
    }
}

/// Sends `len` seeded bytes from a to b through a wire dropping `loss`% of
/// datagrams each way; returns both ends' stats. Checks every byte.
fn transfer(seed: u64, cfg: &ConnConfig, len: usize, loss: u64) -> (ConnStats, ConnStats) {
    let a = Driven::new(9, cfg).unwrap();
    let b = Driven::new(9, cfg).unwrap();
    let (a, b) = transfer_between(seed, a, b, cfg, len, loss);
    (a.stats(), b.stats())
}

/// [`transfer`] between two connections made by the caller (of `cfg`);
/// returns them.
pub(super) fn transfer_between(
    seed: u64,
    mut a: Driven,
    mut b: Driven,
    cfg: &ConnConfig,
    len: usize,
    loss: u64,
) -> (Driven, Driven) {
    let mut rng = Rng::new(seed);
    let mut net = wire(!seed, loss);
    let data: Vec<u8> = rng.bytes(len);
    let (mut sent, mut got) = (0usize, Vec::new());
    let mut buf = vec![0u8; 1 << 16];
    for step in 0..20_000u32 {
        let now = step * 5;
        while sent < len && a.kcp().wait_snd() < 512 {
            let n = (len - sent).min(8000);
            sent += a.send(&data[sent..sent + n]).unwrap();
            // Traffic back too, so both directions carry FEC groups.
            b.send(&data[..n.min(2000)]).unwrap();
        }
        while a.recv(&mut buf).is_ok() {}
        let mtu = cfg.mtu as usize;
        for d in deliver(&mut a, &mut b, now, &mut net)
            .iter()
            .chain(&deliver(&mut b, &mut a, now, &mut net))
        {
            assert!(d.len() <= mtu, "seed {seed}: datagram over MTU");
        }
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!(
            sa.in_csum_errors + sa.kcp_in_errors + sb.in_csum_errors + sb.kcp_in_errors,
            0,
            "seed {seed}"
        );
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == len {
            break;
        }
    }
    assert!(
        got == data,
        "seed {seed} {cfg:?}: {} of {len} bytes arrived intact",
        got.len()
    );
    (a, b)
}

#[test]
fn every_cipher_and_fec_combination_transfers_intact() {
    let crypts = [
        None,
        Some((CryptMethod::None, 0)),
        Some((CryptMethod::Aes128, 16)),
        Some((CryptMethod::Aes256, 32)),
        Some((CryptMethod::Aes128Gcm, 16)),
        Some((CryptMethod::Aes256Gcm, 32)),
    ];
    for (i, crypt) in crypts.into_iter().enumerate() {
        for fec in [None, Some((10, 3)), Some((3, 2))] {
            let (_, b) = transfer(100 + i as u64, &config(crypt, fec), 64 * 1024, 0);
            assert_eq!(b.in_csum_errors + b.kcp_in_errors + b.in_errs, 0);
        }
    }
}

#[test]
fn fec_recovers_lost_datagrams_under_loss() {
    for method in [CryptMethod::Aes128, CryptMethod::Aes128Gcm] {
        let cfg = config(Some((method, 16)), Some((3, 2)));
        let (a, b) = transfer(7, &cfg, 256 * 1024, 10);
        assert!(
            b.fec_recovered > 0 && a.fec_recovered > 0,
            "{method:?}: recovered a={} b={}",
            a.fec_recovered,
            b.fec_recovered
        );
        assert!(b.fec_parity_shards > 0);
    }
}

/// AES-GCM as kcp-go master: the MTU holds the 12-byte nonce and the 16-byte
/// tag (mss 1400 - 12 - 8 - 16 - 24 = 1340 with FEC), every datagram (FEC
/// parity too) carries the tag after what FEC covers, a full one is exactly
/// the MTU, and the bytes counted are the bytes sent.
#[test]
fn gcm_datagrams_hold_nonce_and_tag_within_the_mtu() {
    for (fec, mss) in [(Some((3, 2)), 1340), (None, 1348)] {
        let cfg = config(Some((CryptMethod::Aes128Gcm, 16)), fec);
        let mut a = Driven::new(1, &cfg).unwrap();
        assert_eq!(a.kcp().mss(), mss, "FEC {fec:?}");
        a.send(&[7u8; 10_000]).unwrap();
        a.update(0);
        let out = a.take_outbox();
        let lens: Vec<usize> = out.iter().map(<[u8]>::len).collect();
        assert_eq!(lens.iter().max(), Some(&1400), "FEC {fec:?}: {lens:?}");
        assert_eq!(a.stats().out_bytes, lens.iter().sum::<usize>() as u64);
        let crypt = PacketCrypt::new(CryptMethod::Aes128Gcm, &[0x5a; 16]).unwrap();
        let mut types = Vec::new();
        for d in out.iter() {
            let mut d = d.to_vec();
            let payload = crypt.open(&mut d).unwrap();
            if fec.is_some() {
                types.push(crate::fec::classify(payload) == FecInput::Parity);
            }
        }
        // 8 data datagrams of which 6 in full groups of 3: 4 parity.
        assert_eq!(types.iter().filter(|&&p| p).count(), if fec.is_some() { 4 } else { 0 });
        let mut small = cfg.clone();
        small.mtu = (12 + 16 + 49 + if fec.is_some() { 8 } else { 0 }) as u32;
        assert_eq!(Conn::new(1, &small).err(), Some(Error::Mtu));
        small.mtu += 1;
        assert!(Conn::new(1, &small).is_ok());
    }
}

#[test]
fn mtu_counts_every_header() {
    let cfg = config(Some((CryptMethod::Aes128, 16)), Some((10, 3)));
    let c = Driven::new(1, &cfg).unwrap();
    assert_eq!(c.kcp().mss(), 1400 - 20 - 8 - 24, "kcp-go: mss 1348 with both on");
    let mut small = cfg.clone();
    small.mtu = 20 + 8 + 49;
    assert_eq!(Driven::new(1, &small).err(), Some(Error::Mtu));
    small.mtu = 1501;
    assert_eq!(Driven::new(1, &small).err(), Some(Error::Mtu));
}

#[test]
fn bad_keys_and_fec_settings_are_refused() {
    let mut cfg = config(Some((CryptMethod::Aes256, 16)), None);
    assert!(matches!(Driven::new(1, &cfg), Err(Error::Key)));
    cfg = config(None, None);
    assert!(FecConfig::new(200, 57).is_err() && FecConfig::new(0, 3).is_err());
    assert!(Driven::new(1, &cfg).is_ok());
}

/// Random, truncated, bit-flipped, replayed and wrong-key datagrams are
/// rejected and counted; the real stream still arrives intact.
#[test]
fn hostile_datagrams_are_rejected_and_never_corrupt_delivery() {
    let cfg = config(Some((CryptMethod::Aes128, 16)), Some((3, 2)));
    let mut wrong = cfg.clone();
    wrong.crypt = Some((CryptMethod::Aes128, vec![1; 16]));
    let mut a = Driven::new(9, &cfg).unwrap();
    let mut b = Driven::new(9, &cfg).unwrap();
    let mut forger = Driven::new(9, &wrong).unwrap();
    let mut rng = Rng::new(0xbad);
    let data: Vec<u8> = rng.bytes(200_000);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut must_reject = 0u64;
    for step in 0..20_000u32 {
        let now = step * 5;
        while sent < data.len() && a.kcp().wait_snd() < 256 {
            sent += a.send(&data[sent..(sent + 4000).min(data.len())]).unwrap();
        }
        forger.send(b"forged").unwrap();
        for c in [&mut a, &mut b, &mut forger] {
            c.update(now);
        }
        let (oa, ob, of) = (a.take_outbox(), b.take_outbox(), forger.take_outbox());
        for d in oa.iter() {
            seen.push(d.to_vec());
            let mut hostile = d.to_vec();
            let kind = rng.below(4);
            must_reject += u64::from(kind != 2);
            match kind {
                0 => hostile.truncate(rng.below(d.len() as u64) as usize),
                1 => {
                    let i = rng.below(d.len() as u64) as usize;
                    hostile[i] ^= 1 << rng.below(8);
                }
                2 => hostile = seen[rng.below(seen.len() as u64) as usize].clone(), // replay
                _ => hostile.iter_mut().for_each(|x| *x = rng.next_u64() as u8),
            }
            let _ = b.input(&hostile, now);
            b.input(d, now).unwrap();
        }
        for d in of.iter() {
            assert_eq!(b.input(d, now), Err(Error::Checksum), "wrong key");
            must_reject += 1;
        }
        for d in ob.iter() {
            a.input(d, now).unwrap();
        }
        seen.truncate(4096);
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
    }
    assert!(
        got == data,
        "{} of {} bytes, intact: {}",
        got.len(),
        data.len(),
        data.starts_with(&got)
    );
    let s = b.stats();
    assert!(must_reject > 100);
    assert_eq!(
        s.in_csum_errors + s.in_errs,
        must_reject,
        "every hostile datagram but the replays is rejected and counted: {s:?}"
    );
}

/// For every kcp-go cipher: a datagram with one bit flipped after the nonce,
/// or sealed under another key, is rejected and counted in `in_csum_errors`,
/// and the real stream still arrives intact. (Flips inside the nonce can go
/// unseen for some methods, as in kcp-go: the CRC does not cover it.)
#[test]
fn tampered_datagrams_are_rejected_and_counted_for_every_method() {
    let seed = 0x7a3e_u64;
    eprintln!("seed {seed:#x}");
    let mut rng = Rng::new(seed);
    for method in CryptMethod::ALL {
        let cfg = config(Some((method, method.key_len())), Some((3, 2)));
        let mut wrong = cfg.clone();
        wrong.crypt = Some((method, vec![0xa5; method.key_len()]));
        let (mut a, mut b) = (Driven::new(3, &cfg).unwrap(), Driven::new(3, &cfg).unwrap());
        let mut forger = Driven::new(3, &wrong).unwrap();
        let data: Vec<u8> = rng.bytes(30_000);
        let (mut sent, mut got, mut tampered) = (0, Vec::new(), 0u64);
        let mut buf = vec![0u8; 1 << 16];
        for step in 0..2_000u32 {
            let now = step * 10;
            while sent < data.len() && a.kcp().wait_snd() < 64 {
                sent += a.send(&data[sent..(sent + 3000).min(data.len())]).unwrap();
            }
            if method != CryptMethod::None && step % 7 == 0 {
                forger.send(b"forged").unwrap();
            }
            for c in [&mut a, &mut b, &mut forger] {
                c.update(now);
            }
            let (oa, ob, of) = (a.take_outbox(), b.take_outbox(), forger.take_outbox());
            for d in oa.iter() {
                let mut bad = d.to_vec();
                let i = crate::crypt::NONCE_LEN + rng.below((d.len() - crate::crypt::NONCE_LEN) as u64) as usize;
                bad[i] ^= 1 << rng.below(8);
                assert_eq!(b.input(&bad, now), Err(Error::Checksum), "{method:?}: flip in byte {i}");
                tampered += 1;
                b.input(d, now).unwrap();
            }
            if method != CryptMethod::None {
                for d in of.iter() {
                    assert_eq!(b.input(d, now), Err(Error::Checksum), "{method:?}: wrong key");
                    tampered += 1;
                }
            }
            for d in ob.iter() {
                a.input(d, now).unwrap();
            }
            while let Ok(n) = b.recv(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            if got.len() == data.len() {
                break;
            }
        }
        assert!(got == data, "{method:?}: {} of {} bytes", got.len(), data.len());
        let s = b.stats();
        assert!(tampered > 20, "{method:?}");
        assert_eq!(s.in_csum_errors, tampered, "{method:?}: {s:?}");
        assert_eq!(s.in_errs + s.kcp_in_errors, 0, "{method:?}: {s:?}");
    }
}

/// Ends configured with different FEC shard counts must not corrupt the
/// stream (kcp-go 5.6.1 does): the decoder refuses to rebuild.
#[test]
fn mismatched_fec_settings_do_not_corrupt() {
    let a_cfg = config(None, Some((10, 3)));
    let b_cfg = config(None, Some((3, 2)));
    let mut a = Driven::new(9, &a_cfg).unwrap();
    let mut b = Driven::new(9, &b_cfg).unwrap();
    let mut rng = Rng::new(5);
    let mut net = wire(!5, 10);
    let data: Vec<u8> = rng.bytes(100_000);
    a.send(&data).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 17];
    for step in 0..5000u32 {
        let now = step * 10;
        deliver(&mut a, &mut b, now, &mut net);
        deliver(&mut b, &mut a, now, &mut net);
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert!(data.starts_with(&got), "delivered bytes are a prefix of what was sent");
    assert_eq!(got.len(), data.len());
}

#[test]
fn conv_of_reads_the_first_datagram_of_a_new_peer() {
    for (crypt, fec) in [
        (None, None),
        (Some((CryptMethod::Aes256, 32)), Some((3, 2))),
        (Some((CryptMethod::None, 0)), None),
    ] {
        let cfg = config(crypt, fec);
        let mut a = Driven::new(0xfeed_beef, &cfg).unwrap();
        a.send(b"hello").unwrap();
        a.update(0);
        a.update(100);
        let out = a.take_outbox();
        let first = out.iter().next().unwrap();
        assert_eq!(conv_of(&cfg, first), Ok(0xfeed_beef), "{cfg:?}");
        assert_eq!(conv_of(&cfg, &first[..3]), Err(Error::Short));
        if cfg.crypt.is_some() {
            let mut bad = first.to_vec();
            bad[30] ^= 1;
            assert_eq!(conv_of(&cfg, &bad), Err(Error::Checksum));
        }
    }
}

/// Stream mode: one send of any length (far over 127 segments), received
/// through buffers of odd sizes smaller than a segment; an empty send
/// queues nothing.
#[test]
fn stream_mode_sends_any_length_and_fills_any_buffer() {
    let cfg = config(Some((CryptMethod::Aes128, 16)), None);
    let mut a = Driven::new(3, &cfg).unwrap();
    let mut b = Driven::new(3, &cfg).unwrap();
    let mut rng = Rng::new(11);
    let mut net = wire(!11, 0);
    let data: Vec<u8> = rng.bytes(1_000_000);
    assert_eq!(a.send(&[]), Ok(0));
    assert_eq!(a.wait_snd(), 0, "an empty send queues nothing");
    assert_eq!(a.send(&data), Ok(data.len()));
    let mut got = Vec::new();
    let sizes = [7usize, 1, 1500, 333, 4096];
    for step in 0..20_000u32 {
        deliver(&mut a, &mut b, step * 10, &mut net);
        deliver(&mut b, &mut a, step * 10, &mut net);
        let mut buf = vec![0u8; sizes[step as usize % sizes.len()]];
        while let Ok(n) = b.recv(&mut buf) {
            assert!(n > 0 && n <= buf.len());
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    assert_eq!(b.recv(&mut [0u8; 8]), Err(Error::Again));
}

#[test]
fn message_mode_keeps_boundaries_and_refuses_oversize() {
    let mut cfg = config(None, None);
    cfg.stream = false;
    let mut a = Driven::new(3, &cfg).unwrap();
    assert_eq!(a.send(&vec![0u8; 1400 * 128]), Err(Error::TooLarge));
    let mut b = Driven::new(3, &cfg).unwrap();
    let mut net = wire(!12, 0);
    a.send(b"hello").unwrap();
    a.send(b"world!").unwrap();
    for step in 0..10u32 {
        deliver(&mut a, &mut b, step * 10, &mut net);
    }
    assert_eq!(b.peek_size(), Some(5));
    assert_eq!(b.recv(&mut [0u8; 4]), Err(Error::BufferTooSmall));
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf), Ok(5));
    assert_eq!(b.recv(&mut buf), Ok(6));
}

#[test]
fn config_setters_validate() {
    let mut c = ConnConfig::default();
    assert_eq!(c.set_window(0, 10), Err(Error::Invalid));
    assert_eq!(
        c.set_window(10, 65536),
        Err(Error::Invalid),
        "the wire's window field has 16 bits"
    );
    assert_eq!(c.set_window(65535, 1), Ok(()));
    assert_eq!(c.set_mtu(49), Err(Error::Mtu));
    assert_eq!(c.set_mtu(1501), Err(Error::Mtu));
    assert_eq!(c.set_fec(0, 3), Err(Error::Fec));
    assert_eq!(c.set_crypt(Some("aes-128"), &[0; 15]), Err(Error::Key));
    assert_eq!(c.set_crypt(Some("rot13"), &[0; 16]), Err(Error::Key));
    c.set_crypt(Some("aes-128"), &[0; 16]).unwrap();
    c.set_fec(10, 3).unwrap();
    c.set_mtu(77).unwrap();
    assert_eq!(c.validate(), Err(Error::Mtu), "20 + 8 header bytes leave 49 for KCP");
    c.set_mtu(78).unwrap();
    assert_eq!(c.validate(), Ok(()));
    c.window = (0, 1);
    assert_eq!(
        Driven::new(1, &c).err(),
        Some(Error::Invalid),
        "constructors validate fields set directly"
    );
}

/// FEC without a crypto header (kcp-go's `block == nil`): nothing checks a
/// datagram's length, so truncated shards (a receive buffer shorter than the
/// datagram) reach the decoder. They must be refused and counted, and must
/// never be zero-padded into a rebuilt segment.
#[test]
fn truncated_fec_shards_never_corrupt_delivery() {
    for seed in 1..=6u64 {
        let cfg = config(None, Some((3, 2)));
        let mut a = Driven::new(9, &cfg).unwrap();
        let mut b = Driven::new(9, &cfg).unwrap();
        let mut rng = Rng::new(seed * 7919);
        let mut net = wire(!(seed * 7919), 0);
        let data: Vec<u8> = rng.bytes(100_000);
        let (mut sent, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; 1 << 16];
        for step in 0..20_000u32 {
            let now = step * 5;
            while sent < data.len() && a.kcp().wait_snd() < 128 {
                sent += a.send(&data[sent..(sent + 3000).min(data.len())]).unwrap();
            }
            a.update(now);
            let out = a.take_outbox();
            for d in out.iter() {
                match rng.below(10) {
                    0 => {} // lost
                    1 => {
                        let cut = 1 + rng.below(d.len() as u64 - 1) as usize;
                        let _ = b.input(&d[..cut], now);
                    }
                    _ => {
                        let _ = b.input(d, now);
                    }
                }
            }
            a.restore_outbox(out);
            deliver(&mut b, &mut a, now, &mut net);
            while let Ok(n) = b.recv(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            if got.len() >= data.len() {
                break;
            }
        }
        assert!(
            got == data,
            "seed {seed}: {} of {} bytes, intact: {}",
            got.len(),
            data.len(),
            data.starts_with(&got)
        );
        let s = b.stats();
        assert!(s.fec_inconsistent > 0 && s.fec_recovered > 0, "seed {seed}: {s:?}");
    }
}

/// A datagram longer than kcp-go's 1500-byte read limit is refused and
/// counted: one huge segment per datagram would otherwise let a peer grow a
/// connection without bound (65 MB for rcvwnd 1024 and 64 KB datagrams).
#[test]
fn datagrams_over_1500_bytes_are_refused() {
    let cfg = config(None, None);
    let mut b = Driven::new(9, &cfg).unwrap();
    // A valid PUSH segment (conv 9, sn 0) carrying 1476 to 64000 bytes.
    for len in [1476usize, 1477, 64_000] {
        let mut d = Vec::new();
        d.extend_from_slice(&9u32.to_le_bytes());
        d.extend_from_slice(&[81, 0]);
        d.extend_from_slice(&256u16.to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        d.extend_from_slice(&(len as u32).to_le_bytes());
        d.resize(24 + len, 0xab);
        let result = b.input(&d, 0);
        if d.len() <= 1500 {
            assert_eq!(result, Ok(()), "{} bytes", d.len());
        } else {
            assert_eq!(result, Err(Error::Short), "{} bytes", d.len());
        }
    }
    assert_eq!(b.stats().in_errs, 2);
    assert!(b.heap_bytes() < 16 * 1024, "{} bytes held", b.heap_bytes());
}

/// After one large flush the outbox's memory comes back once the connection
/// is quiet, as the core's flush buffer does.
#[test]
fn outbox_memory_is_released_when_quiet() {
    let cfg = config(Some((CryptMethod::Aes128, 16)), Some((10, 3)));
    let mut a = Driven::new(9, &cfg).unwrap();
    let mut b = Driven::new(9, &cfg).unwrap();
    let mut net = wire(!3, 0);
    for _ in 0..5 {
        a.send(&vec![7u8; 60_000]).unwrap();
    }
    let mut peak = 0;
    let mut buf = vec![0u8; 1 << 16];
    for step in 0..2000u32 {
        let now = step * 10;
        a.update(now);
        peak = peak.max(outbox_capacity(&a));
        let out = a.take_outbox();
        for d in out.iter() {
            b.input(d, now).unwrap();
        }
        a.restore_outbox(out);
        deliver(&mut b, &mut a, now, &mut net);
        while b.recv(&mut buf).is_ok() {}
    }
    assert!(peak > 100_000, "a large flush happened: {peak}");
    assert_eq!(a.kcp().wait_snd(), 0);
    assert_eq!(outbox_capacity(&a), 0, "outbox freed while quiet");
    assert_eq!(outbox_capacity(&b), 0, "outbox freed while quiet");
}

fn outbox_capacity(c: &Driven) -> usize {
    c.out.byte_capacity()
}

/// The KCP segments (cmd, sn) of raw datagrams (no FEC, no cipher).
fn segments_of(datagrams: &Outbox) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    for d in datagrams.iter() {
        let mut rest = d;
        while rest.len() >= 24 {
            let len = u32::from_le_bytes(rest[20..24].try_into().unwrap()) as usize;
            out.push((rest[4], u32::from_le_bytes(rest[12..16].try_into().unwrap())));
            rest = &rest[(24 + len).min(rest.len())..];
        }
    }
    out
}

/// Issue 17 item 4: a peer that withholds sn 0 and floods what follows
/// gets no more than the cap buffered; the segments beyond it are not
/// acknowledged (so the sender keeps them and sends them again), and once
/// the hole is filled the transfer completes byte for byte.
#[test]
fn out_of_order_flood_over_the_cap_is_refused_unacknowledged_then_completes() {
    let cfg = config(None, None);
    let (mut a, mut b) = (Driven::new(3, &cfg).unwrap(), Driven::new(3, &cfg).unwrap());
    let cap = 16 << 10;
    b.set_buffer_cap(Some(cap));
    let mss = a.kcp().mss() as usize;
    let data = Rng::new(17).bytes(100 * mss);
    a.send(&data).unwrap();
    let mut first = Outbox::default();
    for now in 0..50 {
        a.conn.update(now, &mut first);
    }
    let sent = segments_of(&first);
    assert!(sent.len() >= 100, "the first flush sends every segment: {}", sent.len());
    for d in first.iter() {
        if u32::from_le_bytes(d[12..16].try_into().unwrap()) != 0 {
            b.input(d, 50).unwrap();
        }
    }
    let held = b.undeliverable_bytes();
    assert!(
        held <= cap && held > cap / 2,
        "the receive buffer holds up to the cap: {held}"
    );
    let (refused, _) = b.memory_drops();
    let stored = 99 - refused as usize;
    assert!(refused > 50, "segments beyond the cap are refused: {refused}");
    let mut acks = Outbox::default();
    b.conn.update(50, &mut acks);
    b.conn.update(100, &mut acks);
    let acked: Vec<u32> = segments_of(&acks)
        .into_iter()
        .filter(|&(cmd, _)| cmd == crate::kcp::consts::CMD_ACK)
        .map(|(_, sn)| sn)
        .collect();
    let expected: Vec<u32> = (1..=stored as u32).collect();
    assert_eq!(acked, expected, "exactly the stored segments are acknowledged");
    for d in acks.iter() {
        a.input(d, 100).unwrap();
    }
    // Now the hole is filled (a retransmits), and everything arrives.
    let mut net = wire(5, 0);
    let (mut got, mut buf) = (Vec::new(), vec![0u8; 1 << 16]);
    for step in 0..2000u32 {
        let now = 100 + step * 10;
        deliver(&mut a, &mut b, now, &mut net);
        deliver(&mut b, &mut a, now, &mut net);
        while let Ok(n) = b.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert!(b.undeliverable_bytes() <= cap, "the cap holds throughout");
        if got.len() == data.len() {
            break;
        }
    }
    assert!(
        got == data,
        "byte-exact after the hole is filled ({} of {})",
        got.len(),
        data.len()
    );
    assert_eq!(b.buffered_bytes(), 0, "nothing held once everything was read");
}

/// Unreliable messages between two connections, with each cipher layout
/// and FEC on or off: kcp-go master's bytes (`[crypto][seqid 0xFFFFFFFF |
/// 0xF3 | size][conv][payload]`), delivered in order of arrival, never to
/// KCP; another conversation's are refused and counted, and `conv_of`
/// reads a message's conv.
#[test]
fn unreliable_messages_between_connections() {
    let methods = [Some(CryptMethod::Aes128), Some(CryptMethod::Aes256Gcm), None];
    for (fec, method) in [true, false].into_iter().flat_map(|f| methods.map(|m| (f, m))) {
        let mut cfg = ConnConfig::default();
        if fec {
            cfg.set_fec(10, 3).unwrap();
        }
        if let Some(m) = method {
            cfg.set_crypt(Some(m.name()), &vec![9; m.key_len()]).unwrap();
        }
        let (mut a, mut b) = (Driven::new(5, &cfg).unwrap(), Driven::new(5, &cfg).unwrap());
        let crypt_len = method.map_or(0, |m| m.header_len() + m.trailer_len());
        let max = a.datagram_max();
        assert_eq!(max, 1400 - crypt_len - 12, "{method:?} fec {fec}");
        let mut out = Outbox::default();
        assert_eq!(a.send_datagram(&vec![1; max + 1], &mut out), Err(Error::TooLarge));
        for m in [&b"state 1"[..], b"", &[7; 1388 - 20]] {
            let m = &m[..m.len().min(a.datagram_max())];
            assert_eq!(a.send_datagram(m, &mut out), Ok(m.len()));
        }
        assert_eq!(out.len(), 3);
        let d = out.get(0).unwrap();
        assert!(d.len() <= 1400);
        if method.is_none() {
            assert_eq!(
                d[..12],
                [0xff, 0xff, 0xff, 0xff, 0xf3, 0, 13, 0, 5, 0, 0, 0],
                "size = 2 + conv + payload"
            );
        }
        assert_eq!(conv_of(&cfg, d), Ok(5));
        for d in out.iter() {
            b.input(d, 0).unwrap();
        }
        assert_eq!(b.datagrams_waiting(), 3);
        let mut buf = [0u8; 1500];
        assert_eq!(b.peek_datagram_size(), Some(7));
        assert_eq!(
            b.recv_datagram(&mut buf).map(|n| buf[..n].to_vec()),
            Ok(b"state 1".to_vec())
        );
        assert_eq!(b.recv_datagram(&mut buf), Ok(0));
        assert!(b.recv_datagram(&mut buf).unwrap() > 1000);
        assert_eq!(b.recv_datagram(&mut buf), Err(Error::Again));
        assert_eq!(b.peek_size(), None, "nothing reached KCP");
        let mut other = Driven::new(6, &cfg).unwrap();
        let mut foreign = Outbox::default();
        other.send_datagram(b"not yours", &mut foreign).unwrap();
        assert_eq!(b.input(foreign.get(0).unwrap(), 0), Err(Error::Kcp));
        let s = b.stats();
        assert_eq!((s.datagrams_in, s.datagrams_foreign, s.in_pkts), (3, 1, 4));
        assert_eq!(a.stats().datagrams_out, 3);
    }
}

/// A datagram of control segments only (pure ACKs) goes without FEC
/// framing: no seqid spent, no parity share, no shard kept by the peer's
/// decoder. Every datagram with data is an FEC data shard; the transfer
/// under loss still completes (FEC rebuilds data, ACKs are cumulative).
#[test]
fn pure_acks_go_without_fec_framing() {
    let cfg = config(Some((CryptMethod::Aes128, 16)), Some((10, 3)));
    let mut a = Driven::new(9, &cfg).unwrap();
    let mut b = Driven::new(9, &cfg).unwrap();
    let crypt = PacketCrypt::new(CryptMethod::Aes128, &[0x5a; 16]).unwrap();
    let (mut net, mut buf) = (wire(3, 5), vec![0u8; 1 << 16]);
    let data = Rng::new(3).bytes(200_000);
    a.send(&data).unwrap();
    let (mut got, mut plain, mut shards) = (0, 0, 0);
    for step in 0..10_000u32 {
        let now = step * 5;
        deliver(&mut a, &mut b, now, &mut net);
        for mut d in deliver(&mut b, &mut a, now, &mut net) {
            // b only acknowledges: every datagram it sends is plain KCP.
            let payload = crypt.open(&mut d).unwrap();
            let flag = u16::from_le_bytes([payload[4], payload[5]]);
            assert!(flag != 0xf1 && flag != 0xf2, "an ACK datagram in FEC framing");
            assert!(!carries_data(payload));
            plain += 1;
        }
        while let Ok(n) = b.recv(&mut buf) {
            got += n;
        }
        shards = a.stats().out_pkts;
        if got == data.len() {
            break;
        }
    }
    assert_eq!(got, data.len());
    assert!(plain >= 2 && shards > 100, "{plain} ACK datagrams, {shards} from a");
    assert!(b.stats().fec_recovered > 0, "FEC still rebuilds the data");
}
