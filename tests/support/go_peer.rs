//! The kcp-go 5.6.1 peer (`interop/go-peer`), built by
//! `interop/build-go-peer.sh` into a directory next to the test binary,
//! under the suite's skip policy (`tests/support/skip.rs`, `KCPX_SKIP_GO`).
//! `KCPX_GO_PEER` names a peer built elsewhere instead.
//! Include with `#[path = "support/go_peer.rs"] mod go_peer;` next to
//! `#[path = "support/skip.rs"] mod skip;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The peer for `what`, built into `<target>/<profile>/deps/<dir>/go-peer`:
/// None (after the skip policy) when Go or kcp-go's sources are missing;
/// a panic when they are there and the build fails.
pub fn build(dir: &str, what: &str) -> Option<PathBuf> {
    if let Some(peer) = std::env::var_os("KCPX_GO_PEER") {
        return Some(PathBuf::from(peer));
    }
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let work = deps.join(dir);
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/build-go-peer.sh"))
        .arg(&work)
        .output()
        .expect("run bash");
    if out.status.success() {
        return Some(work.join("go-peer"));
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    // The script says "go build failed" when the tools are there but the
    // build is not; everything else it reports is a missing tool, with the
    // apt-get line that installs it.
    assert!(
        !why.contains("go build failed"),
        "the kcp-go peer does not build:\n{why}"
    );
    super::skip::unavailable(what, &format!("no kcp-go peer: {why}"), "KCPX_SKIP_GO");
    None
}
