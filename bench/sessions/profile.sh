#!/bin/bash
# Where a kcpx listener's CPU goes in bench/sessions/run.sh's active row
# (issue 21 item 2): a measurement, not a test.
#
#   bench/sessions/profile.sh [--n 1000] [--rate 20] [--secs 10] [--plain]
#
# Builds kcpx_bench with the `profiling` profile (release code with debug
# line tables, not stripped), runs its server and `active` clients (N
# sessions x RATE messages of 64 B per second, echoed; FEC 10/3 + AES-128
# unless --plain), samples the server with `perf record -e cpu-clock -g`
# (software clock: hardware counters are often missing in VMs; Debian's
# linux-perf) after the clients' 2-second warm-up, and prints the server's
# CPU per message split by where the samples fell:
#   kernel: by system call (recvmmsg, sendmmsg, poll) from the kernel
#     call chains, the rest (wake-ups, scheduling, softirq) apart;
#   user: by the innermost source line's place in the crate (src/kcp/ KCP,
#     src/fec/ and the Reed-Solomon kernels FEC, src/crypt/ and the AES,
#     GCM and CRC-32 code cipher, src/conn/, src/endpoint/ endpoint
#     bookkeeping, src/net/), then by the function's name where the line is
#     the standard library's (an inlined copy, a hash, a Vec) and libc's
#     allocator and copies apart.
# Needs perf (and permission: root, or kernel.perf_event_paranoid <= 1 for
# kernel samples) and python3. Output also goes to target/bench/profile.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=1000; rate=20; secs=10; plain=
while [ $# -gt 0 ]; do
    case $1 in
        --n) n=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        --plain) plain=-plain; shift ;;
        *) echo "usage: $0 [--n N] [--rate HZ] [--secs S] [--plain]" >&2; exit 2 ;;
    esac
done
command -v perf > /dev/null || { echo "perf not found (Debian: apt-get install linux-perf)" >&2; exit 1; }
command -v python3 > /dev/null || { echo "python3 not found" >&2; exit 1; }
out=$root/target/bench; mkdir -p "$out"
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
(cd "$root" && cargo build --profile profiling --example kcpx_bench >&2)
BIN=$root/target/profiling/examples/kcpx_bench
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
sys_of() { awk -v t="$tck" '{printf "%.3f", $15 / t}' "/proc/$1/stat"; }
port=$((29600 + RANDOM % 200))

"$BIN" server -addr "127.0.0.1:$port" $plain > /dev/null 2>&1 &
spid=$!
sleep 0.5
"$BIN" active -addr "127.0.0.1:$port" -n "$n" -rate "$rate" -secs "$secs" $plain > "$tmp/clients.out" &
cpid=$!
sleep 2.5 # the clients' warm-up, and half a second more
window=$((secs - 1))
load=$(cut -d' ' -f1 /proc/loadavg)
c0=$(cpu_of "$spid"); k0=$(sys_of "$spid"); t0=$(date +%s.%N)
perf record -e cpu-clock -F 1999 -g -p "$spid" -o "$tmp/perf.data" -- sleep "$window" 2> "$tmp/perf.err" > /dev/null
c1=$(cpu_of "$spid"); k1=$(sys_of "$spid"); t1=$(date +%s.%N)
wait "$cpid" || true
kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true

perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,sym,srcline --full-source-path -t '|' \
    > "$tmp/self.txt" 2>/dev/null
perf report -i "$tmp/perf.data" --stdio --children --sort sym -g none -t '|' > "$tmp/children.txt" 2>/dev/null

python3 - "$tmp/self.txt" "$tmp/children.txt" "$root" "$c0" "$c1" "$k0" "$k1" "$t0" "$t1" "$n" "$rate" "$load" \
    "$(cat "$tmp/clients.out")" "${plain:-fec+aes}" << 'EOF' | tee "$out/profile.md"
import re, sys
self_txt, children_txt, root = sys.argv[1:4]
c0, c1, k0, k1, t0, t1 = map(float, sys.argv[4:10])
n, rate, load, clients, mode = int(sys.argv[10]), float(sys.argv[11]), sys.argv[12], sys.argv[13], sys.argv[14]
secs = t1 - t0
cpu = (c1 - c0) / secs          # CPU-s per s over the window
msgs = n * rate                 # messages per s (each echoed once)
per_msg = cpu / msgs * 1e6      # µs per message

def rows(path, cols):
    for line in open(path, errors="replace"):
        if line.startswith("#") or "|" not in line:
            continue
        parts = [p.strip() for p in line.split("|")]
        m = re.match(r"([\d.]+)%", parts[0])
        if m and len(parts) >= cols:
            yield float(m.group(1)), parts[1:]

layers = [("src/kcp/", "KCP (src/kcp/)"), ("src/fec/", "FEC (src/fec/)"), ("src/crypt/", "cipher (src/crypt/, AES, CRC-32)"),
          ("src/conn/", "connection (src/conn/)"), ("src/endpoint/", "endpoint bookkeeping (src/endpoint/)"),
          ("src/net/", "socket layer (src/net/)"), ("bench/sessions/", "benchmark server (kcpx_bench.rs)")]
by_name = [("kcpx::kcp::", 0), ("kcpx::fec::", 1), ("kcpx::crypt::", 2), ("kcpx::conn::", 3), ("kcpx::endpoint::", 4),
           ("kcpx::net::", 5), ("kcpx_bench::", 6)]
cipher_crates = ("aes", "ring", "crc32fast", "cipher", "ghash", "polyval", "ctr", "aes-gcm", "aesni")
share = {}
def add(k, v):
    share[k] = share.get(k, 0.0) + v
for pct, (dso, sym, srcline) in rows(self_txt, 4):
    if dso.startswith("[kernel"):
        continue  # split below, from the call chains
    if "libc" in dso or dso.startswith("[vdso"):
        add("libc (malloc/free, memcpy/memset, clock_gettime, syscall stubs)", pct)
        continue
    label = None
    for key, name in layers:
        if key in srcline and root in srcline:
            label = name
    if label is None:
        crate = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d", srcline)
        if crate and crate.group(1) in cipher_crates or "x86/aes.rs" in srcline or "pclmulqdq" in srcline:
            label = layers[2][1]
        elif crate and crate.group(1).startswith("reed-solomon"):
            label = layers[1][1]
    if label is None:
        for key, i in by_name:
            if key in sym:
                label = layers[i][1]
                break
    add(label or "other user code (std, hashing, allocator glue)", pct)
kernel_total = sum(p for p, (dso, _, _) in rows(self_txt, 4) if dso.startswith("[kernel"))
calls = {"recvmmsg": 0.0, "sendmmsg": 0.0, "poll/epoll": 0.0}
for pct, r in rows(children_txt, 3):  # children% | self% | symbol
    s = r[1].replace("[k] ", "")
    if s == "__x64_sys_recvmmsg":
        calls["recvmmsg"] += pct
    elif s == "__x64_sys_sendmmsg":
        calls["sendmmsg"] += pct
    elif s in ("__x64_sys_poll", "__x64_sys_ppoll", "__x64_sys_epoll_wait", "__x64_sys_epoll_pwait"):
        calls["poll/epoll"] += pct
other_kernel = max(0.0, kernel_total - sum(calls.values()))
total = kernel_total + sum(share.values())
print(f"kcpx listener profile: {n} sessions x {rate:g}/s x 64 B echoed ({mode}), perf cpu-clock samples over {secs:.1f} s, load {load}")
print(f"server CPU {cpu:.3f} CPU-s/s (system {(k1 - k0) / secs:.3f}), {per_msg:.2f} µs per message; clients: {clients}")
print()
print("| where | share of samples | µs per message |")
print("|---|---|---|")
def line(name, pct):
    print(f"| {name} | {pct / total * 100:.1f}% | {per_msg * pct / total:.2f} |")
line("kernel, all", kernel_total)
for k, v in calls.items():
    line(f"&nbsp;&nbsp;kernel: {k} (inclusive)", v)
line("&nbsp;&nbsp;kernel: other (wake-ups, scheduling, softirq, timers)", other_kernel)
for _, name in layers:
    if name in share:
        line(name, share.pop(name))
for name, v in sorted(share.items(), key=lambda kv: -kv[1]):
    line(name, v)
EOF
