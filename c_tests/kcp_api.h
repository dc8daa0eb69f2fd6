/*
 * kcp_api.h - one table of function pointers per KCP implementation.
 *
 * The differential harness runs pristine ikcp.c (compiled with every exported
 * symbol renamed to ref_*) and libkcpx (the real ikcp_* names) in one process.
 * Rather than writing every call twice, the harness calls through this table.
 * kcp_api.c defines the table; it is compiled twice with different -D flags,
 * once per implementation, so the two tables cannot drift apart.
 */
#ifndef KCPX_C_TESTS_KCP_API_H
#define KCPX_C_TESTS_KCP_API_H

#include "ikcp.h"

typedef int (*kcp_output_fn)(const char *buf, int len, ikcpcb *kcp, void *user);
typedef void (*kcp_writelog_fn)(const char *log, ikcpcb *kcp, void *user);

struct kcp_api {
	const char *name;
	ikcpcb *(*create)(IUINT32 conv, void *user);
	void (*release)(ikcpcb *kcp);
	void (*setoutput)(ikcpcb *kcp, kcp_output_fn output);
	int (*recv)(ikcpcb *kcp, char *buffer, int len);
	int (*send)(ikcpcb *kcp, const char *buffer, int len);
	void (*update)(ikcpcb *kcp, IUINT32 current);
	IUINT32 (*check)(const ikcpcb *kcp, IUINT32 current);
	int (*input)(ikcpcb *kcp, const char *data, long size);
	void (*flush)(ikcpcb *kcp);
	int (*peeksize)(const ikcpcb *kcp);
	int (*setmtu)(ikcpcb *kcp, int mtu);
	int (*wndsize)(ikcpcb *kcp, int sndwnd, int rcvwnd);
	int (*waitsnd)(const ikcpcb *kcp);
	int (*nodelay)(ikcpcb *kcp, int nodelay, int interval, int resend, int nc);
	int (*interval)(ikcpcb *kcp, int interval);
	void (*log)(ikcpcb *kcp, int mask, const char *fmt, ...);
	void (*allocator)(void *(*new_malloc)(size_t), void (*new_free)(void *));
	IUINT32 (*getconv)(const void *ptr);
};

/* Pristine ikcp.c 1.7.1, symbols renamed ref_* at compile time. */
extern const struct kcp_api ref_api;
/* libkcpx (or, while developing the harness, the un-renamed stand-in). */
extern const struct kcp_api kcpx_api;

#endif
