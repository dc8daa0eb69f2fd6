/*
 * A program built against the wrong ikcp.h, or one that never sets the
 * output callback, must make libkcpx abort at once with a message naming the
 * cause, never corrupt memory or hang. tests/c_harness.rs builds
 * this file in several variants and expects each run to die of SIGABRT with
 * the message on stderr:
 *
 *   -DKCPX_LAYOUT_2X    struct IKCPCB as in upstream's ikcp.h 2.x (296 bytes:
 *                       ackedlen, ccops and congest added, so logmask, output
 *                       and writelog move to 272, 280 and 288);
 *   -DKCPX_LAYOUT_PRE17 struct IKCPCB of ikcp.h copies older than 1.7 (no
 *                       fastlimit: output at 248, writelog at 256; 264 bytes),
 *                       as vendored by xtaci/libkcp;
 *   neither             kcpx's own include/ikcp.h, with kcp->output never set.
 *
 * The layouts are written here from the published field lists; no upstream
 * header is used. Only the fields a program writes matter, but every field is
 * declared so that the offsets are the real ones (checked below).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if defined(KCPX_LAYOUT_2X) || defined(KCPX_LAYOUT_PRE17)
typedef unsigned int IUINT32;
typedef int IINT32;
struct IQUEUEHEAD {
	struct IQUEUEHEAD *next, *prev;
};
struct IKCPOPS;
struct IKCPCB {
	IUINT32 conv, mtu, mss, state;
	IUINT32 snd_una, snd_nxt, rcv_nxt;
	IUINT32 ts_recent, ts_lastack, ssthresh;
	IINT32 rx_rttval, rx_srtt, rx_rto, rx_minrto;
	IUINT32 snd_wnd, rcv_wnd, rmt_wnd, cwnd, probe;
	IUINT32 current, interval, ts_flush, xmit;
	IUINT32 nrcv_buf, nsnd_buf;
	IUINT32 nrcv_que, nsnd_que;
	IUINT32 nodelay, updated;
	IUINT32 ts_probe, probe_wait;
	IUINT32 dead_link, incr;
	struct IQUEUEHEAD snd_queue;
	struct IQUEUEHEAD rcv_queue;
	struct IQUEUEHEAD snd_buf;
	struct IQUEUEHEAD rcv_buf;
	IUINT32 *acklist;
	IUINT32 ackcount;
	IUINT32 ackblock;
#ifdef KCPX_LAYOUT_2X
	IUINT32 ackedlen;
#endif
	void *user;
	char *buffer;
	int fastresend;
#ifdef KCPX_LAYOUT_2X
	int fastlimit;
#endif
	int nocwnd, stream;
#ifdef KCPX_LAYOUT_2X
	const struct IKCPOPS *ccops;
	void *congest;
#endif
	int logmask;
	int (*output)(const char *buf, int len, struct IKCPCB *kcp, void *user);
	void (*writelog)(const char *log, struct IKCPCB *kcp, void *user);
};
typedef struct IKCPCB ikcpcb;

#ifdef KCPX_LAYOUT_2X
_Static_assert(offsetof(struct IKCPCB, user) == 224, "2.x user");
_Static_assert(offsetof(struct IKCPCB, stream) == 252, "2.x stream");
_Static_assert(offsetof(struct IKCPCB, logmask) == 272, "2.x logmask");
_Static_assert(offsetof(struct IKCPCB, output) == 280, "2.x output");
_Static_assert(offsetof(struct IKCPCB, writelog) == 288, "2.x writelog");
_Static_assert(sizeof(struct IKCPCB) == 296, "2.x size");
#else
_Static_assert(offsetof(struct IKCPCB, stream) == 240, "pre-1.7 stream");
_Static_assert(offsetof(struct IKCPCB, output) == 248, "pre-1.7 output");
_Static_assert(sizeof(struct IKCPCB) == 264, "pre-1.7 size");
#endif

/* The 1.7.1 functions both headers declare the same way. */
ikcpcb *ikcp_create(IUINT32 conv, void *user);
void ikcp_release(ikcpcb *kcp);
int ikcp_send(ikcpcb *kcp, const char *buffer, int len);
int ikcp_recv(ikcpcb *kcp, char *buffer, int len);
void ikcp_update(ikcpcb *kcp, IUINT32 current);
int ikcp_wndsize(ikcpcb *kcp, int sndwnd, int rcvwnd);
int ikcp_nodelay(ikcpcb *kcp, int nodelay, int interval, int resend, int nc);
#else
#include "ikcp.h"
#endif

static int outputs;

static int count_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	(void)buf;
	(void)kcp;
	(void)user;
	outputs++;
	return len;
}

int main(void)
{
	ikcpcb *kcp = ikcp_create(0x11223344, NULL);
	IUINT32 now;
	if (kcp == NULL) {
		printf("ikcp_create failed\n");
		return 1;
	}
	/* What upstream's test.cpp and README do, field writes included. */
#if defined(KCPX_LAYOUT_2X) || defined(KCPX_LAYOUT_PRE17)
	kcp->output = count_output;
#else
	(void)count_output; /* the mistake under test: output never set */
#endif
	printf("configuring\n");
	fflush(stdout);
	ikcp_wndsize(kcp, 128, 128);
	ikcp_nodelay(kcp, 1, 10, 2, 1);
	kcp->rx_minrto = 10;
	kcp->stream = 0;
	ikcp_send(kcp, "hello", 5);
	printf("sending\n");
	fflush(stdout);
	for (now = 0; now < 1000; now += 10) ikcp_update(kcp, now);
	/* Only reached if libkcpx failed to notice. */
	printf("NOT CAUGHT: %d datagrams sent\n", outputs);
	ikcp_release(kcp);
	return 0;
}
