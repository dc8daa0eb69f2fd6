#!/bin/sh
# Builds interop/go-peer (a real kcp-go 5.6.1 peer) into OUTDIR/go-peer, offline.
#
#   interop/build-go-peer.sh OUTDIR
#
# Needs Go and kcp-go's sources from Debian; this script installs nothing:
#   apt-get install -y --no-install-recommends golang-go golang-github-xtaci-kcp-dev
#
# Debian ships kcp-go without a /v5 directory, so the build runs in GOPATH mode:
# the program sits in $WORK/src/go-peer next to a go.mod (any content), and Go's
# minimal module compatibility maps github.com/xtaci/kcp-go/v5 to Debian's copy.
set -eu

die() { echo "build-go-peer.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
out=$1
here=$(cd "$(dirname "$0")" && pwd)
gocode=${GOCODE:-/usr/share/gocode}

command -v go >/dev/null 2>&1 ||
    die "Go not found (apt-get install -y --no-install-recommends golang-go golang-github-xtaci-kcp-dev)"
for dep in github.com/xtaci/kcp-go github.com/klauspost/reedsolomon golang.org/x/crypto/pbkdf2; do
    [ -d "$gocode/src/$dep" ] ||
        die "$gocode/src/$dep missing (apt-get install -y --no-install-recommends golang-github-xtaci-kcp-dev)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/go-peer"
cp "$here"/go-peer/*.go "$work/src/go-peer/"
printf 'module go-peer\n' > "$work/src/go-peer/go.mod"

cd "$work/src/go-peer"
GO111MODULE=off GOPATH="$work:$gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
    GOCACHE="${GOCACHE:-${HOME:-$work}/.cache/go-build}" go build -o "$out/go-peer" . ||
    die "go build failed"
echo "$out/go-peer"
