/*
 * diff_trace.h - what the callbacks of one "world" saw during one operation.
 *
 * Every output datagram and every writelog line is recorded in call order
 * (outputs and log lines interleaved), together with a snapshot of what the
 * callback could observe about its kcp object at that moment. After each
 * operation the harness compares the reference world's trace with kcpx's.
 */
#ifndef KCPX_C_TESTS_DIFF_TRACE_H
#define KCPX_C_TESTS_DIFF_TRACE_H

#include <stdio.h>
#include "ikcp.h"

enum trace_kind { TRACE_OUTPUT, TRACE_LOG };

/* Sentinel for "no re-entrant send was made in this callback". */
#define TRACE_NO_SEND (-12345)

struct trace_event {
	enum trace_kind kind;
	int endpoint;          /* 0 = A, 1 = B, -1 = a kcp pointer the harness never created */
	int callback;          /* which of the harness's callback functions ran (0 or 1) */
	void *user_arg;        /* the user argument the callback received */
	void *user_field;      /* kcp->user at that moment */
	IUINT32 conv, mtu;     /* kcp->conv and kcp->mtu at that moment */
	int waitsnd, peeksize; /* re-entrant ikcp_waitsnd / ikcp_peeksize from the callback */
	IUINT32 getconv;       /* output only: re-entrant ikcp_getconv(buf) */
	int reentrant_send;    /* output only: result of a re-entrant ikcp_send, or TRACE_NO_SEND */
	size_t offset, len;    /* payload: datagram bytes, or the log text without its NUL */
};

struct trace {
	struct trace_event *events;
	size_t count, cap;
	char *bytes;
	size_t used, cap_bytes;
};

/* Running totals of what trace_compare has compared (for the summary line). */
struct trace_totals {
	unsigned long long datagrams, datagram_bytes, log_lines, callbacks;
};

/*
 * docs/ikcp-1.7.1.md: ikcp.c only requires conv, user, mtu and friends to be valid inside a
 * callback; what re-entrant ikcp_waitsnd/ikcp_peeksize answer there (halfway
 * through ikcp_input or ikcp_flush) is compared only when this is set
 * (KCPX_DIFF_STRICT_CALLBACKS=1). They are always called and always printed.
 */
extern int trace_strict_callbacks;

void trace_init(struct trace *t);
void trace_free(struct trace *t);
void trace_clear(struct trace *t);

/* Appends an event with a copy of its payload; the caller fills in the rest. */
struct trace_event *trace_push(struct trace *t, enum trace_kind kind, const void *payload, size_t len);

const char *trace_payload(const struct trace *t, const struct trace_event *e);

/*
 * Compares two traces event by event. Returns 1 if identical; otherwise prints
 * every difference of the first differing event (decoded datagrams included)
 * to `out` (unless NULL) and returns 0. Adds what it compared to `totals`.
 */
int trace_compare(const struct trace *ref, const struct trace *kcpx, FILE *out,
		  struct trace_totals *totals);

/* Prints one datagram as its KCP segments (conv cmd frg wnd ts sn una len). */
void describe_datagram(FILE *out, const char *prefix, const char *buf, size_t len);

#endif
