/*
 * loopback.h - a lossless, zero-delay network between two kcp objects, for the
 * ABI and allocator tests (the differential harness has its own, hostile one).
 *
 * The output callback finds its side by comparing the kcp pointer (not via
 * `user`), so tests may overwrite kcp->user freely.
 */
#ifndef KCPX_C_TESTS_LOOPBACK_H
#define KCPX_C_TESTS_LOOPBACK_H

#include "ikcp.h"

struct loopback_packet {
	char *data;
	int len;
};

/* Called for every datagram, before it is queued (e.g. to inspect segments). */
typedef void (*loopback_tap_fn)(int from, const char *buf, int len, void *user, void *ctx);

struct loopback {
	ikcpcb *kcp[2];
	struct loopback_packet *queue[2]; /* queue[i]: datagrams sent by kcp[i] */
	int count[2], cap[2];
	IUINT32 now;
	unsigned long datagrams;
	loopback_tap_fn tap;
	void *tap_ctx;
};

/* Connects a and b (only one loopback is active at a time) and updates both at `now`. */
void loopback_init(struct loopback *lb, ikcpcb *a, ikcpcb *b, IUINT32 now);
void loopback_free(struct loopback *lb);

/* The output callback to install on both kcp objects. */
int loopback_output(const char *buf, int len, ikcpcb *kcp, void *user);

/* Advances the clock by ms, updates both sides, then delivers everything queued. */
void loopback_step(struct loopback *lb, IUINT32 ms);

/* Steps the clock a few intervals so that ACKs in flight arrive. */
void loopback_settle(struct loopback *lb);

/*
 * Sends len bytes from side `from` and runs the clock until the other side has
 * received them all (as one message, or as a stream). Returns the number of
 * bytes received into out (capacity cap), or -1 after max_steps steps.
 */
int loopback_transfer(struct loopback *lb, int from, const char *data, int len, char *out, int cap,
		      int max_steps);

#endif
