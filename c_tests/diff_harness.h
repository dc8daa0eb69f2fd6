/*
 * diff_harness.h - shared types of the differential harness.
 *
 * diff_gen.c draws operations (and owns the simulated network);
 * diff_harness.c applies each operation to both worlds and compares them.
 */
#ifndef KCPX_C_TESTS_DIFF_HARNESS_H
#define KCPX_C_TESTS_DIFF_HARNESS_H

#include <stddef.h>
#include "ikcp.h"
#include "kcp_api.h"
#include "diff_trace.h"
#include "prng.h"

/*
 * The largest message the harness can send or receive: 130 fragments of the
 * largest mss it ever sets (mtu 65535). Send data comes from a pattern buffer
 * this big and every recv buffer lives at the end of an arena this big.
 */
#define HARNESS_MAX_MTU 65535
#define HARNESS_ARENA (130u * 65536u)

enum op_kind {
	OP_RESET,      /* release both endpoints (if any) and create new ones */
	OP_UPDATE,
	OP_FLUSH,
	OP_CHECK,
	OP_SEND,
	OP_RECV,
	OP_DELIVER,    /* ikcp_input of datagrams taken from the simulated network */
	OP_INPUT_RAW,  /* ikcp_input of corrupted, forged or garbage bytes */
	OP_SETMTU,
	OP_WNDSIZE,
	OP_NODELAY,
	OP_INTERVAL,
	OP_FIELD,      /* direct write of a public struct field, as C users do */
	OP_SETOUTPUT,
	OP_LOG,        /* ikcp_log called directly */
	OP_GETCONV,
	OP_KINDS
};

/*
 * Public fields a C user may write directly (OP_FIELD): the tunables, the
 * callbacks, and a few a program might set instead of calling the API
 * (conv, the windows, nodelay).
 */
enum field_id {
	FIELD_RX_MINRTO, FIELD_FASTRESEND, FIELD_FASTLIMIT, FIELD_NOCWND, FIELD_STREAM,
	FIELD_INTERVAL, FIELD_LOGMASK, FIELD_DEAD_LINK, FIELD_USER, FIELD_OUTPUT, FIELD_WRITELOG,
	FIELD_CONV, FIELD_SND_WND, FIELD_RCV_WND, FIELD_NODELAY,
	FIELD_IDS
};

struct op {
	enum op_kind kind;
	int ep;               /* endpoint 0 (A) or 1 (B); -1 passes a NULL kcp (wndsize) */
	long long a, b, c, d; /* kind-specific arguments, see describe_op() */
	char *data;           /* send/input/getconv bytes, or NULL */
	long size;            /* send len / input size */
	int owns_data;        /* data is a malloc'd exact-size copy (so ASan sees overreads) */
	int reenter_send;     /* the output callback makes one re-entrant ikcp_send */
	IUINT32 probe_time;   /* extra ikcp_check time used when observing */
	const char *note;     /* how the input bytes were made (for reports) */
};

/* A world: one implementation, two endpoints talking through the shared network. */
struct world {
	const struct kcp_api *api;
	ikcpcb *kcp[2];
	struct trace trace;
	char *rx_arena;
	int reenter_send;     /* copied from the op being run */
	int reentered;        /* the re-entrant send was already made during this op */
};

struct datagram {
	char *data;
	size_t len;
};

struct link_queue {
	struct datagram *items;
	size_t count, cap, bytes;
};

/* The generator: PRNG, virtual clock, network and this seed's operation mix. */
struct sim {
	struct prng rng;
	IUINT32 now;
	struct link_queue link[2]; /* link[i]: datagrams sent by endpoint i, not yet delivered */
	unsigned weight[OP_KINDS];
	unsigned loss_pct, dup_pct;
	unsigned jump_permille;    /* updates that jump the clock by more than 10 s */
	size_t link_capacity;      /* datagrams a link holds before the oldest fall off */
	unsigned burst_left;       /* deliveries left in the current burst */
	int burst_ep;              /* endpoint receiving the burst */
	const char *pattern;       /* HARNESS_ARENA bytes of send data */
};

void sim_init(struct sim *s, unsigned long long seed, const char *pattern);
void sim_free(struct sim *s);

/* Draws the next operation; reads (never writes) the reference world's state. */
void gen_op(struct sim *s, const struct world *ref, long long index, struct op *op);
void op_free(struct op *op);

/* Puts the datagrams endpoint `from` emitted into the network (with loss/duplication). */
void sim_absorb(struct sim *s, int from, const char *data, size_t len);

/* Room for one operation description. */
#define DESC_MAX 256

/* One line describing the operation (for reports and the crash handler). */
void describe_op(const struct op *op, char *buf, size_t size);

const char *field_name(enum field_id f);

#endif
