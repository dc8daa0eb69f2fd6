#!/usr/bin/env bash
# Download the pristine ikcp.c / ikcp.h (skywind3000/kcp tag 1.7.1, MIT) used as
# the test oracle, verify their sha256, and copy them into DEST (default:
# target/pristine). They ship unmodified inside the crates.io package
# kcp-sys 0.1.0; we only `cargo fetch` it (never build it) through the
# throwaway manifest in c_tests/pristine/. Nothing fetched is committed.
# Prints the destination directory on success.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/../target/pristine}"
mkdir -p "$dest"
want_c=b476f4ae41b555f28e819f3a6f34b7e2307c93e17875b4864a8f5fc217f67f60
want_h=f04f978a0893a8209d7b82095d19c38cefcf8f30bc932a85bb7fa53b33f9e76c

check() { [ -f "$dest/ikcp.c" ] && [ -f "$dest/ikcp.h" ] &&
  [ "$(sha256sum "$dest/ikcp.c" | cut -d' ' -f1)" = "$want_c" ] &&
  [ "$(sha256sum "$dest/ikcp.h" | cut -d' ' -f1)" = "$want_h" ]; }

if ! check; then
  cargo fetch --locked --manifest-path "$here/pristine/Cargo.toml" >&2
  cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  crate=$(ls "$cargo_home"/registry/cache/*/kcp-sys-0.1.0.crate 2>/dev/null | head -n1 || true)
  if [ -z "$crate" ]; then echo "fetch-pristine: kcp-sys-0.1.0.crate not found in $cargo_home" >&2; exit 1; fi
  tar -xzf "$crate" -C "$dest" --strip-components=2 kcp-sys-0.1.0/kcp/ikcp.c kcp-sys-0.1.0/kcp/ikcp.h \
    kcp-sys-0.1.0/kcp/test.cpp kcp-sys-0.1.0/kcp/test.h
  if ! check; then
    echo "fetch-pristine: sha256 MISMATCH for the pristine ikcp.c/ikcp.h in $crate" >&2
    sha256sum "$dest/ikcp.c" "$dest/ikcp.h" >&2
    exit 1
  fi
fi
(cd "$dest" && pwd)
