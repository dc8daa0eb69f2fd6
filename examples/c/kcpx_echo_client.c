/*
 * A kcpx echo client using the blocking convenience (no loop of its own, no
 * events: kcpx_session_wait, _send and _recv only): dials a server
 * (kcpx_echo_server, or a kcp-go server), sends seeded random bytes and
 * checks every byte of the echo.
 *
 * usage: kcpx_echo_client IP:PORT [--crypt NAME] [--password P]
 *                         [--fec DS PS] [--bytes N] [--seed S] [--timeout SEC]
 *
 * Prints one line of JSON and exits 0 when the echo matched, 1 otherwise.
 * "idle_waits" counts the waits that returned 1 while neither send nor recv
 * could then make progress (a wait that spins would count up fast).
 *
 * Build it against an installed kcpx (the rpath tells the loader where
 * libkcpx.so.1 is; without it the program does not start):
 *     cc kcpx_echo_client.c -o kcpx_echo_client $(pkg-config --cflags --libs kcpx) \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir kcpx)"
 * or from a checkout after `cargo build --release`, whose libkcpx.so has the
 * SONAME libkcpx.so.1, a name that only an install or this link provides:
 *     ln -sf libkcpx.so target/release/libkcpx.so.1
 *     cc examples/c/kcpx_echo_client.c -Iinclude -Ltarget/release -lkcpx \
 *        -Wl,-rpath,"$PWD/target/release" -o kcpx_echo_client
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "example_config.h"

static uint8_t next_byte(unsigned long long *s)
{
	/* splitmix64 */
	unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint8_t)(z ^ (z >> 31));
}

int main(int argc, char **argv)
{
	static uint8_t out[16384], in[16384];
	struct example_options o;
	unsigned long long send_rng, check_rng;
	long sent = 0, echoed = 0;
	size_t have = 0, k;
	kcpx_config *cfg;
	kcpx_session *s;
	kcpx_stats st;
	unsigned long long idle_waits = 0;
	kcpx_listener_counters sock;
	uint32_t start;
	int err = 0, ok = 1, ready_before = 0;

	if (example_parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: kcpx_echo_client IP:PORT [--crypt NAME] [--password P] "
				"[--fec DS PS] [--bytes N] [--seed S] [--timeout SEC]\n");
		return 2;
	}
	if ((cfg = example_config(&o)) == NULL) return 1;
	s = kcpx_dial(o.addr, cfg, &err);
	kcpx_config_free(cfg);
	if (s == NULL) {
		fprintf(stderr, "kcpx_dial %s: %s\n", o.addr, kcpx_strerror(err));
		return 1;
	}
	send_rng = check_rng = o.seed;
	start = kcpx_now_ms();
	while (ok && echoed < o.bytes && kcpx_now_ms() - start < (uint32_t)o.timeout_s * 1000) {
		int n, progress = 0, ready;
		/* Keep the send queue full: a partial send keeps the rest for later. */
		while (sent < o.bytes) {
			if (have == 0) {
				have = (size_t)(o.bytes - sent) < sizeof out ? (size_t)(o.bytes - sent) : sizeof out;
				for (k = 0; k < have; k++) out[k] = next_byte(&send_rng);
			}
			n = kcpx_session_send(s, out, have);
			if (n == KCPX_ERR_CLOSED) ok = 0;
			if (n <= 0) break; /* KCPX_ERR_AGAIN: wait says when there is room */
			memmove(out, out + n, have - (size_t)n);
			have -= (size_t)n;
			sent += n;
			progress = 1;
			if (have > 0) break; /* a short write: the queue is full for now */
		}
		while ((n = kcpx_session_recv(s, in, sizeof in)) > 0) {
			for (k = 0; k < (size_t)n; k++)
				if (in[k] != next_byte(&check_rng)) ok = 0;
			echoed += n;
			progress = 1;
		}
		if (n == KCPX_ERR_CLOSED) {
			fprintf(stderr, "session closed\n");
			ok = 0;
		}
		if (ready_before && !progress) idle_waits++;
		/* Runs I/O and timers while it blocks; 1: data, room or a close. */
		ready = kcpx_session_wait(s, 100);
		if (ready < 0) {
			fprintf(stderr, "kcpx_session_wait: %s\n", kcpx_strerror(ready));
			ok = 0;
		}
		ready_before = ready == 1;
	}
	ok = ok && echoed == o.bytes;
	kcpx_session_stats(s, &st);
	kcpx_session_socket_stats(s, &sock);
	if (!ok) {
		struct example_symptoms why = { (unsigned long long)echoed, sock.in_pkts, sock.in_csum_errors,
						 sock.in_errs + sock.kcp_in_errors, sock.dropped_unknown,
						 st.fec_pattern_mismatches };
		example_hint("kcpx_echo_client", &why);
	}
	printf("{\"ok\":%s,\"bytes\":%ld,\"idle_waits\":%llu,\"conv\":%u,\"rtt\":%d,\"in_csum_errors\":%llu,"
	       "\"kcp_in_errors\":%llu,\"retrans_segs\":%llu,\"fec_recovered\":%llu,\"fec_pattern_mismatches\":%llu,"
	       "\"socket_in_pkts\":%llu,\"socket_in_csum_errors\":%llu,\"dropped_unknown\":%llu}\n",
	       ok ? "true" : "false", echoed, idle_waits, kcpx_session_conv(s), kcpx_session_rtt(s),
	       (unsigned long long)st.in_csum_errors, (unsigned long long)st.kcp_in_errors,
	       (unsigned long long)st.retrans_segs, (unsigned long long)st.fec_recovered,
	       (unsigned long long)st.fec_pattern_mismatches, (unsigned long long)sock.in_pkts,
	       (unsigned long long)sock.in_csum_errors, (unsigned long long)sock.dropped_unknown);
	kcpx_session_close(s); /* waits briefly until the last ACKs are out */
	return ok ? 0 : 1;
}
