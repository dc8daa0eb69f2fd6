/*
 * mutant_ikcp.c - pristine ikcp.c with one injected fault, for the harness's
 * self-test.
 *
 * A differential test that cannot fail is worthless: tests/c_harness.rs links
 * this (under the real ikcp_* names) in place of libkcpx and requires the
 * differential harness to report a divergence. The fault is chosen at run time:
 *   KCPX_MUTANT=memcpy:N  flip the lowest bit of the first byte that ikcp.c's
 *                         Nth memcpy writes (header encoding/decoding, payload
 *                         copies in send/recv/input/flush);
 *   KCPX_MUTANT=log:N     append '!' to the Nth log line ikcp.c formats.
 * Without KCPX_MUTANT it behaves exactly like pristine ikcp.c.
 *
 * ikcp.c is not copied: it is #included from the fetched pristine directory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long mutant_memcpy_at, mutant_log_at, memcpy_calls, log_calls;
static int mutant_parsed;

static void mutant_parse(void)
{
	const char *spec = getenv("KCPX_MUTANT");
	if (mutant_parsed) return;
	mutant_parsed = 1;
	if (spec == NULL) return;
	if (strncmp(spec, "memcpy:", 7) == 0) mutant_memcpy_at = strtoul(spec + 7, NULL, 10);
	else if (strncmp(spec, "log:", 4) == 0) mutant_log_at = strtoul(spec + 4, NULL, 10);
}

static void *mutant_memcpy(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	mutant_parse();
	if (++memcpy_calls == mutant_memcpy_at && n > 0) ((unsigned char *)dst)[0] ^= 1;
	return dst;
}

static int mutant_vsprintf(char *buf, const char *fmt, va_list ap)
{
	int n = vsprintf(buf, fmt, ap);
	mutant_parse();
	if (++log_calls == mutant_log_at && n >= 0 && n < 1000) {
		buf[n++] = '!';
		buf[n] = '\0';
	}
	return n;
}

/* string.h and stdio.h are already included, so these only reach ikcp.c's calls. */
#define memcpy(dst, src, n) mutant_memcpy(dst, src, n)
#define vsprintf(buf, fmt, ap) mutant_vsprintf(buf, fmt, ap)

#include "ikcp.c"
