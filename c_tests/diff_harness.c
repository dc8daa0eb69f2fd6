/*
 * diff_harness.c - differential test of libkcpx against pristine ikcp.c 1.7.1.
 *
 * Two worlds run side by side in one process: the reference world uses
 * pristine ikcp.c (symbols renamed ref_ikcp_*), the kcpx world uses libkcpx.
 * Each world has two endpoints, A and B. One seeded generator draws every
 * operation (API calls, direct field writes, clock steps, network deliveries
 * with loss/duplication/reordering, corrupted input); both worlds get the same
 * operation, and after *every* operation the harness compares:
 *   - the return value (and the bytes a recv wrote),
 *   - every output datagram and writelog line, in call order, with what the
 *     callback could observe at that moment,
 *   - every public field of both endpoints, ikcp_check at two times,
 *     ikcp_peeksize and ikcp_waitsnd.
 * The network is shared: datagrams are compared first, then one copy enters
 * the simulated network and is later delivered to both worlds.
 *
 * Environment: KCPX_SEED (base seed, decimal or 0x hex; default: time),
 * KCPX_DIFF_OPS (total operations, default 200000, split into runs of 25000
 * with derived seeds; a failing run prints the seed that reproduces it alone),
 * KCPX_DIFF_STRICT_CALLBACKS=1 (also compare what re-entrant calls return
 * inside callbacks, see diff_trace.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "count_alloc.h"
#include "diff_harness.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#define OPS_PER_RUN 25000
#define DEFAULT_OPS 200000
#define HISTORY 24

enum { REF, KCPX };
static const char *const world_label[2] = {"ikcp.c", "kcpx"};
static struct world worlds[2];

/* The world whose operation is running: callbacks record into its trace. */
static struct world *running;

/* What to print if the process dies inside an operation (see install_crash_report). */
static char crash_note[DESC_MAX + 256];

/* ------------------------------------------------------------------ */
/* callbacks                                                           */
/* ------------------------------------------------------------------ */

static int endpoint_of(const struct world *w, const ikcpcb *kcp)
{
	if (kcp != NULL && kcp == w->kcp[0]) return 0;
	if (kcp != NULL && kcp == w->kcp[1]) return 1;
	return -1;
}

/*
 * Records what a callback sees. Users call other ikcp_* functions from inside
 * their callbacks, so the snapshot includes a few re-entrant read-only calls.
 */
static struct trace_event *record(enum trace_kind kind, int callback, const void *payload, size_t len,
				  ikcpcb *kcp, void *user)
{
	struct world *w = running;
	struct trace_event *e = trace_push(&w->trace, kind, payload, len);
	e->endpoint = endpoint_of(w, kcp);
	e->callback = callback;
	e->user_arg = user;
	if (e->endpoint < 0) return e; /* never dereference a pointer we did not create */
	e->user_field = kcp->user;
	e->conv = kcp->conv;
	e->mtu = kcp->mtu;
	e->waitsnd = w->api->waitsnd(kcp);
	e->peeksize = w->api->peeksize(kcp);
	return e;
}

static int output_common(int callback, const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct world *w = running;
	struct trace_event *e = record(TRACE_OUTPUT, callback, buf, len > 0 ? (size_t)len : 0, kcp, user);
	if (e->endpoint < 0) return 0;
	if (len >= 4) e->getconv = w->api->getconv(buf);
	if (w->reenter_send && !w->reentered) {
		w->reentered = 1;
		e->reentrant_send = w->api->send(kcp, "re-entrant", 10);
	}
	return 0; /* ikcp.c ignores the return value */
}

static int output0(const char *buf, int len, ikcpcb *kcp, void *user) { return output_common(0, buf, len, kcp, user); }
static int output1(const char *buf, int len, ikcpcb *kcp, void *user) { return output_common(1, buf, len, kcp, user); }

static void writelog_common(int callback, const char *log, ikcpcb *kcp, void *user)
{
	record(TRACE_LOG, callback, log, strlen(log), kcp, user);
}

static void writelog0(const char *log, ikcpcb *kcp, void *user) { writelog_common(0, log, kcp, user); }
static void writelog1(const char *log, ikcpcb *kcp, void *user) { writelog_common(1, log, kcp, user); }

static const kcp_output_fn output_cb[2] = {output0, output1};
static const kcp_writelog_fn writelog_cb[3] = {NULL, writelog0, writelog1};

/* ------------------------------------------------------------------ */
/* applying one operation to one world                                 */
/* ------------------------------------------------------------------ */

static void *user_value(long long bits, int ep)
{
	return (void *)(uintptr_t)(((unsigned long long)bits & 0xFFFFFFFFFFull) ^ (unsigned long long)ep);
}

static void set_output(struct world *w, ikcpcb *kcp, int via_api, int which)
{
	if (via_api)
		w->api->setoutput(kcp, output_cb[which]);
	else
		kcp->output = output_cb[which]; /* the upstream README way */
}

static long long world_reset(struct world *w, const struct op *op)
{
	int ep;
	for (ep = 0; ep < 2; ep++) {
		if (w->kcp[ep]) w->api->release(w->kcp[ep]);
		w->kcp[ep] = NULL;
	}
	for (ep = 0; ep < 2; ep++) {
		ikcpcb *kcp = w->api->create((IUINT32)(ep == 0 ? op->a : op->b), user_value(op->c, ep));
		w->kcp[ep] = kcp;
		if (kcp == NULL) continue;
		set_output(w, kcp, (int)(op->d >> ep) & 1, 0);
		if ((op->d >> (2 + ep)) & 1) {
			kcp->writelog = writelog0;
			kcp->logmask = (int)((unsigned long long)op->c >> 40) & 0xfff;
		}
	}
	return (w->kcp[0] != NULL) + 2 * (w->kcp[1] != NULL);
}

static void field_write(struct world *w, ikcpcb *kcp, enum field_id f, long long v)
{
	switch (f) {
	case FIELD_RX_MINRTO: kcp->rx_minrto = (IINT32)v; break;
	case FIELD_FASTRESEND: kcp->fastresend = (int)v; break;
	case FIELD_FASTLIMIT: kcp->fastlimit = (int)v; break;
	case FIELD_NOCWND: kcp->nocwnd = (int)v; break;
	case FIELD_STREAM: kcp->stream = (int)v; break;
	case FIELD_INTERVAL: kcp->interval = (IUINT32)v; break;
	case FIELD_LOGMASK: kcp->logmask = (int)v; break;
	case FIELD_DEAD_LINK: kcp->dead_link = (IUINT32)v; break;
	case FIELD_USER: kcp->user = (void *)(uintptr_t)v; break;
	case FIELD_OUTPUT: set_output(w, kcp, 0, (int)v); break;
	case FIELD_WRITELOG: kcp->writelog = writelog_cb[v]; break;
	case FIELD_CONV: kcp->conv = (IUINT32)v; break;
	case FIELD_SND_WND: kcp->snd_wnd = (IUINT32)v; break;
	case FIELD_RCV_WND: kcp->rcv_wnd = (IUINT32)v; break;
	case FIELD_NODELAY: kcp->nodelay = (IUINT32)v; break;
	default: break;
	}
}

/* The recv buffer sits at the very end of the world's arena (overruns leave the allocation). */
static char *recv_buffer(const struct world *w, const struct op *op)
{
	long long len = op->a < 0 ? -op->a : op->a;
	if (op->b) return NULL;
	return w->rx_arena + HARNESS_ARENA - len;
}

static long long run_recv(struct world *w, ikcpcb *kcp, const struct op *op)
{
	char *buf = recv_buffer(w, op);
	if (buf) memset(buf, 0xA5, (size_t)op->c);
	return w->api->recv(kcp, buf, (int)op->a);
}

static long long run_op(struct world *w, const struct op *op)
{
	const struct kcp_api *api = w->api;
	ikcpcb *kcp = op->ep >= 0 ? w->kcp[op->ep] : NULL;
	switch (op->kind) {
	case OP_RESET: return world_reset(w, op);
	case OP_UPDATE: api->update(kcp, (IUINT32)op->a); return 0;
	case OP_FLUSH: api->flush(kcp); return 0;
	case OP_CHECK: return api->check(kcp, (IUINT32)op->a);
	case OP_SEND: return api->send(kcp, op->data, (int)op->size);
	case OP_RECV: return run_recv(w, kcp, op);
	case OP_DELIVER:
	case OP_INPUT_RAW: return api->input(kcp, op->data, op->size);
	case OP_SETMTU: return api->setmtu(kcp, (int)op->a);
	case OP_WNDSIZE: return api->wndsize(kcp, (int)op->a, (int)op->b);
	case OP_NODELAY: return api->nodelay(kcp, (int)op->a, (int)op->b, (int)op->c, (int)op->d);
	case OP_INTERVAL: return api->interval(kcp, (int)op->a);
	case OP_FIELD: field_write(w, kcp, (enum field_id)op->a, op->b); return 0;
	case OP_SETOUTPUT: api->setoutput(kcp, output_cb[op->a]); return 0;
	case OP_LOG: api->log(kcp, (int)op->a, "harness log %lld: %s=%d", op->b, "value", (int)op->b); return 0;
	case OP_GETCONV: return api->getconv(op->data);
	default: return 0;
	}
}

/* ------------------------------------------------------------------ */
/* observation                                                         */
/* ------------------------------------------------------------------ */

/* Every public scalar field; the queue/list/buffer pointers are kcpx's own business. */
#define KCP_SCALAR_FIELDS(X)                                                                                 \
	X(conv) X(mtu) X(mss) X(state) X(snd_una) X(snd_nxt) X(rcv_nxt) X(ts_recent) X(ts_lastack)           \
	X(ssthresh) X(rx_rttval) X(rx_srtt) X(rx_rto) X(rx_minrto) X(snd_wnd) X(rcv_wnd) X(rmt_wnd) X(cwnd) \
	X(probe) X(current) X(interval) X(ts_flush) X(xmit) X(nrcv_buf) X(nsnd_buf) X(nrcv_que)             \
	X(nsnd_que) X(nodelay) X(updated) X(ts_probe) X(probe_wait) X(dead_link) X(incr) X(ackcount)         \
	X(ackblock) X(fastresend) X(fastlimit) X(nocwnd) X(stream) X(logmask)

#define FIELD_INDEX(name) FI_##name,
enum { KCP_SCALAR_FIELDS(FIELD_INDEX) SCALAR_FIELDS };
#define FIELD_STRING(name) #name,
static const char *const scalar_name[SCALAR_FIELDS] = {KCP_SCALAR_FIELDS(FIELD_STRING)};

/* Callback pointers are compared as integers (ISO C has no function-pointer-to-void*). */
static uintptr_t fn_bits(const void *fn_ptr_storage, size_t size)
{
	uintptr_t v = 0;
	memcpy(&v, fn_ptr_storage, size < sizeof(v) ? size : sizeof(v));
	return v;
}

struct endpoint_obs {
	int present;
	long long field[SCALAR_FIELDS];
	uintptr_t user, output, writelog;
	IUINT32 check_now, check_probe;
	int peeksize, waitsnd;
};

static void observe_endpoint(const struct world *w, int ep, IUINT32 now, IUINT32 probe, struct endpoint_obs *o)
{
	const ikcpcb *kcp = w->kcp[ep];
	memset(o, 0, sizeof(*o));
	o->present = kcp != NULL;
	if (!o->present) return;
#define FIELD_READ(name) o->field[FI_##name] = (long long)kcp->name;
	KCP_SCALAR_FIELDS(FIELD_READ)
#undef FIELD_READ
	o->user = (uintptr_t)kcp->user;
	o->output = fn_bits(&kcp->output, sizeof(kcp->output));
	o->writelog = fn_bits(&kcp->writelog, sizeof(kcp->writelog));
	o->check_now = w->api->check(kcp, now);
	o->check_probe = w->api->check(kcp, probe);
	o->peeksize = w->api->peeksize(kcp);
	o->waitsnd = w->api->waitsnd(kcp);
}

/* Prints (if out) one differing value; returns 1 if they differ. */
static int differ(FILE *out, int ep, const char *what, long long ref, long long kcpx)
{
	if (ref == kcpx) return 0;
	if (out) fprintf(out, "  endpoint %c %-22s ikcp.c=%lld kcpx=%lld\n", 'A' + ep, what, ref, kcpx);
	return 1;
}

static int compare_endpoint(FILE *out, int ep, const struct endpoint_obs *r, const struct endpoint_obs *k,
			    IUINT32 now, IUINT32 probe)
{
	char what[64];
	int i, n = differ(out, ep, "exists", r->present, k->present);
	if (n || !r->present) return n;
	for (i = 0; i < SCALAR_FIELDS; i++) {
		snprintf(what, sizeof(what), "field %s", scalar_name[i]);
		n += differ(out, ep, what, r->field[i], k->field[i]);
	}
	n += differ(out, ep, "field user", (long long)r->user, (long long)k->user);
	n += differ(out, ep, "field output", (long long)r->output, (long long)k->output);
	n += differ(out, ep, "field writelog", (long long)r->writelog, (long long)k->writelog);
	snprintf(what, sizeof(what), "ikcp_check(%u)", now);
	n += differ(out, ep, what, r->check_now, k->check_now);
	snprintf(what, sizeof(what), "ikcp_check(%u)", probe);
	n += differ(out, ep, what, r->check_probe, k->check_probe);
	n += differ(out, ep, "ikcp_peeksize()", r->peeksize, k->peeksize);
	n += differ(out, ep, "ikcp_waitsnd()", r->waitsnd, k->waitsnd);
	return n;
}

static int compare_recv_bytes(FILE *out, const struct op *op)
{
	const char *a = recv_buffer(&worlds[REF], op), *b = recv_buffer(&worlds[KCPX], op);
	long long i;
	if (op->kind != OP_RECV || a == NULL || memcmp(a, b, (size_t)op->c) == 0) return 0;
	for (i = 0; a[i] == b[i]; i++) {}
	if (out)
		fprintf(out, "  recv buffer differs at byte %lld: ikcp.c=0x%02x kcpx=0x%02x (0xa5 = untouched)\n", i,
			(unsigned char)a[i], (unsigned char)b[i]);
	return 1;
}

struct outcome {
	long long ret[2];
	struct endpoint_obs obs[2][2]; /* [world][endpoint] */
};

/* Counts (and, if out != NULL, prints) every difference after one operation. */
static int compare_worlds(FILE *out, const struct op *op, const struct outcome *oc, IUINT32 now,
			  struct trace_totals *totals)
{
	int ep, n = 0;
	if (oc->ret[REF] != oc->ret[KCPX]) {
		n++;
		if (out) fprintf(out, "  return value: ikcp.c=%lld kcpx=%lld\n", oc->ret[REF], oc->ret[KCPX]);
	}
	n += !trace_compare(&worlds[REF].trace, &worlds[KCPX].trace, out, totals);
	n += compare_recv_bytes(out, op);
	for (ep = 0; ep < 2; ep++)
		n += compare_endpoint(out, ep, &oc->obs[REF][ep], &oc->obs[KCPX][ep], now, op->probe_time);
	return n;
}

/* ------------------------------------------------------------------ */
/* coverage: evidence that the operations reach the interesting states */
/* ------------------------------------------------------------------ */

#define COVERAGE_COUNTERS(X)                                                                                  \
	X(recv_msg) X(recv_empty) X(recv_partial) X(recv_small) X(peek) X(send_ok) X(send_too_many_frags)    \
	X(send_neg) X(input_ok) X(input_bad_conv) X(input_bad_len) X(input_bad_cmd) X(seg_push) X(seg_ack)   \
	X(seg_wask) X(seg_wins) X(retransmit) X(dead_link) X(zero_rmt_wnd) X(rcv_queue_full) X(ackblock_64) \
	X(setmtu_fail) X(clock_wrapped) X(log_line) X(reentrant_send)

#define COVERAGE_FIELD(name) unsigned long long name;
struct coverage {
	COVERAGE_COUNTERS(COVERAGE_FIELD)
};

static void cover_return(struct coverage *c, const struct op *op, long long ret)
{
	switch (op->kind) {
	case OP_RECV:
		if (ret >= 0) { if (op->a < 0) c->peek++; else c->recv_msg++; }
		else if (ret == -1) c->recv_empty++;
		else if (ret == -2) c->recv_partial++;
		else c->recv_small++;
		break;
	case OP_SEND:
		if (ret >= 0) c->send_ok++;
		else if (ret == -2) c->send_too_many_frags++;
		else c->send_neg++;
		break;
	case OP_DELIVER:
	case OP_INPUT_RAW:
		if (ret == 0) c->input_ok++;
		else if (ret == -1) c->input_bad_conv++;
		else if (ret == -2) c->input_bad_len++;
		else c->input_bad_cmd++;
		break;
	case OP_SETMTU: c->setmtu_fail += ret != 0; break;
	default: break;
	}
}

static void cover_datagram(struct coverage *c, const unsigned char *p, size_t len)
{
	while (len >= 24) {
		size_t seglen = (size_t)p[20] | (size_t)p[21] << 8 | (size_t)p[22] << 16 | (size_t)p[23] << 24;
		c->seg_push += p[4] == 81;
		c->seg_ack += p[4] == 82;
		c->seg_wask += p[4] == 83;
		c->seg_wins += p[4] == 84;
		if (seglen > len - 24) break;
		p += 24 + seglen;
		len -= 24 + seglen;
	}
}

static void cover_op(struct coverage *c, const struct op *op, long long ret, const struct endpoint_obs *obs,
		     const struct endpoint_obs *before, IUINT32 prev_now, IUINT32 now)
{
	const struct trace *t = &worlds[REF].trace;
	size_t i;
	int ep;
	cover_return(c, op, ret);
	for (i = 0; i < t->count; i++) {
		const struct trace_event *e = &t->events[i];
		if (e->kind == TRACE_LOG) c->log_line++;
		else cover_datagram(c, (const unsigned char *)trace_payload(t, e), e->len);
		c->reentrant_send += e->reentrant_send != TRACE_NO_SEND;
	}
	for (ep = 0; ep < 2; ep++) {
		if (!obs[ep].present) continue;
		c->retransmit += before[ep].present && obs[ep].field[FI_xmit] > before[ep].field[FI_xmit];
		c->dead_link += obs[ep].field[FI_state] != 0;
		c->zero_rmt_wnd += obs[ep].field[FI_rmt_wnd] == 0;
		c->rcv_queue_full += obs[ep].field[FI_nrcv_que] >= obs[ep].field[FI_rcv_wnd];
		c->ackblock_64 += obs[ep].field[FI_ackblock] >= 64;
	}
	c->clock_wrapped += now < prev_now;
}

/*
 * A generator that silently stopped reaching the core paths would make every
 * run pass: a long run must have reached each of these at least once.
 */
static int coverage_check(const struct coverage *c, unsigned long long ops)
{
	const struct {
		const char *name;
		unsigned long long count;
	} core[] = {
		{"recv_msg", c->recv_msg},   {"recv_partial", c->recv_partial}, {"recv_small", c->recv_small},
		{"peek", c->peek},           {"send_ok", c->send_ok},           {"send_too_many_frags", c->send_too_many_frags},
		{"input_ok", c->input_ok},   {"seg_push", c->seg_push},         {"seg_ack", c->seg_ack},
		{"seg_wins", c->seg_wins},   {"retransmit", c->retransmit},     {"log_line", c->log_line},
		{"ackblock_64", c->ackblock_64}, {"reentrant_send", c->reentrant_send},
	};
	size_t i;
	int ok = 1;
	if (ops < 100000) return 1;
	for (i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (core[i].count == 0) {
			printf("coverage hole: %s never happened in %llu operations\n", core[i].name, ops);
			ok = 0;
		}
	return ok;
}

static void coverage_print(const struct coverage *c)
{
	printf("coverage:");
#define COVERAGE_PRINT(name) printf(" %s=%llu", #name, c->name);
	COVERAGE_COUNTERS(COVERAGE_PRINT)
#undef COVERAGE_PRINT
	printf("\n");
}

/* ------------------------------------------------------------------ */
/* one run (one seed)                                                  */
/* ------------------------------------------------------------------ */

struct run_totals {
	unsigned long long ops;
	struct trace_totals traces;
	struct coverage cover;
};

struct history {
	char line[HISTORY][DESC_MAX];
	long long index[HISTORY];
	long long count;
};

static void history_add(struct history *h, long long index, const char *desc)
{
	int slot = (int)(h->count++ % HISTORY);
	h->index[slot] = index;
	snprintf(h->line[slot], sizeof(h->line[slot]), "%s", desc);
}

static void history_print(const struct history *h)
{
	long long k = h->count > HISTORY ? h->count - HISTORY : 0;
	fprintf(stderr, "recent operations (oldest first):\n");
	for (; k < h->count; k++) {
		int slot = (int)(k % HISTORY);
		fprintf(stderr, "  #%lld %s\n", h->index[slot], h->line[slot]);
	}
}

static void set_crash_note(unsigned long long seed, long long index, int world, const char *desc)
{
	snprintf(crash_note, sizeof(crash_note),
		 "\ndiff_harness: CRASH in the %s world, seed 0x%016llx, operation #%lld: %s\n"
		 "reproduce: KCPX_SEED=0x%016llx KCPX_DIFF_OPS=%lld\n",
		 world_label[world], seed, index, desc, seed, index + 1);
}

static void apply_both(const struct op *op, struct outcome *oc, unsigned long long seed, long long index,
		       const char *desc, IUINT32 now)
{
	int w, ep;
	for (w = REF; w <= KCPX; w++) {
		set_crash_note(seed, index, w, desc);
		running = &worlds[w];
		worlds[w].reenter_send = op->reenter_send;
		worlds[w].reentered = 0;
		oc->ret[w] = run_op(&worlds[w], op);
		for (ep = 0; ep < 2; ep++) observe_endpoint(&worlds[w], ep, now, op->probe_time, &oc->obs[w][ep]);
		running = NULL;
	}
}

static void fail(unsigned long long seed, long long index, const char *desc, const struct op *op,
		 const struct outcome *oc, IUINT32 now, const struct history *h)
{
	struct trace_totals ignored = {0, 0, 0, 0};
	fprintf(stderr, "\ndiff_harness: DIVERGENCE at seed 0x%016llx, operation #%lld: %s\n", seed, index, desc);
	fprintf(stderr, "differences (ikcp.c 1.7.1 = reference):\n");
	compare_worlds(stderr, op, oc, now, &ignored);
	history_print(h);
	fprintf(stderr, "reproduce: KCPX_SEED=0x%016llx KCPX_DIFF_OPS=%lld\n", seed, index + 1);
	exit(1);
}

/* Feeds the reference world's datagrams (identical to kcpx's) into the network. */
static void absorb_outputs(struct sim *s)
{
	const struct trace *t = &worlds[REF].trace;
	size_t i;
	for (i = 0; i < t->count; i++) {
		const struct trace_event *e = &t->events[i];
		if (e->kind == TRACE_OUTPUT && e->endpoint >= 0)
			sim_absorb(s, e->endpoint, trace_payload(t, e), e->len);
	}
}

static void release_all(void)
{
	int w, ep;
	for (w = REF; w <= KCPX; w++)
		for (ep = 0; ep < 2; ep++) {
			if (worlds[w].kcp[ep]) worlds[w].api->release(worlds[w].kcp[ep]);
			worlds[w].kcp[ep] = NULL;
		}
}

static void run_seed(unsigned long long seed, long long ops, const char *pattern, struct run_totals *totals)
{
	static struct history h;
	struct sim s;
	struct op op;
	struct outcome oc;
	struct endpoint_obs before[2];
	char desc[DESC_MAX];
	long long i;
	IUINT32 prev_now;
	sim_init(&s, seed, pattern);
	h.count = 0;
	memset(before, 0, sizeof(before));
	for (i = 0; i < ops; i++) {
		prev_now = s.now;
		gen_op(&s, &worlds[REF], i, &op);
		describe_op(&op, desc, sizeof(desc));
		history_add(&h, i, desc);
		apply_both(&op, &oc, seed, i, desc, s.now);
		if (compare_worlds(NULL, &op, &oc, s.now, &totals->traces) != 0) fail(seed, i, desc, &op, &oc, s.now, &h);
		cover_op(&totals->cover, &op, oc.ret[REF], oc.obs[REF], before, prev_now, s.now);
		memcpy(before, oc.obs[REF], sizeof(before));
		absorb_outputs(&s);
		trace_clear(&worlds[REF].trace);
		trace_clear(&worlds[KCPX].trace);
		op_free(&op);
		totals->ops++;
	}
	release_all();
	sim_free(&s);
}

/* ------------------------------------------------------------------ */
/* process setup                                                       */
/* ------------------------------------------------------------------ */

static void print_crash_note(void)
{
	ssize_t ignored = write(2, crash_note, strlen(crash_note)); /* async-signal-safe */
	(void)ignored;
}

#if defined(__SANITIZE_ADDRESS__)
static void sanitizer_death(void)
{
	print_crash_note();
}
#else
static void crash_handler(int sig)
{
	print_crash_note();
	signal(sig, SIG_DFL);
	raise(sig);
}
#endif

/* On a crash, say which seed and operation were running (sanitizers keep their own report). */
static void install_crash_report(void)
{
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_set_death_callback(sanitizer_death);
#else
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
	size_t i;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = crash_handler;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, NULL);
#endif
}

static unsigned long long env_number(const char *name, unsigned long long fallback)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;
	if (v == NULL || *v == '\0') return fallback;
	n = strtoull(v, &end, 0);
	if (*end != '\0') {
		fprintf(stderr, "diff_harness: cannot parse %s=%s\n", name, v);
		exit(2);
	}
	return n;
}

static unsigned long long time_seed(void)
{
	struct timespec ts;
	uint64_t x;
	clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	return splitmix64(&x);
}

static char *make_pattern(void)
{
	uint64_t state = 0x6b637078ull; /* fixed: the data content does not need to vary by seed */
	char *p = malloc(HARNESS_ARENA);
	size_t i;
	if (p == NULL) abort();
	for (i = 0; i < HARNESS_ARENA; i += 8) {
		uint64_t v = splitmix64(&state);
		memcpy(p + i, &v, 8);
	}
	return p;
}

static void setup_worlds(void)
{
	int w;
	const struct kcp_api *apis[2] = {&ref_api, &kcpx_api};
	for (w = REF; w <= KCPX; w++) {
		worlds[w].api = apis[w];
		trace_init(&worlds[w].trace);
		worlds[w].rx_arena = malloc(HARNESS_ARENA);
		if (worlds[w].rx_arena == NULL) abort();
		worlds[w].api->allocator(count_alloc_malloc(w), count_alloc_free(w));
	}
}

static int check_allocators(void)
{
	int ok = count_alloc_balanced(REF, "ikcp.c") & count_alloc_balanced(KCPX, "kcpx  ");
	if (count_alloc_stats(KCPX)->mallocs == 0) {
		printf("kcpx never called the ikcp_allocator hooks\n");
		ok = 0;
	}
	return ok;
}

int main(void)
{
	unsigned long long base = env_number("KCPX_SEED", 0), seed;
	long long total = (long long)env_number("KCPX_DIFF_OPS", DEFAULT_OPS), done = 0, run;
	struct run_totals totals;
	char *pattern = make_pattern();
	memset(&totals, 0, sizeof(totals));
	if (getenv("KCPX_SEED") == NULL || *getenv("KCPX_SEED") == '\0') base = time_seed();
	trace_strict_callbacks = env_number("KCPX_DIFF_STRICT_CALLBACKS", 0) != 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	install_crash_report();
	setup_worlds();
	printf("diff_harness: base seed KCPX_SEED=0x%016llx, %lld operations (runs of at most %d)\n", base, total,
	       OPS_PER_RUN);
	for (run = 0; done < total; run++) {
		long long ops = total - done < OPS_PER_RUN ? total - done : OPS_PER_RUN;
		uint64_t x = base + (uint64_t)run;
		seed = run == 0 ? base : splitmix64(&x);
		printf("run %lld: seed 0x%016llx, %lld operations\n", run, seed, ops);
		run_seed(seed, ops, pattern, &totals);
		done += ops;
	}
	if (!check_allocators()) {
		fprintf(stderr, "diff_harness: allocator hooks unbalanced (base seed 0x%016llx)\n", base);
		return 1;
	}
	coverage_print(&totals.cover);
	if (!coverage_check(&totals.cover, totals.ops)) {
		fprintf(stderr, "diff_harness: the generator no longer reaches the core paths (base seed 0x%016llx)\n", base);
		return 1;
	}
	printf("diff_harness: OK: %llu operations, %llu datagrams (%llu bytes), %llu log lines, %llu callbacks "
	       "compared\n",
	       totals.ops, totals.traces.datagrams, totals.traces.datagram_bytes, totals.traces.log_lines,
	       totals.traces.callbacks);
	for (run = REF; run <= KCPX; run++) {
		trace_free(&worlds[run].trace);
		free(worlds[run].rx_arena);
	}
	free(pattern);
	return 0;
}
