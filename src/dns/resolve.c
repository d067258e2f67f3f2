#include "dns/resolve.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"

enum { R_RUNNING, R_DONE, R_CLOSED };

/* One TCP exchange. It has its own allocation, freed at a safe point, so
 * that an event for a connection closed earlier in the same batch finds a
 * dead io instead of the next connection. */
struct tcp_conn {
    io_t io;
    loop_defer_t defer;
    dns_resolve_t *r;          /* NULL once closed */
    addr_t to;
    int connected;
    uint8_t out[2 + DNS_STUB_QUERY_MAX];
    size_t out_len, out_off;
    uint8_t *in;               /* 2-byte length, then the message */
    size_t in_len, in_cap;
};

struct dns_resolve {
    loop_t *loop;
    dns_stub_t *st;
    dns_resolve_cb cb;
    void *arg;
    int state;
    io_t udp[2];               /* AF_INET, AF_INET6; fd -1 until needed */
    struct tcp_conn *tcp;
    ptimer_t timer;
    loop_defer_t defer;
    size_t dropped;
};

static void pump(dns_resolve_t *r);

/* ------------------------------------------------------------- TCP */

static void tcp_free(void *arg)
{
    struct tcp_conn *c = arg;
    free(c->in);
    free(c);
}

static void tcp_close(dns_resolve_t *r)
{
    struct tcp_conn *c = r->tcp;
    if (c == NULL)
        return;
    r->tcp = NULL;
    c->r = NULL;
    loop_io_close(&c->io);
    loop_defer(r->loop, &c->defer, tcp_free, c);
}

/* The connection cannot bring the reply: the stub goes on without it. */
static void tcp_failed(dns_resolve_t *r)
{
    tcp_close(r);
    dns_stub_fail(r->st, loop_now(r->loop));
    pump(r);
}

/* Returns 1 when a whole message is in c->in, 0 when more is needed, -1
 * on EOF or error. */
static int tcp_read(struct tcp_conn *c)
{
    for (;;) {
        size_t need = c->in_len < 2 ? 2 : 2u + ((size_t)c->in[0] << 8 | c->in[1]);
        if (c->in_len >= 2 && need == 2)
            return -1; /* a zero-length message */
        if (c->in_len == need)
            return 1;
        if (c->in_cap < need) {
            uint8_t *p = realloc(c->in, need);
            if (p == NULL)
                return -1;
            c->in = p;
            c->in_cap = need;
        }
        ssize_t n = read(c->io.fd, c->in + c->in_len, need - c->in_len);
        if (n == 0)
            return -1;
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->in_len += (size_t)n;
    }
}

static void on_tcp(io_t *io, uint32_t events)
{
    struct tcp_conn *c = io->arg;
    dns_resolve_t *r = c->r;
    if (r == NULL || r->state != R_RUNNING)
        return;
    if (!c->connected) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (sock_connect_result(io->fd) < 0) {
            tcp_failed(r);
            return;
        }
        c->connected = 1;
    }
    while (c->out_off < c->out_len) {
        ssize_t n = write(io->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            tcp_failed(r);
            return;
        }
        c->out_off += (size_t)n;
    }
    for (;;) {
        int rc = tcp_read(c);
        if (rc == 0)
            return;
        if (rc < 0) {
            tcp_failed(r);
            return;
        }
        int taken = dns_stub_input(r->st, loop_now(r->loop), &c->to, c->in + 2,
                                   c->in_len - 2, 1);
        c->in_len = 0;
        if (taken) {
            pump(r); /* closes this connection if the exchange is over */
            return;
        }
        /* Ignored (another ID, say): wait for the next message. */
    }
}

static int tcp_open(dns_resolve_t *r, const dns_stub_tx_t *tx)
{
    struct tcp_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->r = r;
    c->to = *tx->to;
    c->out[0] = (uint8_t)(tx->len >> 8);
    c->out[1] = (uint8_t)tx->len;
    memcpy(c->out + 2, tx->msg, tx->len);
    c->out_len = 2 + tx->len;
    int fd = sock_connect(tx->to, SOCK_STREAM);
    if (fd < 0) {
        free(c);
        return fd;
    }
    int rc = loop_io_add(r->loop, &c->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_tcp, c);
    if (rc < 0) {
        close(fd);
        free(c);
        return rc;
    }
    r->tcp = c;
    return 0;
}

/* ------------------------------------------------------------- UDP */

static void on_udp(io_t *io, uint32_t events)
{
    (void)events;
    dns_resolve_t *r = io->arg;
    uint8_t buf[DNS_RESOLVE_UDP_RX];
    while (r->state == R_RUNNING) {
        addr_t from;
        from.len = sizeof from.ss;
        ssize_t n = recvfrom(io->fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&from.ss,
                             &from.len);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            break; /* EAGAIN; an ICMP error (the socket is not connected: none come) */
        }
        if ((size_t)n > sizeof buf) {
            r->dropped++;
            continue;
        }
        if (dns_stub_input(r->st, loop_now(r->loop), &from, buf, (size_t)n, 0))
            pump(r);
    }
}

static int udp_send(dns_resolve_t *r, const dns_stub_tx_t *tx)
{
    int family = tx->to->ss.ss_family;
    io_t *io = &r->udp[family == AF_INET6];
    if (io->fd < 0) {
        addr_t any;
        memset(&any, 0, sizeof any);
        any.ss.ss_family = (sa_family_t)family;
        any.len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        int fd = sock_listen(&any, SOCK_DGRAM, 0); /* port 0: the kernel picks at random */
        if (fd < 0)
            return fd;
        int rc = loop_io_add(r->loop, io, fd, EPOLLIN | EPOLLET, on_udp, r);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    for (;;) {
        ssize_t n = sendto(io->fd, tx->msg, tx->len, 0, (const struct sockaddr *)&tx->to->ss,
                           tx->to->len);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* ------------------------------------------------------------ driving */

static void release(dns_resolve_t *r)
{
    tcp_close(r);
    for (int i = 0; i < 2; i++)
        loop_io_close(&r->udp[i]);
    loop_timer_cancel(r->loop, &r->timer);
}

/* At the end of the iteration: delivers the result, then frees. */
static void on_defer(void *arg)
{
    dns_resolve_t *r = arg;
    if (r->state == R_DONE) {
        r->state = R_CLOSED;
        release(r);
        r->cb(r, dns_stub_result(r->st), r->arg);
    }
    release(r);
    dns_stub_free(r->st);
    free(r);
}

static void on_timer(ptimer_t *t, void *arg)
{
    (void)t;
    dns_resolve_t *r = arg;
    if (r->state != R_RUNNING)
        return;
    dns_stub_timeout(r->st, loop_now(r->loop));
    pump(r);
}

/* Sends what the stub wants sent, then waits for its deadline or hands the
 * result over. */
static void pump(dns_resolve_t *r)
{
    uint64_t now = loop_now(r->loop);
    dns_stub_tx_t tx;
    while (dns_stub_next_tx(r->st, &tx)) {
        tcp_close(r); /* any new send ends the TCP exchange */
        int rc = tx.tcp ? tcp_open(r, &tx) : udp_send(r, &tx);
        if (rc < 0)
            dns_stub_fail(r->st, now);
    }
    if (dns_stub_done(r->st)) {
        r->state = R_DONE;
        release(r);
        loop_defer(r->loop, &r->defer, on_defer, r);
        return;
    }
    uint64_t dl = dns_stub_deadline(r->st);
    /* Only the heap's array can fail to grow; without a timer the stub
     * would wait for ever, so it is told its send failed instead. */
    if (loop_timer_set(r->loop, &r->timer, dl > now ? dl - now : 0) < 0) {
        dns_stub_fail(r->st, now);
        pump(r);
    }
}

int dns_resolve_start(loop_t *l, const dns_conf_t *conf, slice_t name, uint16_t qtype,
                      dns_resolve_cb cb, void *arg, dns_resolve_t **out)
{
    uint8_t rnd[DNS_STUB_RANDOM_LEN];
    /* Blocks only before the kernel's pool is first seeded, at boot. */
    ssize_t got = getrandom(rnd, sizeof rnd, 0);
    if (got != (ssize_t)sizeof rnd)
        return got == -1 ? -errno : -EIO;

    dns_resolve_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    int rc = dns_stub_new(&r->st, conf, name, qtype);
    if (rc < 0) {
        free(r);
        return rc == DNS_E_NOSPACE ? -ENOMEM : -EINVAL;
    }
    r->loop = l;
    r->cb = cb;
    r->arg = arg;
    r->state = R_RUNNING;
    r->udp[0].fd = r->udp[1].fd = -1;
    timer_init(&r->timer, on_timer, r);
    if (out != NULL)
        *out = r;
    dns_stub_start(r->st, loop_now(l), rnd);
    pump(r);
    return 0;
}

void dns_resolve_cancel(dns_resolve_t *r)
{
    if (r->state == R_CLOSED)
        return;
    int queued = r->state == R_DONE;
    r->state = R_CLOSED;
    release(r);
    if (!queued)
        loop_defer(r->loop, &r->defer, on_defer, r);
}

const dns_stub_stats_t *dns_resolve_stats(const dns_resolve_t *r)
{
    return dns_stub_stats(r->st);
}

size_t dns_resolve_dropped(const dns_resolve_t *r)
{
    return r->dropped;
}
