/*
 * kcpx over real UDP, speaking kcp-go's wire format: an echo client or an
 * echo server, using only kcpx.h. The program owns the socket and the clock;
 * kcpx is sans-IO.
 *
 * usage: kcpx_udp_echo client|server IP:PORT [options]
 *   --crypt NAME   any kcptun -crypt name: none aes-128 aes-192 aes-256 salsa20
 *                  blowfish twofish cast5 3des tea xtea sm4 xor (omit: no
 *                  crypto header)
 *   --password P   key = kcptun's PBKDF2 of P (default "kcpx-interop")
 *   --fec DS PS    Reed-Solomon FEC shards (default: off)
 *   --bytes N      client: bytes to send and expect back; server: bytes to
 *                  echo before exiting (default 1 MiB)
 *   --drop PCT     drop this share of outgoing datagrams (seeded PRNG)
 *   --seed S       seed of the payload and of the drops (default 1)
 *   --timeout SEC  give up after this long (default 60)
 *
 * The client sends seeded random bytes in stream mode and checks every byte
 * of the echo. The server adopts the first peer it hears from (reading its
 * conversation id with kcpx_conv_of) and echoes its stream. Both print one
 * line of counters and exit 0 on success, 1 on failure.
 *
 * Build it against an installed kcpx (the rpath tells the loader where
 * libkcpx.so.1 is; without it the program does not start):
 *     cc kcpx_udp_echo.c -o kcpx_udp_echo $(pkg-config --cflags --libs kcpx) \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir kcpx)"
 * or from a checkout after `cargo build --release`, whose libkcpx.so has the
 * SONAME libkcpx.so.1, a name that only an install or this link provides:
 *     ln -sf libkcpx.so target/release/libkcpx.so.1
 *     cc examples/c/kcpx_udp_echo.c -Iinclude -Ltarget/release -lkcpx \
 *        -Wl,-rpath,"$PWD/target/release" -o kcpx_udp_echo
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "example_config.h" /* example_key_len */
#include "kcpx.h"

struct options {
	int server;
	struct sockaddr_in addr;
	const char *crypt, *password;
	int ds, ps;
	long bytes;
	double drop;
	unsigned long long seed;
	int timeout_s;
};

struct peer {
	int fd;
	double drop;
	unsigned long long rng;
	unsigned long dropped;
	/* Datagrams refused before there was a connection to count them:
	 * failed checksums, and anything else kcpx_conv_of refused. */
	unsigned long long refused_csum, refused_other;
};

static unsigned long long next_rand(unsigned long long *s)
{
	/* splitmix64 */
	unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000);
}

/* kcpx's output callback: one datagram to the connected peer. */
static int send_datagram(const uint8_t *datagram, size_t len, void *user)
{
	struct peer *p = user;
	if ((double)(next_rand(&p->rng) % 10000) < p->drop * 100) {
		p->dropped++;
		return 0;
	}
	return (int)send(p->fd, datagram, len, 0);
}

static int usage(void)
{
	fprintf(stderr, "usage: kcpx_udp_echo client|server IP:PORT [--crypt NAME] [--password P] "
			"[--fec DS PS] [--bytes N] [--drop PCT] [--seed S] [--timeout SEC]\n");
	return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
	int i;
	char host[64];
	const char *colon;
	if (argc < 3) return -1;
	memset(o, 0, sizeof *o);
	o->server = strcmp(argv[1], "server") == 0;
	if (!o->server && strcmp(argv[1], "client") != 0) return -1;
	colon = strrchr(argv[2], ':');
	if (colon == NULL || (size_t)(colon - argv[2]) >= sizeof host) return -1;
	memcpy(host, argv[2], (size_t)(colon - argv[2]));
	host[colon - argv[2]] = '\0';
	o->addr.sin_family = AF_INET;
	o->addr.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &o->addr.sin_addr) != 1) return -1;
	o->password = "kcpx-interop";
	o->bytes = 1 << 20;
	o->seed = 1;
	o->timeout_s = 60;
	for (i = 3; i < argc; i++) {
		int more = i + 1 < argc;
		if (!strcmp(argv[i], "--crypt") && more) o->crypt = argv[++i];
		else if (!strcmp(argv[i], "--password") && more) o->password = argv[++i];
		else if (!strcmp(argv[i], "--fec") && i + 2 < argc) { o->ds = atoi(argv[++i]); o->ps = atoi(argv[++i]); }
		else if (!strcmp(argv[i], "--bytes") && more) o->bytes = atol(argv[++i]);
		else if (!strcmp(argv[i], "--drop") && more) o->drop = atof(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && more) o->seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--timeout") && more) o->timeout_s = atoi(argv[++i]);
		else return -1;
	}
	return 0;
}

/* The configuration both ends must agree on (the Go peer's defaults). */
static kcpx_config *make_config(const struct options *o)
{
	uint8_t key[32];
	size_t key_len = 0;
	int rc;
	kcpx_config *cfg = kcpx_config_new();
	if (cfg == NULL) return NULL;
	key_len = example_key_len(o->crypt);
	if (key_len > 0)
		kcpx_key_from_password((const uint8_t *)o->password, strlen(o->password), key, sizeof key);
	if ((rc = kcpx_config_set_crypt(cfg, o->crypt, key, key_len)) != KCPX_OK ||
	    (rc = kcpx_config_set_fec(cfg, o->ds, o->ps)) != KCPX_OK ||
	    (rc = kcpx_config_set_nodelay(cfg, 1, 10, 2, 1)) != KCPX_OK ||
	    (rc = kcpx_config_set_window(cfg, 128, 512)) != KCPX_OK ||
	    (rc = kcpx_config_set_stream(cfg, 1)) != KCPX_OK ||
	    (rc = kcpx_config_validate(cfg)) != KCPX_OK) {
		fprintf(stderr, "kcpx_udp_echo: configuration refused: %s\n", kcpx_strerror(rc));
		kcpx_config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void print_stats(const char *role, kcpx_conn *c, const struct peer *p, long echoed, int ok)
{
	kcpx_stats s;
	memset(&s, 0, sizeof s);
	if (c != NULL) kcpx_conn_stats(c, &s);
	printf("{\"role\":\"%s\",\"ok\":%s,\"bytes\":%ld,\"in_pkts\":%llu,\"out_pkts\":%llu,"
	       "\"in_csum_errors\":%llu,\"kcp_in_errors\":%llu,\"retrans_segs\":%llu,"
	       "\"fec_recovered\":%llu,\"fec_parity_shards\":%llu,\"dropped\":%lu,\"bytes_sent\":%llu,\"bytes_received\":%llu,\"out_bytes\":%llu}\n",
	       role, ok ? "true" : "false", echoed, (unsigned long long)s.in_pkts,
	       (unsigned long long)s.out_pkts, (unsigned long long)s.in_csum_errors,
	       (unsigned long long)s.kcp_in_errors, (unsigned long long)s.retrans_segs,
	       (unsigned long long)s.fec_recovered, (unsigned long long)s.fec_parity_shards, p->dropped,
	       (unsigned long long)s.bytes_sent, (unsigned long long)s.bytes_received, (unsigned long long)s.out_bytes);
	fflush(stdout);
	if (!ok) {
		struct example_symptoms why = { (unsigned long long)echoed, s.in_pkts + p->refused_csum + p->refused_other,
						 s.in_csum_errors + p->refused_csum,
						 s.in_errs + s.kcp_in_errors + p->refused_other, 0,
						 s.fec_pattern_mismatches };
		example_hint("kcpx_udp_echo", &why);
	}
}

/* Whether `buf` continues the seeded payload stream that `rng` generates. */
static int matches_stream(const uint8_t *buf, size_t n, unsigned long long *rng)
{
	size_t k;
	for (k = 0; k < n; k++)
		if (buf[k] != (uint8_t)next_rand(rng)) return 0;
	return 1;
}

/*
 * Receives the next message into *buf, growing it when the message is larger
 * than *cap (in message mode one can reach 127 x MSS bytes). Returns its
 * length, or KCPX_ERR_AGAIN when nothing is complete, or another error.
 */
static int recv_message(kcpx_conn *c, uint8_t **buf, size_t *cap)
{
	int n = kcpx_conn_recv(c, *buf, *cap);
	if (n == KCPX_ERR_BUFFER_TOO_SMALL) {
		size_t need = (size_t)kcpx_conn_peeksize(c);
		uint8_t *bigger = realloc(*buf, need);
		if (bigger == NULL) return KCPX_ERR_BUFFER_TOO_SMALL;
		*buf = bigger;
		*cap = need;
		n = kcpx_conn_recv(c, *buf, *cap);
	}
	return n;
}

/* Runs the echo loop; returns 0 when the exchange completed intact. */
static int run(const struct options *o, kcpx_config *cfg, int fd)
{
	static uint8_t dgram[2048], buf[8192];
	size_t cap = 64; /* grows to the largest message received */
	uint8_t *msg = malloc(cap);
	struct peer p = { fd, o->drop, o->seed ^ (o->server ? 0x5e : 0xc1), 0, 0, 0 };
	unsigned long long payload_rng = o->seed, expect_rng = o->seed;
	kcpx_conn *c = NULL;
	long sent = 0, done = 0;
	uint32_t start = now_ms(), finished_at = 0;
	int ok = 0, finished = 0;

	if (msg == NULL) return 1;
	if (!o->server) c = kcpx_conn_new((uint32_t)next_rand(&payload_rng), cfg, send_datagram, &p);
	payload_rng = o->seed; /* the payload stream restarts from the seed */
	while ((uint32_t)(now_ms() - start) < (uint32_t)o->timeout_s * 1000) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint32_t now = now_ms();
		int wait = c ? (int)(kcpx_conn_check(c, now) - now) : 10;
		ssize_t n;
		poll(&pfd, 1, wait < 0 ? 0 : wait > 10 ? 10 : wait);
		while ((n = recv(fd, dgram, sizeof dgram, 0)) >= 0) {
			uint32_t conv;
			if (c == NULL) {
				int rc = kcpx_conv_of(cfg, dgram, (size_t)n, &conv);
				if (rc == KCPX_OK) c = kcpx_conn_new(conv, cfg, send_datagram, &p);
				else if (rc == KCPX_ERR_CHECKSUM) p.refused_csum++;
				else if (rc != KCPX_ERR_AGAIN) p.refused_other++; /* AGAIN: FEC parity */
			}
			if (c != NULL) kcpx_conn_input(c, dgram, (size_t)n);
		}
		if (c == NULL) continue;
		if (!o->server) { /* client: keep the pipe full */
			while (sent < o->bytes && kcpx_conn_waitsnd(c) < 256) {
				size_t k, chunk = (size_t)(o->bytes - sent < 8192 ? o->bytes - sent : 8192);
				for (k = 0; k < chunk; k++) buf[k] = (uint8_t)next_rand(&payload_rng);
				kcpx_conn_send(c, buf, chunk);
				sent += (long)chunk;
			}
		}
		kcpx_conn_update(c, now_ms());
		while ((n = recv_message(c, &msg, &cap)) >= 0) {
			if (o->server) {
				kcpx_conn_send(c, msg, (size_t)n);
			} else if (!matches_stream(msg, (size_t)n, &expect_rng)) {
				fprintf(stderr, "kcpx_udp_echo: echo differs near byte %ld\n", done);
				print_stats("client", c, &p, done, 0);
				kcpx_conn_free(c);
				free(msg);
				return 1;
			}
			done += n;
		}
		if (n != KCPX_ERR_AGAIN) {
			fprintf(stderr, "kcpx_udp_echo: kcpx_conn_recv: %s\n", kcpx_strerror((int)n));
			break;
		}
		if (o->server) kcpx_conn_flush(c);
		if (done >= o->bytes && !finished) {
			ok = done == o->bytes;
			finished = 1;
			finished_at = now_ms();
		}
		/* Linger: the client so that its last ACKs go out, the server
		 * until its echo is acknowledged (or the client has left). */
		if (finished && ((o->server && kcpx_conn_waitsnd(c) == 0) ||
					 (uint32_t)(now_ms() - finished_at) > (o->server ? 15000u : 300u)))
			break;
	}
	if (!ok) fprintf(stderr, "kcpx_udp_echo: %s: %ld of %ld bytes before the timeout\n",
			 o->server ? "server" : "client", done, o->bytes);
	print_stats(o->server ? "server" : "client", c, &p, done, ok);
	kcpx_conn_free(c);
	free(msg);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct options o;
	kcpx_config *cfg;
	int fd, rc;
	if (parse(argc, argv, &o) != 0) return usage();
	if ((cfg = make_config(&o)) == NULL) return 1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		/* Bulk transfers burst: room for them keeps the kernel from dropping. */
		int size = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	}
	if (fd < 0 || (o.server ? bind(fd, (struct sockaddr *)&o.addr, sizeof o.addr)
				: connect(fd, (struct sockaddr *)&o.addr, sizeof o.addr)) != 0) {
		perror("kcpx_udp_echo: socket");
		return 1;
	}
	if (o.server) {
		/* Adopt the first peer: wait for a datagram, then connect to its address. */
		struct sockaddr_in from;
		socklen_t len = sizeof from;
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, o.timeout_s * 1000) != 1 ||
		    recvfrom(fd, NULL, 0, MSG_PEEK, (struct sockaddr *)&from, &len) < 0 ||
		    connect(fd, (struct sockaddr *)&from, len) != 0) {
			fprintf(stderr, "kcpx_udp_echo: no peer\n");
			return 1;
		}
	}
	rc = run(&o, cfg, fd);
	kcpx_config_free(cfg);
	close(fd);
	return rc;
}
