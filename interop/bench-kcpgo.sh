#!/bin/sh
# Runs kcp-go 5.6.1's own benchmarks (BenchmarkAES128, BenchmarkFEC*) plus
# go-bench/wirepath_test.go (kcp-go's send/receive datagram paths measured like
# kcpx's benches/wire.rs) from a scratch copy of Debian's kcp-go sources, then
# go-bench/rs_encode_test.go (klauspost/reedsolomon's Encode, 10+3 shards of
# 1400 bytes, default and AVX2-only) in a scratch copy of klauspost/reedsolomon.
#
#   interop/bench-kcpgo.sh [BENCH-REGEX] [BENCHTIME]
#   interop/bench-kcpgo.sh ciphers [BENCHTIME]
#
# "ciphers" runs kcp-go's benchmark of every cipher (BenchmarkSM4 ... BenchmarkSalsa20:
# encrypt + decrypt of 1500 bytes, counted as 3000; go-bench/gcm_test.go's BenchmarkGCM*
# for kcp-go master's AES-GCM, which is Go's crypto/cipher GCM) and then kcpx's matching rows
# (cargo bench --bench wire -- ciphers: seal + open of 1500 bytes, nonce and CRC-32
# included), and prints one markdown table with both figures and their ratio.
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
cp "$here/go-bench/wirepath_test.go" "$here/go-bench/gcm_test.go" "$pkg/"
export GO111MODULE=off GOPATH="$work:$gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOMAXPROCS=${GOMAXPROCS:-2} \
    GOCACHE="${GOCACHE:-${HOME:-$work}/.cache/go-build}"

if [ "${1:-}" != ciphers ]; then
    regex=${1:-AES128|FEC|Wire|ReedSolomon}
    cd "$pkg"
    go test -run '^$' -bench "$regex" -benchtime "${2:-2s}" .
    cd "$work/src/github.com/klauspost/reedsolomon"
    go test -run '^$' -bench "$regex" -benchtime "${2:-2s}" .
    exit
fi

(cd "$pkg" && go test -run '^$' -benchtime "${2:-1s}" \
    -bench '^Benchmark(SM4|AES128|AES192|AES256|TEA|XOR|Blowfish|None|Cast5|3DES|Twofish|XTEA|Salsa20|GCM128|GCM192|GCM256)$' .) |
    tee "$work/go.txt"
(cd "$here/.." && cargo bench --bench wire -- ciphers) | tee "$work/rust.txt"
# Go lines: "BenchmarkSM4-2  N  ns/op  X MB/s"; Rust lines: "cipher sm4 ...  X MB/s".
awk '
    BEGIN {
        split("aes-128 aes-192 aes-256 salsa20 blowfish twofish cast5 3des tea xtea sm4 xor none aes-128-gcm aes-192-gcm aes-256-gcm", order, " ")
        split("AES128 AES192 AES256 Salsa20 Blowfish Twofish Cast5 3DES TEA XTEA SM4 XOR None GCM128 GCM192 GCM256", bench, " ")
        for (i in order) go_name[bench[i]] = order[i]
    }
    FNR == 1 { file++ }
    file == 1 && /^Benchmark/ {
        name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
        for (i = 2; i <= NF; i++) if ($i == "MB/s") go[go_name[name]] = $(i - 1)
    }
    file == 2 && $1 == "cipher" { rust[$2] = $(NF - 1) }
    END {
        print ""
        print "| method | kcpx seal+open MB/s | kcp-go MB/s (BenchmarkXxx) | ratio |"
        print "|---|---|---|---|"
        for (i = 1; i <= 16; i++) {
            m = order[i]
            ratio = (go[m] > 0) ? sprintf("%.2f", rust[m] / go[m]) : "?"
            printf "| %s | %.0f | %.0f (Benchmark%s) | %s |\n", m, rust[m], go[m], bench[i], ratio
        }
    }
' "$work/go.txt" "$work/rust.txt"
