/* proxy.c - the proxy handler: destination, firewall, CONNECT tunnels,
 * and the hand-off to forwarding. */
#include "proxy/proxy.h"
#include "core/log.h"
#include "core/tpool.h"
#include "http/status.h"
#include "proxy/hop.h"
#include "proxy/pworker.h"
#include "proxy/tunnel.h"
#include "proxy/upconn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------- answers */

/* A short plain-text answer: the status line's reason and why. */
void proxy_answer_text(hs_req_t *r, int status, const char *why)
{
    char body[512];
    int n = snprintf(body, sizeof body, "portico proxy: %d %s: %s\n", status, http_reason(status), why);
    if (n < 0 || (size_t)n >= sizeof body)
        n = (int)sizeof body - 1;
    hs_resp_start(r, status);
    hs_resp_field_str(r, "Content-Type", "text/plain; charset=utf-8");
    hs_resp_body(r, body, (size_t)n);
}

int proxy_destination(const struct proxy_config *pc, const http_request_t *q, slice_t *host,
                      uint16_t *port, const char **why)
{
    switch (q->form) {
    case HTTP_T_AUTHORITY:
        if (hop_authority_split(q->target, host, port, 0) < 0 || *port == 0) {
            *why = "CONNECT needs host:port";
            return 400;
        }
        return 0;
    case HTTP_T_ABSOLUTE:
        if (q->target.len >= 8 && http_slice_ieq(slice_make(q->target.p, 8), "https://")) {
            *why = "https:// targets go through CONNECT";
            return 501;
        }
        if (hop_authority_split(q->host, host, port, 80) < 0) {
            *why = "the target's authority is not host[:port]";
            return 400;
        }
        return 0;
    default:
        if (pc->has_upstream) {
            *host = slice_make(pc->up_host, pc->up_host_len);
            *port = pc->up_port;
            return 0;
        }
        *why = "this is a proxy: ask for an absolute URL (http://host/path) or CONNECT host:port";
        return 400;
    }
}

/* Compares family, address and port. The sockaddr views are copied out
 * (not cast) so that no type-punned access meets the optimiser. */
static int same_addr(const addr_t *a, const addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET) {
        struct sockaddr_in x, y;
        memcpy(&x, &a->ss, sizeof x);
        memcpy(&y, &b->ss, sizeof y);
        return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
    }
    struct sockaddr_in6 x, y;
    memcpy(&x, &a->ss, sizeof x);
    memcpy(&y, &b->ss, sizeof y);
    return x.sin6_port == y.sin6_port && memcmp(&x.sin6_addr, &y.sin6_addr, 16) == 0;
}

/* 1 when a is one of the proxy's own listening addresses. */
static int is_self(void *arg, const addr_t *a)
{
    const struct proxy_config *pc = arg;
    for (int i = 0; i < pc->nself; i++)
        if (same_addr(a, &pc->self[i]))
            return 1;
    return 0;
}

int proxy_is_self_addr(void *pc, const addr_t *a)
{
    return is_self(pc, a);
}

int proxy_is_self_host(const struct proxy_config *pc, slice_t host, uint16_t port)
{
    char h[64];
    if (host.len >= sizeof h)
        return 0;
    memcpy(h, host.p, host.len);
    h[host.len] = '\0';
    addr_t a;
    memset(&a, 0, sizeof a);
    if (strcasecmp(h, "localhost") == 0)
        strcpy(h, "127.0.0.1");
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    memset(&s4, 0, sizeof s4);
    memset(&s6, 0, sizeof s6);
    if (inet_pton(AF_INET, h, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons(port);
        memcpy(&a.ss, &s4, sizeof s4);
        a.len = sizeof s4;
    } else if (inet_pton(AF_INET6, h, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons(port);
        memcpy(&a.ss, &s6, sizeof s6);
        a.len = sizeof s6;
    } else {
        return 0;
    }
    return is_self((void *)pc, &a);
}

/* ---------------------------------------------------------- CONNECT */

struct ptun {
    hs_req_t *r;
    struct pworker *pw;
    int ufd;
};

static void on_detached(void *ctx, int cfd, char *early, size_t n)
{
    struct ptun *t = ctx;
    if (cfd < 0) {
        close(t->ufd);
        free(early);
    } else if (tunnel_start(t->pw->loop, cfd, early, n, t->ufd, t->pw->pc->tunnel_idle_ms) < 0) {
        log_warn("proxy: cannot start a tunnel: out of memory");
    }
    free(t);
}

static void on_tunnel_conn(void *arg, int fd, enum upconn_err err, const char *msg)
{
    struct ptun *t = arg;
    hs_req_t *r = t->r;
    if (fd < 0) {
        int status = err == UPCONN_E_TIMEOUT ? 504 : err == UPCONN_E_FORBIDDEN ? 403 : 502;
        log_info("proxy: CONNECT failed: %s", msg);
        proxy_answer_text(r, status, msg);
        free(t);
        hs_resume(r);
        return;
    }
    t->ufd = fd;
    hs_resp_start(r, 200);
    hs_resp_tunnel(r, on_detached, t); /* may free t at once if the client left */
    hs_resume(r);
}

static void do_connect(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port)
{
    struct ptun *t = calloc(1, sizeof *t);
    if (t == NULL) {
        hs_resp_error(r, 500);
        return;
    }
    t->r = r;
    t->pw = pw;
    t->ufd = -1;
    const struct proxy_config *pc = pw->pc;
    if (upconn_start(pw->loop, pc->dns, host, port, pc->connect_timeout_ms, is_self, (void *)pc,
                     on_tunnel_conn, t) == NULL) {
        free(t);
        proxy_answer_text(r, 502, "cannot start connecting upstream");
        return;
    }
    hs_hold(r);
}

/* ---------------------------------------------------------- requests */

static void *proxy_worker_init(int idx, void *arg)
{
    (void)idx;
    struct pworker *pw = calloc(1, sizeof *pw);
    if (pw != NULL)
        pw->pc = arg;
    return pw;
}

static void proxy_worker_free(void *wctx)
{
    struct pworker *pw = wctx;
    if (pw == NULL)
        return;
    if (pw->pool != NULL)
        client_pool_free(pw->pool);
    for (unsigned i = 0; i < PROXY_AUTH_CACHE; i++)
        free(pw->auth_ok[i]);
    free(pw);
}

/* ---------------------------------------------------------- auth */

static void answer_407(hs_req_t *r)
{
    static const char body[] = "portico proxy: 407 Proxy Authentication Required: "
                               "send Proxy-Authorization: Basic with a user of the auth file\n";
    hs_resp_start(r, 407);
    hs_resp_field_str(r, "Proxy-Authenticate", "Basic realm=\"portico proxy\", charset=\"UTF-8\"");
    hs_resp_field_str(r, "Content-Type", "text/plain; charset=utf-8");
    hs_resp_body(r, body, sizeof body - 1);
}

static int auth_known(const struct pworker *pw, slice_t v)
{
    for (unsigned i = 0; i < PROXY_AUTH_CACHE; i++)
        if (pw->auth_ok[i] != NULL && slice_eq(v, slice_cstr(pw->auth_ok[i])))
            return 1;
    return 0;
}

static void auth_remember(struct pworker *pw, const char *v)
{
    char *c = strdup(v);
    if (c == NULL)
        return;
    unsigned i = pw->auth_next++ % PROXY_AUTH_CACHE;
    free(pw->auth_ok[i]);
    pw->auth_ok[i] = c;
}

/* A check on the pool: the request head is copied, since its slices die
 * with on_request, and parsed again from the copy when the check is done. */
struct pauth {
    hs_req_t *r;
    struct pworker *pw;
    char *head;
    size_t len;
    http_field_t *fields;
    char value[PROXY_AUTH_VALUE_MAX + 1];
    int ok;
};

static void proceed(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port);
static void proceed_copy(hs_req_t *r, struct pworker *pw);

static void auth_work(void *arg)
{
    struct pauth *a = arg;
    a->ok = auth_check(a->pw->pc->auth, a->value, strlen(a->value));
}

static void auth_done(loop_t *l, void *arg)
{
    (void)l;
    struct pauth *a = arg;
    hs_req_t *r = a->r;
    if (r->conn == NULL) {
        hs_resume(r);
    } else if (!a->ok) {
        log_warn("proxy: wrong Proxy-Authorization");
        answer_407(r);
        hs_resume(r);
    } else {
        auth_remember(a->pw, a->value);
        http_parse_state_t st;
        http_parse_state_init(&st);
        const char *why;
        http_request_t q;
        if (http_parse_request(a->head, a->len, &st, &a->pw->pc->lim, a->fields, &q, &why) != (int)a->len) {
            hs_resp_error(r, 500);
            hs_resume(r);
        } else {
            r->req = q; /* the same request, its slices now in our copy */
            proceed_copy(r, a->pw);
            /* Answered at once, or reading a body: the engine goes on. A
             * forward or tunnel in progress resumes it later. */
            if (r->responded || r->body_ops != NULL)
                hs_resume(r);
        }
    }
    free(a->fields);
    free(a->head);
    free(a);
}

/* Returns 1 when the request may go on now, 0 when it was answered or
 * is held for a check. */
static int authorize(hs_req_t *r, struct pworker *pw)
{
    const http_request_t *q = &r->req;
    const http_field_t *f = http_find_field(q, "proxy-authorization");
    if (f == NULL || f->value.len == 0 || f->value.len > PROXY_AUTH_VALUE_MAX) {
        answer_407(r);
        return 0;
    }
    if (auth_known(pw, f->value))
        return 1;
    struct pauth *a = calloc(1, sizeof *a);
    if (a != NULL) {
        a->head = malloc(q->head_len);
        a->fields = calloc(pw->pc->lim.max_fields + 1, sizeof *a->fields);
    }
    if (a == NULL || a->head == NULL || a->fields == NULL) {
        if (a != NULL) {
            free(a->head);
            free(a->fields);
            free(a);
        }
        hs_resp_error(r, 500);
        return 0;
    }
    a->r = r;
    a->pw = pw;
    a->len = q->head_len;
    memcpy(a->head, q->method.p, q->head_len);
    memcpy(a->value, f->value.p, f->value.len);
    hs_hold(r);
    if (tpool_submit(pw->pc->pool, pw->loop, auth_work, auth_done, a) < 0) {
        free(a->head);
        free(a->fields);
        free(a);
        hs_resp_error(r, 500);
        hs_resume(r);
    }
    return 0;
}

static void on_request(hs_req_t *r, void *wctx)
{
    struct pworker *pw = wctx;
    const struct proxy_config *pc = pw->pc;
    const http_request_t *q = &r->req;
    if (pw->loop == NULL)
        pw->loop = hs_loop(r);

    slice_t host;
    uint16_t port;
    const char *why = "";
    int st = proxy_destination(pc, q, &host, &port, &why);
    if (st != 0) {
        proxy_answer_text(r, st, why);
        return;
    }
    addr_t peer;
    if (hs_peer(r, &peer) < 0) {
        hs_resp_error(r, 500);
        return;
    }
    struct acl_query aq = { &peer, q->method, host, port };
    struct acl_result ar = acl_check(pc->acl, &aq);
    if (!ar.allowed) {
        char a[ADDR_STRLEN], msg[HOST_MAX + 128];
        addr_format(&peer, a, sizeof a);
        log_warn("proxy: denied %.*s %.*s:%u from %s: %s", (int)q->method.len, q->method.p,
                 (int)host.len, host.p, (unsigned)port, a, ar.why);
        snprintf(msg, sizeof msg, "access denied (%s)", ar.why);
        proxy_answer_text(r, 403, msg);
        return;
    }
    if (pc->auth != NULL && !authorize(r, pw))
        return;
    proceed(r, pw, host, port);
}

/* proceed() for a head parsed again from a copy (after a password check):
 * the destination's slices are taken from the copy. */
static void proceed_copy(hs_req_t *r, struct pworker *pw)
{
    slice_t host;
    uint16_t port;
    const char *why = "";
    if (proxy_destination(pw->pc, &r->req, &host, &port, &why) != 0) {
        hs_resp_error(r, 400);
        return;
    }
    proceed(r, pw, host, port);
}

/* Whether host:port is the proxy itself; for the fixed --upstream, asked
 * once per worker. */
static int target_is_self(struct pworker *pw, slice_t host, uint16_t port)
{
    const struct proxy_config *pc = pw->pc;
    if (host.p != pc->up_host)
        return proxy_is_self_host(pc, host, port);
    if (pw->up_self == 0)
        pw->up_self = proxy_is_self_host(pc, host, port) ? 2 : 1;
    return pw->up_self == 2;
}

/* The request passed the firewall and authentication: tunnel or forward. */
static void proceed(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port)
{
    const http_request_t *q = &r->req;
    if (q->method_id == HTTP_M_CONNECT) {
        do_connect(r, pw, host, port);
        return;
    }
    if (target_is_self(pw, host, port)) {
        proxy_answer_text(r, 403, "the target is this proxy itself (a loop)");
        return;
    }
    fwd_request(r, pw, host, port);
}

void proxy_on_stop(void *wctx)
{
    fwd_stop_all(wctx);
}

const struct hs_handler proxy_handler = {
    .worker_init = proxy_worker_init,
    .worker_free = proxy_worker_free,
    .on_request = on_request,
};
