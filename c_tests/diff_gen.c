/*
 * diff_gen.c - draws the differential harness's random operations and owns the
 * simulated network.
 *
 * All decisions depend only on the PRNG and on the *reference* world's public
 * state, which equals kcpx's as long as no divergence has been reported, so
 * both worlds always receive exactly the same operation.
 *
 * Two pristine ikcp.c hazards are avoided on purpose (see docs/ikcp-1.7.1.md):
 *  - the MTU is only shrunk while the endpoint has nothing waiting to be sent
 *    (ikcp_flush would overrun its buffer);
 *  - timestamps in forged or corrupted input are kept within 2^24 ms of the
 *    endpoint's clock (an RTT sample near 2^31 overflows a signed int).
 */
#include "diff_harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KCP_HEADER 24
#define CMD_PUSH 81
#define CMD_ACK 82
#define CMD_WASK 83
#define CMD_WINS 84
#define LINK_MAX_BYTES (32u << 20)
#define SANE_TS_SPAN (1 << 24)
#define OWNED_COPY_MAX 65536 /* sends up to this size get an exact-size copy */
#define BIG_SEND_CAP (1 << 20)

static const unsigned base_weight[OP_KINDS] = {
	[OP_RESET] = 2,       [OP_UPDATE] = 2400, [OP_FLUSH] = 250,    [OP_CHECK] = 150,
	[OP_SEND] = 1200,     [OP_RECV] = 1000,   [OP_DELIVER] = 3000, [OP_INPUT_RAW] = 300,
	[OP_SETMTU] = 50,     [OP_WNDSIZE] = 50,  [OP_NODELAY] = 50,   [OP_INTERVAL] = 30,
	[OP_FIELD] = 200,     [OP_SETOUTPUT] = 30, [OP_LOG] = 50,      [OP_GETCONV] = 30,
};

/* ------------------------------------------------------------------ */
/* little-endian helpers                                               */
/* ------------------------------------------------------------------ */

static IUINT32 get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (IUINT32)u[0] | (IUINT32)u[1] << 8 | (IUINT32)u[2] << 16 | (IUINT32)u[3] << 24;
}

static void put32(char *p, IUINT32 v)
{
	unsigned char *u = (unsigned char *)p;
	u[0] = (unsigned char)v;
	u[1] = (unsigned char)(v >> 8);
	u[2] = (unsigned char)(v >> 16);
	u[3] = (unsigned char)(v >> 24);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "diff_gen: out of memory\n");
		abort();
	}
	return p;
}

static char *dup_bytes(const char *src, size_t len)
{
	char *p = xmalloc(len);
	if (len) memcpy(p, src, len);
	return p;
}

/* ------------------------------------------------------------------ */
/* simulated network                                                   */
/* ------------------------------------------------------------------ */

static void link_push(struct link_queue *q, const char *data, size_t len)
{
	if (q->count == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 64;
		q->items = realloc(q->items, q->cap * sizeof(*q->items));
		if (q->items == NULL) abort();
	}
	q->items[q->count].data = dup_bytes(data, len);
	q->items[q->count].len = len;
	q->count++;
	q->bytes += len;
}

/* Removes item i and hands its bytes to the caller. */
static struct datagram link_take(struct link_queue *q, size_t i)
{
	struct datagram d = q->items[i];
	memmove(&q->items[i], &q->items[i + 1], (q->count - i - 1) * sizeof(*q->items));
	q->count--;
	q->bytes -= d.len;
	return d;
}

static void link_free(struct link_queue *q)
{
	while (q->count) free(link_take(q, 0).data);
	free(q->items);
	memset(q, 0, sizeof(*q));
}

void sim_absorb(struct sim *s, int from, const char *data, size_t len)
{
	struct link_queue *q = &s->link[from];
	if (prng_chance(&s->rng, s->loss_pct, 100)) return;
	link_push(q, data, len);
	if (prng_chance(&s->rng, s->dup_pct, 100)) link_push(q, data, len);
	/* A bounded network: the oldest datagrams fall off, as on a full router queue. */
	while (q->count > s->link_capacity || q->bytes > LINK_MAX_BYTES) free(link_take(q, 0).data);
}

/* ------------------------------------------------------------------ */
/* setup                                                               */
/* ------------------------------------------------------------------ */

void sim_init(struct sim *s, unsigned long long seed, const char *pattern)
{
	static const unsigned loss[] = {0, 0, 5, 10, 30};
	static const unsigned dup[] = {0, 1, 5};
	static const unsigned hostility[] = {0, 0, 1, 3};
	static const unsigned resets[] = {2, 5, 10, 20};
	static const unsigned jumps[] = {0, 3, 15};
	static const unsigned capacity[] = {64, 256, 2000};
	int k;
	memset(s, 0, sizeof(*s));
	s->rng.state = seed;
	s->pattern = pattern;
	/* Mostly start close below 2^32 so that the 32-bit clock wraps during the run. */
	if (prng_chance(&s->rng, 3, 4))
		s->now = 0xFFFFFFFFu - (IUINT32)prng_range(&s->rng, 0, 500000);
	else
		s->now = prng_u32(&s->rng);
	/* Each seed gets its own mix (0.25x .. 2x of the base weights) and network. */
	for (k = 0; k < OP_KINDS; k++)
		s->weight[k] = base_weight[k] * (unsigned)prng_range(&s->rng, 25, 200) / 100;
	/*
	 * Forged input and big clock jumps wreck a connection for a long time (a
	 * forged una drops data the peer never got; a 60 s RTT sample pins the RTO
	 * at its maximum): some seeds have none, so long healthy flows get tested too.
	 */
	s->weight[OP_INPUT_RAW] *= PRNG_PICK(&s->rng, hostility);
	s->weight[OP_RESET] = PRNG_PICK(&s->rng, resets);
	s->jump_permille = PRNG_PICK(&s->rng, jumps);
	s->link_capacity = PRNG_PICK(&s->rng, capacity);
	s->loss_pct = PRNG_PICK(&s->rng, loss);
	s->dup_pct = PRNG_PICK(&s->rng, dup);
}

void sim_free(struct sim *s)
{
	link_free(&s->link[0]);
	link_free(&s->link[1]);
}

void op_free(struct op *op)
{
	if (op->owns_data) free(op->data);
	op->data = NULL;
	op->owns_data = 0;
}

static enum op_kind pick_kind(struct sim *s)
{
	unsigned total = 0, r;
	int k;
	for (k = 0; k < OP_KINDS; k++) total += s->weight[k];
	r = prng_below(&s->rng, total);
	for (k = 0; k < OP_KINDS; k++) {
		if (r < s->weight[k]) return (enum op_kind)k;
		r -= s->weight[k];
	}
	return OP_UPDATE;
}

static long long clamp_ll(long long v, long long lo, long long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

static void gen_update(struct sim *s, struct op *op)
{
	uint32_t r = prng_below(&s->rng, 1000);
	if (r < 100) {
		/* step 0: same time again */
	} else if (r < 750) {
		s->now += (IUINT32)prng_range(&s->rng, 1, 20);
	} else if (r < 950) {
		s->now += (IUINT32)prng_range(&s->rng, 21, 200);
	} else if (r < 1000 - s->jump_permille) {
		s->now += (IUINT32)prng_range(&s->rng, 201, 3000);
	} else {
		/* beyond ikcp_update's 10 s resynchronisation of ts_flush */
		s->now += (IUINT32)prng_range(&s->rng, 10001, 60000);
	}
	op->a = s->now;
	r = prng_below(&s->rng, 1000);
	if (r < 30) /* a late caller: slightly older time than the last update */
		op->a = (IUINT32)(s->now - (IUINT32)prng_range(&s->rng, 1, 200));
	else if (r < 32) /* a clock that jumped back more than 10 s */
		op->a = (IUINT32)(s->now - (IUINT32)prng_range(&s->rng, 10001, 30000));
}

static void gen_check(struct sim *s, struct op *op)
{
	if (prng_chance(&s->rng, 1, 10))
		op->a = prng_u32(&s->rng);
	else
		op->a = (IUINT32)(s->now + (IUINT32)prng_range(&s->rng, -20000, 20000));
}

/* ------------------------------------------------------------------ */
/* send / recv                                                         */
/* ------------------------------------------------------------------ */

static long long frag_len(struct sim *s, long long mss, long long lo_frags, long long hi_frags)
{
	long long f = prng_range(&s->rng, lo_frags, hi_frags);
	return prng_range(&s->rng, (f - 1) * mss + 1, f * mss);
}

static long long gen_send_len(struct sim *s, const ikcpcb *kcp, int *null_buffer)
{
	long long mss = kcp->mss;
	uint32_t r = prng_below(&s->rng, 100);
	*null_buffer = 0;
	if (kcp->nsnd_buf + kcp->nsnd_que > 500) r = 95; /* backlog: stop queueing for a while */
	if (r < 20) return prng_range(&s->rng, 0, 16);
	if (r < 45) return prng_range(&s->rng, 17, mss > 18 ? mss - 2 : 17);
	if (r < 60) {
		const long long edge[] = {0, 1, mss - 1, mss, mss + 1, 2 * mss, 2 * mss + 1};
		return PRNG_PICK(&s->rng, edge);
	}
	if (r < 80) return frag_len(s, mss, 2, 16);
	if (r < 88) {
		long long len = frag_len(s, mss, 17, 127);
		return len > BIG_SEND_CAP ? prng_range(&s->rng, BIG_SEND_CAP / 2, BIG_SEND_CAP) : len;
	}
	if (r < 93) { /* around the 127-fragment limit (count >= 128 is refused) */
		const long long edge[] = {127 * mss, 127 * mss + 1, 128 * mss, 128 * mss + 1, 129 * mss};
		return PRNG_PICK(&s->rng, edge);
	}
	if (r < 97) {
		const long long neg[] = {-1, -2, -mss, INT_MIN};
		return PRNG_PICK(&s->rng, neg);
	}
	/* NULL buffer: only with len <= 0 (ikcp.c would transmit uninitialised heap otherwise) */
	*null_buffer = 1;
	return prng_chance(&s->rng, 1, 2) ? 0 : -1;
}

static void gen_send(struct sim *s, const ikcpcb *kcp, struct op *op)
{
	int null_buffer;
	long long len = gen_send_len(s, kcp, &null_buffer);
	op->size = (long)len;
	if (null_buffer) return;
	if (len > 0 && len <= OWNED_COPY_MAX) {
		/* An exact-size copy, so that AddressSanitizer sees any overread. */
		op->data = dup_bytes(s->pattern + prng_below(&s->rng, HARNESS_ARENA - (uint32_t)len), (size_t)len);
		op->owns_data = 1;
	} else {
		uint32_t room = len > 0 ? HARNESS_ARENA - (uint32_t)len : HARNESS_ARENA;
		op->data = (char *)s->pattern + prng_below(&s->rng, room);
	}
}

/* recv: a = len, b = pass NULL buffer, c = bytes of the buffer to compare */
static void gen_recv(struct sim *s, const struct world *ref, int ep, struct op *op)
{
	long long peek = ref->api->peeksize(ref->kcp[ep]);
	long long n = peek > 0 ? peek : 0, len;
	uint32_t r = prng_below(&s->rng, 100);
	if (r < 30) len = peek >= 0 ? peek : prng_range(&s->rng, 0, 100);   /* exact */
	else if (r < 42) len = n + prng_range(&s->rng, 1, 3000);            /* roomy */
	else if (r < 50) len = n > 0 ? prng_range(&s->rng, 0, n - 1) : 0;  /* too small */
	else if (r < 56) len = 0;
	else if (r < 68) len = -(n + (prng_chance(&s->rng, 1, 2) ? 0 : prng_range(&s->rng, 1, 100))); /* peek */
	else if (r < 76) {
		const long long any[] = {n, n + 100, -n, INT_MAX};
		len = PRNG_PICK(&s->rng, any);
		op->b = 1;
	} else if (r < 80) {
		len = INT_MIN;
		op->b = 1;
	} else if (r < 84) len = HARNESS_ARENA;
	else len = prng_range(&s->rng, 1, 2 * n + 64);
	if ((len < 0 ? -len : len) > (long long)HARNESS_ARENA) op->b = 1;
	op->a = len;
	op->c = op->b ? 0 : clamp_ll(len < 0 ? -len : len, 0, n + 4096);
}

/* ------------------------------------------------------------------ */
/* input                                                               */
/* ------------------------------------------------------------------ */

/*
 * Rewrites timestamps more than 2^24 ms away from the receiver's clock. A
 * wild ts would come back as an RTT sample near 2^31, which is undefined
 * behaviour inside pristine ikcp.c (see the file comment).
 */
static void sanitize_timestamps(struct sim *s, char *buf, long size, IUINT32 current)
{
	long pos = 0;
	while (buf && size - pos >= KCP_HEADER) {
		IUINT32 ts = get32(buf + pos + 8), len = get32(buf + pos + 20);
		IINT32 age = (IINT32)(current - ts);
		if (age > SANE_TS_SPAN || age < -SANE_TS_SPAN)
			put32(buf + pos + 8, current - (IUINT32)prng_range(&s->rng, 0, 1000));
		pos += KCP_HEADER;
		if (len > (IUINT32)(size - pos)) break;
		pos += (long)len;
	}
}

static void set_input(struct op *op, char *owned, long size, const char *note)
{
	op->data = owned;
	op->owns_data = owned != NULL;
	op->size = size;
	op->note = note;
}

static void gen_deliver(struct sim *s, struct op *op)
{
	struct link_queue *q = &s->link[1 - op->ep];
	uint32_t r = prng_below(&s->rng, 100);
	struct datagram d;
	if (r < 75 || q->count == 1) {
		d = link_take(q, 0);
		set_input(op, d.data, (long)d.len, "next datagram");
	} else if (r < 85) {
		d = link_take(q, prng_below(&s->rng, (uint32_t)q->count));
		set_input(op, d.data, (long)d.len, "reordered datagram");
	} else if (r < 90) {
		const struct datagram *p = &q->items[prng_below(&s->rng, (uint32_t)q->count)];
		set_input(op, dup_bytes(p->data, p->len), (long)p->len, "duplicated datagram");
	} else if (r < 95) {
		struct datagram a = link_take(q, 0), b = link_take(q, 0);
		char *both = xmalloc(a.len + b.len);
		memcpy(both, a.data, a.len);
		memcpy(both + a.len, b.data, b.len);
		free(a.data);
		free(b.data);
		set_input(op, both, (long)(a.len + b.len), "two datagrams coalesced");
	} else {
		size_t junk = (size_t)prng_range(&s->rng, 1, KCP_HEADER - 1), i;
		d = link_take(q, 0);
		d.data = realloc(d.data, d.len + junk);
		if (d.data == NULL) abort();
		for (i = 0; i < junk; i++) d.data[d.len + i] = (char)prng_u32(&s->rng);
		set_input(op, d.data, (long)(d.len + junk), "datagram + <24 trailing bytes");
	}
}

/* Copies a datagram in flight towards `ep`, or NULL if there is none. */
static char *copy_in_flight(struct sim *s, int ep, long *size)
{
	const struct link_queue *q = &s->link[1 - ep];
	const struct datagram *d;
	if (q->count == 0) return NULL;
	d = &q->items[prng_below(&s->rng, (uint32_t)q->count)];
	*size = (long)d->len;
	return dup_bytes(d->data, d->len);
}

/* Offset of a random segment header inside a datagram (walking the len fields). */
static long random_segment(struct sim *s, const char *buf, long size)
{
	long pos = 0, pick = 0;
	while (size - pos >= KCP_HEADER) {
		if (prng_chance(&s->rng, 1, 2)) pick = pos;
		pos += KCP_HEADER + (long)get32(buf + pos + 20);
	}
	return pick;
}

static long window_span(IUINT32 wnd)
{
	return wnd > 300 ? 300 : (long)wnd;
}

/*
 * Builds 1..4 plausible segments from `peer` to `kcp` into buf (>= 4 * 88 bytes).
 * una and ACK sn mostly acknowledge only what the peer really received:
 * acknowledging anything else makes the sender drop data for good.
 */
static long forge_segments(struct sim *s, const ikcpcb *kcp, const ikcpcb *peer, char *buf)
{
	static const unsigned cmds[] = {CMD_PUSH, CMD_PUSH, CMD_ACK, CMD_ACK, CMD_WASK, CMD_WINS};
	long pos = 0, inflight = (long)clamp_ll((IINT32)(kcp->snd_nxt - kcp->snd_una), 0, 1000);
	int n = (int)prng_range(&s->rng, 1, 4), i;
	for (i = 0; i < n; i++) {
		unsigned cmd = prng_chance(&s->rng, 1, 20) ? (unsigned)prng_below(&s->rng, 256) : PRNG_PICK(&s->rng, cmds);
		IUINT32 sn, len = cmd == CMD_PUSH ? (IUINT32)prng_range(&s->rng, 0, 64)
						  : (prng_chance(&s->rng, 1, 10) ? (IUINT32)prng_range(&s->rng, 1, 16) : 0);
		IUINT32 wnd = prng_chance(&s->rng, 1, 8) ? 0 : prng_chance(&s->rng, 1, 2) ? (IUINT32)prng_range(&s->rng, 1, 256)
											 : prng_below(&s->rng, 65536);
		IUINT32 k;
		int honest = prng_chance(&s->rng, 29, 30);
		if (cmd == CMD_PUSH)
			sn = kcp->rcv_nxt + (IUINT32)prng_range(&s->rng, -5, window_span(kcp->rcv_wnd) + 5);
		else if (honest)
			sn = peer->rcv_nxt - (IUINT32)prng_range(&s->rng, 1, 4);
		else
			sn = kcp->snd_una + (IUINT32)prng_range(&s->rng, -3, inflight + 3);
		put32(buf + pos, prng_chance(&s->rng, 1, 20) ? prng_u32(&s->rng) : kcp->conv);
		buf[pos + 4] = (char)cmd;
		/* A large frg at rcv_nxt blocks the receive queue for good (as in ikcp.c): keep it rare. */
		buf[pos + 5] = (char)(prng_chance(&s->rng, 1, 3) ? prng_range(&s->rng, 0, 3)
				      : prng_chance(&s->rng, 1, 50) ? prng_below(&s->rng, 256) : 0);
		buf[pos + 6] = (char)wnd;
		buf[pos + 7] = (char)(wnd >> 8);
		put32(buf + pos + 8, kcp->current - (IUINT32)prng_range(&s->rng, 0, 3000));
		put32(buf + pos + 12, sn);
		put32(buf + pos + 16, honest ? peer->rcv_nxt : kcp->snd_una + (IUINT32)prng_range(&s->rng, -2, inflight + 2));
		put32(buf + pos + 20, len);
		pos += KCP_HEADER;
		for (k = 0; k < len; k++) buf[pos++] = (char)prng_u32(&s->rng);
	}
	return pos;
}

static void corrupt_copy(struct sim *s, struct op *op, char *buf, long size)
{
	/* Header edits need a whole header: shorter copies only get flips or cuts. */
	uint32_t r = prng_below(&s->rng, size >= KCP_HEADER ? 6 : 2);
	long seg = random_segment(s, buf, size), i;
	switch (r) {
	case 0:
		for (i = prng_range(&s->rng, 1, 3); i > 0; i--)
			buf[prng_below(&s->rng, (uint32_t)size)] ^= (char)(1 << prng_below(&s->rng, 8));
		set_input(op, buf, size, "bit-flipped datagram");
		break;
	case 1: {
		long cut = (long)prng_below(&s->rng, (uint32_t)size);
		buf = realloc(buf, (size_t)(cut ? cut : 1)); /* exact size: ASan must see overreads */
		if (buf == NULL) abort();
		set_input(op, buf, cut, "truncated datagram");
		break;
	}
	case 2:
		put32(buf + seg, get32(buf + seg) ^ (1u + prng_below(&s->rng, 0xFFFFFFFEu)));
		set_input(op, buf, size, "wrong conv");
		break;
	case 3: {
		unsigned cmd;
		do cmd = prng_below(&s->rng, 256); while (cmd >= CMD_PUSH && cmd <= CMD_WINS);
		buf[seg + 4] = (char)cmd;
		set_input(op, buf, size, "bad cmd");
		break;
	}
	case 4:
		put32(buf + seg + 20, prng_chance(&s->rng, 1, 2)
					      ? (IUINT32)(size - seg - KCP_HEADER) + 1 + prng_below(&s->rng, 100000)
					      : 0x80000000u | prng_u32(&s->rng));
		set_input(op, buf, size, "oversize len field");
		break;
	default: {
		long junk = prng_range(&s->rng, 1, KCP_HEADER - 1);
		buf = realloc(buf, (size_t)(size + junk));
		if (buf == NULL) abort();
		for (i = 0; i < junk; i++) buf[size + i] = (char)prng_u32(&s->rng);
		set_input(op, buf, size + junk, "trailing junk");
		break;
	}
	}
}

static void gen_garbage(struct sim *s, const ikcpcb *kcp, struct op *op)
{
	long size = prng_range(&s->rng, 0, 200), i;
	char *buf = xmalloc((size_t)size);
	for (i = 0; i < size; i++) buf[i] = (char)prng_u32(&s->rng);
	if (size >= 4 && prng_chance(&s->rng, 1, 2)) put32(buf, kcp->conv); /* get past the conv check */
	set_input(op, buf, size, "random bytes");
}

static void gen_bad_size(struct sim *s, struct op *op)
{
	static const long sizes[] = {-1, 0, 24, 100, LONG_MIN, -24};
	long size = PRNG_PICK(&s->rng, sizes);
	if (prng_chance(&s->rng, 1, 2)) {
		set_input(op, NULL, size, "NULL data");
	} else {
		set_input(op, xmalloc(KCP_HEADER), size > 0 ? -size : size, "negative size");
		memset(op->data, 0, KCP_HEADER);
	}
}

static void gen_input_raw(struct sim *s, const ikcpcb *kcp, const ikcpcb *peer, struct op *op)
{
	uint32_t r = prng_below(&s->rng, 100);
	long size = 0;
	char *copy = r < 55 ? copy_in_flight(s, op->ep, &size) : NULL;
	if (copy != NULL && size > 0) {
		corrupt_copy(s, op, copy, size);
	} else if (r < 85) {
		free(copy);
		copy = xmalloc(4 * (KCP_HEADER + 64));
		set_input(op, copy, forge_segments(s, kcp, peer, copy), "forged segments");
	} else if (r < 95) {
		free(copy);
		gen_garbage(s, kcp, op);
	} else {
		free(copy);
		gen_bad_size(s, op);
	}
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

static void gen_setmtu(struct sim *s, const ikcpcb *kcp, struct op *op)
{
	static const long long large[] = {1500, 4096, 9000, HARNESS_MAX_MTU};
	static const long long invalid[] = {49, 0, -1, 24, 23, INT_MIN, 1};
	uint32_t r = prng_below(&s->rng, 100);
	if (r < 75) op->a = prng_range(&s->rng, 50, 1500);
	else if (r < 82) op->a = PRNG_PICK(&s->rng, large);
	else op->a = PRNG_PICK(&s->rng, invalid);
	/* Shrinking below a queued segment overruns ikcp.c's buffer: only shrink when idle. */
	if (op->a >= 50 && op->a < (long long)kcp->mtu && kcp->nsnd_buf + kcp->nsnd_que != 0)
		op->a = kcp->mtu;
}

static long long gen_window(struct sim *s)
{
	static const long long special[] = {0, -1, INT_MIN, 32, 128, 65535, 65536, 70000, INT_MAX};
	uint32_t r = prng_below(&s->rng, 100);
	if (r < 50) return prng_range(&s->rng, 1, 256);
	if (r < 70) return prng_range(&s->rng, 257, 4096);
	return PRNG_PICK(&s->rng, special);
}

static void gen_nodelay(struct sim *s, struct op *op)
{
	static const long long preset[4][4] = {{0, 10, 0, 0}, {0, 10, 0, 1}, {1, 10, 2, 1}, {2, 10, 2, 1}};
	static const long long small[] = {-1, 0, 1, 2, 3};
	static const long long intervals[] = {-1, 0, 5, 10, 20, 40, 100, 5000, 5001};
	if (prng_chance(&s->rng, 3, 5)) {
		const long long *p = preset[prng_below(&s->rng, 4)];
		op->a = p[0], op->b = p[1], op->c = p[2], op->d = p[3];
	} else {
		op->a = PRNG_PICK(&s->rng, small);
		op->b = PRNG_PICK(&s->rng, intervals);
		op->c = prng_chance(&s->rng, 1, 2) ? PRNG_PICK(&s->rng, small) : prng_range(&s->rng, -1, 10);
		op->d = PRNG_PICK(&s->rng, small);
	}
}

static void gen_interval(struct sim *s, struct op *op)
{
	static const long long special[] = {-5, 0, 9, 10, 11, 5000, 5001, INT_MAX, INT_MIN};
	op->a = prng_chance(&s->rng, 2, 5) ? PRNG_PICK(&s->rng, special) : prng_range(&s->rng, 10, 200);
}

static long long gen_field_value(struct sim *s, enum field_id f, const ikcpcb *peer)
{
	static const long long minrto[] = {0, 1, 10, 30, 100, 200, -1};
	static const long long fastresend[] = {-1, 0, 1, 2, 3, 1000};
	static const long long fastlimit[] = {-1, 0, 1, 5, 20};
	static const long long dead_link[] = {0, 1, 2, 5, 20, 1000};
	static const long long logmask[] = {0, -1, 0xfff, 1, 2, 8, 0x30, 0xf00};
	switch (f) {
	case FIELD_RX_MINRTO:
		return prng_chance(&s->rng, 1, 2) ? PRNG_PICK(&s->rng, minrto) : prng_range(&s->rng, 0, 1000);
	case FIELD_FASTRESEND: return PRNG_PICK(&s->rng, fastresend);
	case FIELD_FASTLIMIT: return PRNG_PICK(&s->rng, fastlimit);
	case FIELD_NOCWND: return prng_range(&s->rng, 0, 2);
	case FIELD_STREAM: return prng_range(&s->rng, 0, 2);
	case FIELD_INTERVAL: return prng_chance(&s->rng, 1, 2) ? prng_range(&s->rng, 0, 100) : prng_range(&s->rng, 0, 10000);
	case FIELD_LOGMASK: return prng_chance(&s->rng, 1, 2) ? PRNG_PICK(&s->rng, logmask) : prng_below(&s->rng, 1u << 16);
	case FIELD_DEAD_LINK: return PRNG_PICK(&s->rng, dead_link);
	case FIELD_USER: return prng_chance(&s->rng, 1, 10) ? 0 : (long long)(prng_next(&s->rng) >> 16);
	case FIELD_OUTPUT: return prng_range(&s->rng, 0, 1);
	case FIELD_WRITELOG: return prng_range(&s->rng, 0, 2); /* 0 = NULL */
	case FIELD_CONV: return prng_chance(&s->rng, 3, 4) ? (long long)peer->conv : (long long)prng_u32(&s->rng);
	case FIELD_SND_WND:
	case FIELD_RCV_WND: return prng_chance(&s->rng, 1, 10) ? 0 : prng_range(&s->rng, 1, 1024);
	case FIELD_NODELAY: return prng_range(&s->rng, 0, 3);
	default: return 0;
	}
}

static void gen_reset(struct sim *s, struct op *op)
{
	/* Datagrams of the old connection would only bounce off the new conv. */
	link_free(&s->link[0]);
	link_free(&s->link[1]);
	op->a = prng_chance(&s->rng, 1, 2) ? 0x11223344 : prng_u32(&s->rng); /* conv of A */
	op->b = prng_chance(&s->rng, 19, 20) ? op->a : prng_u32(&s->rng);  /* conv of B */
	op->c = (long long)(prng_next(&s->rng) >> 1);  /* user pointers (low 40 bits) + logmask (high bits) */
	op->d = prng_below(&s->rng, 16); /* bits 0,1: setoutput() vs field write; bits 2,3: logging */
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */
/* ------------------------------------------------------------------ */

static void gen_kind_args(struct sim *s, const struct world *ref, struct op *op)
{
	const ikcpcb *kcp = ref->kcp[op->ep];
	switch (op->kind) {
	case OP_RESET: gen_reset(s, op); break;
	case OP_UPDATE: gen_update(s, op); break;
	case OP_CHECK: gen_check(s, op); break;
	case OP_SEND: gen_send(s, kcp, op); break;
	case OP_RECV: gen_recv(s, ref, op->ep, op); break;
	case OP_DELIVER: gen_deliver(s, op); break;
	case OP_INPUT_RAW: gen_input_raw(s, kcp, ref->kcp[1 - op->ep], op); break;
	case OP_SETMTU: gen_setmtu(s, kcp, op); break;
	case OP_WNDSIZE:
		if (prng_chance(&s->rng, 1, 20)) op->ep = -1;
		op->a = gen_window(s);
		op->b = gen_window(s);
		break;
	case OP_NODELAY: gen_nodelay(s, op); break;
	case OP_INTERVAL: gen_interval(s, op); break;
	case OP_FIELD:
		op->a = prng_below(&s->rng, FIELD_IDS);
		op->b = gen_field_value(s, (enum field_id)op->a, ref->kcp[1 - op->ep]);
		break;
	case OP_SETOUTPUT: op->a = prng_range(&s->rng, 0, 1); break;
	case OP_LOG:
		op->a = prng_chance(&s->rng, 1, 2) ? 1 << prng_below(&s->rng, 12) : (long long)(IINT32)prng_u32(&s->rng);
		op->b = prng_u32(&s->rng);
		break;
	case OP_GETCONV:
		op->size = (long)prng_range(&s->rng, 4, 8);
		op->data = xmalloc((size_t)op->size);
		op->owns_data = 1;
		for (long i = 0; i < op->size; i++) op->data[i] = (char)prng_u32(&s->rng);
		break;
	default: break;
	}
	if (op->data && (op->kind == OP_DELIVER || op->kind == OP_INPUT_RAW) && op->size > 0)
		sanitize_timestamps(s, op->data, op->size, kcp->current);
}

void gen_op(struct sim *s, const struct world *ref, long long index, struct op *op)
{
	memset(op, 0, sizeof(*op));
	op->kind = index == 0 ? OP_RESET : pick_kind(s);
	op->ep = (int)prng_below(&s->rng, 2);
	op->reenter_send = prng_chance(&s->rng, 1, 40);
	op->probe_time = s->now + (IUINT32)prng_range(&s->rng, -1000, 20000);
	if (s->burst_left > 0 && s->link[1 - s->burst_ep].count > 0) {
		/* Inside a burst: keep delivering to the same endpoint, like an event loop draining a socket. */
		s->burst_left--;
		op->kind = OP_DELIVER;
		op->ep = s->burst_ep;
	} else if (op->kind == OP_DELIVER) {
		if (s->link[1 - op->ep].count == 0) op->ep = 1 - op->ep;
		if (s->link[1 - op->ep].count == 0) op->kind = OP_UPDATE;
		else if (prng_chance(&s->rng, 1, 4)) {
			s->burst_ep = op->ep;
			s->burst_left = (unsigned)(s->link[1 - op->ep].count < 200 ? s->link[1 - op->ep].count : 200) - 1;
		}
	}
	gen_kind_args(s, ref, op);
}

/* ------------------------------------------------------------------ */
/* descriptions                                                        */
/* ------------------------------------------------------------------ */

const char *field_name(enum field_id f)
{
	static const char *names[FIELD_IDS] = {
		"rx_minrto", "fastresend", "fastlimit", "nocwnd", "stream", "interval",
		"logmask", "dead_link", "user", "output", "writelog",
		"conv", "snd_wnd", "rcv_wnd", "nodelay",
	};
	return (unsigned)f < FIELD_IDS ? names[f] : "?";
}

void describe_op(const struct op *op, char *buf, size_t size)
{
	char who = op->ep < 0 ? '-' : (char)('A' + op->ep);
	int n = 0;
	switch (op->kind) {
	case OP_RESET:
		n = snprintf(buf, size, "reset: release; create A(conv=%08llx) B(conv=%08llx) user=%llx flags=%lld",
			     op->a, op->b, op->c, op->d);
		break;
	case OP_UPDATE: n = snprintf(buf, size, "%c: ikcp_update(current=%u)", who, (IUINT32)op->a); break;
	case OP_FLUSH: n = snprintf(buf, size, "%c: ikcp_flush()", who); break;
	case OP_CHECK: n = snprintf(buf, size, "%c: ikcp_check(current=%u)", who, (IUINT32)op->a); break;
	case OP_SEND:
		n = snprintf(buf, size, "%c: ikcp_send(%s, len=%ld)", who, op->data ? "buf" : "NULL", op->size);
		break;
	case OP_RECV:
		n = snprintf(buf, size, "%c: ikcp_recv(%s, len=%lld)", who, op->b ? "NULL" : "buf", op->a);
		break;
	case OP_DELIVER:
	case OP_INPUT_RAW:
		n = snprintf(buf, size, "%c: ikcp_input(%s, size=%ld) [%s]", who, op->data ? "data" : "NULL",
			     op->size, op->note ? op->note : "");
		break;
	case OP_SETMTU: n = snprintf(buf, size, "%c: ikcp_setmtu(%lld)", who, op->a); break;
	case OP_WNDSIZE:
		n = snprintf(buf, size, "%s: ikcp_wndsize(%s, %lld, %lld)", op->ep < 0 ? "NULL" : (who == 'A' ? "A" : "B"),
			     op->ep < 0 ? "NULL" : "kcp", op->a, op->b);
		break;
	case OP_NODELAY:
		n = snprintf(buf, size, "%c: ikcp_nodelay(%lld, %lld, %lld, %lld)", who, op->a, op->b, op->c, op->d);
		break;
	case OP_INTERVAL: n = snprintf(buf, size, "%c: ikcp_interval(%lld)", who, op->a); break;
	case OP_FIELD:
		n = snprintf(buf, size, "%c: kcp->%s = %lld (direct field write)", who, field_name((enum field_id)op->a), op->b);
		break;
	case OP_SETOUTPUT: n = snprintf(buf, size, "%c: ikcp_setoutput(callback %lld)", who, op->a); break;
	case OP_LOG: n = snprintf(buf, size, "%c: ikcp_log(mask=%lld, \"...\", %lld)", who, op->a, op->b); break;
	case OP_GETCONV: n = snprintf(buf, size, "ikcp_getconv(%ld random bytes)", op->size); break;
	default: n = snprintf(buf, size, "?"); break;
	}
	if (op->reenter_send && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, " [output callback re-enters ikcp_send]");
}
