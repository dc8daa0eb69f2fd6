#!/bin/sh
# Sanity check of the Go peer itself: kcp-go server <-> kcp-go client echo over
# loopback, for a few crypt/FEC/loss settings. Builds the peer first.
#
#   interop/echo-selftest.sh [WORKDIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d)}
peer=$("$here/build-go-peer.sh" "$work")
port=29950
fail=0
for args in "-crypt aes-128 -ds 10 -ps 3 -drop 5" "-crypt none -ds 3 -ps 2 -drop 10" \
            "-crypt aes-256 -drop 2 -stream" "-ds 1 -ps 1"; do
    port=$((port + 1))
    # shellcheck disable=SC2086
    "$peer" server -addr 127.0.0.1:$port $args -seed 1 -timeout 60s > "$work/server.json" &
    server=$!
    sleep 0.3
    # shellcheck disable=SC2086
    if "$peer" client -addr 127.0.0.1:$port $args -seed 2 -bytes 1000000 -timeout 30s > "$work/client.json"; then
        echo "ok   $args: $(cut -c1-120 "$work/client.json")"
    else
        echo "FAIL $args: $(cat "$work/client.json")"
        fail=$((fail + 1))
    fi
    kill -TERM "$server"
    wait "$server" || true
done
# Many sessions at once, then a client restarted on its port (sn == 0 replacement).
port=$((port + 1))
"$peer" server -addr 127.0.0.1:$port -crypt aes-128 -ds 10 -ps 3 -timeout 60s > "$work/server.json" &
server=$!
sleep 0.3
for mode in "clients -n 100 -bytes 65536" "restart -lport $((port + 100)) -bytes 100000"; do
    # shellcheck disable=SC2086
    if "$peer" $mode -addr 127.0.0.1:$port -crypt aes-128 -ds 10 -ps 3 -drop 2 -timeout 30s > "$work/client.json"; then
        echo "ok   $mode: $(cut -c1-120 "$work/client.json")"
    else
        echo "FAIL $mode: $(cat "$work/client.json")"
        fail=$((fail + 1))
    fi
done
kill -TERM "$server"
wait "$server" || true
echo "$((6 - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
