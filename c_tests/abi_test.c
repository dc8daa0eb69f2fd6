/*
 * abi_test.c - struct IKCPCB layout and direct-field-write usage, against libkcpx.
 *
 * Built twice by tests/c_harness.rs: once with the pristine ikcp.h 1.7.1 and
 * once with kcpx's generated include/ikcp.h. Each build
 *   1. proves at compile time that every field of struct IKCPCB (and struct
 *      IKCPSEG) has the offset, size and type of ikcp.c 1.7.1 on LP64, and that
 *      every exported function has the upstream signature;
 *   2. with --layout, prints the layout measured by this header (the harness
 *      compares the two builds' outputs line by line);
 *   3. otherwise runs a two-endpoint exchange configured the way upstream's
 *      README does it: by writing struct fields directly (kcp->output = ...,
 *      kcp->rx_minrto = 10, kcp->stream = 1, ...), and checks that libkcpx
 *      really reads those fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ikcp.h"
#include "check.h"
#include "loopback.h"

/* Exported by ikcp.c (and libkcpx) but not declared by ikcp.h. */
int ikcp_interval(ikcpcb *kcp, int interval);

typedef int (*output_fn)(const char *buf, int len, struct IKCPCB *kcp, void *user);
typedef void (*writelog_fn)(const char *log, struct IKCPCB *kcp, void *user);
typedef struct IQUEUEHEAD queue_head;
typedef IUINT32 *u32_ptr;
typedef void *void_ptr;
typedef char *char_ptr;

#if UINTPTR_MAX != 0xFFFFFFFFFFFFFFFFu
#error "abi_test.c encodes the LP64 layout (x86_64, aarch64); i386 has no padding (sizeof 212)"
#endif

/* name, offset, type: ikcp.c 1.7.1 on x86_64 (docs/ikcp-1.7.1.md). */
#define IKCPCB_LAYOUT(X)                                                                        \
	X(conv, 0, IUINT32) X(mtu, 4, IUINT32) X(mss, 8, IUINT32) X(state, 12, IUINT32)          \
	X(snd_una, 16, IUINT32) X(snd_nxt, 20, IUINT32) X(rcv_nxt, 24, IUINT32)                    \
	X(ts_recent, 28, IUINT32) X(ts_lastack, 32, IUINT32) X(ssthresh, 36, IUINT32)              \
	X(rx_rttval, 40, IINT32) X(rx_srtt, 44, IINT32) X(rx_rto, 48, IINT32) X(rx_minrto, 52, IINT32) \
	X(snd_wnd, 56, IUINT32) X(rcv_wnd, 60, IUINT32) X(rmt_wnd, 64, IUINT32) X(cwnd, 68, IUINT32) \
	X(probe, 72, IUINT32) X(current, 76, IUINT32) X(interval, 80, IUINT32)                     \
	X(ts_flush, 84, IUINT32) X(xmit, 88, IUINT32) X(nrcv_buf, 92, IUINT32)                      \
	X(nsnd_buf, 96, IUINT32) X(nrcv_que, 100, IUINT32) X(nsnd_que, 104, IUINT32)                \
	X(nodelay, 108, IUINT32) X(updated, 112, IUINT32) X(ts_probe, 116, IUINT32)                 \
	X(probe_wait, 120, IUINT32) X(dead_link, 124, IUINT32) X(incr, 128, IUINT32)                \
	X(snd_queue, 136, queue_head) X(rcv_queue, 152, queue_head) X(snd_buf, 168, queue_head)     \
	X(rcv_buf, 184, queue_head) X(acklist, 200, u32_ptr) X(ackcount, 208, IUINT32)             \
	X(ackblock, 212, IUINT32) X(user, 216, void_ptr) X(buffer, 224, char_ptr)                  \
	X(fastresend, 232, int) X(fastlimit, 236, int) X(nocwnd, 240, int) X(stream, 244, int)     \
	X(logmask, 248, int) X(output, 256, output_fn) X(writelog, 264, writelog_fn)

#define IKCPSEG_LAYOUT(X)                                                                      \
	X(node, 0, queue_head) X(conv, 16, IUINT32) X(cmd, 20, IUINT32) X(frg, 24, IUINT32)       \
	X(wnd, 28, IUINT32) X(ts, 32, IUINT32) X(sn, 36, IUINT32) X(una, 40, IUINT32)             \
	X(len, 44, IUINT32) X(resendts, 48, IUINT32) X(rto, 52, IUINT32) X(fastack, 56, IUINT32)  \
	X(xmit, 60, IUINT32)

/* Offset, size and exact type (via _Generic) of every field, checked at compile time. */
#define ASSERT_FIELD(S, name, off, type)                                                          \
	_Static_assert(offsetof(struct S, name) == (off), #S "." #name " offset");                 \
	_Static_assert(sizeof(((struct S *)0)->name) == sizeof(type), #S "." #name " size");       \
	_Static_assert(_Generic(((struct S *)0)->name, type: 1, default: 0), #S "." #name " type");
#define ASSERT_CB(name, off, type) ASSERT_FIELD(IKCPCB, name, off, type)
#define ASSERT_SEG(name, off, type) ASSERT_FIELD(IKCPSEG, name, off, type)
IKCPCB_LAYOUT(ASSERT_CB)
IKCPSEG_LAYOUT(ASSERT_SEG)
_Static_assert(sizeof(struct IKCPCB) == 272, "sizeof(struct IKCPCB)");
_Static_assert(_Alignof(struct IKCPCB) == 8, "alignof(struct IKCPCB)");
_Static_assert(sizeof(struct IKCPSEG) == 72, "sizeof(struct IKCPSEG)");
_Static_assert(offsetof(struct IKCPSEG, data) == 64, "IKCPSEG.data offset");
_Static_assert(sizeof(IUINT32) == 4 && sizeof(IINT32) == 4 && sizeof(IUINT16) == 2 && sizeof(IINT64) == 8,
	       "integer typedefs");
_Static_assert(IKCP_LOG_OUTPUT == 1 && IKCP_LOG_INPUT == 2 && IKCP_LOG_SEND == 4 && IKCP_LOG_RECV == 8 &&
		       IKCP_LOG_IN_DATA == 16 && IKCP_LOG_IN_ACK == 32 && IKCP_LOG_IN_PROBE == 64 &&
		       IKCP_LOG_IN_WINS == 128 && IKCP_LOG_OUT_DATA == 256 && IKCP_LOG_OUT_ACK == 512 &&
		       IKCP_LOG_OUT_PROBE == 1024 && IKCP_LOG_OUT_WINS == 2048,
	       "IKCP_LOG_* masks");

/* Every export with its exact upstream signature (a mismatch is an error under -Werror). */
static ikcpcb *(*const sig_create)(IUINT32, void *) = ikcp_create;
static void (*const sig_release)(ikcpcb *) = ikcp_release;
static void (*const sig_setoutput)(ikcpcb *, int (*)(const char *, int, ikcpcb *, void *)) = ikcp_setoutput;
static int (*const sig_recv)(ikcpcb *, char *, int) = ikcp_recv;
static int (*const sig_send)(ikcpcb *, const char *, int) = ikcp_send;
static void (*const sig_update)(ikcpcb *, IUINT32) = ikcp_update;
static IUINT32 (*const sig_check)(const ikcpcb *, IUINT32) = ikcp_check;
static int (*const sig_input)(ikcpcb *, const char *, long) = ikcp_input;
static void (*const sig_flush)(ikcpcb *) = ikcp_flush;
static int (*const sig_peeksize)(const ikcpcb *) = ikcp_peeksize;
static int (*const sig_setmtu)(ikcpcb *, int) = ikcp_setmtu;
static int (*const sig_wndsize)(ikcpcb *, int, int) = ikcp_wndsize;
static int (*const sig_waitsnd)(const ikcpcb *) = ikcp_waitsnd;
static int (*const sig_nodelay)(ikcpcb *, int, int, int, int) = ikcp_nodelay;
static int (*const sig_interval)(ikcpcb *, int) = ikcp_interval;
static void (*const sig_log)(ikcpcb *, int, const char *, ...) = ikcp_log;
static void (*const sig_allocator)(void *(*)(size_t), void (*)(void *)) = ikcp_allocator;
static IUINT32 (*const sig_getconv)(const void *) = ikcp_getconv;

/* The linker must resolve all of them: a missing export fails the build. */
static int all_exports_linked(void)
{
	const void *p[] = {
		(const void *)&sig_create,   (const void *)&sig_release,  (const void *)&sig_setoutput,
		(const void *)&sig_recv,     (const void *)&sig_send,     (const void *)&sig_update,
		(const void *)&sig_check,    (const void *)&sig_input,    (const void *)&sig_flush,
		(const void *)&sig_peeksize, (const void *)&sig_setmtu,   (const void *)&sig_wndsize,
		(const void *)&sig_waitsnd,  (const void *)&sig_nodelay,  (const void *)&sig_interval,
		(const void *)&sig_log,      (const void *)&sig_allocator, (const void *)&sig_getconv,
	};
	size_t i;
	int ok = 1;
	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) ok &= *(void *const *)p[i] != NULL;
	return ok;
}

/* ------------------------------------------------------------------ */
/* --layout                                                            */
/* ------------------------------------------------------------------ */

#define PRINT_CB(name, off, type) \
	printf("IKCPCB.%-12s offset %3zu size %zu\n", #name, offsetof(struct IKCPCB, name), sizeof(((struct IKCPCB *)0)->name));
#define PRINT_SEG(name, off, type) \
	printf("IKCPSEG.%-11s offset %3zu size %zu\n", #name, offsetof(struct IKCPSEG, name), sizeof(((struct IKCPSEG *)0)->name));

static void print_layout(void)
{
	IKCPCB_LAYOUT(PRINT_CB)
	printf("IKCPCB sizeof %zu alignof %zu\n", sizeof(struct IKCPCB), _Alignof(struct IKCPCB));
	IKCPSEG_LAYOUT(PRINT_SEG)
	printf("IKCPSEG.data offset %zu sizeof %zu\n", offsetof(struct IKCPSEG, data), sizeof(struct IKCPSEG));
}

/* ------------------------------------------------------------------ */
/* exchange configured by direct field writes                          */
/* ------------------------------------------------------------------ */

struct observed {
	int push_segments, fragmented_pushes, log_lines, output_log_lines;
	void *last_user[2];
	IUINT32 conv_seen;
};

static IUINT32 le32(const unsigned char *p)
{
	return (IUINT32)p[0] | (IUINT32)p[1] << 8 | (IUINT32)p[2] << 16 | (IUINT32)p[3] << 24;
}

/* Looks at every datagram: which user pointer came with it, and the frg of each PUSH. */
static void tap(int from, const char *buf, int len, void *user, void *ctx)
{
	struct observed *o = ctx;
	const unsigned char *p = (const unsigned char *)buf;
	o->last_user[from] = user;
	o->conv_seen = ikcp_getconv(buf);
	while (len >= 24) {
		IUINT32 seglen = le32(p + 20);
		if (p[4] == 81 && from == 0) {
			o->push_segments++;
			o->fragmented_pushes += p[5] != 0;
		}
		len -= 24 + (int)seglen;
		p += 24 + seglen;
	}
}

static struct observed *log_sink;

static void writelog(const char *log, ikcpcb *kcp, void *user)
{
	(void)kcp;
	(void)user;
	log_sink->log_lines++;
	log_sink->output_log_lines += strncmp(log, "[RO]", 4) == 0;
}

static void fill(char *buf, int len, unsigned seed)
{
	int i;
	for (i = 0; i < len; i++) buf[i] = (char)(seed * 31u + (unsigned)i * 7u + ((unsigned)i >> 8));
}

static void exchange_with_field_writes(void)
{
	static char msg[5000], got[6000];
	struct loopback lb;
	struct observed seen;
	int user_a = 0, user_b = 0, moved_user = 0, n;
	ikcpcb *a = ikcp_create(0x31415926, &user_a), *b = ikcp_create(0x31415926, &user_b);
	CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL) return;
	memset(&seen, 0, sizeof(seen));
	log_sink = &seen;
	loopback_init(&lb, a, b, 1000);
	lb.tap = tap;
	lb.tap_ctx = &seen;

	/* The upstream README way: no ikcp_setoutput / ikcp_nodelay, plain stores. */
	a->output = loopback_output;
	b->output = loopback_output;
	a->rx_minrto = 10;
	b->rx_minrto = 10;
	a->interval = 10;
	b->interval = 10;
	a->fastresend = 2;
	a->nocwnd = 1;
	a->stream = 1;
	b->stream = 1;
	a->writelog = writelog;
	a->logmask = IKCP_LOG_OUTPUT;

	fill(msg, (int)sizeof(msg), 1);
	n = loopback_transfer(&lb, 0, msg, (int)sizeof(msg), got, (int)sizeof(got), 200);
	CHECK_EQ(n, sizeof(msg));
	CHECK(n == (int)sizeof(msg) && memcmp(msg, got, sizeof(msg)) == 0);
	loopback_settle(&lb); /* let the ACKs come back (they carry the RTT samples) */
	CHECK(lb.datagrams > 0);                /* kcp->output was read from the struct */
	CHECK_EQ(seen.conv_seen, 0x31415926);
	CHECK(seen.push_segments >= 4);         /* 5000 bytes need 4 segments of mss 1376 */
	CHECK_EQ(seen.fragmented_pushes, 0);    /* kcp->stream = 1: every frg is 0 */
	CHECK(a->rx_rto < 100);                 /* kcp->rx_minrto = 10 lifted the 100 ms floor */
	CHECK(seen.output_log_lines > 0);       /* kcp->writelog + kcp->logmask */
	CHECK(seen.last_user[0] == &user_a);

	/* A new user pointer is passed to the next callbacks. */
	a->user = &moved_user;
	a->stream = 0;
	b->stream = 0;
	seen.push_segments = seen.fragmented_pushes = 0;
	fill(msg, 3000, 2);
	n = loopback_transfer(&lb, 0, msg, 3000, got, (int)sizeof(got), 200);
	CHECK_EQ(n, 3000);
	CHECK(n == 3000 && memcmp(msg, got, 3000) == 0);
	CHECK(seen.last_user[0] == &moved_user);
	CHECK(seen.fragmented_pushes > 0);      /* message mode again: frg 2, 1 */

	/* The reply direction, and the exported-but-undeclared ikcp_interval. */
	CHECK_EQ(ikcp_interval(b, 1), 0);
	CHECK_EQ(b->interval, 10);
	fill(msg, 100, 3);
	n = loopback_transfer(&lb, 1, msg, 100, got, (int)sizeof(got), 200);
	CHECK_EQ(n, 100);
	CHECK(seen.last_user[1] == &user_b);
	loopback_settle(&lb);
	CHECK_EQ(ikcp_waitsnd(a), 0);
	CHECK_EQ(ikcp_waitsnd(b), 0);

	loopback_free(&lb);
	ikcp_release(a);
	ikcp_release(b);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--layout") == 0) {
		print_layout();
		return 0;
	}
	CHECK(all_exports_linked());
	exchange_with_field_writes();
	return check_exit_code("abi_test");
}
