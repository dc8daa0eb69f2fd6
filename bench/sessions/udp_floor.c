/* The floor of bench/sessions/run.sh's active rows (issue 21 item 2): what
 * the kernel's loopback UDP path alone costs for the datagrams a kcpx
 * listener moved. A measurement tool, not a test.
 *
 *   udp_floor server -port P -ratio X -size S
 *       one socket on 127.0.0.1:P; reads with recvmmsg (64 at a time,
 *       MSG_WAITFORONE), answers each datagram read with X datagrams of S
 *       bytes on average (X may be fractional: an accumulator) to its
 *       source, with sendmmsg; no other work.
 *   udp_floor client -port P -n N -rate R -size S -secs T
 *       N connected sockets send R datagrams per second in all, S bytes
 *       each, round robin, paced every millisecond, for T seconds, and read
 *       what comes back (epoll); prints "sent=.. received=.. secs=..".
 *
 * run.sh gives the server the kcpx listener's measured rates (datagrams in
 * per second, datagrams out per datagram in, mean sizes) and reads its CPU
 * from /proc, so the two servers move the same datagrams per second. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 2048

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *arg(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static void big_buffers(int fd) {
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

static int server(int port, double ratio, int size) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(port)};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    big_buffers(fd);
    if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof at) != 0) {
        perror("bind");
        return 1;
    }
    if (size < 1) size = 1;
    if (size > SLOT) size = SLOT;
    static char in[BATCH][SLOT], out[SLOT];
    static struct sockaddr_in from[BATCH], to[BATCH * 8];
    static struct mmsghdr rmsg[BATCH], smsg[BATCH * 8];
    static struct iovec riov[BATCH], siov[BATCH * 8];
    memset(out, 0x5a, sizeof out);
    for (int i = 0; i < BATCH; i++) {
        riov[i] = (struct iovec){in[i], SLOT};
        rmsg[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_iov = &riov[i], .msg_iovlen = 1};
    }
    double owed = 0;
    for (;;) {
        for (int i = 0; i < BATCH; i++) rmsg[i].msg_hdr.msg_namelen = sizeof from[i];
        int n = recvmmsg(fd, rmsg, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("recvmmsg");
            return 1;
        }
        int m = 0;
        for (int i = 0; i < n; i++) {
            for (owed += ratio; owed >= 1 && m < BATCH * 8; owed -= 1, m++) {
                to[m] = from[i];
                siov[m] = (struct iovec){out, (size_t)size};
                smsg[m].msg_hdr = (struct msghdr){.msg_name = &to[m], .msg_namelen = sizeof to[m], .msg_iov = &siov[m], .msg_iovlen = 1};
            }
        }
        for (int done = 0; done < m;) {
            int k = sendmmsg(fd, smsg + done, m - done > BATCH ? BATCH : m - done, 0);
            if (k <= 0) {
                if (k < 0 && errno == EINTR) continue;
                break; /* a full buffer: the rest is dropped, as kcpx's backlog would */
            }
            done += k;
        }
    }
}

static int client(int port, int n, double rate, int size, double secs) {
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(port)};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int *fds = calloc(n, sizeof *fds);
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&at, sizeof at) != 0) {
            perror("socket (raise ulimit -n?)");
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    if (size < 1) size = 1;
    if (size > SLOT) size = SLOT;
    static char buf[SLOT], msg[SLOT];
    memset(msg, 0x33, sizeof msg);
    long sent = 0, received = 0;
    int next = 0;
    double t0 = now_s(), t;
    while ((t = now_s() - t0) < secs) {
        long due = (long)(rate * t);
        while (sent < due) {
            (void)send(fds[next], msg, size, 0); /* a full buffer drops it, as a real sender's would */
            sent++;
            next = (next + 1) % n;
        }
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 1);
        for (int i = 0; i < k; i++)
            while (recv(fds[evs[i].data.u32], buf, sizeof buf, 0) > 0) received++;
    }
    printf("sent=%ld received=%ld secs=%.3f\n", sent, received, now_s() - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: udp_floor server|client -port P ...\n");
        return 2;
    }
    int port = atoi(arg(argc, argv, "-port", "29900"));
    int size = atoi(arg(argc, argv, "-size", "100"));
    if (strcmp(argv[1], "server") == 0) return server(port, atof(arg(argc, argv, "-ratio", "1")), size);
    if (strcmp(argv[1], "client") == 0)
        return client(port, atoi(arg(argc, argv, "-n", "1000")), atof(arg(argc, argv, "-rate", "20000")), size,
                      atof(arg(argc, argv, "-secs", "5")));
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
