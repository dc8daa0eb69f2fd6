/* diff_trace.c - see diff_trace.h. */
#include "diff_trace.h"

#include <stdlib.h>
#include <string.h>

#define KCP_HEADER 24

static void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size);
	if (q == NULL) {
		fprintf(stderr, "diff_trace: out of memory\n");
		abort();
	}
	return q;
}

void trace_init(struct trace *t)
{
	memset(t, 0, sizeof(*t));
}

void trace_free(struct trace *t)
{
	free(t->events);
	free(t->bytes);
	trace_init(t);
}

void trace_clear(struct trace *t)
{
	t->count = 0;
	t->used = 0;
}

struct trace_event *trace_push(struct trace *t, enum trace_kind kind, const void *payload, size_t len)
{
	struct trace_event *e;
	if (t->count == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->events = xrealloc(t->events, t->cap * sizeof(*t->events));
	}
	if (t->used + len > t->cap_bytes) {
		while (t->used + len > t->cap_bytes) t->cap_bytes = t->cap_bytes ? 2 * t->cap_bytes : 65536;
		t->bytes = xrealloc(t->bytes, t->cap_bytes);
	}
	e = &t->events[t->count++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->reentrant_send = TRACE_NO_SEND;
	e->offset = t->used;
	e->len = len;
	if (len) memcpy(t->bytes + t->used, payload, len);
	t->used += len;
	return e;
}

const char *trace_payload(const struct trace *t, const struct trace_event *e)
{
	return t->bytes + e->offset;
}

static IUINT32 le32(const unsigned char *p)
{
	return (IUINT32)p[0] | (IUINT32)p[1] << 8 | (IUINT32)p[2] << 16 | (IUINT32)p[3] << 24;
}

static const char *cmd_name(unsigned cmd)
{
	switch (cmd) {
	case 81: return "PUSH";
	case 82: return "ACK";
	case 83: return "WASK";
	case 84: return "WINS";
	default: return "???";
	}
}

void describe_datagram(FILE *out, const char *prefix, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t left = len;
	int n = 0;
	while (left >= KCP_HEADER && n < 40) {
		IUINT32 seglen = le32(p + 20);
		fprintf(out, "%s seg %d: conv=%08x cmd=%u(%s) frg=%u wnd=%u ts=%u sn=%u una=%u len=%u\n",
			prefix, n, le32(p), p[4], cmd_name(p[4]), p[5], (unsigned)(p[6] | p[7] << 8),
			le32(p + 8), le32(p + 12), le32(p + 16), seglen);
		left -= KCP_HEADER;
		p += KCP_HEADER;
		if (seglen > left) break;
		left -= seglen;
		p += seglen;
		n++;
	}
	if (left) fprintf(out, "%s (%zu trailing bytes)\n", prefix, left);
}

/* Names the header field a byte offset of a datagram falls in (segment-relative). */
static const char *field_at(const char *buf, size_t len, size_t offset)
{
	static const char *names[KCP_HEADER] = {
		"conv", "conv", "conv", "conv", "cmd", "frg", "wnd", "wnd",
		"ts", "ts", "ts", "ts", "sn", "sn", "sn", "sn",
		"una", "una", "una", "una", "len", "len", "len", "len",
	};
	const unsigned char *p = (const unsigned char *)buf;
	size_t pos = 0;
	while (pos + KCP_HEADER <= len) {
		IUINT32 seglen = le32(p + pos + 20);
		if (offset < pos + KCP_HEADER) return names[offset - pos];
		if (offset < pos + KCP_HEADER + seglen) return "data";
		pos += KCP_HEADER + seglen;
	}
	return "beyond last segment";
}

static size_t first_byte_diff(const char *a, const char *b, size_t len)
{
	size_t i;
	for (i = 0; i < len && a[i] == b[i]; i++) {}
	return i;
}

static const char *kind_name(enum trace_kind k)
{
	return k == TRACE_OUTPUT ? "output" : "writelog";
}

static void print_event(FILE *out, const char *who, const struct trace *t, const struct trace_event *e)
{
	fprintf(out, "    %-7s %s from endpoint %c (callback %d) len=%zu user=%p kcp->user=%p conv=%08x mtu=%u"
		" waitsnd=%d peeksize=%d", who, kind_name(e->kind), e->endpoint < 0 ? '?' : 'A' + e->endpoint,
		e->callback, e->len, e->user_arg, e->user_field, e->conv, e->mtu, e->waitsnd, e->peeksize);
	if (e->kind == TRACE_OUTPUT) {
		fprintf(out, " getconv=%08x", e->getconv);
		if (e->reentrant_send != TRACE_NO_SEND) fprintf(out, " reentrant_send=%d", e->reentrant_send);
		fprintf(out, "\n");
		describe_datagram(out, "            ", trace_payload(t, e), e->len);
	} else {
		fprintf(out, "\n            \"%.*s\"\n", (int)e->len, trace_payload(t, e));
	}
}

int trace_strict_callbacks;

/* Metadata equality: everything but the payload bytes. */
static int same_metadata(const struct trace_event *a, const struct trace_event *b)
{
	int mid_call_state = a->waitsnd == b->waitsnd && a->peeksize == b->peeksize;
	return a->kind == b->kind && a->endpoint == b->endpoint && a->callback == b->callback &&
	       a->user_arg == b->user_arg && a->user_field == b->user_field && a->conv == b->conv &&
	       a->mtu == b->mtu && (mid_call_state || !trace_strict_callbacks) && a->getconv == b->getconv &&
	       a->reentrant_send == b->reentrant_send && a->len == b->len;
}

static void count_event(const struct trace_event *e, struct trace_totals *totals)
{
	totals->callbacks++;
	if (e->kind == TRACE_OUTPUT) {
		totals->datagrams++;
		totals->datagram_bytes += e->len;
	} else {
		totals->log_lines++;
	}
}

static void report_event_diff(FILE *out, size_t index, const struct trace *ref, const struct trace_event *a,
			      const struct trace *kcpx, const struct trace_event *b)
{
	const char *pa = trace_payload(ref, a), *pb = trace_payload(kcpx, b);
	size_t common = a->len < b->len ? a->len : b->len;
	size_t at = first_byte_diff(pa, pb, common);
	fprintf(out, "  callback #%zu differs", index);
	if (!same_metadata(a, b)) fprintf(out, " (kind/endpoint/callback/snapshot/length)");
	if (at < common || a->len != b->len) {
		fprintf(out, "; first differing byte at offset %zu", at);
		if (a->kind == TRACE_OUTPUT) fprintf(out, " (%s)", field_at(pa, a->len, at));
	}
	fprintf(out, ":\n");
	print_event(out, "ikcp.c", ref, a);
	print_event(out, "kcpx", kcpx, b);
}

int trace_compare(const struct trace *ref, const struct trace *kcpx, FILE *out, struct trace_totals *totals)
{
	size_t i, n = ref->count < kcpx->count ? ref->count : kcpx->count;
	for (i = 0; i < n; i++) {
		const struct trace_event *a = &ref->events[i], *b = &kcpx->events[i];
		if (!same_metadata(a, b) || memcmp(trace_payload(ref, a), trace_payload(kcpx, b), a->len) != 0) {
			if (out) report_event_diff(out, i, ref, a, kcpx, b);
			return 0;
		}
		count_event(a, totals);
	}
	if (ref->count != kcpx->count) {
		const struct trace *longer;
		if (out == NULL) return 0;
		longer = ref->count > kcpx->count ? ref : kcpx;
		fprintf(out, "  callback count differs: ikcp.c made %zu callbacks, kcpx made %zu; first extra one:\n",
			ref->count, kcpx->count);
		print_event(out, longer == ref ? "ikcp.c" : "kcpx", longer, &longer->events[n]);
		return 0;
	}
	return 1;
}
