#!/usr/bin/env bash
# Side-by-side demo: upstream's latency simulation (c_tests/latency_sim.c, a
# deterministic rewrite of ikcp.c's test.cpp on a virtual clock) built once
# against pristine ikcp.c 1.7.1 and once against libkcpx, printed next to
# each other. The same C source is compiled with each library's own ikcp.h.
#
# usage: c_tests/demo.sh [--debug]   (default: a release build of libkcpx)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile=release
cargo_flags=(--release)
if [ "${1:-}" = "--debug" ]; then profile=debug; cargo_flags=(); fi
cc="${CC:-cc}"

# Progress goes to stderr; the tables to stdout.
say() { printf 'demo: %s\n' "$*" >&2; }
say "1/4 fetching the pristine ikcp.c 1.7.1 (cargo fetch of kcp-sys 0.1.0, sha256-checked; ~100 MB the first time, then cached)"
pristine="$("$here/fetch-pristine.sh")"
say "2/4 building libkcpx ($profile; the first build compiles the dependencies and takes about a minute)"
cargo build --lib "${cargo_flags[@]}" --manifest-path "$root/Cargo.toml"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags=(-std=c11 -O2 -Wall -Wextra -Werror)
say "3/4 compiling c_tests/latency_sim.c twice: with pristine ikcp.c, and with libkcpx.a"
"$cc" -std=gnu11 -O2 -w -c "$pristine/ikcp.c" -o "$work/ikcp.o"
"$cc" "${flags[@]}" -I"$pristine" "$here/latency_sim.c" "$work/ikcp.o" -o "$work/sim_ikcp"
# The static library: no SONAME/rpath to arrange for a throwaway binary.
"$cc" "${flags[@]}" -I"$root/include" "$here/latency_sim.c" "$root/target/$profile/libkcpx.a" \
  -lpthread -ldl -lm -lgcc_s -lc -o "$work/sim_kcpx"

say "4/4 running both: 1000 echoes in each of three modes, 10% loss, on a virtual clock"
mapfile -t left < <("$work/sim_ikcp")
mapfile -t right < <("$work/sim_kcpx")
printf '%-48s | %s\n' "pristine ikcp.c 1.7.1" "kcpx ($profile)"
printf '%-48s-+-%s\n' "------------------------------------------------" "------------------------------------------------"
for i in "${!left[@]}"; do printf '%-48s | %s\n' "${left[$i]}" "${right[$i]:-}"; done
if [ "${left[*]}" = "${right[*]}" ]; then
  echo "identical: kcpx reproduces ikcp.c 1.7.1 exactly (1000 echoes per mode, 10% loss, 60-125 ms RTT)"
else
  echo "DIFFERENT: kcpx does not reproduce ikcp.c 1.7.1" >&2
  exit 1
fi
