#!/bin/sh
# Runs kcp-go 5.6.1's own benchmarks (BenchmarkAES128, BenchmarkFEC*) plus
# go-bench/wirepath_test.go (kcp-go's send/receive datagram paths measured like
# kcpx's benches/wire.rs) from a scratch copy of Debian's kcp-go sources, then
# go-bench/rs_encode_test.go (klauspost/reedsolomon's Encode, 10+3 shards of
# 1400 bytes, default and AVX2-only) in a scratch copy of klauspost/reedsolomon.
#
#   interop/bench-kcpgo.sh [BENCH-REGEX] [BENCHTIME]
#
# Needs golang-go and golang-github-xtaci-kcp-dev; installs nothing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gocode=${GOCODE:-/usr/share/gocode}
[ -d "$gocode/src/github.com/xtaci/kcp-go" ] || { echo "bench-kcpgo.sh: kcp-go sources missing" >&2; exit 1; }
command -v go >/dev/null 2>&1 || { echo "bench-kcpgo.sh: Go missing" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/github.com/xtaci" "$work/src/github.com/klauspost"
cp -r "$gocode/src/github.com/xtaci/kcp-go" "$work/src/github.com/xtaci/"
cp -r "$gocode/src/github.com/klauspost/reedsolomon" "$work/src/github.com/klauspost/"
cp "$here/go-bench/rs_encode_test.go" "$work/src/github.com/klauspost/reedsolomon/"
pkg=$work/src/github.com/xtaci/kcp-go
rm -f "$pkg/autotune_test.go" # needs testify, which Debian's kcp-go package does not pull in
cp "$here/go-bench/wirepath_test.go" "$pkg/"
export GO111MODULE=off GOPATH="$work:$gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOMAXPROCS=${GOMAXPROCS:-2} \
    GOCACHE="${GOCACHE:-${HOME:-$work}/.cache/go-build}"
regex=${1:-AES128|FEC|Wire|ReedSolomon}
cd "$pkg"
go test -run '^$' -bench "$regex" -benchtime "${2:-2s}" .
cd "$work/src/github.com/klauspost/reedsolomon"
go test -run '^$' -bench "$regex" -benchtime "${2:-2s}" .
