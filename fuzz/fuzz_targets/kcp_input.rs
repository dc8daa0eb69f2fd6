//! Arbitrary bytes into the KCP core: the input is cut into datagrams that
//! are fed to one endpoint, interleaved with updates, sends, receives and
//! window/MTU changes driven by the same bytes. Headers are steered towards
//! the endpoint's conv so the fuzzer reaches past the conv check. Goal: no
//! panic, no unbounded memory, and the queues stay consistent.
#![no_main]

use core::num::NonZeroU32;
use kcpx::kcp::{Kcp, NoDelay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut kcp = Kcp::new(0x1122_3344);
    kcp.set_log_mask(-1);
    let mut now = 0u32;
    let mut rest = data;
    let mut buf = [0u8; 4096];
    while let Some((&op, tail)) = rest.split_first() {
        let len = (tail.first().copied().unwrap_or(0) as usize * 7).min(tail.len().saturating_sub(1));
        let chunk = &tail[1.min(tail.len())..1.min(tail.len()) + len];
        rest = &tail[(1 + len).min(tail.len())..];
        match op % 8 {
            0 | 1 | 2 => {
                let mut d = chunk.to_vec();
                if d.len() >= 4 && op & 0x80 != 0 {
                    d[..4].copy_from_slice(&0x1122_3344u32.to_le_bytes());
                }
                let _ = kcp.input(&d);
            }
            3 => {
                now = now.wrapping_add(u32::from(op) * 13);
                kcp.update(now, |d| assert!(d.len() <= 4 * 1400 + 24));
            }
            4 => {
                let _ = kcp.send(chunk);
            }
            5 => {
                let _ = kcp.recv(&mut buf);
                let _ = kcp.peek_size();
            }
            6 => kcp.set_nodelay(NoDelay::new(u32::from(op & 3), 10, u32::from(op >> 4), op & 1 != 0)),
            _ => {
                let _ = kcp.set_mtu(50 + u32::from(op) * 5);
                kcp.set_window(NonZeroU32::new(u32::from(op)), NonZeroU32::new(u32::from(op) * 4));
            }
        }
        let logs = kcp.take_logs();
        kcp.restore_logs(logs);
        let _ = kcp.check(now);
    }
});
