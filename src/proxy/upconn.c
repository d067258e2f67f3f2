/* upconn.c - resolve and connect to an upstream on the loop. */
#include "proxy/upconn.h"
#include "dns/resolve.h"
#include "dns/msg.h"
#include "proxy/limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct upconn {
    loop_t *loop;
    const dns_conf_t *conf;
    char host[HOST_MAX];
    uint16_t port;
    int (*forbid)(void *, const addr_t *);
    void *farg;
    upconn_cb cb;
    void *arg;
    dns_resolve_t *dns;
    uint16_t qtype;
    addr_t addrs[PROXY_MAX_UPSTREAM_ADDRS];
    int naddrs, next;
    int forbidden;
    io_t io;
    int connecting;
    ptimer_t timer;
    loop_defer_t dfree, dstart;
    enum upconn_err err;
    char msg[HOST_MAX + 160];
    int done;
};

static void upconn_free(void *arg)
{
    upconn_t *u = arg;
    if (u->dstart.queued) {
        /* Deferred calls run newest first: let start() (which sees done)
         * run before the memory goes. */
        loop_defer(u->loop, &u->dfree, upconn_free, u);
        return;
    }
    free(u);
}

/* Ends the attempt: the callback, then freeing at the safe point. */
static void finish(upconn_t *u, int fd, enum upconn_err err)
{
    if (u->done)
        return;
    u->done = 1;
    loop_timer_cancel(u->loop, &u->timer);
    if (u->dns != NULL) {
        dns_resolve_cancel(u->dns);
        u->dns = NULL;
    }
    if (u->connecting) {
        loop_io_del(&u->io); /* fd goes to the callee or was closed */
        u->connecting = 0;
    }
    u->cb(u->arg, fd, err, u->msg);
    loop_defer(u->loop, &u->dfree, upconn_free, u);
}

static void try_next(upconn_t *u);

static void on_writable(io_t *io, uint32_t ev)
{
    upconn_t *u = io->arg;
    (void)ev;
    int fd = io->fd;
    int rc = sock_connect_result(fd);
    if (rc == -EINPROGRESS || rc == -EALREADY)
        return;
    if (rc == 0) {
        finish(u, fd, UPCONN_OK);
        return;
    }
    char a[ADDR_STRLEN];
    snprintf(u->msg, sizeof u->msg, "connect to %s: %s", addr_format(&u->addrs[u->next - 1], a, sizeof a),
             strerror(-rc));
    loop_io_close(&u->io);
    u->connecting = 0;
    try_next(u);
}

static void try_next(upconn_t *u)
{
    while (u->next < u->naddrs) {
        const addr_t *a = &u->addrs[u->next++];
        if (u->forbid != NULL && u->forbid(u->farg, a)) {
            u->forbidden++;
            continue;
        }
        int fd = sock_connect(a, SOCK_STREAM);
        char s[ADDR_STRLEN];
        if (fd < 0) {
            snprintf(u->msg, sizeof u->msg, "connect to %s: %s", addr_format(a, s, sizeof s), strerror(-fd));
            continue;
        }
        if (loop_io_add(u->loop, &u->io, fd, EPOLLOUT | EPOLLET, on_writable, u) < 0) {
            close(fd);
            continue;
        }
        u->connecting = 1;
        return;
    }
    if (u->forbidden == u->naddrs) {
        snprintf(u->msg, sizeof u->msg, "%s:%u is this proxy itself", u->host, (unsigned)u->port);
        finish(u, -1, UPCONN_E_FORBIDDEN);
        return;
    }
    finish(u, -1, UPCONN_E_CONNECT);
}

/* Builds the address by copying a filled sockaddr in (no type-punned
 * stores into the storage). */
static void set_addr(addr_t *a, int fam, const void *ip, uint16_t port)
{
    memset(a, 0, sizeof *a);
    if (fam == AF_INET) {
        struct sockaddr_in s;
        memset(&s, 0, sizeof s);
        s.sin_family = AF_INET;
        s.sin_port = htons(port);
        memcpy(&s.sin_addr, ip, 4);
        memcpy(&a->ss, &s, sizeof s);
        a->len = sizeof s;
    } else {
        struct sockaddr_in6 s;
        memset(&s, 0, sizeof s);
        s.sin6_family = AF_INET6;
        s.sin6_port = htons(port);
        memcpy(&s.sin6_addr, ip, 16);
        memcpy(&a->ss, &s, sizeof s);
        a->len = sizeof s;
    }
}

static void on_dns(dns_resolve_t *r, const dns_stub_result_t *res, void *arg)
{
    (void)r;
    upconn_t *u = arg;
    u->dns = NULL;
    if (res->status == DNS_STUB_OK) {
        for (size_t i = 0; i < res->nrr && u->naddrs < (int)PROXY_MAX_UPSTREAM_ADDRS; i++) {
            const dns_rr_t *rr = &res->rr[i];
            if (rr->type == DNS_T_A)
                set_addr(&u->addrs[u->naddrs++], AF_INET, rr->a, u->port);
            else if (rr->type == DNS_T_AAAA)
                set_addr(&u->addrs[u->naddrs++], AF_INET6, rr->aaaa, u->port);
        }
    }
    if (u->naddrs > 0) {
        try_next(u);
        return;
    }
    if (u->qtype == DNS_T_A && (res->status == DNS_STUB_OK || res->status == DNS_STUB_NODATA)) {
        u->qtype = DNS_T_AAAA;
        if (dns_resolve_start(u->loop, u->conf, slice_cstr(u->host), DNS_T_AAAA, on_dns, u, &u->dns) == 0)
            return;
    }
    snprintf(u->msg, sizeof u->msg, "cannot resolve '%s': %s", u->host, dns_stub_status_name(res->status));
    finish(u, -1, UPCONN_E_RESOLVE);
}

static void on_timeout(ptimer_t *t, void *arg)
{
    (void)t;
    upconn_t *u = arg;
    if (u->connecting) {
        loop_io_close(&u->io);
        u->connecting = 0;
    }
    snprintf(u->msg, sizeof u->msg, "connecting to %s:%u timed out", u->host, (unsigned)u->port);
    finish(u, -1, UPCONN_E_TIMEOUT);
}

/* Runs at the end of the iteration that started the attempt, so the
 * callback never runs inside upconn_start. */
static void start(void *arg)
{
    upconn_t *u = arg;
    uint8_t ip[16];
    if (u->done)
        return;
    if (inet_pton(AF_INET, u->host, ip) == 1) {
        set_addr(&u->addrs[u->naddrs++], AF_INET, ip, u->port);
        try_next(u);
        return;
    }
    if (inet_pton(AF_INET6, u->host, ip) == 1) {
        set_addr(&u->addrs[u->naddrs++], AF_INET6, ip, u->port);
        try_next(u);
        return;
    }
    if (u->conf == NULL ||
        dns_resolve_start(u->loop, u->conf, slice_cstr(u->host), DNS_T_A, on_dns, u, &u->dns) < 0) {
        snprintf(u->msg, sizeof u->msg, "cannot resolve '%s'", u->host);
        finish(u, -1, UPCONN_E_RESOLVE);
    }
}

upconn_t *upconn_start(loop_t *l, const dns_conf_t *conf, slice_t host, uint16_t port,
                       uint32_t timeout_ms, int (*forbid)(void *, const addr_t *), void *farg,
                       upconn_cb cb, void *arg)
{
    if (host.len == 0 || host.len >= HOST_MAX)
        return NULL;
    upconn_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return NULL;
    u->loop = l;
    u->conf = conf;
    memcpy(u->host, host.p, host.len);
    u->port = port;
    u->forbid = forbid;
    u->farg = farg;
    u->cb = cb;
    u->arg = arg;
    u->qtype = DNS_T_A;
    u->io.fd = -1;
    timer_init(&u->timer, on_timeout, u);
    loop_timer_set(l, &u->timer, timeout_ms);
    loop_defer(l, &u->dstart, start, u);
    return u;
}

void upconn_cancel(upconn_t *u)
{
    if (u == NULL || u->done)
        return;
    u->done = 1;
    loop_timer_cancel(u->loop, &u->timer);
    if (u->dns != NULL)
        dns_resolve_cancel(u->dns);
    if (u->connecting)
        loop_io_close(&u->io);
    /* dstart may still be queued: free after it (it sees done). */
    loop_defer(u->loop, &u->dfree, upconn_free, u);
}
