//! The KCP core from Rust: two endpoints in one process, the datagrams
//! carried by hand. `cargo run --example core` prints `b received "hello"`.
//! A real program sends each datagram over UDP, feeds what arrives to
//! `input`, and calls `update` every 10-100 ms with its clock.

use kcpx::kcp::{Kcp, NoDelay};

fn main() {
    let (mut a, mut b) = (Kcp::new(7), Kcp::new(7));
    a.set_nodelay(NoDelay::new(1, 10, 2, true));
    a.send(b"hello").expect("a 5-byte message fits");
    let mut wire = Vec::new();
    a.update(0, |datagram| wire.push(datagram.to_vec()));
    for d in &wire {
        b.input(d).expect("a well-formed datagram");
    }
    let mut buf = [0u8; 1500];
    let n = b.recv(&mut buf).expect("the message arrived");
    println!("b received {:?}", String::from_utf8_lossy(&buf[..n]));
}
