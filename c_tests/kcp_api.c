/*
 * kcp_api.c - fills a struct kcp_api with the ikcp_* functions in scope.
 *
 * Compiled twice by tests/c_harness.rs:
 *   -DKCP_API_TABLE=ref_api  plus the -Dikcp_create=ref_ikcp_create ... renames
 *                            used for pristine ikcp.c, so every ikcp_* below
 *                            names the reference implementation;
 *   -DKCP_API_TABLE=kcpx_api without renames, so they name libkcpx.
 */
#include "kcp_api.h"

#ifndef KCP_API_TABLE
#error "define KCP_API_TABLE (ref_api or kcpx_api)"
#endif

#define KCP_API_STR2(x) #x
#define KCP_API_STR(x) KCP_API_STR2(x)

/* Exported by ikcp.c (and libkcpx) but not declared by ikcp.h. */
int ikcp_interval(ikcpcb *kcp, int interval);

const struct kcp_api KCP_API_TABLE = {
	.name = KCP_API_STR(KCP_API_TABLE),
	.create = ikcp_create,
	.release = ikcp_release,
	.setoutput = ikcp_setoutput,
	.recv = ikcp_recv,
	.send = ikcp_send,
	.update = ikcp_update,
	.check = ikcp_check,
	.input = ikcp_input,
	.flush = ikcp_flush,
	.peeksize = ikcp_peeksize,
	.setmtu = ikcp_setmtu,
	.wndsize = ikcp_wndsize,
	.waitsnd = ikcp_waitsnd,
	.nodelay = ikcp_nodelay,
	.interval = ikcp_interval,
	.log = ikcp_log,
	.allocator = ikcp_allocator,
	.getconv = ikcp_getconv,
};
