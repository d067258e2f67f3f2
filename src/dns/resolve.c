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

/* What the glue needs of a state machine: the stub's and the iterative
 * resolver's calls have the same shape; these adapt them. */
struct tx {
    const uint8_t *msg;
    size_t len;
    addr_t to;
    int tcp;
};

struct machine {
    int (*next_tx)(void *m, struct tx *tx);
    int (*input)(void *m, uint64_t now, const addr_t *from, const uint8_t *msg, size_t len,
                 int via_tcp);
    void (*timeout)(void *m, uint64_t now);
    void (*fail)(void *m, uint64_t now);
    uint64_t (*deadline)(const void *m);
    int (*done)(const void *m);
    void (*free)(void *m);
    int fresh_port;            /* a new UDP socket (source port) for every send */
};

static int stub_next_tx(void *m, struct tx *tx)
{
    dns_stub_tx_t t;
    if (!dns_stub_next_tx(m, &t))
        return 0;
    *tx = (struct tx){ t.msg, t.len, *t.to, t.tcp };
    return 1;
}

static int iter_next_tx(void *m, struct tx *tx)
{
    dns_iter_tx_t t;
    if (!dns_iter_next_tx(m, &t))
        return 0;
    *tx = (struct tx){ t.msg, t.len, t.to, t.tcp };
    return 1;
}

static int stub_input(void *m, uint64_t now, const addr_t *from, const uint8_t *msg, size_t len,
                      int via_tcp)
{
    return dns_stub_input(m, now, from, msg, len, via_tcp);
}

static int iter_input(void *m, uint64_t now, const addr_t *from, const uint8_t *msg, size_t len,
                      int via_tcp)
{
    return dns_iter_input(m, now, from, msg, len, via_tcp);
}

static void stub_timeout(void *m, uint64_t now) { dns_stub_timeout(m, now); }
static void iter_timeout(void *m, uint64_t now) { dns_iter_timeout(m, now); }
static void stub_fail(void *m, uint64_t now) { dns_stub_fail(m, now); }
static void iter_fail(void *m, uint64_t now) { dns_iter_fail(m, now); }
static uint64_t stub_deadline(const void *m) { return dns_stub_deadline(m); }
static uint64_t iter_deadline(const void *m) { return dns_iter_deadline(m); }
static int stub_done(const void *m) { return dns_stub_done(m); }
static int iter_done(const void *m) { return dns_iter_done(m); }
static void stub_free(void *m) { dns_stub_free(m); }
static void iter_free(void *m) { dns_iter_free(m); }

static const struct machine stub_machine = {
    stub_next_tx, stub_input, stub_timeout, stub_fail, stub_deadline, stub_done, stub_free, 0,
};
static const struct machine iter_machine = {
    iter_next_tx, iter_input, iter_timeout, iter_fail, iter_deadline, iter_done, iter_free, 1,
};

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
    const struct machine *ops;
    void *m;                   /* the dns_stub_t or dns_iter_t */
    dns_resolve_cb cb;         /* one of the two, by ops */
    dns_resolve_iter_cb icb;
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
    r->ops->fail(r->m, loop_now(r->loop));
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
        int taken = r->ops->input(r->m, loop_now(r->loop), &c->to, c->in + 2, c->in_len - 2, 1);
        c->in_len = 0;
        if (taken) {
            pump(r); /* closes this connection if the exchange is over */
            return;
        }
        /* Ignored (another ID, say): wait for the next message. */
    }
}

static int tcp_open(dns_resolve_t *r, const struct tx *tx)
{
    struct tcp_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->r = r;
    c->to = tx->to;
    c->out[0] = (uint8_t)(tx->len >> 8);
    c->out[1] = (uint8_t)tx->len;
    memcpy(c->out + 2, tx->msg, tx->len);
    c->out_len = 2 + tx->len;
    int fd = sock_connect(&tx->to, SOCK_STREAM);
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
        if (r->ops->input(r->m, loop_now(r->loop), &from, buf, (size_t)n, 0))
            pump(r);
    }
}

static int udp_send(dns_resolve_t *r, const struct tx *tx)
{
    int family = tx->to.ss.ss_family;
    io_t *io = &r->udp[family == AF_INET6];
    if (r->ops->fresh_port)
        loop_io_close(io); /* one query at a time: nothing more is awaited on it */
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
        ssize_t n = sendto(io->fd, tx->msg, tx->len, 0, (const struct sockaddr *)&tx->to.ss,
                           tx->to.len);
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
        if (r->cb != NULL)
            r->cb(r, dns_stub_result(r->m), r->arg);
        else
            r->icb(r, dns_iter_result(r->m), r->arg);
    }
    release(r);
    r->ops->free(r->m);
    free(r);
}

static void on_timer(ptimer_t *t, void *arg)
{
    (void)t;
    dns_resolve_t *r = arg;
    if (r->state != R_RUNNING)
        return;
    r->ops->timeout(r->m, loop_now(r->loop));
    pump(r);
}

/* Sends what the stub wants sent, then waits for its deadline or hands the
 * result over. */
static void pump(dns_resolve_t *r)
{
    uint64_t now = loop_now(r->loop);
    struct tx tx;
    while (r->ops->next_tx(r->m, &tx)) {
        tcp_close(r); /* any new send ends the TCP exchange */
        int rc = tx.tcp ? tcp_open(r, &tx) : udp_send(r, &tx);
        if (rc < 0)
            r->ops->fail(r->m, now);
    }
    if (r->ops->done(r->m)) {
        r->state = R_DONE;
        release(r);
        loop_defer(r->loop, &r->defer, on_defer, r);
        return;
    }
    uint64_t dl = r->ops->deadline(r->m);
    /* Only the heap's array can fail to grow; without a timer the stub
     * would wait for ever, so it is told its send failed instead. */
    if (loop_timer_set(r->loop, &r->timer, dl > now ? dl - now : 0) < 0) {
        r->ops->fail(r->m, now);
        pump(r);
    }
}

/* A handle for machine m, started with its random bytes by the caller. */
static dns_resolve_t *handle_new(loop_t *l, const struct machine *ops, void *m, void *arg)
{
    dns_resolve_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->loop = l;
    r->ops = ops;
    r->m = m;
    r->arg = arg;
    r->state = R_RUNNING;
    r->udp[0].fd = r->udp[1].fd = -1;
    timer_init(&r->timer, on_timer, r);
    return r;
}

int dns_resolve_start(loop_t *l, const dns_conf_t *conf, slice_t name, uint16_t qtype,
                      dns_resolve_cb cb, void *arg, dns_resolve_t **out)
{
    uint8_t rnd[DNS_STUB_RANDOM_LEN];
    /* Blocks only before the kernel's pool is first seeded, at boot. */
    ssize_t got = getrandom(rnd, sizeof rnd, 0);
    if (got != (ssize_t)sizeof rnd)
        return got == -1 ? -errno : -EIO;

    dns_stub_t *st;
    int rc = dns_stub_new(&st, conf, name, qtype);
    if (rc < 0)
        return rc == DNS_E_NOSPACE ? -ENOMEM : -EINVAL;
    dns_resolve_t *r = handle_new(l, &stub_machine, st, arg);
    if (r == NULL) {
        dns_stub_free(st);
        return -ENOMEM;
    }
    r->cb = cb;
    if (out != NULL)
        *out = r;
    dns_stub_start(st, loop_now(l), rnd);
    pump(r);
    return 0;
}

int dns_resolve_start_iter(loop_t *l, const dns_iter_conf_t *conf, const dns_name_t *name,
                           uint16_t qtype, dns_resolve_iter_cb cb, void *arg, dns_resolve_t **out)
{
    uint8_t rnd[DNS_ITER_RANDOM_LEN];
    ssize_t got = getrandom(rnd, sizeof rnd, 0);
    if (got != (ssize_t)sizeof rnd)
        return got == -1 ? -errno : -EIO;
    dns_iter_t *it = dns_iter_new(conf, name, qtype);
    if (it == NULL)
        return -ENOMEM;
    dns_resolve_t *r = handle_new(l, &iter_machine, it, arg);
    if (r == NULL) {
        dns_iter_free(it);
        return -ENOMEM;
    }
    r->icb = cb;
    if (out != NULL)
        *out = r;
    dns_iter_start(it, loop_now(l), rnd);
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
    return r->ops == &stub_machine ? dns_stub_stats(r->m) : NULL;
}

size_t dns_resolve_dropped(const dns_resolve_t *r)
{
    return r->dropped;
}
