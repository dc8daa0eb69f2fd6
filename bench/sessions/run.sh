#!/bin/bash
# kcpx sessions beside kcp-go 5.6.1 in the same run (issue 8 item 7): a
# measurement, not a test.
#
#   bench/sessions/run.sh [--reps N] [--quick] [--only GROUPS] [--idle-n "N ..."] [--impls IMPLS]
#
# Builds bench/sessions/kcpx_bench.rs (cargo --release --example kcpx_bench)
# and bench/sessions/kcpgo/main.go (Debian's golang-github-xtaci-kcp-dev, GOPATH
# mode, as interop/build-go-peer.sh), then measures each implementation against
# its own clients on loopback, alternating them run by run: the server's CPU
# from /proc/PID/stat and RSS from /proc/PID/status, each client's CPU from its
# own getrusage, UDP receive-buffer drops from /proc/net/snmp, and the 1-minute
# load average beside every figure. FEC 10/3 + AES-128 unless "plain"; fast
# profile nodelay(1,10,2,1); socket buffers 4 MiB on both sides. Medians of
# --reps runs (default 3; the idle and active rows run once unless --reps is
# given, as they take longest), with the spread. The table goes to stdout and
# target/bench/sessions.md. --quick: smaller sizes, to check the script.
# --only bulk,idle,active,floor: run (and print) only these groups of rows
# (all by default; floor: after each kcpx active row, bench/sessions/udp_floor.c,
# a raw-kernel UDP echo server moving the datagrams per second the kcpx
# listener moved, its CPU per kcpx message beside kcpx's). --active-n "1000":
# the active rows' session counts. --idle-n "1000 5000": the idle rows' session counts. --impls
# kcpx,kcpgo,kcpxc: measure only these (all by default). KCPX_BENCH=path uses
# a kcpx_bench already built. A failed idle row keeps the client's and the
# server's output in target/bench/idle-fail-N-IMPL.log.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
reps=3; sreps=1; quick=0; only=bulk,idle,active,floor; idle_n=; active_n=; impls="kcpx kcpgo kcpxc"
while [ $# -gt 0 ]; do
    case $1 in
        --reps) reps=$2; sreps=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --only) only=$2; shift 2 ;;
        --idle-n) idle_n=$2; shift 2 ;;
        --active-n) active_n=$2; shift 2 ;;
        --impls) impls=$(echo "$2" | tr , ' '); shift 2 ;;
        *) echo "usage: $0 [--reps N] [--quick] [--only bulk,idle,active,floor] [--idle-n \"N ...\"] [--active-n \"N ...\"] [--impls kcpx,kcpgo,kcpxc]" >&2; exit 2 ;;
    esac
done
wants() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
out=$root/target/bench; mkdir -p "$out"
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

# ---- build ----
if [ -n "${KCPX_BENCH:-}" ]; then
    KCPX=$KCPX_BENCH
else
    (cd "$root" && cargo build --release --example kcpx_bench >&2)
    KCPX=$root/target/release/examples/kcpx_bench
fi
gocode=${GOCODE:-/usr/share/gocode}
mkdir -p "$tmp/go/src/kcpgo-bench"
cp "$here/kcpgo/main.go" "$tmp/go/src/kcpgo-bench/"
printf 'module kcpgo-bench\n' > "$tmp/go/src/kcpgo-bench/go.mod"
(cd "$tmp/go/src/kcpgo-bench" && GO111MODULE=off GOPATH="$tmp/go:$gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
    GOCACHE="${GOCACHE:-${HOME:-$tmp}/.cache/go-build}" go build -o "$out/kcpgo-bench" .)
KCPGO=$out/kcpgo-bench
# The raw-kernel floor of the active rows: a UDP echo server with recvmmsg/sendmmsg.
${CC:-cc} -O2 -o "$out/udp_floor" "$here/udp_floor.c"
FLOOR=$out/udp_floor
export GOMAXPROCS=${GOMAXPROCS:-2}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tck=$(getconf CLK_TCK)
port=29950

if [ $quick = 1 ]; then
    BULK=$((32 << 20)); ECHO=$((8 << 20)); IDLE_N="200 500"; ACTIVE_N="100 200"; HOLD=3; ASECS=3
else
    BULK=$((256 << 20)); ECHO=$((64 << 20)); IDLE_N="1000 5000 10000"; ACTIVE_N="500 1000 2000 5000"; HOLD=5; ASECS=8
fi
[ -n "$idle_n" ] && IDLE_N=$idle_n
[ -n "$active_n" ] && ACTIVE_N=$active_n

cpu_of() { awk -v t="$tck" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
sys_of() { awk -v t="$tck" '{printf "%.3f", $15 / t}' "/proc/$1/stat"; } # kernel time only
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
drops() { awk '/^Udp:/ { if (h) print $6; h = 1 }' /proc/net/snmp; }
load() { cut -d' ' -f1 /proc/loadavg; }
# kcpxc: the kcpx server with 1 ms receive coalescing (Config::coalesce_us),
# and its client loop coalescing the same way, measured beside the default
# in the active rows.
bin() { if [ "$1" = kcpgo ]; then echo "$KCPGO"; else echo "$KCPX"; fi; }
COALESCE_US=1000

SPID=
start_server() { # impl flags...
    local impl=$1; shift
    port=$((port + 1))
    rm -f "$tmp/stats"
    if [ "$impl" = kcpxc ]; then set -- "$@" -coalesce "$COALESCE_US"; fi
    "$(bin "$impl")" server -addr "127.0.0.1:$port" -stats "$tmp/stats" "$@" > /dev/null 2>"$tmp/server.err" &
    SPID=$!
    sleep 0.5
}
stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" | head -1; }

# results: one line per measurement: key impl value load drops
res=$tmp/results
: > "$res"
record() { echo "$1 $2 $3 $4 $5" >> "$res"; echo "  $1 $2: $3 (load $4, drops $5)" >&2; }

chosen() { for i in "$@"; do case " $impls " in *" $i "*) echo "$i" ;; esac; done; } # those of --impls
order() { if [ $(($1 % 2)) = 1 ]; then chosen kcpx kcpgo; else chosen kcpgo kcpx; fi; }
order3() { case $(($1 % 3)) in 1) chosen kcpx kcpgo kcpxc ;; 2) chosen kcpgo kcpxc kcpx ;; *) chosen kcpxc kcpx kcpgo ;; esac; }

bulk_row() { # key bytes echo-flag plain-flag
    local key=$1 bytes=$2 e=$3 p=$4
    for r in $(seq 1 "$reps"); do
        for impl in $(order "$r"); do
            start_server "$impl" $p
            local d0 c0 o l
            d0=$(drops); c0=$(cpu_of "$SPID"); l=$(load)
            o=$(timeout 300 "$(bin "$impl")" bulk -addr "127.0.0.1:$port" -bytes "$bytes" $e $p) || o="secs=0 cpu=0"
            local c1; c1=$(cpu_of "$SPID")
            stop_server
            local ccpu; ccpu=$(echo "$o" | field cpu)
            local v; v=$(awk -v b="$bytes" -v s="$c0" -v e="$c1" -v c="$ccpu" 'BEGIN { t = e - s + c; if (t <= 0 || c == 0) print 0; else printf "%.1f", b / 1e6 / t }')
            record "$key" "$impl" "$v" "$l" $(( $(drops) - d0 ))
        done
    done
}

idle_row() { # N
    local nn=$1
    for r in $(seq 1 "$sreps"); do
        for impl in $(order "$r"); do
            start_server "$impl"
            local rss0 d0 l; rss0=$(rss_kb "$SPID"); d0=$(drops)
            : > "$tmp/idle.out"
            "$(bin "$impl")" idle -addr "127.0.0.1:$port" -n "$nn" -hold $((HOLD + 4)) > "$tmp/idle.out" 2>&1 &
            local cpid=$!
            local waited=0
            until grep -q ready "$tmp/idle.out" || [ $waited -ge 1200 ]; do sleep 0.1; waited=$((waited + 1)); done
            sleep 2 # quiet: the ACKs settle; kcpx frees active buffers after 1 s
            l=$(load)
            local rss1 c0 c1; rss1=$(rss_kb "$SPID"); c0=$(cpu_of "$SPID")
            sleep "$HOLD"
            c1=$(cpu_of "$SPID")
            kill "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true
            stop_server
            if grep -q ready "$tmp/idle.out"; then
                record "idle_rss_$nn" "$impl" "$(awk -v a="$rss0" -v b="$rss1" -v n="$nn" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')" "$l" $(( $(drops) - d0 ))
                record "idle_cpu_$nn" "$impl" "$(awk -v a="$c0" -v b="$c1" -v h="$HOLD" 'BEGIN { printf "%.3f", (b - a) / h }')" "$l" 0
            else
                # Keep what the client and server said, for the post-mortem.
                cat "$tmp/idle.out" "$tmp/server.err" > "$out/idle-fail-$nn-$impl.log"
                echo "  idle $nn $impl failed: $(tail -c 300 "$out/idle-fail-$nn-$impl.log" | tr '\n' ' ')" >&2
                record "idle_rss_$nn" "$impl" "fail" "$l" 0
                record "idle_cpu_$nn" "$impl" "fail" "$l" 0
            fi
        done
    done
}

# The value of key $2 in stats line $1.
stat_of() { echo "$1" | field "$2"; }

# The raw-kernel floor (udp_floor.c) for what the kcpx listener moved in
# an active row: datagrams in per second and out per datagram in, their
# mean sizes, from 1,000 (N) client sockets; its CPU per message of the
# kcpx run.
floor_row() { # N s0 s1 secs messages load
    local nn=$1 a=$2 b=$3 secs=$4 msgs=$5 l=$6
    local din dout bin bout
    din=$(( $(stat_of "$b" recv_datagrams) - $(stat_of "$a" recv_datagrams) ))
    dout=$(( $(stat_of "$b" sent_datagrams) - $(stat_of "$a" sent_datagrams) ))
    bin=$(( $(stat_of "$b" in_bytes) - $(stat_of "$a" in_bytes) ))
    bout=$(( $(stat_of "$b" out_bytes) - $(stat_of "$a" out_bytes) ))
    [ "$din" -gt 0 ] && [ "$dout" -gt 0 ] && [ "$msgs" -gt 0 ] || return 0
    port=$((port + 1))
    "$FLOOR" server -port "$port" -ratio "$(awk -v o="$dout" -v i="$din" 'BEGIN { printf "%.4f", o / i }')" \
        -size $((bout / dout)) > /dev/null 2>&1 &
    local fpid=$!
    sleep 0.3
    local c0 c1 t0 t1 k0 k1; c0=$(cpu_of "$fpid"); k0=$(sys_of "$fpid"); t0=$(date +%s.%N)
    timeout 300 "$FLOOR" client -port "$port" -n "$nn" -size $((bin / din)) -secs "$secs" \
        -rate "$(awk -v d="$din" -v s="$secs" 'BEGIN { printf "%.0f", d / s }')" > "$tmp/floor.out" || true
    c1=$(cpu_of "$fpid"); k1=$(sys_of "$fpid"); t1=$(date +%s.%N)
    kill "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true
    # CPU per message: the floor's CPU per second times the kcpx run's length, per message of that run.
    record "floor_msgcpu_$nn" kcpx "$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v d="$secs" -v m="$msgs" 'BEGIN { printf "%.2f", (b - a) / (e - s) * d * 1e6 / m }')" "$l" 0
    record "floor_sys_$nn" kcpx "$(awk -v a="$k0" -v b="$k1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", (b - a) / (e - s) }')" "$l" 0
    record "floor_rates_$nn" kcpx "$(awk -v i="$din" -v o="$dout" -v s="$secs" -v m="$msgs" 'BEGIN { printf "%.0f/%.0f/%.2f/%.2f", i / s, o / s, i / m, o / m }')" "$l" 0
}

# Datagrams per system call between two lines of the server's stats file.
per_call() { # before after datagrams-key syscalls-key
    awk -v a="$1" -v b="$2" -v d="$3" -v k="$4" 'function f(s, key) { match(s, key "=[0-9]+"); return substr(s, RSTART + length(key) + 1, RLENGTH - length(key) - 1) }
        BEGIN { c = f(b, k) - f(a, k); printf "%.1f", c ? (f(b, d) - f(a, d)) / c : 0 }'
}

active_row() { # N
    local nn=$1
    for r in $(seq 1 "$sreps"); do
        for impl in $(order3 "$r"); do
            start_server "$impl"
            local d0 c0 l t0; d0=$(drops); l=$(load)
            sleep 0.6; local s0; s0=$(cat "$tmp/stats" 2>/dev/null || true)
            c0=$(cpu_of "$SPID"); t0=$(date +%s.%N); local k0; k0=$(sys_of "$SPID")
            local co=""; [ "$impl" = kcpxc ] && co="-coalesce $COALESCE_US"
            local o; o=$(timeout 300 "$(bin "$impl")" active -addr "127.0.0.1:$port" -n "$nn" -rate 20 -secs "$ASECS" $co) || o=""
            local c1 t1 k1; c1=$(cpu_of "$SPID"); t1=$(date +%s.%N); k1=$(sys_of "$SPID")
            sleep 0.6; local s1; s1=$(cat "$tmp/stats" 2>/dev/null || true)
            stop_server
            local dr=$(( $(drops) - d0 ))
            local msgs; msgs=$(echo "$o" | field sent); msgs=${msgs:-0}
            # Server CPU per message the clients sent (each echoed once).
            record "active_msgcpu_$nn" "$impl" "$(awk -v a="$c0" -v b="$c1" -v m="$msgs" 'BEGIN { if (m > 0) printf "%.2f", (b - a) * 1e6 / m; else print "fail" }')" "$l" "$dr"
            record "active_p99_$nn" "$impl" "$(echo "$o" | field p99_ms)" "$l" "$dr"
            # The clients' CPU per message sent (their own getrusage).
            record "active_client_$nn" "$impl" "$(awk -v c="$(echo "$o" | field cpu)" -v m="$(echo "$o" | field sent)" 'BEGIN { if (m > 0) printf "%.1f", c * 1e6 / m; else print "fail" }')" "$l" "$dr"
            record "active_cpu_$nn" "$impl" "$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", (b - a) / (e - s) }')" "$l" "$dr"
            record "active_sys_$nn" "$impl" "$(awk -v a="$k0" -v b="$k1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", (b - a) / (e - s) }')" "$l" "$dr"
            if [ "$impl" != kcpgo ] && [ -n "$s0" ] && [ -n "$s1" ]; then
                record "batch_rx_$nn" "$impl" "$(per_call "$s0" "$s1" recv_datagrams recv_syscalls)" "$l" 0
                record "batch_tx_$nn" "$impl" "$(per_call "$s0" "$s1" sent_datagrams send_syscalls)" "$l" 0
            fi
            if [ "$impl" = kcpx ] && [ -n "$s0" ] && [ -n "$s1" ] && wants floor; then
                floor_row "$nn" "$s0" "$s1" "$(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }')" "$msgs" "$(load)"
            fi
        done
    done
}

if wants bulk; then
    echo "== bulk (one session, windows 1024) ==" >&2
    bulk_row sink "$BULK" "" ""
    bulk_row echo "$ECHO" -echo ""
    bulk_row sink_plain "$BULK" "" -plain
    bulk_row echo_plain "$ECHO" -echo -plain
fi
if wants idle; then
    echo "== idle sessions ==" >&2
    for nn in $IDLE_N; do idle_row "$nn"; done
fi
if wants active; then
    echo "== active sessions (20 x 64 B/s each, echoed) ==" >&2
    for nn in $ACTIVE_N; do active_row "$nn"; done
fi

# ---- table ----
median() { # key impl -> "median (min-max) load~L drops~D"
    awk -v k="$1" -v i="$2" 'BEGIN { n = 0 } $1 == k && $2 == i { v[n] = $3; l[n] = $4; d[n] = $5; n++ }
        END {
            if (n == 0) { print "-"; exit }
            for (a = 0; a < n; a++) for (b = a + 1; b < n; b++) if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t }
            m = v[int((n - 1) / 2)]; ls = ""; ds = 0
            for (a = 0; a < n; a++) { ls = ls (a ? "/" : "") l[a]; ds += d[a] }
            if (n > 1) printf "%s (%s–%s), load %s, drops %d", m, v[0], v[n - 1], ls, ds
            else printf "%s, load %s, drops %d", m, ls, ds
        }' "$res"
}
value() { awk -v k="$1" -v i="$2" 'BEGIN { n = 0 } $1 == k && $2 == i { v[n++] = $3 } END { if (!n) { print ""; exit } for (a = 0; a < n; a++) for (b = a + 1; b < n; b++) if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t } print v[int((n - 1) / 2)] }' "$res"; }
ratio() { awk -v a="$(value "$1" "${2:-kcpx}")" -v b="$(value "$1" kcpgo)" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }

{
echo "kcpx vs kcp-go 5.6.1 sessions, $(date -u +%Y-%m-%d), $(nproc) CPUs, GOMAXPROCS=$GOMAXPROCS, reps $reps (bulk) / $sreps (idle, active)"
echo
echo "| measure | kcpx | kcp-go 5.6.1 | kcpx / kcp-go | goal |"
echo "|---|---|---|---|---|"
row() { echo "| $1 | $(median "$2" "${4:-kcpx}") | $(median "$2" kcpgo) | $(ratio "$2" "${4:-kcpx}") | $3 |"; }
if wants bulk; then
    row "stream sink $((BULK >> 20)) MiB, MB payload per CPU-s (both processes)" sink "≥ 2×"
    row "stream echo $((ECHO >> 20)) MiB, MB per CPU-s" echo "≥ 2×"
    row "sink, no FEC/crypto, MB per CPU-s" sink_plain "≥ 2×"
    row "echo, no FEC/crypto, MB per CPU-s" echo_plain "≥ 2×"
fi
if wants idle; then
    for nn in $IDLE_N; do row "idle $nn: server RSS bytes per session" "idle_rss_$nn" "≤ 2048 B"; done
    for nn in $IDLE_N; do row "idle $nn: server CPU-s per s" "idle_cpu_$nn" "≤ 0.05× kcp-go"; done
fi
if wants active; then
    for c in kcpx kcpxc; do
        tag=""; [ $c = kcpxc ] && tag=", kcpx with $((COALESCE_US / 1000)) ms receive coalescing"
        for nn in $ACTIVE_N; do row "active $nn × 20/s × 64 B: p99 RTT ms$tag" "active_p99_$nn" "p99 ≤ 20 ms" $c; done
        for nn in $ACTIVE_N; do row "active $nn: server CPU-s per s$tag" "active_cpu_$nn" "≤ 0.25× at 1,000" $c; done
        for nn in $ACTIVE_N; do row "active $nn: server CPU µs per message (echoed once)$tag" "active_msgcpu_$nn" "≤ 0.25× at 1,000" $c; done
        for nn in $ACTIVE_N; do row "active $nn: of which kernel (system time)$tag" "active_sys_$nn" "" $c; done
    for nn in $ACTIVE_N; do row "active $nn: clients' CPU µs per message sent$tag" "active_client_$nn" "" $c; done
        for nn in $ACTIVE_N; do
            echo "| active $nn: datagrams per recv / send syscall (kcpx listener counters)$tag | $(value "batch_rx_$nn" $c) / $(value "batch_tx_$nn" $c) | not counted | | ≥ 16 |"
        done
    done
fi
if wants active && wants floor; then
    for nn in $ACTIVE_N; do
        f=$(value "floor_msgcpu_$nn" kcpx); k=$(value "active_msgcpu_$nn" kcpx)
        echo "| active $nn: raw-kernel UDP echo (recvmmsg/sendmmsg, udp_floor.c) moving kcpx's datagrams, CPU µs per kcpx message | $(median "floor_msgcpu_$nn" kcpx); kcpx $k | | kcpx / floor $(awk -v a="$k" -v b="$f" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }') | ≤ 2× |"
        echo "| active $nn: of which kernel (floor's system time, CPU-s per s) | $(median "floor_sys_$nn" kcpx) | | | |"
        echo "| active $nn: kcpx listener datagrams in/out per s, per message | $(value "floor_rates_$nn" kcpx) | | | |"
    done
fi
} | tee "$out/sessions.md"
