//! Test vectors of the secure wire (`docs/secure-wire.md`), in
//! `tests/data/secure/*.txt`: the key schedule, sealed datagrams across a
//! key update, connect tokens, and whole handshakes (PSK and token, each
//! AEAD) with the first datagram of each direction. Every input is a fixed
//! value or comes from a seeded generator (`SeededEntropy`), so the files
//! are reproducible: `KCPX_BLESS=1 cargo test --test secure_vectors`
//! writes them. Without `KCPX_BLESS` the test regenerates them and fails on
//! any difference, and then runs the implementation against the stored
//! bytes: clients and servers rebuilt from the recorded seeds must accept
//! the recorded messages and open the recorded datagrams.
//!
//! Format: records separated by blank lines, one `name: value` per line
//! (bytes in hex), `#` comments.

#[path = "support/kat.rs"]
mod kat;

use kat::{hex, unhex};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use kcpx::secure::frames::{self, Frame};
use kcpx::secure::handshake::{Accepted, Now};
use kcpx::secure::keys::{generation_keys, next_secret, CredentialKeys, SessionSecrets};
use kcpx::secure::packet::KEY_UPDATE_INTERVAL;
use kcpx::secure::token::{self, TokenBlob, TokenOpener};
use kcpx::secure::wire::{ConnectionId, SHORT_HEADER_LEN, TAG_LEN};
use kcpx::secure::{
    AeadAlg, Client, ClientConfig, ClientProgress, Receiver, SeededEntropy, Sender, Server, ServerAction, ServerConfig,
    Session,
};

type Record = Vec<(String, String)>;

const PSK: &[u8] = b"kcpx1 test vector pre-shared key";
const TOKEN_KEY: [u8; 32] = [0x7B; 32];
const NOW: Now = Now {
    ms: 1_000_000,
    unix_s: 1_700_000_000,
};
const ALGS: [AeadAlg; 2] = [AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305];

fn client_addr() -> SocketAddr {
    "192.0.2.7:40000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "198.51.100.1:7000".parse().unwrap()
}

fn alg_name(a: AeadAlg) -> &'static str {
    match a {
        AeadAlg::Aes256Gcm => "aes-256-gcm",
        AeadAlg::ChaCha20Poly1305 => "chacha20-poly1305",
    }
}

fn alg_of(name: &str) -> AeadAlg {
    *ALGS.iter().find(|a| alg_name(**a) == name).expect("algorithm name")
}

fn seed_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    kcpx::secure::Entropy::fill(&mut SeededEntropy::new(seed), &mut v).unwrap();
    v
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().expect("length")
}

fn rec(fields: &[(&str, String)]) -> Record {
    fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Seals one frame with `s`.
fn seal(s: &mut Sender, frame: Frame) -> Vec<u8> {
    let mut d = vec![0u8; SHORT_HEADER_LEN + frame.len() + TAG_LEN];
    frame.encode(&mut d[SHORT_HEADER_LEN..]).unwrap();
    s.seal(&mut d).unwrap();
    d
}

fn keys_vectors() -> Vec<Record> {
    let mut out = Vec::new();
    for seed in 1..=3u64 {
        let cs = seed_bytes(seed, if seed == 3 { 64 } else { 32 });
        let th: [u8; 32] = arr(&seed_bytes(seed + 100, 32));
        let dh: [u8; 32] = arr(&seed_bytes(seed + 200, 32));
        let s = SessionSecrets::derive(&th, &cs, &dh);
        let (k0, iv0) = generation_keys(&s.c2s);
        let s1 = next_secret(&s.c2s);
        let (k1, iv1) = generation_keys(&s1);
        let creds = CredentialKeys::new(&cs);
        out.push(rec(&[
            ("cs", hex(&cs)),
            ("th", hex(&th)),
            ("dh", hex(&dh)),
            ("confirm_key", hex(&s.confirm)),
            ("confirm", hex(&s.confirmation(&th))),
            ("secret_c2s_0", hex(&s.c2s)),
            ("secret_s2c_0", hex(&s.s2c)),
            ("key_c2s_0", hex(&k0)),
            ("iv_c2s_0", hex(&iv0)),
            ("secret_c2s_1", hex(&s1)),
            ("key_c2s_1", hex(&k1)),
            ("iv_c2s_1", hex(&iv1)),
            ("hello_mac_of_th", hex(&creds.hello_mac(&th))),
            ("challenge_mac_of_th", hex(&creds.challenge_mac(&th))),
        ]));
    }
    out
}

/// Packet numbers of the datagram vectors: the first, the last of
/// generation 0 and the first two of generation 1 (the key update).
const PNS: [u64; 5] = [
    0,
    1,
    KEY_UPDATE_INTERVAL - 1,
    KEY_UPDATE_INTERVAL,
    KEY_UPDATE_INTERVAL + 1,
];

fn packet_vectors() -> Vec<Record> {
    let mut out = Vec::new();
    for alg in ALGS {
        let secret: [u8; 32] = arr(&seed_bytes(alg.id().into(), 32));
        let cid: ConnectionId = arr(&seed_bytes(10 + u64::from(alg.id()), 8));
        let mut s = Sender::new(alg, cid, secret);
        for (i, pn) in PNS.into_iter().enumerate() {
            s.skip_to(pn);
            let payload: Vec<u8> = (0..(i as u8 * 7 + 3)).collect();
            let frame = Frame::Kcp(&payload);
            let mut plain = vec![0u8; frame.len()];
            frame.encode(&mut plain).unwrap();
            let d = seal(&mut s, frame);
            out.push(rec(&[
                ("aead", alg_name(alg).into()),
                ("secret", hex(&secret)),
                ("cid", hex(&cid)),
                ("pn", pn.to_string()),
                ("frames", hex(&plain)),
                ("datagram", hex(&d)),
            ]));
        }
    }
    out
}

fn token_vectors() -> Vec<Record> {
    let addrs = [server_addr(), "[2001:db8::1]:7000".parse().unwrap()];
    let blob = token::make(&TOKEN_KEY, 4242, NOW.unix_s, 60, &addrs, &mut SeededEntropy::new(77)).unwrap();
    vec![rec(&[
        ("token_key", hex(&TOKEN_KEY)),
        ("client_id", "4242".into()),
        ("now_unix_s", NOW.unix_s.to_string()),
        ("valid_s", "60".into()),
        ("servers", format!("{} {}", addrs[0], addrs[1])),
        ("seed", "77".into()),
        ("blob", hex(&blob)),
    ])]
}

/// One handshake of the vectors: its inputs and what each side sent.
struct Handshake {
    kind: &'static str,
    alg: AeadAlg,
    client_seed: u64,
    server_seed: u64,
}

const HANDSHAKES: [Handshake; 4] = [
    Handshake {
        kind: "psk",
        alg: AeadAlg::Aes256Gcm,
        client_seed: 1001,
        server_seed: 2001,
    },
    Handshake {
        kind: "psk",
        alg: AeadAlg::ChaCha20Poly1305,
        client_seed: 1002,
        server_seed: 2002,
    },
    Handshake {
        kind: "token",
        alg: AeadAlg::Aes256Gcm,
        client_seed: 1003,
        server_seed: 2003,
    },
    Handshake {
        kind: "token",
        alg: AeadAlg::ChaCha20Poly1305,
        client_seed: 1004,
        server_seed: 2004,
    },
];

fn client_config(h: &Handshake) -> ClientConfig {
    let mut cfg = if h.kind == "psk" {
        ClientConfig::psk(PSK).unwrap()
    } else {
        let blob = token::make(
            &TOKEN_KEY,
            99,
            NOW.unix_s,
            60,
            &[server_addr()],
            &mut SeededEntropy::new(h.client_seed + 500),
        )
        .unwrap();
        ClientConfig::token(&blob).unwrap()
    };
    cfg.preferred = h.alg;
    cfg
}

fn server() -> Server {
    let mut cfg = ServerConfig::default();
    cfg.set_psk(PSK).unwrap();
    cfg.set_token_key(&TOKEN_KEY).unwrap();
    Server::new(&cfg).unwrap()
}

fn no_cid(_: &ConnectionId) -> bool {
    false
}

fn server_handle(s: &mut Server, e: &mut SeededEntropy, d: &[u8]) -> ServerAction {
    s.handle(d, client_addr(), server_addr(), NOW, e, &no_cid)
        .expect("the server accepts")
}

fn challenge_of(a: ServerAction) -> [u8; 70] {
    match a {
        ServerAction::Challenge(c) => c,
        other => panic!("{other:?}"),
    }
}

fn accepted_of(a: ServerAction) -> Box<Accepted> {
    match a {
        ServerAction::Accept(a) => a,
        other => panic!("{other:?}"),
    }
}

fn established(p: ClientProgress) -> Box<Session> {
    match p {
        ClientProgress::Established(s) => s,
        other => panic!("{other:?}"),
    }
}

fn handshake_vectors() -> Vec<Record> {
    let mut out = Vec::new();
    for h in &HANDSHAKES {
        let mut client = Client::new(&client_config(h), NOW.ms, &mut SeededEntropy::new(h.client_seed)).unwrap();
        let mut srv = server();
        let mut se = SeededEntropy::new(h.server_seed);
        let hello = client.message().to_vec();
        let challenge = challenge_of(server_handle(&mut srv, &mut se, &hello));
        client.handle(&challenge, NOW.ms).unwrap();
        let echo = client.message().to_vec();
        let mut acc = accepted_of(server_handle(&mut srv, &mut se, &echo));
        let mut cs = established(client.handle(&acc.server_hello, NOW.ms).unwrap());
        let up = seal(&mut cs.sender, Frame::Kcp(b"first client datagram"));
        let down = seal(&mut acc.session.sender, Frame::Ping(1));
        out.push(rec(&[
            ("credential", h.kind.into()),
            ("aead", alg_name(h.alg).into()),
            ("client_seed", h.client_seed.to_string()),
            ("server_seed", h.server_seed.to_string()),
            ("client_addr", client_addr().to_string()),
            ("server_addr", server_addr().to_string()),
            ("now_ms", NOW.ms.to_string()),
            ("now_unix_s", NOW.unix_s.to_string()),
            ("client_hello", hex(&hello)),
            ("challenge", hex(&challenge)),
            ("client_echo", hex(&echo)),
            ("server_hello", hex(&acc.server_hello)),
            ("cid", hex(&acc.session.cid)),
            ("client_datagram", hex(&up)),
            ("server_datagram", hex(&down)),
        ]));
    }
    out
}

fn render(name: &str, what: &str, records: &[Record]) -> String {
    let mut s = format!(
        "# tests/data/secure/{name}: {what}\n# Made by tests/secure_vectors.rs (KCPX_BLESS=1 cargo test --test secure_vectors); docs/secure-wire.md is the format.\n"
    );
    for r in records {
        s.push('\n');
        for (k, v) in r {
            s.push_str(&format!("{k}: {v}\n"));
        }
    }
    s
}

fn path(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "tests", "data", "secure", name]
        .iter()
        .collect()
}

fn parse(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let (k, v) = line.split_once(": ").expect("name: value");
        cur.insert(k.to_string(), v.to_string());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Compares (or, with `KCPX_BLESS`, writes) a file; returns its records.
fn stored(name: &str, what: &str, records: &[Record]) -> Vec<BTreeMap<String, String>> {
    let text = render(name, what, records);
    let p = path(name);
    if std::env::var_os("KCPX_BLESS").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        on_disk == text,
        "{} differs from what the implementation makes: the wire changed (bump the version) or the file is stale (KCPX_BLESS=1)",
        p.display()
    );
    parse(&on_disk)
}

#[test]
fn key_schedule_vectors() {
    for r in stored("keys.txt", "HKDF-SHA256 key schedule (section 4)", &keys_vectors()) {
        let th: [u8; 32] = arr(&unhex(&r["th"]));
        let s = SessionSecrets::derive(&th, &unhex(&r["cs"]), &arr(&unhex(&r["dh"])));
        assert_eq!(hex(&s.c2s), r["secret_c2s_0"]);
        assert_eq!(hex(&s.s2c), r["secret_s2c_0"]);
        assert_eq!(hex(&s.confirmation(&th)), r["confirm"]);
        assert_eq!(hex(&next_secret(&s.c2s)), r["secret_c2s_1"]);
    }
}

#[test]
fn sealed_datagram_vectors_open_in_order_across_the_key_update() {
    let recs = stored(
        "packets.txt",
        "sealed short datagrams (sections 1, 4, 7)",
        &packet_vectors(),
    );
    assert_eq!(recs.len(), PNS.len() * ALGS.len());
    for chunk in recs.chunks(PNS.len()) {
        let alg = alg_of(&chunk[0]["aead"]);
        let mut r = Receiver::new(alg, arr(&unhex(&chunk[0]["cid"])), arr(&unhex(&chunk[0]["secret"])));
        for rec in chunk {
            let mut d = unhex(&rec["datagram"]);
            let o = r.open(&mut d).unwrap_or_else(|e| panic!("pn {}: {e}", rec["pn"]));
            assert_eq!(o.pn.to_string(), rec["pn"]);
            assert_eq!(hex(o.frames), rec["frames"]);
            assert!(frames::validate(o.frames).is_ok());
        }
    }
}

#[test]
fn token_vectors_open_at_the_servers_they_name() {
    for r in stored("token.txt", "a connect token's blob (section 6)", &token_vectors()) {
        let blob = TokenBlob::parse(&unhex(&r["blob"])).unwrap();
        assert_eq!(blob.client_id.to_string(), r["client_id"]);
        let opener = TokenOpener::new(&unhex(&r["token_key"])).unwrap();
        let now: u64 = r["now_unix_s"].parse().unwrap();
        for a in r["servers"].split(' ') {
            let t = opener.open(&blob.sealed, now, 3600, a.parse().unwrap()).unwrap();
            assert_eq!((t.c2s_key, t.s2c_key), (blob.c2s_key, blob.s2c_key));
        }
    }
}

#[test]
fn handshake_vectors_are_accepted_by_both_sides() {
    let recs = stored(
        "handshake.txt",
        "whole handshakes, PSK and token, each AEAD (sections 3-7)",
        &handshake_vectors(),
    );
    assert_eq!(recs.len(), HANDSHAKES.len());
    for (h, r) in HANDSHAKES.iter().zip(&recs) {
        // The client, rebuilt from its seed, takes the recorded answers.
        let mut client = Client::new(&client_config(h), NOW.ms, &mut SeededEntropy::new(h.client_seed)).unwrap();
        assert_eq!(hex(client.message()), r["client_hello"]);
        client.handle(&unhex(&r["challenge"]), NOW.ms).unwrap();
        assert_eq!(hex(client.message()), r["client_echo"]);
        let mut cs = established(client.handle(&unhex(&r["server_hello"]), NOW.ms).unwrap());
        assert_eq!(hex(&cs.cid), r["cid"]);
        let mut down = unhex(&r["server_datagram"]);
        assert_eq!(cs.receiver.open(&mut down).unwrap().frames, [2, 0, 0, 0, 1]);
        // The server, rebuilt from its seed, takes the recorded messages.
        let mut srv = server();
        let mut se = SeededEntropy::new(h.server_seed);
        let ch = challenge_of(server_handle(&mut srv, &mut se, &unhex(&r["client_hello"])));
        assert_eq!(hex(&ch), r["challenge"]);
        let mut acc = accepted_of(server_handle(&mut srv, &mut se, &unhex(&r["client_echo"])));
        assert_eq!(hex(&acc.server_hello), r["server_hello"]);
        assert_eq!(acc.session.alg, alg_of(&r["aead"]));
        let mut up = unhex(&r["client_datagram"]);
        let o = acc.session.receiver.open(&mut up).unwrap();
        assert_eq!(
            frames::parse(o.frames).next(),
            Some(Ok(Frame::Kcp(b"first client datagram")))
        );
    }
}
