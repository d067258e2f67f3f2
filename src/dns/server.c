/* server.c - the recursive DNS server's sockets, connections and pending
 * resolutions on worker loops (see server.h). */
#include "dns/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/workers.h"
#include "dns/resolve.h"

struct worker;

/* A TCP client. Freed once closed and no resolution still points at it. */
struct tconn {
    io_t io;
    struct worker *w;
    struct tconn *prev, *next;
    addr_t peer;               /* for the address list */
    ptimer_t idle;
    loop_defer_t defer;
    uint8_t *in;               /* 2-byte length, then the message */
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    unsigned npending;
    int closed;
};

/* A client waiting for a resolution. */
struct client {
    struct client *next;
    dns_query_t q;
    addr_t peer;               /* UDP: where the answer goes */
    struct tconn *conn;        /* TCP: the connection it came on */
};

/* A question being resolved, for every client that asked it meanwhile
 * (identical questions share one resolution, as in unbound). */
struct pending {
    struct worker *w;
    struct pending *prev, *next;
    dns_name_t qname;
    uint16_t qtype;
    struct client *clients;
    unsigned nclients;
    dns_resolve_t *r;
};

/* A batch of datagrams: read with one recvmmsg, answered with one
 * sendmmsg (a UDP reply never exceeds DNS_EDNS_PAYLOAD, see answer.h). */
struct udp_batch {
    struct mmsghdr rmsg[DNS_SERVER_UDP_BATCH], smsg[DNS_SERVER_UDP_BATCH];
    struct iovec riov[DNS_SERVER_UDP_BATCH], siov[DNS_SERVER_UDP_BATCH];
    addr_t rpeer[DNS_SERVER_UDP_BATCH], speer[DNS_SERVER_UDP_BATCH];
    uint8_t rbuf[DNS_SERVER_UDP_BATCH][DNS_SERVER_UDP_RX];
    uint8_t sbuf[DNS_SERVER_UDP_BATCH][DNS_EDNS_PAYLOAD];
    unsigned nsend;
    int open;                  /* replies are queued, not sent */
};

struct worker {
    const dns_server_conf_t *c;
    loop_t *loop;
    io_t udp, tcp;
    struct tconn conns;        /* sentinel */
    unsigned nconns;
    struct pending pend;       /* sentinel */
    unsigned inflight;
    uint8_t in[DNS_MSG_MAX];
    uint8_t out[DNS_MSG_MAX];
    struct udp_batch b;
};

struct server {
    const dns_server_conf_t *c;
    int *fds;                  /* per worker: UDP, TCP */
    struct worker **w;
};

/* ---------------------------------------------------------- delivering */

static void tconn_close(struct tconn *t);

static void tconn_free(void *arg)
{
    struct tconn *t = arg;
    free(t->in);
    free(t->out);
    free(t);
}

/* Writes what is queued. Returns 0, or -1 when the connection was closed. */
static int tconn_flush(struct tconn *t)
{
    while (t->out_off < t->out_len) {
        ssize_t n = write(t->io.fd, t->out + t->out_off, t->out_len - t->out_off);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return loop_io_mod(&t->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0 ? -1 : 0;
            tconn_close(t);
            return -1;
        }
        t->out_off += (size_t)n;
    }
    t->out_off = t->out_len = 0;
    return 0;
}

static void tconn_send(struct tconn *t, const uint8_t *msg, size_t len)
{
    if (t->closed)
        return;
    size_t need = t->out_len + 2 + len;
    if (need - t->out_off > DNS_SERVER_TCP_OUT_MAX) {
        tconn_close(t);            /* the client does not read */
        return;
    }
    if (need > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(t->out, cap);
        if (p == NULL) {
            tconn_close(t);
            return;
        }
        t->out = p;
        t->out_cap = cap;
    }
    t->out[t->out_len] = (uint8_t)(len >> 8);
    t->out[t->out_len + 1] = (uint8_t)len;
    memcpy(t->out + t->out_len + 2, msg, len);
    t->out_len = need;
    tconn_flush(t);
}

static void udp_send(struct worker *w, const addr_t *peer, const uint8_t *msg, size_t len)
{
    struct udp_batch *b = &w->b;
    if (b->open && len <= sizeof b->sbuf[0]) {
        unsigned k = b->nsend++;
        memcpy(b->sbuf[k], msg, len);
        b->speer[k] = *peer;
        b->siov[k] = (struct iovec){ b->sbuf[k], len };
        memset(&b->smsg[k], 0, sizeof b->smsg[k]);
        b->smsg[k].msg_hdr.msg_name = &b->speer[k].ss;
        b->smsg[k].msg_hdr.msg_namelen = b->speer[k].len;
        b->smsg[k].msg_hdr.msg_iov = &b->siov[k];
        b->smsg[k].msg_hdr.msg_iovlen = 1;
        return;
    }
    /* A full socket buffer drops the answer, as a network would. */
    while (sendto(w->udp.fd, msg, len, MSG_DONTWAIT, (const struct sockaddr *)&peer->ss,
                  peer->len) == -1 && errno == EINTR)
        ;
}

/* To the TCP client when conn is set, else by UDP to peer. */
static void deliver(struct worker *w, const addr_t *peer, struct tconn *conn, const uint8_t *msg,
                    size_t len)
{
    if (conn != NULL)
        tconn_send(conn, msg, len);
    else
        udp_send(w, peer, msg, len);
}

/* --------------------------------------------------------- resolutions */

static void pending_end(struct pending *p)
{
    struct worker *w = p->w;
    p->prev->next = p->next;
    p->next->prev = p->prev;
    while (p->clients != NULL) {
        struct client *c = p->clients;
        p->clients = c->next;
        w->inflight--;
        if (c->conn != NULL && --c->conn->npending == 0 && c->conn->closed)
            loop_defer(w->loop, &c->conn->defer, tconn_free, c->conn);
        free(c);
    }
    free(p);
}

/* Answers every client of p from the resolved message (NULL: SERVFAIL). */
static void answer_with(struct pending *p, const uint8_t *msg, size_t len)
{
    struct worker *w = p->w;
    for (struct client *c = p->clients; c != NULL; c = c->next) {
        size_t out_len;
        if (msg == NULL || dns_answer_build(&c->q, msg, len, UINT32_MAX, w->out, sizeof w->out,
                                            &out_len) < 0) {
            if (dns_answer_error(&c->q, DNS_R_SERVFAIL, w->out, sizeof w->out, &out_len) < 0)
                continue;
        }
        deliver(w, &c->peer, c->conn, w->out, out_len);
    }
}

static void on_iter(dns_resolve_t *r, const dns_iter_result_t *res, void *arg)
{
    (void)r;
    struct pending *p = arg;
    answer_with(p, res->msg, res->len);
    pending_end(p);
}

static void on_stub(dns_resolve_t *r, const dns_stub_result_t *res, void *arg)
{
    (void)r;
    struct pending *p = arg;
    struct worker *w = p->w;
    uint8_t *clean = NULL;
    size_t len = 0;
    if (res->reply != NULL && (res->rcode == DNS_R_NOERROR || res->rcode == DNS_R_NXDOMAIN) &&
        (clean = malloc(DNS_MSG_MAX)) != NULL &&
        dns_answer_clean(res->reply, res->reply_len, clean, DNS_MSG_MAX, &len) == 0) {
        if (w->c->cache != NULL)
            dns_cache_put(w->c->cache, &p->qname, p->qtype, DNS_C_IN, clean, len,
                          loop_now(w->loop) / 1000u);
        answer_with(p, clean, len);
    } else {
        answer_with(p, NULL, 0);
    }
    free(clean);
    pending_end(p);
}

static struct pending *pending_find(struct worker *w, const dns_query_t *q)
{
    for (struct pending *p = w->pend.next; p != &w->pend; p = p->next)
        if (p->qtype == q->qtype && dns_name_eq(&p->qname, &q->qname))
            return p;
    return NULL;
}

static void resolve(struct worker *w, const dns_query_t *q, const addr_t *peer,
                    struct tconn *conn)
{
    size_t len;
    struct pending *p = pending_find(w, q);
    int fresh = p == NULL;
    struct client *c = NULL;
    if (w->inflight >= w->c->max_inflight || (!fresh && p->nclients >= DNS_SERVER_WAITERS_MAX) ||
        (fresh && (p = calloc(1, sizeof *p)) == NULL) || (c = calloc(1, sizeof *c)) == NULL) {
        if (fresh)
            free(p);
        if (dns_answer_error(q, DNS_R_SERVFAIL, w->out, sizeof w->out, &len) == 0)
            deliver(w, peer, conn, w->out, len);
        return;
    }
    c->q = *q;
    if (peer != NULL)
        c->peer = *peer;
    c->conn = conn;
    if (conn != NULL)
        conn->npending++;
    w->inflight++;
    c->next = p->clients;
    p->clients = c;
    p->nclients++;
    if (!fresh)
        return;                /* the same question is on its way: wait for it */
    p->w = w;
    p->qname = q->qname;
    p->qtype = q->qtype;
    p->next = w->pend.next;
    p->prev = &w->pend;
    w->pend.next->prev = p;
    w->pend.next = p;
    int rc;
    if (w->c->iter != NULL) {
        rc = dns_resolve_start_iter(w->loop, w->c->iter, &q->qname, q->qtype, on_iter, p, &p->r);
    } else {
        char name[DNS_NAME_STR_MAX];
        rc = dns_name_format(&q->qname, name, sizeof name);
        if (rc >= 0)
            rc = dns_resolve_start(w->loop, w->c->forward, slice_cstr(name), q->qtype, on_stub, p,
                                   &p->r);
    }
    if (rc < 0) {
        answer_with(p, NULL, 0);
        pending_end(p);
    }
}

/* One request from a client. */
static void request(struct worker *w, const uint8_t *msg, size_t len, const addr_t *peer,
                    struct tconn *conn)
{
    dns_query_t q;
    size_t out_len;
    int allowed = dns_acl_allows(&w->c->acl, peer);
    int act = dns_answer_request(msg, len, conn != NULL, allowed, &q, w->out, sizeof w->out,
                                 &out_len);
    if (act == DNS_ANSWER_RESOLVE) {
        if (dns_answer_cached(w->c->cache, loop_now(w->loop) / 1000u, &q, w->out, sizeof w->out,
                              &out_len)) {
            act = DNS_ANSWER_REPLY;
        } else if (!(q.flags & DNS_F_RD)) {
            /* Not asked to recurse, and nothing in the cache. */
            if (dns_answer_error(&q, DNS_R_REFUSED, w->out, sizeof w->out, &out_len) < 0)
                return;
            act = DNS_ANSWER_REPLY;
        } else {
            resolve(w, &q, peer, conn);
            return;
        }
    }
    if (act == DNS_ANSWER_REPLY)
        deliver(w, peer, conn, w->out, out_len);
}

/* ---------------------------------------------------------------- UDP */

/* Sends the queued replies; what the socket buffer cannot take is
 * dropped, as a network would. */
static void udp_flush(struct worker *w)
{
    struct udp_batch *b = &w->b;
    unsigned off = 0;
    while (off < b->nsend) {
        int n = sendmmsg(w->udp.fd, b->smsg + off, b->nsend - off, MSG_DONTWAIT);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            off++;             /* skip the one that failed */
        else
            off += (unsigned)n;
    }
    b->nsend = 0;
}

static void on_udp(io_t *io, uint32_t events)
{
    (void)events;
    struct worker *w = io->arg;
    struct udp_batch *b = &w->b;
    for (unsigned i = 0; i < DNS_SERVER_UDP_BATCH; i++) {
        b->riov[i] = (struct iovec){ b->rbuf[i], sizeof b->rbuf[i] };
        memset(&b->rmsg[i], 0, sizeof b->rmsg[i]);
        b->rmsg[i].msg_hdr.msg_name = &b->rpeer[i].ss;
        b->rmsg[i].msg_hdr.msg_namelen = sizeof b->rpeer[i].ss;
        b->rmsg[i].msg_hdr.msg_iov = &b->riov[i];
        b->rmsg[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(io->fd, b->rmsg, DNS_SERVER_UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return;                /* EAGAIN, EINTR: the level-triggered event comes back */
    b->open = 1;
    for (int i = 0; i < n; i++) {
        b->rpeer[i].len = b->rmsg[i].msg_hdr.msg_namelen;
        /* A request longer than the buffer is cut: it cannot decode, and
         * gets FORMERR. */
        request(w, b->rbuf[i], b->rmsg[i].msg_len, &b->rpeer[i], NULL);
    }
    b->open = 0;
    udp_flush(w);
}

/* ---------------------------------------------------------------- TCP */

static void tconn_close(struct tconn *t)
{
    if (t->closed)
        return;
    t->closed = 1;
    struct worker *w = t->w;
    loop_io_close(&t->io);
    loop_timer_cancel(w->loop, &t->idle);
    t->prev->next = t->next;
    t->next->prev = t->prev;
    w->nconns--;
    if (t->npending == 0)
        loop_defer(w->loop, &t->defer, tconn_free, t);
}

static void on_idle(ptimer_t *tm, void *arg)
{
    (void)tm;
    tconn_close(arg);
}

/* Reads whole messages and answers each. Returns -1 once closed. */
static int tconn_read(struct tconn *t)
{
    for (;;) {
        size_t need = t->in_len < 2 ? 2 : 2u + ((size_t)t->in[0] << 8 | t->in[1]);
        if (t->in_len == need && need > 2) {
            loop_timer_set(t->w->loop, &t->idle, t->w->c->tcp_idle_ms);
            t->in_len = 0;
            request(t->w, t->in + 2, need - 2, &t->peer, t);
            if (t->closed)
                return -1;
            continue;
        }
        if (t->in_len == need) { /* a zero length: nothing can follow sensibly */
            tconn_close(t);
            return -1;
        }
        ssize_t n = read(t->io.fd, t->in + t->in_len, need - t->in_len);
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            tconn_close(t);
            return -1;
        }
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        t->in_len += (size_t)n;
    }
}

static void on_tconn(io_t *io, uint32_t events)
{
    struct tconn *t = io->arg;
    if (t->closed)
        return;
    if ((events & EPOLLOUT) && t->out_len > 0 && tconn_flush(t) < 0)
        return;
    if (t->out_len == 0 && (events & EPOLLOUT))
        loop_io_mod(&t->io, EPOLLIN | EPOLLRDHUP | EPOLLET);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        tconn_read(t);
}

static void on_accept(io_t *io, uint32_t events)
{
    (void)events;
    struct worker *w = io->arg;
    for (;;) {
        addr_t peer;
        int fd = sock_accept(io->fd, &peer);
        if (fd < 0) {
            if (fd == -EINTR || fd == -ECONNABORTED)
                continue;
            return;
        }
        struct tconn *t = NULL;
        if (w->nconns < w->c->max_tcp)
            t = calloc(1, sizeof *t);
        if (t != NULL)
            t->in = malloc(2 + DNS_MSG_MAX);
        if (t == NULL || t->in == NULL ||
            loop_io_add(w->loop, &t->io, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, on_tconn, t) < 0) {
            close(fd);
            if (t != NULL)
                free(t->in);
            free(t);
            continue;
        }
        t->w = w;
        t->next = w->conns.next;
        t->prev = &w->conns;
        w->conns.next->prev = t;
        w->conns.next = t;
        w->nconns++;
        t->peer = peer;
        timer_init(&t->idle, on_idle, t);
        loop_timer_set(w->loop, &t->idle, w->c->tcp_idle_ms);
        tconn_read(t);
    }
}

/* ------------------------------------------------------------ workers */

static int w_start(loop_t *l, int idx, void *arg)
{
    struct server *s = arg;
    struct worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    s->w[idx] = w;
    w->c = s->c;
    w->loop = l;
    w->conns.next = w->conns.prev = &w->conns;
    w->pend.next = w->pend.prev = &w->pend;
    int rc = loop_io_add(l, &w->udp, s->fds[2 * idx], EPOLLIN, on_udp, w);
    if (rc == 0)
        rc = loop_io_add(l, &w->tcp, s->fds[2 * idx + 1], EPOLLIN | EPOLLET, on_accept, w);
    if (rc == 0)
        s->fds[2 * idx] = s->fds[2 * idx + 1] = -1; /* owned by the loop now */
    return rc;
}

static void w_stop(loop_t *l, int idx, int force, void *arg)
{
    (void)force;
    struct server *s = arg;
    struct worker *w = s->w[idx];
    loop_io_close(&w->udp);
    loop_io_close(&w->tcp);
    while (w->pend.next != &w->pend) {
        struct pending *p = w->pend.next;
        dns_resolve_cancel(p->r);
        pending_end(p);
    }
    while (w->conns.next != &w->conns)
        tconn_close(w->conns.next);
    loop_break(l);
}

static void w_finish(loop_t *l, int idx, void *arg)
{
    (void)l;
    struct server *s = arg;
    free(s->w[idx]);
    s->w[idx] = NULL;
}

/* UDP and TCP sockets for every worker on one port. */
static int open_sockets(const dns_server_conf_t *c, int *fds, addr_t *bound, char *err,
                        size_t errlen)
{
    char a[ADDR_STRLEN];
    int any_port = addr_port(&c->listen) == 0;
    int rc = 0;
    for (unsigned tries = 0; tries < DNS_SERVER_BIND_TRIES; tries++) {
        *bound = c->listen;
        int n = 0;
        rc = 0;
        if (!any_port) {
            rc = sock_probe_free(bound, SOCK_DGRAM);
            if (rc == 0)
                rc = sock_probe_free(bound, SOCK_STREAM);
        }
        for (int i = 0; rc == 0 && i < c->workers; i++) {
            for (int k = 0; rc == 0 && k < 2; k++) {
                int fd = sock_listen(bound, k ? SOCK_STREAM : SOCK_DGRAM, 1);
                if (fd < 0) {
                    rc = fd;
                    break;
                }
                fds[n++] = fd;
                if (n == 1 && any_port && (rc = sock_local(fd, bound)) < 0)
                    break;
            }
        }
        if (rc == 0)
            return 0;
        while (n > 0)
            close(fds[--n]);
        if (!(any_port && rc == -EADDRINUSE))
            break;
    }
    snprintf(err, errlen, "listen on %s: %s", addr_format(&c->listen, a, sizeof a), strerror(-rc));
    return -1;
}

int dns_server_run(const dns_server_conf_t *c, char *err, size_t errlen)
{
    struct server s = { .c = c };
    s.fds = malloc(2 * (size_t)c->workers * sizeof *s.fds);
    s.w = calloc((size_t)c->workers, sizeof *s.w);
    if (s.fds == NULL || s.w == NULL) {
        snprintf(err, errlen, "out of memory");
        free(s.fds);
        free(s.w);
        return -1;
    }
    addr_t bound;
    if (open_sockets(c, s.fds, &bound, err, errlen) < 0) {
        free(s.fds);
        free(s.w);
        return -1;
    }
    if (!c->quiet) {
        char a[ADDR_STRLEN];
        fprintf(stderr, "portico resolver: listening on %s (UDP and TCP, %d workers, %s)\n",
                addr_format(&bound, a, sizeof a), c->workers,
                c->iter != NULL ? "iterative" : "forwarding");
    }
    struct workers_ops ops = { w_start, w_stop, w_finish, NULL };
    int rc = workers_run(c->workers, &ops, &s);
    for (int i = 0; i < 2 * c->workers; i++)
        if (s.fds[i] >= 0)
            close(s.fds[i]);
    free(s.fds);
    free(s.w);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the workers: %s", strerror(-rc));
        return -1;
    }
    return 0;
}
