/*
 * ikcp_dropin.c: two KCP endpoints, "a" and "b", joined by an in-memory link
 * on a virtual clock. a sends ten messages, b echoes each one, a checks what
 * comes back. Exits 0 when all ten returned intact.
 *
 * It uses only the ikcp.h API of ikcp.c 1.7.1, fields of ikcpcb included, so
 * it compiles unchanged against kcpx's ikcp.h or upstream's and runs on
 * libkcpx. A real program puts a UDP socket where `struct link` is and
 * the system clock where `now` is.
 *
 * Build it against an installed kcpx (the rpath tells the loader where
 * libkcpx.so.1 is; without it the program does not start):
 *     cc ikcp_dropin.c -o ikcp_dropin $(pkg-config --cflags --libs kcpx) \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir kcpx)"
 * or from a checkout after `cargo build --release`, whose libkcpx.so has the
 * SONAME libkcpx.so.1, a name that only an install or this link provides:
 *     ln -sf libkcpx.so target/release/libkcpx.so.1
 *     cc examples/c/ikcp_dropin.c -Iinclude -Ltarget/release -lkcpx \
 *        -Wl,-rpath,"$PWD/target/release" -o ikcp_dropin
 */
#include <stdio.h>
#include <string.h>
#include "ikcp.h"

#define MESSAGES 10

/* Datagrams one endpoint has sent and the other has not yet received. */
struct link {
	int count;
	int len[64];
	char data[64][1500];
};

/* The output callback: kcp hands over a datagram to put on the wire. */
static int link_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct link *link = (struct link *)user;
	(void)kcp;
	if (link->count == 64 || len > (int)sizeof link->data[0])
		return -1; /* dropped, like a full network queue: kcp resends */
	memcpy(link->data[link->count], buf, (size_t)len);
	link->len[link->count++] = len;
	return 0;
}

/* The receive side: every datagram that arrived goes to ikcp_input of the
 * session its conversation id names (a server would look it up). */
static void link_deliver(struct link *link, ikcpcb *to)
{
	int i;
	for (i = 0; i < link->count; i++)
		if (ikcp_getconv(link->data[i]) == to->conv)
			ikcp_input(to, link->data[i], link->len[i]);
	link->count = 0;
}

static struct link a_to_b, b_to_a;

int main(void)
{
	/* Both ends of a session use the same conversation id. The user pointer
	 * is passed to the output callback: here, the link this end writes to. */
	ikcpcb *a = ikcp_create(0x11223344, &a_to_b);
	ikcpcb *b = ikcp_create(0x11223344, &b_to_a);
	IUINT32 now = 0;
	int sent = 0, echoed = 0, n;
	char buf[256];

	ikcp_setoutput(a, link_output);
	ikcp_setoutput(b, link_output);
	/* Fast mode of upstream's README: nodelay, 10 ms interval, fast
	 * resend after 2 duplicate ACKs, no congestion window. */
	ikcp_nodelay(a, 1, 10, 2, 1);
	ikcp_nodelay(b, 1, 10, 2, 1);
	a->rx_minrto = 10; /* ikcpcb fields are public, as in ikcp.c */
	ikcp_wndsize(a, 128, 128);
	ikcp_wndsize(b, 128, 128);

	while (echoed < MESSAGES && now < 10000) {
		if (sent < MESSAGES) {
			n = snprintf(buf, sizeof buf, "message %d", sent);
			if (ikcp_send(a, buf, n) < 0)
				return 1;
			sent++;
		}
		ikcp_update(a, now);
		ikcp_update(b, now);
		link_deliver(&a_to_b, b);
		while ((n = ikcp_recv(b, buf, (int)sizeof buf)) >= 0)
			ikcp_send(b, buf, n); /* echo */
		ikcp_flush(b);
		link_deliver(&b_to_a, a);
		while ((n = ikcp_recv(a, buf, (int)sizeof buf - 1)) >= 0) {
			char want[32];
			buf[n] = '\0';
			snprintf(want, sizeof want, "message %d", echoed);
			if (strcmp(buf, want) != 0) {
				fprintf(stderr, "ikcp_dropin: got \"%s\", expected \"%s\"\n", buf, want);
				return 1;
			}
			echoed++;
		}
		now += 10;
	}
	printf("ikcp_dropin: %d of %d messages echoed in %u ms (conv 0x%x, mss %u)\n",
	       echoed, MESSAGES, (unsigned)now, (unsigned)a->conv, (unsigned)a->mss);
	ikcp_release(a);
	ikcp_release(b);
	return echoed == MESSAGES ? 0 : 1;
}
