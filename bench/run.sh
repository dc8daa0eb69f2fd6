#!/usr/bin/env bash
# CPU and heap benchmark of libkcpx against the pristine ikcp.c 1.7.1.
#
# Builds bench/kcp_bench.c twice -- with ikcp.c (gcc -O2) and with libkcpx.a
# (cargo build --profile profiling: the release code plus debug info, so that
# callgrind_annotate and perf see source lines) -- runs every scenario with both builds, alternating
# them so that machine noise hits both alike, and prints a markdown table of
# medians and kcpx/ikcp.c ratios, also saved to target/bench/results.md.
#
# A measurement tool, not a test: a missed goal is reported, never fatal.  It
# exits non-zero only when something is broken (a build fails, a transfer
# delivers corrupted data or stalls, an ikcp_* call fails).
#
# usage: bench/run.sh [--reps N] [--callgrind] [--lib-dir DIR]
#   --reps N       runs of each scenario per build, median reported (default 9)
#   --callgrind    also count the bulk transfer's instructions under callgrind
#                  (repeatable, unlike CPU time; adds ~15 s)
#   --lib-dir DIR  link DIR/libkcpx.a instead of running cargo build --profile profiling
set -euo pipefail

usage() { sed -n '/^# usage:/,/^set -e/{/^set/d; s/^# \{0,1\}//; p}' "$0"; }

reps=9
callgrind=0
lib_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --lib-dir) lib_dir=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/target/bench
raw=$out/raw.txt
mkdir -p "$out"

fail() { echo "bench/run.sh: $*" >&2; exit 1; }

# ---- build ------------------------------------------------------------------
build() {
  local pristine cflags
  pristine=$("$root/c_tests/fetch-pristine.sh")
  if [ -z "$lib_dir" ]; then
    cargo build --profile profiling --lib --manifest-path "$root/Cargo.toml" >&2
    lib_dir=$root/target/profiling
  fi
  [ -f "$lib_dir/libkcpx.a" ] || fail "no libkcpx.a in $lib_dir"
  cflags=(-std=c11 -O2 -Wall -Wextra -Werror -I"$pristine")
  # The upstream file is compiled as its users do: plain -O2, not our warnings.
  gcc -O2 -c "$pristine/ikcp.c" -o "$out/ikcp.o"
  gcc "${cflags[@]}" "$root/bench/kcp_bench.c" "$out/ikcp.o" -o "$out/bench-ikcp"
  # Static on both sides, so neither pays for PLT calls.  The -l list is what
  # rustc prints as native-static-libs for a std staticlib on linux-gnu.
  gcc "${cflags[@]}" "$root/bench/kcp_bench.c" "$lib_dir/libkcpx.a" \
    -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o "$out/bench-kcpx"
}

# ---- measure ----------------------------------------------------------------
# Appends "IMPL KEY VALUE" lines to $raw.
run_one() {
  local impl=$1 lines
  shift
  lines=$("$out/bench-$impl" "$@") || fail "bench-$impl $* failed (see above)"
  printf '%s\n' "$lines" | sed "s/^/$impl /" >>"$raw"
}

measure() {
  local scenarios=("bulk 0" "bulk 5" "conns" "idle 100" "idle 10" "heap") r s impl order
  : >"$raw"
  for ((r = 1; r <= reps; r++)); do
    echo "run $r/$reps" >&2
    # Swap who goes first every run: neither build always gets the warm cache.
    order="ikcp kcpx"
    ((r % 2)) || order="kcpx ikcp"
    for s in "${scenarios[@]}"; do
      for impl in $order; do
        # shellcheck disable=SC2086 # $s is the scenario and its argument
        run_one "$impl" $s
      done
    done
  done
}

# Instruction counts of bulk_transfer() only (setup and checks excluded).
measure_callgrind() {
  local impl loss base ir bytes
  for impl in ikcp kcpx; do
    for loss in 0 5; do
      echo "callgrind: $impl, bulk $loss% loss" >&2
      base=$out/callgrind.$impl.loss$loss
      valgrind --tool=callgrind --toggle-collect='bulk_transfer*' \
        --callgrind-out-file="$base.out" "$out/bench-$impl" bulk "$loss" \
        >"$base.stdout" 2>"$base.log" || fail "callgrind run failed, see $base.log"
      ir=$(awk '/Collected :/ { print $NF }' "$base.log")
      bytes=$(awk '$1 ~ /_bytes$/ { print $2 }' "$base.stdout")
      echo "$impl cg_loss${loss}_ir_per_byte $(awk -v i="$ir" -v b="$bytes" 'BEGIN { printf "%.4f", i / b }')" >>"$raw"
    done
  done
}

# ---- report -----------------------------------------------------------------
median() { # IMPL KEY
  awk -v impl="$1" -v key="$2" '$1 == impl && $2 == key { print $3 }' "$raw" | sort -g |
    awk '{ v[NR] = $1 }
         END { if (NR == 0) exit 1; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }' ||
    fail "no $2 figure for $1"
}

# spread KEY: the kcpx/ikcp.c ratio of each run (the two builds
# ran back to back in it), as "min–max" over the runs.
spread() {
  awk -v key="$1" '
    $2 == key && $1 == "ikcp" { a[++na] = $3 }
    $2 == key && $1 == "kcpx" { b[++nb] = $3 }
    END {
      n = na < nb ? na : nb
      for (i = 1; i <= n; i++) if (a[i] > 0) { r = b[i] / a[i]; if (!lo || r < lo) lo = r; if (r > hi) hi = r }
      if (hi > 0) printf "%.3f–%.3f", lo, hi; else printf "n/a"
    }' "$raw"
}

# row LABEL KEY KIND LIMIT GOAL_TEXT; KIND "ratio": kcpx/ikcp.c <= LIMIT,
# KIND "max": the kcpx figure itself <= LIMIT. The ratio is of the medians;
# the spread column gives the per-run ratios' range.
row() {
  awk -v label="$1" -v kind="$3" -v limit="$4" -v goal="$5" -v spread="$(spread "$2")" \
    -v a="$(median ikcp "$2")" -v b="$(median kcpx "$2")" '
    function fmt(v) { return v >= 1000 ? sprintf("%.0f", v) : sprintf("%.4g", v) }
    BEGIN {
      ratio = a > 0 ? sprintf("%.3fx", b / a) : "n/a"
      met = kind == "ratio" ? (a > 0 && b / a <= limit) : (b <= limit)
      if (kind != "ratio") spread = ""
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", label, fmt(a), fmt(b), ratio, spread, goal, met ? "yes" : "**no**"
    }'
}

table() {
  echo "| scenario | ikcp.c | kcpx | ratio (medians) | ratio spread (min–max per run) | goal | met? |"
  echo "|---|---|---|---|---|---|---|"
  row "Bulk 64 MiB, 0% loss: CPU ns/byte" bulk_loss0_ns_per_byte ratio 0.7 "≤ 0.7x"
  row "Bulk 64 MiB, 5% loss: CPU ns/byte" bulk_loss5_ns_per_byte ratio 0.8 "≤ 0.8x"
  if ((callgrind)); then
    row "Bulk 64 MiB, 0% loss: callgrind Ir/byte" cg_loss0_ir_per_byte ratio 1.0 "≤ 1.0x"
    row "Bulk 64 MiB, 5% loss: callgrind Ir/byte" cg_loss5_ir_per_byte ratio 1.0 "≤ 1.0x"
  fi
  row "5000 conns × 32 unacked 1 KiB segments: CPU ms/round" conns_ms_per_round ratio 0.05 "≤ 0.05x"
  row "5000 idle conns, interval 100: CPU µs/round" idle_i100_us_per_round ratio 1.0 "≤ 1.0x"
  row "5000 idle conns, interval 10: CPU µs/round" idle_i10_us_per_round ratio 1.0 "≤ 1.0x"
  row "Heap bytes/idle conn after create (ikcp_allocator)" heap_create_bytes_per_conn max 1024 "≤ 1 KiB"
  row "Heap bytes/idle conn after 1 update (ikcp_allocator)" heap_update_bytes_per_conn max 1024 "≤ 1 KiB"
  row "Heap bytes/idle conn after 1 update (all malloc, mallinfo2)" heap_malloc_bytes_per_conn max 1024 "≤ 1 KiB"
}

# Facts that should be identical for a drop-in; a difference is worth a look.
same() { # KEY WHAT
  local a b
  a=$(median ikcp "$1")
  b=$(median kcpx "$1")
  if [ "$a" = "$b" ]; then echo "- $2: $a in both builds."; else echo "- **$2 differ**: ikcp.c $a, kcpx $b."; fi
}

notes() {
  same bulk_loss0_datagrams "Datagrams on the wire, bulk 0% loss"
  same bulk_loss5_datagrams "Datagrams on the wire, bulk 5% loss"
  same conns_clean_rounds "Rounds before the first RTO (scenario 2)"
  same heap_leaked_bytes "Bytes still allocated after ikcp_release of all"
  ((callgrind)) && echo "- Callgrind profiles: \`callgrind_annotate $out/callgrind.kcpx.loss0.out\`."
  return 0
}

# The 1-minute load average: other work on the machine shows in the spread.
load() { cut -d' ' -f1 /proc/loadavg; }

report() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "kcpx $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?') vs ikcp.c 1.7.1 (gcc -O2)," \
    "$(date -u '+%Y-%m-%d %H:%M UTC'), $cpu × $(nproc), median of $reps runs" \
    "(ratios: kcpx/ikcp.c, measured in the same run); load average $load_before before the runs," \
    "$(load) after."
  echo
  table
  echo
  notes
}

build
load_before=$(load)
measure
((callgrind)) && measure_callgrind
report | tee "$out/results.md"
