/*
 * latency_sim.c - upstream's test.cpp/test.h latency simulation, rewritten in C
 * on a virtual clock so that it is deterministic.
 *
 * Two endpoints (conv 0x11223344, wndsize 128/128) talk through a simulated
 * network: 10% round-trip loss as exactly 5 of every 100 packets per direction
 * (drawn from a shuffled bag), one-way delay 30 + rand() % 32 ms, FIFO
 * delivery, at most 1000 packets in flight per direction. kcp1 sends 8 bytes
 * (sequence number + timestamp) every 20 ms, kcp2 echoes them; after 1000
 * round trips the average/maximum RTT and kcp1's datagram count are printed.
 * The clock starts at 1,000,000 ms for each mode and every 1 ms "sleep"
 * advances it by one; rand() is glibc's, reimplemented below (seed 1, never
 * reseeded between modes) so the numbers do not depend on the C library.
 *
 * The order of every call follows test.cpp exactly; pristine ikcp.c 1.7.1
 * must print EXPECTED below.
 *
 * usage: latency_sim [--label NAME] [--check]
 *   --label NAME  prefix each result line with NAME (for side-by-side demos)
 *   --check       exit 1 unless the table equals ikcp.c 1.7.1's
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ikcp.h"

#define CLOCK_START 1000000u
#define MAX_PACKET 2000
#define NMAX 1000 /* LatencySimulator's nmax: packets in flight per direction */
#define ROUND_TRIPS 1000

struct result {
	int avgrtt, maxrtt, tx;
};

static const char *const mode_name[3] = {"default", "normal", "fast"};

/* What pristine ikcp.c 1.7.1 prints (see docs/ikcp-1.7.1.md). */
static const struct result EXPECTED[3] = {
	{4447, 8352, 331},
	{151, 478, 1279},
	{138, 373, 1347},
};

/* ------------------------------------------------------------------ */
/* glibc rand() (TYPE_3 additive feedback generator), seed 1           */
/* ------------------------------------------------------------------ */

static uint32_t rand_state[34];
static unsigned rand_pos;

static void glibc_srand(uint32_t seed)
{
	int32_t r[344];
	int i;
	r[0] = (int32_t)seed;
	for (i = 1; i < 31; i++) {
		/* 16807 * r[i-1] % (2^31 - 1), as glibc computes it (Schrage's method) */
		int32_t hi = r[i - 1] / 127773, lo = r[i - 1] % 127773;
		int32_t word = 16807 * lo - 2836 * hi;
		r[i] = word < 0 ? word + 2147483647 : word;
	}
	for (i = 31; i < 34; i++) r[i] = r[i - 31];
	for (i = 34; i < 344; i++) r[i] = (int32_t)((uint32_t)r[i - 31] + (uint32_t)r[i - 3]);
	for (i = 0; i < 34; i++) rand_state[i] = (uint32_t)r[310 + i];
	rand_pos = 0;
}

static int glibc_rand(void)
{
	uint32_t v = rand_state[(rand_pos + 34 - 31) % 34] + rand_state[(rand_pos + 34 - 3) % 34];
	rand_state[rand_pos % 34] = v;
	rand_pos = (rand_pos + 1) % 34;
	return (int)(v >> 1);
}

/* ------------------------------------------------------------------ */
/* virtual clock                                                       */
/* ------------------------------------------------------------------ */

static IUINT32 vclock;

static IUINT32 iclock(void) { return vclock; }
static void isleep(IUINT32 ms) { vclock += ms; }

/* ------------------------------------------------------------------ */
/* the network (test.h's LatencySimulator)                             */
/* ------------------------------------------------------------------ */

/* test.h's Random: draws 0..99 without replacement, refilling the bag when empty. */
struct bag {
	int seeds[100];
	int size;
};

static int bag_draw(struct bag *b)
{
	int i, x;
	if (b->size == 0) {
		for (i = 0; i < 100; i++) b->seeds[i] = i;
		b->size = 100;
	}
	i = glibc_rand() % b->size;
	x = b->seeds[i];
	b->seeds[i] = b->seeds[--b->size];
	return x;
}

struct packet {
	IUINT32 ts;
	int size;
	char data[MAX_PACKET];
};

/* One direction: a FIFO ring of packets and its loss bag. */
struct tunnel {
	struct packet ring[NMAX];
	int head, count;
	struct bag loss;
};

struct network {
	struct tunnel dir[2]; /* dir[0]: sent by peer 0 (kcp1), dir[1]: sent by peer 1 */
	int lostrate, rttmin, rttmax;
	int tx1;
};

static struct network net;

static void net_init(int lostrate, int rttmin, int rttmax)
{
	memset(&net, 0, sizeof(net));
	net.lostrate = lostrate / 2; /* round-trip figures, halved per direction */
	net.rttmin = rttmin / 2;
	net.rttmax = rttmax / 2;
}

static void net_send(int peer, const char *data, int size)
{
	struct tunnel *t = &net.dir[peer];
	struct packet *p;
	IUINT32 delay;
	if (peer == 0) net.tx1++;
	if (bag_draw(&t->loss) < net.lostrate) return;
	if (t->count >= NMAX || size > MAX_PACKET) return;
	delay = (IUINT32)net.rttmin;
	if (net.rttmax > net.rttmin) delay += (IUINT32)(glibc_rand() % (net.rttmax - net.rttmin));
	p = &t->ring[(t->head + t->count) % NMAX];
	p->ts = iclock() + delay;
	p->size = size;
	memcpy(p->data, data, (size_t)size);
	t->count++;
}

/* Receives what the other peer sent: -1 nothing, -2 not yet due, else the size. */
static int net_recv(int peer, char *data, int maxsize)
{
	struct tunnel *t = &net.dir[1 - peer];
	struct packet *p = &t->ring[t->head];
	if (t->count == 0) return -1;
	if (iclock() < p->ts) return -2;
	if (maxsize < p->size) return -3;
	memcpy(data, p->data, (size_t)p->size);
	t->head = (t->head + 1) % NMAX;
	t->count--;
	return p->size;
}

static int udp_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	(void)kcp;
	net_send((int)(intptr_t)user, buf, len);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the test (test.cpp's test(mode))                                    */
/* ------------------------------------------------------------------ */

static void configure(ikcpcb *kcp1, ikcpcb *kcp2, int mode)
{
	ikcp_wndsize(kcp1, 128, 128);
	ikcp_wndsize(kcp2, 128, 128);
	if (mode == 0) {
		ikcp_nodelay(kcp1, 0, 10, 0, 0);
		ikcp_nodelay(kcp2, 0, 10, 0, 0);
	} else if (mode == 1) {
		ikcp_nodelay(kcp1, 0, 10, 0, 1);
		ikcp_nodelay(kcp2, 0, 10, 0, 1);
	} else {
		ikcp_nodelay(kcp1, 2, 10, 2, 1);
		ikcp_nodelay(kcp2, 2, 10, 2, 1);
		kcp1->rx_minrto = 10; /* direct field writes, as test.cpp does */
		kcp1->fastresend = 1;
	}
}

static void put_u32(char *p, IUINT32 v) { memcpy(p, &v, 4); }
static IUINT32 get_u32(const char *p) { IUINT32 v; memcpy(&v, p, 4); return v; }

/* Feeds every due packet from the network into kcp. */
static void drain_network(int peer, ikcpcb *kcp, char *buffer)
{
	int hr;
	while ((hr = net_recv(peer, buffer, MAX_PACKET)) >= 0) ikcp_input(kcp, buffer, hr);
}

static int run_mode(int mode, struct result *out)
{
	ikcpcb *kcp1, *kcp2;
	IUINT32 current, slap, index = 0, next = 0;
	IINT64 sumrtt = 0;
	int count = 0, maxrtt = 0, hr;
	char buffer[MAX_PACKET];

	vclock = CLOCK_START;
	net_init(10, 60, 125);
	kcp1 = ikcp_create(0x11223344, (void *)0);
	kcp2 = ikcp_create(0x11223344, (void *)1);
	if (kcp1 == NULL || kcp2 == NULL) return -1;
	kcp1->output = udp_output;
	kcp2->output = udp_output;
	current = iclock();
	slap = current + 20;
	configure(kcp1, kcp2, mode);

	while (next <= ROUND_TRIPS) {
		isleep(1);
		current = iclock();
		ikcp_update(kcp1, iclock());
		ikcp_update(kcp2, iclock());
		for (; current >= slap; slap += 20) {
			put_u32(buffer, index++);
			put_u32(buffer + 4, current);
			ikcp_send(kcp1, buffer, 8);
		}
		drain_network(1, kcp2, buffer);
		drain_network(0, kcp1, buffer);
		while ((hr = ikcp_recv(kcp2, buffer, 10)) >= 0) ikcp_send(kcp2, buffer, hr); /* echo */
		while ((hr = ikcp_recv(kcp1, buffer, 10)) >= 0) {
			IUINT32 sn = get_u32(buffer), rtt = current - get_u32(buffer + 4);
			if (sn != next) {
				printf("ERROR sn %d<->%d\n", count, (int)next);
				return -1;
			}
			next++;
			sumrtt += rtt;
			count++;
			if (rtt > (IUINT32)maxrtt) maxrtt = (int)rtt;
		}
	}
	ikcp_release(kcp1);
	ikcp_release(kcp2);
	out->avgrtt = (int)(sumrtt / count);
	out->maxrtt = maxrtt;
	out->tx = net.tx1;
	return 0;
}

static int same(const struct result *a, const struct result *b)
{
	return a->avgrtt == b->avgrtt && a->maxrtt == b->maxrtt && a->tx == b->tx;
}

int main(int argc, char **argv)
{
	const char *label = NULL;
	int check = 0, mode, i, ok = 1;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) label = argv[++i];
		else if (strcmp(argv[i], "--check") == 0) check = 1;
		else {
			fprintf(stderr, "usage: %s [--label NAME] [--check]\n", argv[0]);
			return 2;
		}
	}
	glibc_srand(1);
	for (mode = 0; mode < 3; mode++) {
		struct result r;
		if (run_mode(mode, &r) != 0) return 1;
		printf("%s%s%-7s mode: avgrtt=%-4d maxrtt=%-4d tx=%d\n", label ? label : "", label ? ": " : "",
		       mode_name[mode], r.avgrtt, r.maxrtt, r.tx);
		if (check && !same(&r, &EXPECTED[mode])) {
			printf("  expected (ikcp.c 1.7.1): avgrtt=%d maxrtt=%d tx=%d\n", EXPECTED[mode].avgrtt,
			       EXPECTED[mode].maxrtt, EXPECTED[mode].tx);
			ok = 0;
		}
	}
	return ok ? 0 : 1;
}
