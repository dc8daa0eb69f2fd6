/* loopback.c - see loopback.h. */
#include "loopback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct loopback *active;

void loopback_init(struct loopback *lb, ikcpcb *a, ikcpcb *b, IUINT32 now)
{
	memset(lb, 0, sizeof(*lb));
	lb->kcp[0] = a;
	lb->kcp[1] = b;
	lb->now = now;
	active = lb;
}

static void drop_queue(struct loopback *lb, int side)
{
	int i;
	for (i = 0; i < lb->count[side]; i++) free(lb->queue[side][i].data);
	lb->count[side] = 0;
}

void loopback_free(struct loopback *lb)
{
	int side;
	for (side = 0; side < 2; side++) {
		drop_queue(lb, side);
		free(lb->queue[side]);
		lb->queue[side] = NULL;
	}
	if (active == lb) active = NULL;
}

int loopback_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct loopback *lb = active;
	int from = kcp == lb->kcp[0] ? 0 : kcp == lb->kcp[1] ? 1 : -1;
	struct loopback_packet *p;
	if (from < 0 || len <= 0) {
		fprintf(stderr, "loopback: output from an unknown kcp %p (len %d)\n", (void *)kcp, len);
		abort();
	}
	if (lb->tap) lb->tap(from, buf, len, user, lb->tap_ctx);
	if (lb->count[from] == lb->cap[from]) {
		lb->cap[from] = lb->cap[from] ? 2 * lb->cap[from] : 64;
		lb->queue[from] = realloc(lb->queue[from], (size_t)lb->cap[from] * sizeof(*p));
		if (lb->queue[from] == NULL) abort();
	}
	p = &lb->queue[from][lb->count[from]++];
	p->data = malloc((size_t)len);
	if (p->data == NULL) abort();
	memcpy(p->data, buf, (size_t)len);
	p->len = len;
	lb->datagrams++;
	return 0;
}

/* Delivers what `from` sent; inputs may trigger no output, so one pass suffices. */
static void deliver(struct loopback *lb, int from)
{
	int i, n = lb->count[from];
	struct loopback_packet *q = lb->queue[from];
	lb->queue[from] = NULL;
	lb->count[from] = lb->cap[from] = 0;
	for (i = 0; i < n; i++) {
		ikcp_input(lb->kcp[1 - from], q[i].data, q[i].len);
		free(q[i].data);
	}
	free(q);
}

void loopback_step(struct loopback *lb, IUINT32 ms)
{
	lb->now += ms;
	ikcp_update(lb->kcp[0], lb->now);
	ikcp_update(lb->kcp[1], lb->now);
	deliver(lb, 0);
	deliver(lb, 1);
}

void loopback_settle(struct loopback *lb)
{
	int i;
	for (i = 0; i < 5; i++) loopback_step(lb, 10);
}

int loopback_transfer(struct loopback *lb, int from, const char *data, int len, char *out, int cap,
		      int max_steps)
{
	int got = 0, step, n;
	ikcpcb *receiver = lb->kcp[1 - from];
	if (ikcp_send(lb->kcp[from], data, len) < 0) return -1;
	for (step = 0; step < max_steps; step++) {
		loopback_step(lb, 10);
		while (got < cap && (n = ikcp_recv(receiver, out + got, cap - got)) >= 0) got += n;
		if (got >= len) return got;
	}
	return -1;
}
