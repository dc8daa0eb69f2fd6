/*
 * reentry.c - re-entrant callbacks and clock steps, pristine ikcp.c against
 * libkcpx. Each scenario runs once per implementation; every
 * datagram either emits (tagged with the nesting depth of the flush that sent
 * it), every return value and the public fields at the end must be identical.
 *
 *   nested-flush-data  output calls ikcp_flush while a flush sends data
 *   nested-update-acks output calls ikcp_update while a flush sends ACKs
 *   nested-flush-log   writelog calls ikcp_flush in the middle of a flush
 *   conv-in-output     output writes kcp->conv: the flush keeps its conv
 *   clock-step-2^31    update jumps ~2^31 ms: retransmission as ikcp.c's
 *                      wrapping per-segment compare decides
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp_api.h"

#define LOG_CAP (1 << 20)

struct world {
	const struct kcp_api *api;
	unsigned char log[LOG_CAP];
	size_t len;
	int depth;
	int calls;
	int reenter_at; /* output call number that re-enters, 0 = none */
	int scenario;
	ikcpcb *kcp;
};

static void record(struct world *w, const void *p, size_t n)
{
	if (w->len + n > LOG_CAP) {
		fprintf(stderr, "reentry: log full\n");
		exit(2);
	}
	memcpy(w->log + w->len, p, n);
	w->len += n;
}

static void record_int(struct world *w, long v)
{
	record(w, &v, sizeof v);
}

enum { NESTED_FLUSH_DATA, NESTED_UPDATE_ACKS, NESTED_FLUSH_LOG, CONV_IN_OUTPUT, CLOCK_STEP, SCENARIOS };
static const char *names[SCENARIOS] = {"nested-flush-data", "nested-update-acks", "nested-flush-log",
				       "conv-in-output", "clock-step-2^31"};

static int output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct world *w = user;
	w->calls++;
	record_int(w, 0x0d0d0000 + w->depth);
	record_int(w, len);
	record(w, buf, (size_t)len);
	if (w->calls == w->reenter_at) {
		w->depth++;
		switch (w->scenario) {
		case NESTED_FLUSH_DATA:
			w->api->flush(kcp);
			break;
		case NESTED_UPDATE_ACKS:
			w->api->update(kcp, kcp->current + 1000);
			break;
		case CONV_IN_OUTPUT:
			kcp->conv = 0x77777777;
			break;
		default:
			break;
		}
		w->depth--;
	}
	return 0;
}

static void writelog(const char *line, ikcpcb *kcp, void *user)
{
	struct world *w = user;
	record(w, "L:", 2);
	record(w, line, strlen(line));
	if (w->scenario == NESTED_FLUSH_LOG && ++w->calls == w->reenter_at) {
		w->depth++;
		w->api->flush(kcp);
		w->depth--;
	}
}

static void fields(struct world *w)
{
	ikcpcb *k = w->kcp;
	long v[] = {k->conv, k->snd_una, k->snd_nxt, k->rcv_nxt, k->cwnd, k->ssthresh, k->xmit, k->nsnd_buf,
		    k->nsnd_que, k->nrcv_buf, k->nrcv_que, k->ackcount, k->probe, k->ts_flush, k->incr};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		record_int(w, v[i]);
	record_int(w, (long)w->api->check(k, k->current));
}

/* A PUSH segment for `conv`, sn `sn`, `len` payload bytes of `fill`. */
static int push_segment(char *out, IUINT32 conv, IUINT32 sn, IUINT32 ts, int len, int fill)
{
	unsigned char *p = (unsigned char *)out;
	IUINT32 words[] = {conv, 0, ts, sn, 0, (IUINT32)len};
	memcpy(p, &words[0], 4);
	p[4] = 81; /* IKCP_CMD_PUSH */
	p[5] = 0;
	p[6] = 128;
	p[7] = 0;
	memcpy(p + 8, &words[2], 4);
	memcpy(p + 12, &words[3], 4);
	memcpy(p + 16, &words[4], 4);
	memcpy(p + 20, &words[5], 4);
	memset(p + 24, fill, (size_t)len);
	return 24 + len;
}

static void run(struct world *w, int scenario)
{
	const struct kcp_api *api = w->api;
	char msg[4000], dgram[1600];
	w->len = 0;
	w->depth = 0;
	w->calls = 0;
	w->scenario = scenario;
	w->reenter_at = 0;
	ikcpcb *k = w->kcp = api->create(0x11223344, w);
	api->setoutput(k, output);
	api->nodelay(k, 0, 10, 0, 1); /* no congestion window: all data leaves at once */
	record_int(w, api->setmtu(k, 200));
	memset(msg, 'm', sizeof msg);
	switch (scenario) {
	case NESTED_FLUSH_DATA:
	case NESTED_FLUSH_LOG:
	case CONV_IN_OUTPUT:
		if (scenario == NESTED_FLUSH_LOG) {
			k->writelog = writelog;
			k->logmask = 1; /* IKCP_LOG_OUTPUT: one line per datagram */
		}
		api->update(k, 0);
		for (int i = 0; i < 6; i++)
			record_int(w, api->send(k, msg, 150 + i));
		/* ACKs too, before the data: 20 of them, 7 per datagram */
		for (int i = 0; i < 20; i++) {
			int n = push_segment(dgram, 0x11223344, (IUINT32)i, 5, 10, i);
			record_int(w, api->input(k, dgram, n));
		}
		w->reenter_at = scenario == CONV_IN_OUTPUT ? 1 : (scenario == NESTED_FLUSH_LOG ? 2 : 4);
		api->update(k, 10);
		w->reenter_at = 0;
		api->update(k, 20);
		api->update(k, 400);
		break;
	case NESTED_UPDATE_ACKS:
		api->update(k, 0);
		for (int i = 0; i < 30; i++) {
			int n = push_segment(dgram, 0x11223344, (IUINT32)i, 5, 10, i);
			record_int(w, api->input(k, dgram, n));
		}
		record_int(w, api->send(k, msg, 300));
		w->reenter_at = 2;
		api->update(k, 10);
		w->reenter_at = 0;
		api->update(k, 2000);
		break;
	case CLOCK_STEP: {
		api->update(k, 0);
		record_int(w, api->send(k, msg, 100));
		api->update(k, 10); /* segment A: resendts 10 + 200 + 25 */
		record_int(w, api->send(k, msg, 100));
		api->update(k, 60); /* segment B: resendts 60 + 225; both covered by one scan */
		api->update(k, 70);
		/* A now looks 2^31 ms in the past, which wraps into the future; B
		 * (50 ms later) is 2^31 - 30 ms in the past: due. */
		IUINT32 jump = 235u + 0x80000000u + 20u;
		api->update(k, jump);
		record_int(w, (long)api->check(k, jump));
		api->update(k, jump + 10);
		api->update(k, jump + 100000);
		break;
	}
	}
	fields(w);
	api->release(k);
}

static struct world worlds[2];

int main(void)
{
	int failed = 0;
	worlds[0].api = &ref_api;
	worlds[1].api = &kcpx_api;
	for (int s = 0; s < SCENARIOS; s++) {
		run(&worlds[0], s);
		run(&worlds[1], s);
		size_t n = worlds[0].len < worlds[1].len ? worlds[0].len : worlds[1].len;
		size_t at = 0;
		while (at < n && worlds[0].log[at] == worlds[1].log[at])
			at++;
		if (worlds[0].len != worlds[1].len || at != n) {
			printf("reentry: DIVERGENCE in %s at byte %zu (ikcp.c wrote %zu bytes, kcpx %zu)\n", names[s], at,
			       worlds[0].len, worlds[1].len);
			failed = 1;
		} else {
			printf("reentry: %s identical (%zu bytes of datagrams, results and fields)\n", names[s],
			       worlds[0].len);
		}
	}
	if (failed)
		return 1;
	printf("reentry: OK\n");
	return 0;
}
