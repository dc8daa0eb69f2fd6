/*
 * ikcp_log: the one exported function that is C-variadic, which stable Rust
 * cannot define. Same behaviour as ikcp.c 1.7.1: format only when
 * (mask & kcp->logmask) != 0 and kcp->writelog is set, into a 1024-byte
 * buffer, then call writelog(line, kcp, kcp->user).
 * Differences, both for safety: a NULL kcp or fmt is ignored, and a line
 * longer than the buffer is truncated instead of overflowing it.
 */
#include <stdarg.h>
#include <stdio.h>
#include "ikcp.h"

void ikcp_log(ikcpcb *kcp, int mask, const char *fmt, ...)
{
	char buffer[1024];
	va_list args;
	if (kcp == NULL || fmt == NULL) return;
	if ((mask & kcp->logmask) == 0 || kcp->writelog == NULL) return;
	va_start(args, fmt);
	vsnprintf(buffer, sizeof buffer, fmt, args);
	va_end(args);
	kcp->writelog(buffer, kcp, kcp->user);
}
