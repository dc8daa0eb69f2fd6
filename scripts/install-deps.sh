#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian/Ubuntu (run as root, or
# it uses sudo): a C compiler, CMake, pkg-config and Python for the C tests
# and packaging tests; Go and kcp-go 5.6.1 for the kcp-go interop test;
# nginx with its stream module for the load-balancer test (tests/nginx_lb.rs).
# A Rust toolchain (https://rustup.rs) is expected to be there already.
# .ci/run calls this too.
set -euo pipefail
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  gcc g++ make cmake pkg-config python3 binutils \
  golang-go golang-github-xtaci-kcp-dev nginx libnginx-mod-stream >/dev/null
echo "install-deps.sh: gcc g++ make cmake pkg-config python3 binutils golang-go kcp-go nginx libnginx-mod-stream installed"
