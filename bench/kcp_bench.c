/*
 * kcp_bench.c - CPU and heap benchmark driver for the ikcp_* C API (KCP 1.7.1).
 *
 * It is written against the upstream ikcp.h only, so bench/run.sh builds this
 * one source twice: with the pristine ikcp.c and with libkcpx.  Every
 * invocation runs one scenario and prints "key value" lines on stdout; run.sh
 * repeats the invocations (alternating the two builds), takes medians and
 * prints the comparison table.
 *
 *   kcp_bench bulk LOSS%      64 MiB one-way transfer over a virtual wire
 *   kcp_bench conns           5000 connections x 32 unacked segments
 *   kcp_bench idle INTERVAL   5000 idle connections
 *   kcp_bench heap            heap bytes per idle connection
 *
 * All time is virtual: nothing sleeps, so CPU time is the only cost measured.
 * Exit status: 0 on success, 1 when something is broken (data corrupted, a
 * transfer stalls, an ikcp_* call fails), 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ikcp.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Where the virtual clock starts (as in upstream's test.cpp). */
#define VIRTUAL_START 1000000u

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kcp_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* CPU time of the whole process: what the goals are stated in. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		die("clock_gettime: %s", strerror(errno));
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: tiny, seedable, good enough for loss draws and payload. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* KCP clocks are 32-bit milliseconds that wrap: compare them like ikcp.c. */
static int time_after(IUINT32 a, IUINT32 b)
{
	return (IINT32)(a - b) > 0;
}

static IUINT32 time_min(IUINT32 a, IUINT32 b)
{
	return time_after(a, b) ? b : a;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of n > 0 values; sorts them in place. */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------------ */
/* In-memory wire: one direction, fixed latency, seeded random loss          */
/* ------------------------------------------------------------------------ */

enum {
	WIRE_MTU = 1400,   /* ikcp's default mtu: no datagram is larger */
	LATENCY_MS = 5,    /* one-way */
	/*
	 * Updates flush every 10 ms and datagrams arrive 5 ms later, so a wire
	 * never holds more than one flush: at most one datagram per segment of
	 * a 1024-segment window, plus a few ACK datagrams.  Overflowing means
	 * the endpoint misbehaves; we say so instead of growing the ring.
	 */
	WIRE_SLOTS = 4096,
};

struct datagram {
	IUINT32 due; /* virtual time of arrival */
	int len;
	char data[WIRE_MTU];
};

struct wire {
	struct datagram *ring; /* FIFO: constant latency keeps arrivals in order */
	size_t head, count;
	ikcpcb *dst;           /* endpoint that receives what this wire carries */
	const IUINT32 *clock;  /* virtual time, read when a datagram is sent */
	uint64_t drop_below;   /* a datagram is lost when rng_next() < this */
	uint64_t rng;
	uint64_t sent, lost;
};

static void wire_init(struct wire *w, const IUINT32 *clock, int loss_percent, uint64_t seed)
{
	memset(w, 0, sizeof *w);
	w->ring = xmalloc(sizeof(struct datagram) * WIRE_SLOTS);
	/* Touch the ring now so its page faults land outside the timed loop. */
	memset(w->ring, 0, sizeof(struct datagram) * WIRE_SLOTS);
	w->clock = clock;
	w->drop_below = UINT64_MAX / 100 * (uint64_t)loss_percent;
	w->rng = seed;
}

/* ikcp output callback; `user` is the wire leaving that endpoint. */
static int wire_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct wire *w = user;
	(void)kcp;
	w->sent++;
	if (w->drop_below != 0 && rng_next(&w->rng) < w->drop_below) {
		w->lost++;
		return 0;
	}
	if (len < 0 || len > WIRE_MTU)
		die("output of %d bytes does not fit the %d-byte mtu", len, WIRE_MTU);
	if (w->count == WIRE_SLOTS)
		die("more than %d datagrams in flight on one wire", WIRE_SLOTS);
	struct datagram *d = &w->ring[(w->head + w->count) % WIRE_SLOTS];
	d->due = *w->clock + LATENCY_MS;
	d->len = len;
	memcpy(d->data, buf, (size_t)len);
	w->count++;
	return 0;
}

/* Hand every datagram due by `now` to the receiving endpoint. */
static void wire_deliver(struct wire *w, IUINT32 now)
{
	while (w->count > 0 && !time_after(w->ring[w->head].due, now)) {
		const struct datagram *d = &w->ring[w->head];
		if (ikcp_input(w->dst, d->data, d->len) < 0)
			die("ikcp_input rejected a datagram the peer produced");
		w->head = (w->head + 1) % WIRE_SLOTS;
		w->count--;
	}
	/* An empty wire restarts at slot 0, so its cache footprint stays one
	 * flush worth of datagrams instead of the whole ring. */
	if (w->count == 0)
		w->head = 0;
}

/* Earlier of `t` and the next arrival on the wire. */
static IUINT32 wire_next_due(const struct wire *w, IUINT32 t)
{
	return w->count > 0 ? time_min(t, w->ring[w->head].due) : t;
}

/* ------------------------------------------------------------------------ */
/* Scenario 1: bulk one-way transfer                                         */
/* ------------------------------------------------------------------------ */

enum {
	BULK_BYTES = 64 << 20,
	BULK_SEND = 1024,            /* bytes per ikcp_send = one message */
	BULK_WND = 1024,             /* send and receive window, in segments */
	BULK_QUEUE = 2 * BULK_WND,   /* keep the send queue this full */
	BULK_CONV = 0x11223344,
	BULK_STALL_MS = 10 * 60 * 1000, /* virtual; far beyond a healthy run */
	/*
	 * Messages are cut from a small random pattern rather than from a
	 * 64 MiB buffer: streaming 128 MiB through DRAM would dominate (and
	 * add noise to) a figure that is meant to be the cost of KCP.
	 * Message i starts at (i * PATTERN_STEP) mod PATTERN_BYTES; the step
	 * is odd, so all 65536 messages of the transfer have distinct offsets
	 * and a lost, duplicated or reordered message cannot go unnoticed.
	 */
	PATTERN_BYTES = 64 << 10,
	PATTERN_STEP = 1031,
};

static const uint64_t BULK_SEED = 0x6b6370782d62656eu;
static const size_t BULK_MSGS = (BULK_BYTES + BULK_SEND - 1) / BULK_SEND;

struct bulk {
	ikcpcb *snd, *rcv;
	struct wire fwd, back; /* snd -> rcv and rcv -> snd */
	IUINT32 now;
	char pattern[PATTERN_BYTES + BULK_SEND];
	char inbox[BULK_SEND];
	size_t sent_msgs, got_msgs, got_bytes;
};

static ikcpcb *bulk_endpoint(struct wire *out)
{
	ikcpcb *k = ikcp_create(BULK_CONV, out);
	if (k == NULL)
		die("ikcp_create failed");
	ikcp_setoutput(k, wire_output);
	ikcp_nodelay(k, 1, 10, 2, 1);
	ikcp_wndsize(k, BULK_WND, BULK_WND);
	return k;
}

static void bulk_setup(struct bulk *b, int loss_percent)
{
	memset(b, 0, sizeof *b);
	b->now = VIRTUAL_START;
	/* Different seeds per direction, fixed per run: both builds see the
	 * same losses as long as they emit the same datagrams. */
	wire_init(&b->fwd, &b->now, loss_percent, BULK_SEED);
	wire_init(&b->back, &b->now, loss_percent, ~BULK_SEED);
	b->snd = bulk_endpoint(&b->fwd);
	b->rcv = bulk_endpoint(&b->back);
	b->fwd.dst = b->rcv;
	b->back.dst = b->snd;

	uint64_t state = BULK_SEED;
	for (size_t i = 0; i < sizeof b->pattern; i += sizeof(uint64_t)) {
		uint64_t r = rng_next(&state);
		memcpy(b->pattern + i, &r, sizeof r);
	}
}

/* Message i: where its bytes come from, and how many there are. */
static const char *msg_bytes(const struct bulk *b, size_t i)
{
	return b->pattern + i * PATTERN_STEP % PATTERN_BYTES;
}

static int msg_len(size_t i)
{
	size_t left = BULK_BYTES - i * BULK_SEND;
	return left < BULK_SEND ? (int)left : BULK_SEND;
}

/* Keep the sender's queue topped up, as an application writing flat out. */
static void bulk_feed(struct bulk *b)
{
	while (b->sent_msgs < BULK_MSGS && ikcp_waitsnd(b->snd) < BULK_QUEUE) {
		size_t i = b->sent_msgs++;
		if (ikcp_send(b->snd, msg_bytes(b, i), msg_len(i)) < 0)
			die("ikcp_send failed");
	}
}

/*
 * Receive every complete message and check it against what was sent.  The
 * memcmp runs on cache-resident bytes and costs the same in both builds.
 */
static void bulk_drain(struct bulk *b)
{
	int n;
	while ((n = ikcp_recv(b->rcv, b->inbox, BULK_SEND)) >= 0) {
		size_t i = b->got_msgs++;
		if (i >= BULK_MSGS || n != msg_len(i) || memcmp(b->inbox, msg_bytes(b, i), (size_t)n) != 0)
			die("message %zu arrived corrupted (%d bytes)", i, n);
		b->got_bytes += (size_t)n;
	}
	if (n == -3)
		die("message %zu is larger than any message sent", b->got_msgs);
}

/* Jump the clock to the next moment anything can happen. */
static IUINT32 bulk_next_event(const struct bulk *b)
{
	IUINT32 t = time_min(ikcp_check(b->snd, b->now), ikcp_check(b->rcv, b->now));
	t = wire_next_due(&b->fwd, t);
	t = wire_next_due(&b->back, t);
	return time_after(t, b->now) ? t : b->now + 1;
}

/*
 * The measured loop.  noinline keeps it a symbol of its own so that
 * `callgrind --toggle-collect=bulk_transfer*` counts exactly this part.
 */
__attribute__((noinline)) void bulk_transfer(struct bulk *b)
{
	const IUINT32 deadline = b->now + BULK_STALL_MS;
	while (b->got_msgs < BULK_MSGS) {
		wire_deliver(&b->fwd, b->now);
		wire_deliver(&b->back, b->now);
		bulk_drain(b);
		bulk_feed(b);
		ikcp_update(b->snd, b->now);
		ikcp_update(b->rcv, b->now);
		b->now = bulk_next_event(b);
		if (time_after(b->now, deadline))
			die("bulk transfer stalled after %zu of %d bytes", b->got_bytes, BULK_BYTES);
	}
}

static void run_bulk(int loss_percent)
{
	if (loss_percent < 0 || loss_percent > 99)
		die("loss must be 0..99 percent");
	struct bulk *b = xmalloc(sizeof *b);
	bulk_setup(b, loss_percent);

	uint64_t t0 = cpu_ns();
	bulk_transfer(b);
	uint64_t cpu = cpu_ns() - t0;

	/* Every message was checked as it arrived (bulk_drain). */
	printf("bulk_loss%d_ns_per_byte %.4f\n", loss_percent, (double)cpu / BULK_BYTES);
	printf("bulk_loss%d_bytes %zu\n", loss_percent, b->got_bytes);
	printf("bulk_loss%d_datagrams %llu\n", loss_percent,
	       (unsigned long long)(b->fwd.sent + b->back.sent));
	printf("bulk_loss%d_virtual_ms %u\n", loss_percent, (unsigned)(b->now - VIRTUAL_START));

	ikcp_release(b->snd);
	ikcp_release(b->rcv);
	free(b->fwd.ring);
	free(b->back.ring);
	free(b);
}

/* ------------------------------------------------------------------------ */
/* Many connections driven by one update loop (scenarios 2-4)                */
/* ------------------------------------------------------------------------ */

enum {
	CONNS = 5000,
	ROUND_MS = 10,      /* ikcp_update on every connection this often */
};

static ikcpcb *conns[CONNS];
static uint64_t outputs; /* datagrams emitted; the peers never answer */

static int count_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	(void)buf, (void)len, (void)kcp, (void)user;
	outputs++;
	return 0;
}

static void create_conns(int interval, int nc)
{
	for (int i = 0; i < CONNS; i++) {
		conns[i] = ikcp_create((IUINT32)i + 1, NULL);
		if (conns[i] == NULL)
			die("ikcp_create failed");
		ikcp_setoutput(conns[i], count_output);
		ikcp_nodelay(conns[i], 0, interval, 0, nc);
	}
}

static void update_all(IUINT32 now)
{
	for (int i = 0; i < CONNS; i++)
		ikcp_update(conns[i], now);
}

static void release_conns(void)
{
	for (int i = 0; i < CONNS; i++)
		ikcp_release(conns[i]);
}

/* ---- Scenario 2: 5000 connections x 32 unacked segments ---------------- */

enum {
	CONN_SEGS = 32,
	SEG_BYTES = 1024,  /* < mss 1376: one segment, one datagram each */
	MAX_ROUNDS = 100,
};

/*
 * nodelay(0, 10, 0, 1): interval 10 so every round flushes (and scans the
 * 32 in-flight segments); nc=1 so all 32 leave at once instead of waiting
 * for cwnd.  Nothing is ever acked, so rx_rto stays at its initial 200 ms
 * and, with nodelay 0, the first retransmission is due 200 + 200/8 = 225 ms
 * after the first send: rounds +10 .. +220 ms (22 of them) are the rounds
 * without retransmissions.  We time each round and stop at the first one
 * that emits anything.
 */
static void run_conns(int unused)
{
	static const char payload[SEG_BYTES];
	double ms[MAX_ROUNDS];
	int clean = 0;
	(void)unused;

	create_conns(ROUND_MS, 1);
	for (int i = 0; i < CONNS; i++) {
		ikcp_wndsize(conns[i], CONN_SEGS, 0);
		for (int s = 0; s < CONN_SEGS; s++)
			if (ikcp_send(conns[i], payload, SEG_BYTES) < 0)
				die("ikcp_send failed");
	}
	IUINT32 now = VIRTUAL_START;
	update_all(now); /* first flush: every segment goes out */
	if (outputs != (uint64_t)CONNS * CONN_SEGS)
		fprintf(stderr, "kcp_bench: warning: first flush sent %llu datagrams, expected %d\n",
		        (unsigned long long)outputs, CONNS * CONN_SEGS);

	while (clean < MAX_ROUNDS) {
		uint64_t before = outputs;
		now += ROUND_MS;
		uint64_t t0 = cpu_ns();
		update_all(now);
		uint64_t dt = cpu_ns() - t0;
		if (outputs != before)
			break; /* an RTO fired: measurement window over */
		ms[clean++] = (double)dt / 1e6;
	}
	if (clean == 0)
		die("conns: a retransmission fired in the first round");
	printf("conns_ms_per_round %.4f\n", median(ms, (size_t)clean));
	printf("conns_clean_rounds %d\n", clean);
	release_conns();
}

/* ---- Scenario 3: 5000 idle connections ---------------------------------- */

enum {
	IDLE_WARMUP = 20,
	IDLE_BLOCK = 200, /* rounds per timing; a multiple of 10 so interval 100
	                     flushes exactly every tenth round of every block */
	IDLE_BLOCKS = 5,
};

static void run_idle(int interval)
{
	double us[IDLE_BLOCKS];
	IUINT32 now = VIRTUAL_START;

	create_conns(interval, 0);
	for (int r = 0; r < IDLE_WARMUP; r++, now += ROUND_MS)
		update_all(now);
	/* A round costs microseconds: time whole blocks, not single rounds,
	 * so the clock_gettime syscall stays out of the figure. */
	for (int b = 0; b < IDLE_BLOCKS; b++) {
		uint64_t t0 = cpu_ns();
		for (int r = 0; r < IDLE_BLOCK; r++, now += ROUND_MS)
			update_all(now);
		us[b] = (double)(cpu_ns() - t0) / 1e3 / IDLE_BLOCK;
	}
	printf("idle_i%d_us_per_round %.3f\n", interval, median(us, IDLE_BLOCKS));
	printf("idle_i%d_datagrams %llu\n", interval, (unsigned long long)outputs);
	release_conns();
}

/* ---- Scenario 4: heap bytes per idle connection ------------------------- */

/* Each block carries its size in front, aligned like malloc's own. */
union heap_header {
	size_t size;
	max_align_t align;
};

static size_t heap_outstanding;

static void *counting_malloc(size_t n)
{
	union heap_header *h = malloc(sizeof *h + n);
	if (h == NULL)
		return NULL;
	h->size = n;
	heap_outstanding += n;
	return h + 1;
}

static void counting_free(void *p)
{
	if (p == NULL)
		return;
	union heap_header *h = (union heap_header *)p - 1;
	heap_outstanding -= h->size;
	free(h);
}

static void run_heap(int unused)
{
	(void)unused;
	ikcp_allocator(counting_malloc, counting_free);
	/* mallinfo2 sees every malloc, including any that bypass the hooks
	 * (and our 16-byte headers and malloc's chunk overhead). */
	size_t malloc_before = mallinfo2().uordblks;

	create_conns(100, 0);
	printf("heap_create_bytes_per_conn %.1f\n", (double)heap_outstanding / CONNS);
	update_all(VIRTUAL_START);
	printf("heap_update_bytes_per_conn %.1f\n", (double)heap_outstanding / CONNS);
	printf("heap_malloc_bytes_per_conn %.1f\n",
	       (double)(mallinfo2().uordblks - malloc_before) / CONNS);
	release_conns();
	printf("heap_leaked_bytes %zu\n", heap_outstanding);
}

/* ------------------------------------------------------------------------ */

struct scenario {
	const char *name;
	const char *arg; /* NULL: takes no argument */
	void (*run)(int arg);
};

static const struct scenario scenarios[] = {
	{ "bulk", "LOSS_PERCENT", run_bulk },
	{ "conns", NULL, run_conns },
	{ "idle", "INTERVAL_MS", run_idle },
	{ "heap", NULL, run_heap },
};

static int usage(void)
{
	fputs("usage:", stderr);
	for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
		fprintf(stderr, "\tkcp_bench %s %s\n", scenarios[i].name,
		        scenarios[i].arg ? scenarios[i].arg : "");
	return 2;
}

static int parse_int(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	for (size_t i = 0; argc >= 2 && i < sizeof scenarios / sizeof *scenarios; i++) {
		const struct scenario *s = &scenarios[i];
		int arg = 0;
		if (strcmp(argv[1], s->name) != 0)
			continue;
		if (argc != (s->arg ? 3 : 2) || (s->arg && parse_int(argv[2], &arg) != 0))
			return usage();
		s->run(arg);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	return usage();
}
