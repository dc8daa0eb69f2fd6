#!/bin/sh
# Builds interop/go-master-peer (a kcp-go master peer, with AES-GCM and
# out-of-band messages) into OUTDIR/go-master-peer, offline.
#
#   KCPGO_MASTER_SRC=/path/to/kcp-go interop/build-go-master-peer.sh OUTDIR
#
# KCPGO_MASTER_SRC is a kcp-go master source tree that builds with the
# installed Go (Debian's 1.19: e.g. shared/peers/kcp-go-v5.6.72). Its
# dependencies come from Debian (installs nothing):
#   apt-get install -y --no-install-recommends golang-go golang-github-xtaci-kcp-dev \
#     golang-github-klauspost-reedsolomon-dev golang-golang-x-crypto-dev \
#     golang-golang-x-net-dev golang-golang-x-time-dev golang-github-pkg-errors-dev
# The build runs in GOPATH mode with $G/src/github.com/xtaci/kcp-go/v5 -> the master tree.
set -eu

die() { echo "build-go-master-peer.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: KCPGO_MASTER_SRC=DIR $0 OUTDIR"
[ -n "${KCPGO_MASTER_SRC:-}" ] || die "KCPGO_MASTER_SRC is not set"
[ -f "$KCPGO_MASTER_SRC/sess.go" ] || die "$KCPGO_MASTER_SRC has no sess.go: not a kcp-go tree"
out=$1
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$KCPGO_MASTER_SRC" && pwd)
gocode=${GOCODE:-/usr/share/gocode}
command -v go >/dev/null 2>&1 || die "Go not found (apt-get install -y --no-install-recommends golang-go)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/github.com/xtaci/kcp-go" "$work/src/go-master-peer"
ln -s "$src" "$work/src/github.com/xtaci/kcp-go/v5"
cp "$here"/go-master-peer/*.go "$work/src/go-master-peer/"

cd "$work/src/go-master-peer"
GO111MODULE=off GOPATH="$work:$gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
    GOCACHE="${GOCACHE:-${HOME:-$work}/.cache/go-build}" go build -o "$out/go-master-peer" . ||
    die "go build failed"
echo "$out/go-master-peer"
