/* echo_client.c - ping-pong load client for TCP echo servers (bench/echo.sh).
 *
 *   echo_client [-c CONNS] [-s SIZE] [-d SECS] [-t SETUP_SECS] HOST PORT
 *
 * Opens CONNS TCP connections (default 100) one by one, with one warm-up
 * round trip on each before the next is opened, then for SECS seconds (default 5) every connection sends a SIZE-byte
 * message (default 64), waits for the whole echo, checks it byte by byte and
 * sends the next one. All connections share one epoll loop on one thread.
 *
 * Prints one line:
 *   conns=100 size=64 secs=5.000 round_trips=N rt_per_sec=X p50_us=X p99_us=X
 * Latency is from the send() of a message's first byte to the recv() of its
 * last echoed byte. Round trips still in flight when time is up do not count.
 *
 * Exit status: 0 done, 1 error (connect failure, closed connection, wrong
 * echoed bytes, setup timeout), 2 bad usage. Built by bench/echo.sh:
 *   gcc -O2 -o build/bench/echo_client bench/echo_client.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    int idx;
    uint64_t seq;    /* number of the message in flight */
    unsigned char *msg; /* the message in flight, as sent */
    size_t sent;     /* bytes of msg sent */
    size_t rcvd;     /* bytes of the echo received and checked */
    uint64_t t0;     /* when the message's first byte was sent, ns */
    int want_out;    /* EPOLLOUT registered */
};

static size_t g_size = 64;
static int g_epfd = -1;
static unsigned char *g_rbuf;

/* Latency samples of the timed phase, in ns (saturated at UINT32_MAX). */
static uint32_t *g_lat;
static size_t g_nlat, g_caplat;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("echo_client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Message contents depend on the connection and the sequence number, so an
 * echo from the wrong connection, a stale or a reordered echo is caught. */
static void fill_msg(struct conn *c)
{
    uint32_t x = (uint32_t)c->idx * 2654435761u ^ (uint32_t)c->seq * 40503u ^ 0x9e3779b9u;
    for (size_t i = 0; i < g_size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c->msg[i] = (unsigned char)x;
    }
}

static void set_out(struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

static void send_more(struct conn *c)
{
    while (c->sent < g_size) {
        ssize_t n = send(c->fd, c->msg + c->sent, g_size - c->sent, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                set_out(c, 1);
                return;
            }
            die("connection %d: send: %s", c->idx, strerror(errno));
        }
        c->sent += (size_t)n;
    }
    set_out(c, 0);
}

static void start_msg(struct conn *c, uint64_t t)
{
    c->seq++;
    fill_msg(c);
    c->sent = 0;
    c->rcvd = 0;
    c->t0 = t;
    send_more(c);
}

/* Reads what has arrived, checks it; returns 1 when the whole echo is in. */
static int recv_more(struct conn *c)
{
    for (;;) {
        /* Never read past the message: extra bytes would be the server's
         * fault and are then caught as a mismatch of the next message. */
        size_t want = g_size - c->rcvd;
        if (want == 0)
            return 1;
        ssize_t n = recv(c->fd, g_rbuf, want, 0);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            die("connection %d: recv: %s", c->idx, strerror(errno));
        }
        if (n == 0)
            die("connection %d: closed by the server after %zu of %zu echoed bytes",
                c->idx, c->rcvd, g_size);
        if ((size_t)n > c->sent - c->rcvd)
            die("connection %d: received %zu bytes more than were sent",
                c->idx, (size_t)n - (c->sent - c->rcvd));
        if (memcmp(g_rbuf, c->msg + c->rcvd, (size_t)n) != 0) {
            size_t i = 0;
            while (g_rbuf[i] == c->msg[c->rcvd + i])
                i++;
            die("connection %d: echoed byte %zu of message %llu is 0x%02x, sent 0x%02x",
                c->idx, c->rcvd + i, (unsigned long long)c->seq, g_rbuf[i],
                c->msg[c->rcvd + i]);
        }
        c->rcvd += (size_t)n;
    }
}

static void add_sample(uint64_t ns)
{
    if (g_nlat == g_caplat) {
        g_caplat = g_caplat ? g_caplat * 2 : 1 << 20;
        g_lat = realloc(g_lat, g_caplat * sizeof *g_lat);
        if (g_lat == NULL)
            die("out of memory");
    }
    g_lat[g_nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile, in µs. */
static double pct_us(double p)
{
    if (g_nlat == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)g_nlat + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > g_nlat)
        rank = g_nlat;
    return g_lat[rank - 1] / 1000.0;
}

/* One blocking round trip on a fresh connection (socket still blocking, with
 * send and receive timeouts set). */
static void warm_up(struct conn *c, double setup_secs)
{
    c->seq++;
    fill_msg(c);
    for (size_t off = 0; off < g_size;) {
        ssize_t n = send(c->fd, c->msg + off, g_size - off, MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            die("connection %d: warm-up send: %s", c->idx,
                errno == EAGAIN ? "timed out" : strerror(errno));
        off += (size_t)n;
    }
    c->sent = g_size;
    c->rcvd = 0;
    while (c->rcvd < g_size) {
        /* recv_more() treats EAGAIN (here: SO_RCVTIMEO expired) as "not yet". */
        if (!recv_more(c))
            die("connection %d: no warm-up echo within the %.0f s setup time", c->idx,
                setup_secs);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_client [-c CONNS] [-s SIZE] [-d SECS] [-t SETUP_SECS] HOST PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int nconns = 100;
    double secs = 5, setup_secs = 30;
    int opt;
    while ((opt = getopt(argc, argv, "c:s:d:t:h")) != -1) {
        char *end;
        switch (opt) {
        case 'c':
            nconns = (int)strtol(optarg, &end, 10);
            if (*end || nconns < 1 || nconns > 100000)
                usage();
            break;
        case 's': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > (16 << 20))
                usage();
            g_size = (size_t)v;
            break;
        }
        case 'd':
            secs = strtod(optarg, &end);
            if (*end || !(secs > 0) || secs > 86400)
                usage();
            break;
        case 't':
            setup_secs = strtod(optarg, &end);
            if (*end || !(setup_secs > 0) || setup_secs > 86400)
                usage();
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 2)
        usage();
    signal(SIGPIPE, SIG_IGN);

    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    int gai = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
    if (gai != 0)
        die("%s port %s: %s", argv[optind], argv[optind + 1], gai_strerror(gai));

    g_rbuf = malloc(g_size);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *msgs = malloc((size_t)nconns * g_size);
    if (g_rbuf == NULL || conns == NULL || msgs == NULL)
        die("out of memory");
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd == -1)
        die("epoll_create1: %s", strerror(errno));

    /* Connect one by one and run one warm-up round trip on each connection
     * before opening the next (blocking, bounded by SO_SNDTIMEO/SO_RCVTIMEO
     * and the setup deadline). That way a server that accepts slowly or forks
     * per connection (socat: listen backlog 5) never sees a burst of SYNs
     * overflow its accept queue and wait out SYN retransmits, and every
     * server child is running before the clock starts. Setup is not part of
     * the measurement. */
    uint64_t setup_deadline = now_ns() + (uint64_t)(setup_secs * 1e9);
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->idx = i;
        c->msg = msgs + (size_t)i * g_size;
        c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd == -1)
            die("socket: %s", strerror(errno));
        uint64_t t = now_ns();
        if (t >= setup_deadline)
            die("only %d of %d connections set up within %.0f s", i, nconns, setup_secs);
        uint64_t left = setup_deadline - t;
        struct timeval tv = { .tv_sec = (time_t)(left / 1000000000u),
                              .tv_usec = (suseconds_t)(left % 1000000000u / 1000) };
        if (tv.tv_sec == 0 && tv.tv_usec == 0)
            tv.tv_usec = 1; /* zero would mean no timeout */
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == -1)
            die("connection %d: connect: %s", i, strerror(errno));
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        warm_up(c, setup_secs);
        struct timeval zero = { 0, 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
        int fl = fcntl(c->fd, F_GETFL);
        if (fl == -1 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) == -1)
            die("fcntl: %s", strerror(errno));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1)
            die("epoll_ctl: %s", strerror(errno));
    }
    freeaddrinfo(ai);

    struct epoll_event *evs = calloc((size_t)nconns, sizeof *evs);
    if (evs == NULL)
        die("out of memory");

    /* Timed phase. */
    uint64_t start = now_ns();
    uint64_t end = start + (uint64_t)(secs * 1e9);
    uint64_t rts = 0;
    for (int i = 0; i < nconns; i++)
        start_msg(&conns[i], start);
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end)
            break;
        int n = epoll_wait(g_epfd, evs, nconns, (int)((end - t) / 1000000u) + 1);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (evs[k].events & EPOLLOUT)
                send_more(c);
            if (recv_more(c)) {
                t = now_ns();
                if (t >= end)
                    continue; /* finished after the bell: not counted */
                add_sample(t - c->t0);
                rts++;
                start_msg(c, t);
            }
        }
    }
    double elapsed = (double)(end - start) / 1e9;
    for (int i = 0; i < nconns; i++)
        close(conns[i].fd);

    qsort(g_lat, g_nlat, sizeof *g_lat, cmp_u32);
    printf("conns=%d size=%zu secs=%.3f round_trips=%llu rt_per_sec=%.1f p50_us=%.1f p99_us=%.1f\n",
           nconns, g_size, elapsed, (unsigned long long)rts, (double)rts / elapsed, pct_us(50),
           pct_us(99));
    return 0;
}
