//! The README's first command, `cargo run --release --example demo`, on a
//! small transfer: examples/demo.rs is compiled into this test and its
//! `run` sends 2 MiB from a dialer to a listener through the lossy relay
//! (10% loss each way, 1% duplication, reordering), byte-exact.

#[path = "../examples/demo.rs"]
#[allow(dead_code)]
mod demo;

use demo::Options;

#[test]
fn demo_transfers_two_mib_byte_exact_through_the_lossy_relay() {
    let o = Options::parse(["--mib", "2", "--seed", "2024"].map(String::from)).unwrap();
    let mut out = Vec::new();
    let s = demo::run(&o, &mut out, false).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    demo::report(&s, &o, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    eprintln!("{text}");
    assert!(s.byte_exact(), "{text}");
    assert_eq!(s.errors(), 0, "{text}");
    assert!(text.contains("result       byte-exact (seed 2024)"), "{text}");
    assert!(
        s.relay.up.dropped > 0 && s.relay.down.dropped > 0,
        "the relay dropped datagrams: {text}"
    );
    assert!(
        s.listener.session.fec_recovered > 0,
        "FEC rebuilt some at the listener: {text}"
    );
    assert!(s.listener.endpoint.endpoint.passive_opens == 1);
}

#[test]
fn demo_options() {
    let parse = |args: &[&str]| Options::parse(args.iter().map(|a| a.to_string()));
    let o = parse(&["--seed", "7"]).unwrap();
    assert_eq!((o.mib, o.loss, o.seed), (64, 0.10, 7));
    let o = parse(&["--mib", "256", "--loss", "0.2", "--seed", "1"]).unwrap();
    assert_eq!((o.mib, o.loss, o.seed), (256, 0.2, 1));
    for bad in [
        &["--mib"][..],
        &["--mib", "x"],
        &["--mib", "0"],
        &["--loss", "1.5"],
        &["--frob", "1"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
    assert!(parse(&["--help"]).unwrap_err().starts_with("usage: demo"));
}

#[test]
fn any_piece_of_the_stream_regenerates_alone() {
    let mut whole = vec![0u8; 100];
    demo::fill(9, 3, &mut whole);
    for (from, to) in [(0, 1), (0, 100), (5, 13), (7, 8), (8, 16), (41, 100)] {
        let mut piece = vec![0u8; to - from];
        demo::fill(9, 3 + from as u64, &mut piece);
        assert_eq!(piece, whole[from..to]);
    }
    let mut other = vec![0u8; 100];
    demo::fill(10, 3, &mut other);
    assert_ne!(other, whole);
}
