/*
 * A kcpx echo server for many clients (kcpx or kcp-go), written only
 * against kcpx.h: one listener, an epoll loop on its socket and its timer,
 * an echo buffer per session.
 *
 * usage: kcpx_echo_server IP:PORT [--crypt NAME] [--password P]
 *                         [--fec DS PS] [--message] [--idle MS]
 *   IP:PORT  "127.0.0.1:4000", "[::1]:4000"; port 0 picks a free one
 *
 * Prints "listening on PORT", serves until SIGTERM or SIGINT, then prints
 * one line of JSON with the listener's counters and exits 0.
 *
 * Build it against an installed kcpx (the rpath tells the loader where
 * libkcpx.so.1 is; without it the program does not start):
 *     cc kcpx_echo_server.c -o kcpx_echo_server $(pkg-config --cflags --libs kcpx) \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir kcpx)"
 * or from a checkout after `cargo build --release`, whose libkcpx.so has the
 * SONAME libkcpx.so.1, a name that only an install or this link provides:
 *     ln -sf libkcpx.so target/release/libkcpx.so.1
 *     cc examples/c/kcpx_echo_server.c -Iinclude -Ltarget/release -lkcpx \
 *        -Wl,-rpath,"$PWD/target/release" -o kcpx_echo_server
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "example_config.h"

/* What a session has received and not yet echoed; the sessions alive form
 * a list so that they can be closed and freed at exit. */
struct echo {
	uint8_t buf[64 * 1024];
	size_t len, off;
	unsigned long long echoed;
	kcpx_session *session;
	struct echo *prev, *next;
};

static struct echo *alive;

static void forget(struct echo *e)
{
	if (e->prev) e->prev->next = e->next;
	else alive = e->next;
	if (e->next) e->next->prev = e->prev;
	kcpx_session_close(e->session);
	free(e);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Echoes what the session has, until it must wait (for data or for room). */
static void pump(kcpx_session *s, struct echo *e)
{
	for (;;) {
		int n;
		if (e->off < e->len) {
			n = kcpx_session_send(s, e->buf + e->off, e->len - e->off);
			if (n < 0) return; /* KCPX_ERR_AGAIN: a WRITABLE event follows */
			e->off += (size_t)n;
			e->echoed += (unsigned long long)n;
			if (e->off < e->len) return; /* a short write: WRITABLE follows too */
		}
		e->off = e->len = 0;
		n = kcpx_session_recv(s, e->buf, sizeof e->buf);
		if (n == KCPX_ERR_BUFFER_TOO_SMALL) { /* message mode: a message over 64 KiB */
			fprintf(stderr, "message larger than the echo buffer: dropped session\n");
			return;
		}
		if (n <= 0) return; /* KCPX_ERR_AGAIN (READABLE follows) or closed */
		e->len = (size_t)n;
	}
}

static void handle(struct epoll_event *unused, kcpx_listener *l, unsigned long long *sessions)
{
	kcpx_event ev;
	(void)unused;
	while (kcpx_listener_poll_event(l, &ev) == 1) {
		struct echo *e = kcpx_session_user(ev.session);
		switch (ev.kind) {
		case KCPX_EVENT_ACCEPT:
			e = calloc(1, sizeof *e);
			if (e == NULL) {
				kcpx_session_close(ev.session);
				break;
			}
			kcpx_session_set_user(ev.session, e);
			e->session = ev.session;
			e->next = alive;
			if (alive) alive->prev = e;
			alive = e;
			(*sessions)++;
			pump(ev.session, e);
			break;
		case KCPX_EVENT_READABLE:
		case KCPX_EVENT_WRITABLE:
			if (e != NULL) pump(ev.session, e);
			break;
		case KCPX_EVENT_CLOSED:
			if (e != NULL) forget(e);
			else kcpx_session_close(ev.session);
			break;
		}
	}
}

int main(int argc, char **argv)
{
	struct example_options o;
	struct epoll_event want = {0}, got[8];
	kcpx_listener_counters c;
	kcpx_config *cfg;
	kcpx_listener *l;
	unsigned long long sessions = 0;
	int err = 0, ep;

	if (example_parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: kcpx_echo_server IP:PORT [--crypt NAME] [--password P] "
				"[--fec DS PS] [--message] [--idle MS]\n");
		return 2;
	}
	if ((cfg = example_config(&o)) == NULL) return 1;
	l = kcpx_listen(o.addr, cfg, &err);
	kcpx_config_free(cfg); /* the listener keeps a copy */
	if (l == NULL) {
		fprintf(stderr, "kcpx_listen %s: %s\n", o.addr, kcpx_strerror(err));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(0);
	want.events = EPOLLIN;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, kcpx_listener_fd(l), &want) != 0) {
		perror("epoll");
		return 1;
	}
	printf("listening on %d\n", kcpx_listener_local_port(l));
	fflush(stdout);
	while (!stop) {
		uint32_t now = kcpx_now_ms();
		int timeout = (int)(kcpx_listener_check(l, now) - now);
		if (epoll_wait(ep, got, 8, timeout) < 0 && errno != EINTR) break;
		if (kcpx_listener_update(l, kcpx_now_ms()) < 0) break;
		handle(got, l, &sessions);
	}
	kcpx_listener_stats(l, &c);
	printf("{\"sessions\":%llu,\"passive_opens\":%llu,\"curr_estab\":%llu,\"in_pkts\":%llu,"
	       "\"in_errs\":%llu,\"in_csum_errors\":%llu,\"kcp_in_errors\":%llu,\"replaced\":%llu,"
	       "\"dropped_unknown\":%llu,\"recv_syscalls\":%llu,\"send_syscalls\":%llu}\n",
	       sessions, (unsigned long long)c.passive_opens, (unsigned long long)c.curr_estab,
	       (unsigned long long)c.in_pkts, (unsigned long long)c.in_errs,
	       (unsigned long long)c.in_csum_errors, (unsigned long long)c.kcp_in_errors,
	       (unsigned long long)c.replaced, (unsigned long long)c.dropped_unknown,
	       (unsigned long long)c.recv_syscalls, (unsigned long long)c.send_syscalls);
	if (c.passive_opens == 0) {
		struct example_symptoms why = { 0, c.in_pkts, c.in_csum_errors, c.in_errs + c.kcp_in_errors, 0, 0 };
		example_hint("kcpx_echo_server", &why);
	}
	while (alive) forget(alive); /* each flushes what it queued */
	kcpx_listener_close(l);     /* would also free sessions still open */
	return 0;
}
