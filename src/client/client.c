/* client.c - HTTP/1.1 client connections and their pool on the loop.
 *
 * A request (client_req) is started from a deferred call, takes an idle
 * connection of its origin or opens one (resolve, connect), sends its head
 * and body, parses the response with src/http/response.h and hands the
 * body out. A connection (conn) belongs to one origin; between requests it
 * sits on the origin's idle list, watched for the server closing it.
 *
 * Memory: requests and connections are freed from loop_defer() at the end
 * of the iteration, never inside a callback that may still use them. Each
 * has one defer slot whose function looks at the object's state (a slot
 * already queued cannot be queued again for another purpose). */
#include "client/client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/buf.h"
#include "dns/hostaddr.h"
#include "http/chunked.h"

struct origin {
    struct origin *next;
    char host[CLIENT_HOST_MAX + 1];
    uint16_t port;
    addr_t addrs[CLIENT_MAX_ADDRS];
    int naddrs;
    uint64_t addrs_until;        /* loop time the addresses expire */
    struct conn *idle;           /* most recently used first */
    size_t nidle;
};

enum conn_state { C_RESOLVING, C_CONNECTING, C_BUSY, C_IDLE, C_DEAD };

struct conn {
    client_pool_t *pool;
    struct origin *o;
    enum conn_state state;
    io_t io;
    int registered;
    ptimer_t timer;
    dns_hostaddr_t *dns;         /* the name's lookup in flight */
    int addr_idx;
    int last_err;                /* errno of the last failed connect */
    int forbidden;               /* addresses skipped by opts.forbid */
    uint64_t connect_deadline;   /* loop time the connect timeout ends */
    addr_t peer;
    buf_t in;
    uint64_t id;
    unsigned served;             /* requests completed on it */
    int peer_closed;             /* an event said the server closed its side */
    struct conn *next_idle;
    struct client_req *req;
    loop_defer_t defer;
};

enum req_state { R_NEW, R_WAIT, R_HEAD, R_BODY, R_DONE };

struct client_req {
    client_pool_t *pool;
    struct client_req *prev, *next;   /* the pool's live requests */
    struct conn *c;
    enum req_state state;
    client_cbs_t cbs;
    void *arg;
    char host[CLIENT_HOST_MAX + 1];
    uint16_t port;
    enum http_method method;
    int idempotent, no_retry, close;

    buf_t head;                  /* the request head, built once */
    size_t head_sent;
    enum client_body body;
    const char *body_data;
    int64_t body_len;
    uint64_t body_sent;          /* DATA: bytes of body_data sent */
    buf_t out;                   /* STREAM: framed bytes to send */
    uint64_t streamed;           /* STREAM: body bytes queued */
    int finished;                /* STREAM: client_req_finish() was called */
    int in_send;

    http_parse_state_t ps;
    http_body_t dec;
    int keep_alive;
    unsigned ninfo;
    int got_bytes;               /* a byte of the response arrived */
    int paused;
    int sink_fd;                 /* client_req_sink(): body bytes go here, -1: none */
    int sunk;                    /* the sink took a splice (no fall back after) */
    int lowat;                   /* SO_RCVLOWAT set on the socket (0: the default) */
    int pipe_fd[2];              /* the sink's pipe, made once per request */
    int reused, retried;
    int cancelled;
    loop_defer_t defer;
};

struct client_pool {
    loop_t *loop;
    client_opts_t o;
    struct origin *origins;
    struct client_req *reqs;
    client_stats_t st;
    uint64_t next_id;
    /* The parsed fields of a response head: one array for the pool, as a
     * head is parsed whole in one call and its fields live only during
     * on_info / on_head (no 6 KB allocation per request). */
    http_field_t *fields;
};

static void conn_close(struct conn *c);
static void conn_send(struct conn *c);
static void conn_read(struct conn *c);
static int sink_timer_check(struct conn *c, struct client_req *r);
static void req_fail(client_req_t *r, enum client_err e, const char *msg);
static void req_attach(client_req_t *r);

void client_opts_default(client_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
    o->header_timeout_ms = CLIENT_DEFAULT_HEADER_TIMEOUT_MS;
    o->read_timeout_ms = CLIENT_DEFAULT_READ_TIMEOUT_MS;
    o->idle_timeout_ms = CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
    o->max_idle = CLIENT_DEFAULT_MAX_IDLE;
    o->max_head = CLIENT_DEFAULT_MAX_HEAD;
    o->max_fields = CLIENT_DEFAULT_MAX_FIELDS;
    o->max_info = CLIENT_DEFAULT_MAX_INFO;
}

const char *client_err_name(enum client_err e)
{
    switch (e) {
    case CLIENT_E_RESOLVE: return "resolve";
    case CLIENT_E_CONNECT: return "connect";
    case CLIENT_E_CONNECT_TIMEOUT: return "connect timeout";
    case CLIENT_E_SEND: return "send";
    case CLIENT_E_RECV: return "receive";
    case CLIENT_E_HEADER_TIMEOUT: return "header timeout";
    case CLIENT_E_READ_TIMEOUT: return "read timeout";
    case CLIENT_E_PROTOCOL: return "protocol";
    case CLIENT_E_TRUNCATED: return "truncated";
    case CLIENT_E_NOMEM: return "out of memory";
    case CLIENT_E_EMPTY: return "empty reply";
    case CLIENT_E_SINK: return "sink write";
    case CLIENT_E_FORBIDDEN: return "forbidden address";
    }
    return "?";
}

/* ------------------------------------------------------------- pool */

client_pool_t *client_pool_new(loop_t *l, const client_opts_t *o)
{
    client_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->loop = l;
    p->o = *o;
    if (p->o.max_fields == 0)
        p->o.max_fields = 1;
    p->fields = malloc(p->o.max_fields * sizeof *p->fields);
    if (p->fields == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void client_pool_free(client_pool_t *p)
{
    if (p == NULL)
        return;
    while (p->reqs != NULL)
        client_req_cancel(p->reqs);
    struct origin *o = p->origins;
    while (o != NULL) {
        struct origin *next = o->next;
        while (o->idle != NULL)
            conn_close(o->idle);
        free(o);
        o = next;
    }
    free(p->fields);
    free(p);
}

void client_pool_stats(const client_pool_t *p, client_stats_t *s)
{
    *s = p->st;
    s->idle = 0;
    for (const struct origin *o = p->origins; o != NULL; o = o->next)
        s->idle += o->nidle;
}

static struct origin *origin_get(client_pool_t *p, const char *host, uint16_t port)
{
    for (struct origin *o = p->origins; o != NULL; o = o->next)
        if (o->port == port && strcasecmp(o->host, host) == 0)
            return o;
    struct origin *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    snprintf(o->host, sizeof o->host, "%s", host);
    o->port = port;
    o->next = p->origins;
    p->origins = o;
    return o;
}

static void idle_remove(struct conn *c)
{
    struct origin *o = c->o;
    for (struct conn **pp = &o->idle; *pp != NULL; pp = &(*pp)->next_idle) {
        if (*pp == c) {
            *pp = c->next_idle;
            o->nidle--;
            break;
        }
    }
    c->next_idle = NULL;
}

/* ------------------------------------------------------- connections */

static void conn_free_deferred(void *arg)
{
    struct conn *c = arg;
    buf_dispose(&c->in);
    free(c);
}

/* Closes a connection at once (its memory goes at the safe point). The
 * request on it, if any, must have been detached or failed. */
static void conn_close(struct conn *c)
{
    if (c->state == C_DEAD)
        return;
    if (c->state == C_IDLE)
        idle_remove(c);
    c->state = C_DEAD;
    if (c->dns != NULL) {
        dns_hostaddr_cancel(c->dns);
        c->dns = NULL;
    }
    loop_timer_cancel(c->pool->loop, &c->timer);
    if (c->registered)
        loop_io_close(&c->io);
    else if (c->io.fd >= 0)
        close(c->io.fd);
    c->io.fd = -1;
    c->registered = 0;
    if (c->req != NULL && c->req->c == c)
        c->req->c = NULL;
    c->req = NULL;
    loop_defer(c->pool->loop, &c->defer, conn_free_deferred, c);
}

static void timer_arm(struct conn *c, uint32_t ms)
{
    loop_timer_set(c->pool->loop, &c->timer, ms);
}

/* The request has a connection that can carry bytes now. */
static void conn_start_request(struct conn *c)
{
    client_req_t *r = c->req;
    r->state = R_WAIT;
    http_parse_state_init(&r->ps);
    timer_arm(c, c->pool->o.read_timeout_ms);
    conn_send(c);
    if (c->state == C_BUSY && c->req == r && r->state != R_DONE)
        conn_read(c);
}

static int req_retryable(const client_req_t *r)
{
    return r->idempotent && !r->no_retry && !r->retried && r->reused && !r->got_bytes &&
           r->body != CLIENT_BODY_STREAM;
}

/* A failure of the connection under a request: retried when allowed. */
static void conn_fail(struct conn *c, enum client_err e, const char *msg)
{
    client_req_t *r = c->req;
    conn_close(c);
    if (r == NULL || r->state == R_DONE)
        return;
    if (req_retryable(r)) {
        r->c = NULL;
        r->retried = 1;
        r->reused = 0;
        r->head_sent = 0;
        r->body_sent = 0;
        c->pool->st.retries++;
        req_attach(r);
        return;
    }
    req_fail(r, e, msg);
}

static void conn_connected(struct conn *c)
{
    c->state = C_BUSY;
    sock_nodelay(c->io.fd);
    conn_start_request(c);
}

static void conn_try_connect(struct conn *c);

static void conn_io(io_t *io, uint32_t ev);

static void conn_try_connect(struct conn *c)
{
    struct origin *o = c->o;
    char err[CLIENT_HOST_MAX + 160];
    while (c->addr_idx < o->naddrs) {
        const addr_t *a = &o->addrs[c->addr_idx++];
        const client_opts_t *po = &c->pool->o;
        if (po->forbid != NULL && po->forbid(po->forbid_arg, a)) {
            c->forbidden++;
            continue;
        }
        int fd = sock_connect(a, SOCK_STREAM);
        if (fd < 0) {
            c->last_err = -fd;
            continue;
        }
        c->peer = *a;
        c->state = C_CONNECTING;
        if (loop_io_add(c->pool->loop, &c->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                        conn_io, c) != 0) {
            close(fd);
            continue;
        }
        c->registered = 1;
        c->pool->st.connects++;
        /* Each address gets an even share of the time left, so that one
         * that never answers (broken IPv6) leaves time for the others. */
        uint64_t now = loop_now(c->pool->loop);
        uint64_t left = c->connect_deadline > now ? c->connect_deadline - now : 1;
        timer_arm(c, (uint32_t)(left / (uint64_t)(o->naddrs - c->addr_idx + 1)) + 1);
        return;
    }
    int forbidden = o->naddrs > 0 && c->forbidden == o->naddrs;
    if (forbidden)
        snprintf(err, sizeof err, "%s port %u is refused: it resolves to a forbidden address", o->host,
                 (unsigned)o->port);
    else
        snprintf(err, sizeof err, "cannot connect to %s port %u: %s", o->host, (unsigned)o->port,
                 c->last_err ? strerror(c->last_err) : "no address");
    client_req_t *r = c->req;
    conn_close(c);
    if (r != NULL)
        req_fail(r, forbidden ? CLIENT_E_FORBIDDEN : CLIENT_E_CONNECT, err);
}

static void conn_connect_result(struct conn *c)
{
    int rc = sock_connect_result(c->io.fd);
    if (rc == 0) {
        conn_connected(c);
        return;
    }
    /* This address refused: the next one on a new socket. */
    c->last_err = -rc;
    loop_io_close(&c->io);
    c->registered = 0;
    conn_try_connect(c);
}

/* The name's addresses (dns/hostaddr.h: /etc/hosts, else AAAA and A asked
 * together, IPv6 first, unroutable ones last), kept for the origin. */
static void on_addrs(void *arg, const addr_t *addrs, int n, const char *err)
{
    struct conn *c = arg;
    struct origin *o = c->o;
    c->dns = NULL;
    if (n > 0) {
        o->naddrs = n < CLIENT_MAX_ADDRS ? n : CLIENT_MAX_ADDRS;
        memcpy(o->addrs, addrs, (size_t)o->naddrs * sizeof *addrs);
        o->addrs_until = loop_now(c->pool->loop) + CLIENT_DNS_KEEP_MS;
        c->addr_idx = 0;
        conn_try_connect(c);
        return;
    }
    client_req_t *r = c->req;
    conn_close(c);
    if (r != NULL)
        req_fail(r, CLIENT_E_RESOLVE, err);
}

static void conn_timeout(ptimer_t *t, void *arg)
{
    (void)t;
    struct conn *c = arg;
    client_req_t *r = c->req;
    char msg[CLIENT_HOST_MAX + 96];
    switch (c->state) {
    case C_IDLE:
        conn_close(c);
        return;
    case C_CONNECTING:
        if (c->addr_idx < c->o->naddrs &&
            loop_now(c->pool->loop) < c->connect_deadline) {
            /* This address had its share: the next one. */
            c->last_err = ETIMEDOUT;
            loop_io_close(&c->io);
            c->registered = 0;
            conn_try_connect(c);
            return;
        }
        /* fall through */
    case C_RESOLVING:
        snprintf(msg, sizeof msg, "connect to %s port %u timed out after %u ms", c->o->host,
                 (unsigned)c->o->port, c->pool->o.connect_timeout_ms);
        conn_close(c);
        if (r != NULL)
            req_fail(r, CLIENT_E_CONNECT_TIMEOUT, msg);
        return;
    case C_BUSY:
        if (r != NULL && sink_timer_check(c, r))
            return;
        conn_close(c);
        if (r == NULL)
            return;
        if (r->state == R_BODY) {
            snprintf(msg, sizeof msg, "no data for %u ms while reading the body",
                     c->pool->o.read_timeout_ms);
            req_fail(r, CLIENT_E_READ_TIMEOUT, msg);
        } else if (r->state == R_HEAD) {
            snprintf(msg, sizeof msg, "no response head within %u ms",
                     c->pool->o.header_timeout_ms);
            req_fail(r, CLIENT_E_HEADER_TIMEOUT, msg);
        } else {
            snprintf(msg, sizeof msg, "could not send the request for %u ms",
                     c->pool->o.read_timeout_ms);
            req_fail(r, CLIENT_E_READ_TIMEOUT, msg);
        }
        return;
    case C_DEAD:
        return;
    }
}

static struct conn *conn_new(client_pool_t *p, struct origin *o)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->pool = p;
    c->o = o;
    c->io.fd = -1;
    c->id = ++p->next_id;
    buf_init(&c->in, p->o.max_head + CLIENT_READ_CHUNK);
    timer_init(&c->timer, conn_timeout, c);
    return c;
}

/* Opens a connection for r: literal, known addresses, or a lookup. */
static void conn_open(client_req_t *r, struct origin *o)
{
    client_pool_t *p = r->pool;
    struct conn *c = conn_new(p, o);
    if (c == NULL) {
        req_fail(r, CLIENT_E_NOMEM, "out of memory");
        return;
    }
    c->req = r;
    r->c = c;
    c->state = C_RESOLVING;
    c->connect_deadline = loop_now(p->loop) + p->o.connect_timeout_ms;
    timer_arm(c, p->o.connect_timeout_ms);
    char err[CLIENT_HOST_MAX + 96];
    addr_t a;
    int lit = addr_literal(o->host, o->port, AF_UNSPEC, 0, &a, err, sizeof err);
    if (lit > 0) {
        o->addrs[0] = a;
        o->naddrs = 1;
        o->addrs_until = UINT64_MAX;
    }
    if (o->naddrs > 0 && loop_now(p->loop) < o->addrs_until) {
        conn_try_connect(c);
        return;
    }
    int rc = lit < 0 ? -EINVAL : 0;
    if (lit == 0 && p->o.dns == NULL) {
        snprintf(err, sizeof err, "cannot resolve %s: no resolver configured", o->host);
        rc = -EINVAL;
    } else if (lit == 0) {
        rc = dns_hostaddr_start(p->loop, p->o.dns, o->host, o->port, AF_UNSPEC, on_addrs, c,
                                &c->dns);
        if (rc != 0)
            snprintf(err, sizeof err, "cannot resolve %s: %s", o->host,
                     rc == -EINVAL ? "not a host name" : strerror(-rc));
    }
    if (rc != 0) {
        conn_close(c);
        req_fail(r, CLIENT_E_RESOLVE, err);
    }
}

/* Is an idle connection still open? A server that closed it made it
 * readable (EOF); anything readable while idle is unusable too. */
static int conn_alive(struct conn *c)
{
    char b;
    ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void req_attach(client_req_t *r)
{
    client_pool_t *p = r->pool;
    struct origin *o = origin_get(p, r->host, r->port);
    if (o == NULL) {
        req_fail(r, CLIENT_E_NOMEM, "out of memory");
        return;
    }
    if (!r->retried) {
        while (o->idle != NULL) {
            struct conn *c = o->idle;
            idle_remove(c);
            /* A request that would be sent again on a new connection if
             * this one turns out closed needs no probe (a syscall). */
            if ((!r->idempotent || r->no_retry || r->body == CLIENT_BODY_STREAM) && !conn_alive(c)) {
                p->st.idle_closed++;
                c->state = C_BUSY; /* so that close does not search the idle list */
                conn_close(c);
                continue;
            }
            c->state = C_BUSY;
            c->req = r;
            r->c = c;
            r->reused = 1;
            p->st.reuses++;
            conn_start_request(c);
            return;
        }
    }
    conn_open(r, o);
}

/* The response ended cleanly: the connection goes back to the pool or
 * closes. */
static void conn_release(struct conn *c, int reusable)
{
    client_pool_t *p = c->pool;
    c->req = NULL;
    c->served++;
    struct origin *o = c->o;
    if (c->peer_closed && reusable) {
        p->st.idle_closed++;
        reusable = 0;
    }
    if (!reusable || c->in.len > 0 || o->nidle >= p->o.max_idle) {
        conn_close(c);
        return;
    }
    if (c->in.size > CLIENT_READ_CHUNK) { /* a large head grew it: give it back */
        buf_dispose(&c->in);
        buf_init(&c->in, p->o.max_head + CLIENT_READ_CHUNK);
    } else {
        buf_reset(&c->in); /* kept for the next response: no malloc per request */
    }
    c->state = C_IDLE;
    c->next_idle = o->idle;
    o->idle = c;
    o->nidle++;
    timer_arm(c, p->o.idle_timeout_ms);
}

/* --------------------------------------------------------- requests */

static void req_sink_close(client_req_t *r)
{
    for (int i = 0; i < 2; i++) {
        if (r->pipe_fd[i] >= 0)
            close(r->pipe_fd[i]);
        r->pipe_fd[i] = -1;
    }
    r->sink_fd = -1;
}

static void req_free_now(client_req_t *r)
{
    req_sink_close(r);
    buf_dispose(&r->head);
    buf_dispose(&r->out);
    free(r);
}

static void req_unlink(client_req_t *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (r->pool->reqs == r)
        r->pool->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_deferred(void *arg)
{
    client_req_t *r = arg;
    if (r->state == R_DONE) {
        req_free_now(r);
        return;
    }
    if (r->state == R_NEW) {
        r->state = R_WAIT;
        req_attach(r);
    }
}

/* Ends a request: unlinks it and frees it at the safe point. */
static void req_end(client_req_t *r)
{
    r->state = R_DONE;
    req_sink_close(r);
    req_unlink(r);
    r->c = NULL;
    loop_defer(r->pool->loop, &r->defer, req_deferred, r);
}

static void req_fail(client_req_t *r, enum client_err e, const char *msg)
{
    if (r->state == R_DONE)
        return;
    struct conn *c = r->c;
    if (c != NULL) {
        c->req = NULL;
        conn_close(c);
    }
    req_end(r);
    if (!r->cancelled && r->cbs.on_error != NULL)
        r->cbs.on_error(r, e, msg, r->arg);
}

static int token_ok(slice_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (!http_tchar[(unsigned char)s.p[i]])
            return 0;
    return 1;
}

static int value_ok(slice_t s, int allow_space)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '\r' || c == '\n' || c == 0 || (!allow_space && c == ' '))
            return 0;
    }
    return 1;
}

static int idempotent(enum http_method m)
{
    return m == HTTP_M_GET || m == HTTP_M_HEAD || m == HTTP_M_PUT || m == HTTP_M_DELETE ||
           m == HTTP_M_OPTIONS || m == HTTP_M_TRACE;
}

#define PUT(b, s, n) do { if (buf_append((b), (s), (n)) != 0) goto nomem; } while (0)
#define PUTS(b, s) PUT(b, s, strlen(s))

static int build_head(client_req_t *r, const client_req_opts_t *o)
{
    buf_t *b = &r->head;
    int has_host = 0, has_cl = 0, has_te = 0;
    char line[64];
    PUT(b, o->method.p, o->method.len);
    PUT(b, " ", 1);
    PUT(b, o->target.p, o->target.len);
    PUTS(b, " HTTP/1.1\r\n");
    for (size_t i = 0; i < o->nfields; i++) {
        const http_field_t *f = &o->fields[i];
        if (http_slice_ieq(f->name, "host"))
            has_host = 1;
        else if (http_slice_ieq(f->name, "content-length"))
            has_cl = 1;
        else if (http_slice_ieq(f->name, "transfer-encoding"))
            has_te = 1;
    }
    if (!has_host) {
        int v6 = memchr(o->host.p, ':', o->host.len) != NULL;
        PUTS(b, "Host: ");
        if (v6)
            PUT(b, "[", 1);
        PUT(b, o->host.p, o->host.len);
        if (v6)
            PUT(b, "]", 1);
        if (o->port != 80) {
            snprintf(line, sizeof line, ":%u", (unsigned)o->port);
            PUTS(b, line);
        }
        PUTS(b, "\r\n");
    }
    for (size_t i = 0; i < o->nfields; i++) {
        const http_field_t *f = &o->fields[i];
        PUT(b, f->name.p, f->name.len);
        PUT(b, ": ", 2);
        PUT(b, f->value.p, f->value.len);
        PUT(b, "\r\n", 2);
    }
    if (o->body == CLIENT_BODY_DATA && !has_cl && !has_te) {
        snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)o->body_len);
        PUTS(b, line);
    } else if (o->body == CLIENT_BODY_STREAM && !has_cl && !has_te) {
        if (o->body_len >= 0) {
            snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)o->body_len);
            PUTS(b, line);
        } else {
            PUTS(b, "Transfer-Encoding: chunked\r\n");
        }
    }
    if (o->close)
        PUTS(b, "Connection: close\r\n");
    PUTS(b, "\r\n");
    return 0;
nomem:
    return -ENOMEM;
}

int client_request(client_pool_t *p, const client_req_opts_t *o, const client_cbs_t *cbs,
                   void *arg, client_req_t **out)
{
    if (o->host.len == 0 || o->host.len > CLIENT_HOST_MAX || o->port == 0 ||
        memchr(o->host.p, '\0', o->host.len) != NULL || !token_ok(o->method) ||
        o->target.len == 0 || !value_ok(o->target, 0) ||
        (o->body == CLIENT_BODY_DATA && (o->body_len < 0 || (o->body_len > 0 && !o->body_data))))
        return -EINVAL;
    for (size_t i = 0; i < o->nfields; i++)
        if (!token_ok(o->fields[i].name) || !value_ok(o->fields[i].value, 1))
            return -EINVAL;
    client_req_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->sink_fd = r->pipe_fd[0] = r->pipe_fd[1] = -1;
    r->pool = p;
    r->cbs = *cbs;
    r->arg = arg;
    memcpy(r->host, o->host.p, o->host.len);
    r->host[o->host.len] = '\0';
    r->port = o->port;
    r->method = http_method_lookup(o->method);
    r->idempotent = idempotent(r->method);
    r->no_retry = o->no_retry;
    r->close = o->close;
    r->body = o->body;
    r->body_data = o->body_data;
    r->body_len = o->body == CLIENT_BODY_NONE ? 0 : o->body_len;
    buf_init(&r->head, SIZE_MAX);
    buf_init(&r->out, CLIENT_SEND_BUF_CAP + 64);
    if (build_head(r, o) != 0) {
        req_free_now(r);
        return -ENOMEM;
    }
    r->state = R_NEW;
    r->next = p->reqs;
    if (p->reqs != NULL)
        p->reqs->prev = r;
    p->reqs = r;
    loop_defer(p->loop, &r->defer, req_deferred, r);
    if (out != NULL)
        *out = r;
    return 0;
}

void client_req_cancel(client_req_t *r)
{
    if (r->state == R_DONE)
        return;
    r->cancelled = 1;
    struct conn *c = r->c;
    if (c != NULL) {
        c->req = NULL;
        conn_close(c);
    }
    req_end(r);
}

void client_req_info(const client_req_t *r, client_conn_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->reused = r->reused;
    info->retried = r->retried;
    if (r->c != NULL) {
        info->peer = r->c->peer;
        info->conn_id = r->c->id;
    }
}

static int body_complete(const client_req_t *r)
{
    switch (r->body) {
    case CLIENT_BODY_NONE:
        return 1;
    case CLIENT_BODY_DATA:
        return r->body_sent == (uint64_t)r->body_len;
    case CLIENT_BODY_STREAM:
        return r->finished && r->out.len == 0;
    }
    return 1;
}

int client_req_write(client_req_t *r, const void *p, size_t n)
{
    if (r->state == R_DONE)
        return -EPIPE;
    if (r->body != CLIENT_BODY_STREAM || r->finished)
        return -EINVAL;
    if (r->body_len >= 0 && r->streamed + n > (uint64_t)r->body_len)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (r->out.len + n > CLIENT_SEND_BUF_CAP)
        return -ENOBUFS;
    if (r->body_len < 0) {
        char line[24];
        size_t k = http_chunk_head(line, n);
        if (buf_append(&r->out, line, k) != 0 || buf_append(&r->out, p, n) != 0 ||
            buf_append(&r->out, "\r\n", 2) != 0)
            return -ENOMEM;
    } else if (buf_append(&r->out, p, n) != 0) {
        return -ENOMEM;
    }
    r->streamed += n;
    if (r->c != NULL && r->c->state == C_BUSY && !r->in_send)
        conn_send(r->c);
    return 0;
}

int client_req_finish(client_req_t *r)
{
    if (r->state == R_DONE)
        return -EPIPE;
    if (r->body != CLIENT_BODY_STREAM || r->finished)
        return -EINVAL;
    if (r->body_len >= 0 && r->streamed != (uint64_t)r->body_len)
        return -EINVAL;
    if (r->body_len < 0 &&
        buf_append(&r->out, HTTP_CHUNK_LAST, sizeof HTTP_CHUNK_LAST - 1) != 0)
        return -ENOMEM;
    r->finished = 1;
    if (r->c != NULL && r->c->state == C_BUSY && !r->in_send)
        conn_send(r->c);
    return 0;
}

/* ----------------------------------------------------------- sending */

/* Sends what the request has queued until the socket is full. in_send
 * stays set across the on_drain calls, so that client_req_write() from
 * inside them only queues: the loop here sends it, and a body that keeps
 * coming never recurses. */
static void conn_send(struct conn *c)
{
    client_req_t *r = c->req;
    if (r == NULL || r->state == R_DONE || r->in_send)
        return;
    r->in_send = 1;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (r->head_sent < r->head.len)
            iov[n++] = (struct iovec){ buf_head(&r->head) + r->head_sent,
                                       r->head.len - r->head_sent };
        if (r->body == CLIENT_BODY_DATA && r->body_sent < (uint64_t)r->body_len)
            iov[n++] = (struct iovec){ (char *)r->body_data + r->body_sent,
                                       (size_t)((uint64_t)r->body_len - r->body_sent) };
        else if (r->body == CLIENT_BODY_STREAM && r->out.len > 0)
            iov[n++] = (struct iovec){ buf_head(&r->out), r->out.len };
        if (n == 0) {
            /* Everything queued went out: ask for more. */
            if (r->body == CLIENT_BODY_STREAM && !r->finished && r->cbs.on_drain != NULL) {
                r->cbs.on_drain(r, r->arg);
                if (r->state == R_DONE || r->c != c)
                    return;
                if (r->out.len > 0 || r->finished)
                    continue;
            }
            break;
        }
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t w = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            r->in_send = 0;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            char msg[128];
            snprintf(msg, sizeof msg, "sending the request failed: %s", strerror(errno));
            conn_fail(c, CLIENT_E_SEND, msg);
            return;
        }
        size_t left = (size_t)w;
        size_t h = r->head.len - r->head_sent;
        if (h > left)
            h = left;
        r->head_sent += h;
        left -= h;
        if (r->body == CLIENT_BODY_DATA)
            r->body_sent += left;
        else if (r->body == CLIENT_BODY_STREAM)
            buf_consume(&r->out, left);
        if (r->state == R_WAIT)
            timer_arm(c, c->pool->o.read_timeout_ms);
        if (r->body == CLIENT_BODY_STREAM && !r->finished && r->out.len > 0 &&
            r->out.len < CLIENT_SEND_LOW_WATER && r->cbs.on_drain != NULL) {
            /* Top up before the queue runs dry. */
            r->cbs.on_drain(r, r->arg);
            if (r->state == R_DONE || r->c != c)
                return;
        }
    }
    r->in_send = 0;
    if (body_complete(r) && r->state == R_WAIT) {
        r->state = R_HEAD;
        timer_arm(c, c->pool->o.header_timeout_ms);
    }
}

/* ----------------------------------------------------------- reading */

/* The response is complete. */
static void req_complete(client_req_t *r)
{
    struct conn *c = r->c;
    int reusable = r->keep_alive && !r->close && body_complete(r) && c != NULL &&
                   c->state == C_BUSY;
    req_end(r);
    if (c != NULL) {
        c->req = NULL;
        conn_release(c, reusable);
    }
    if (!r->cancelled && r->cbs.on_end != NULL)
        r->cbs.on_end(r, r->arg);
}

/* Parses what the read buffer holds. Returns 0 to go on reading, 1 when
 * the request ended or paused (stop reading). */
static int conn_process(struct conn *c)
{
    client_req_t *r = c->req;
    const char *why;
    while (r != NULL && c->req == r && r->state != R_DONE) {
        if (r->state == R_WAIT || r->state == R_HEAD) {
            http_response_t res;
            int rc = http_parse_response(buf_head(&c->in), c->in.len, &r->ps, c->pool->o.max_head,
                                         c->pool->o.max_fields, c->pool->fields, &res, &why);
            if (rc == HTTP_PARSE_INCOMPLETE)
                return 0;
            if (rc < 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "bad response: %s", why);
                req_fail(r, CLIENT_E_PROTOCOL, msg);
                return 1;
            }
            if (res.status < 200) {
                if (res.status == 101) {
                    req_fail(r, CLIENT_E_PROTOCOL,
                             "bad response: 101 Switching Protocols was not asked for");
                    return 1;
                }
                if (++r->ninfo > c->pool->o.max_info) {
                    req_fail(r, CLIENT_E_PROTOCOL, "bad response: too many 1xx responses");
                    return 1;
                }
                if (r->cbs.on_info != NULL)
                    r->cbs.on_info(r, &res, r->arg);
                if (r->state == R_DONE)
                    return 1;
                buf_consume(&c->in, (size_t)rc);
                http_parse_state_init(&r->ps);
                continue;
            }
            http_body_init(&r->dec, r->method, &res);
            r->keep_alive = res.keep_alive && r->dec.kind != HTTP_BODY_CLOSE;
            r->state = R_BODY;
            timer_arm(c, c->pool->o.read_timeout_ms);
            if (r->cbs.on_head != NULL)
                r->cbs.on_head(r, &res, r->arg);
            if (r->state == R_DONE)
                return 1;
            buf_consume(&c->in, (size_t)rc);
            continue;
        }
        /* R_BODY */
        if (r->paused)
            return 1;
        size_t used;
        slice_t data;
        int rc = http_body_decode(&r->dec, buf_head(&c->in), c->in.len, &used, &data, &why);
        if (rc == HTTP_BODY_DATA) {
            int p = r->cbs.on_data != NULL ? r->cbs.on_data(r, data, r->arg) : 0;
            if (r->state == R_DONE)
                return 1;
            buf_consume(&c->in, used);
            if (p == CLIENT_PAUSE) {
                /* The caller holds us back: no read timeout runs meanwhile. */
                r->paused = 1;
                loop_timer_cancel(c->pool->loop, &c->timer);
                return 1;
            }
            continue;
        }
        if (rc == HTTP_BODY_MORE) {
            buf_consume(&c->in, used);
            return 0;
        }
        if (rc == HTTP_BODY_DONE) {
            buf_consume(&c->in, used);
            req_complete(r);
            return 1;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "bad response body: %s", why);
        req_fail(r, CLIENT_E_PROTOCOL, msg);
        return 1;
    }
    return 1;
}

static void conn_eof(struct conn *c, int err)
{
    client_req_t *r = c->req;
    char msg[160];
    if (r == NULL || r->state == R_DONE) {
        conn_close(c);
        return;
    }
    if (r->state == R_BODY) {
        const char *why;
        if (err == 0 && http_body_eof(&r->dec, &why) == HTTP_BODY_DONE) {
            r->keep_alive = 0;
            req_complete(r);
            return;
        }
        if (err != 0) {
            /* A failure, not an end: as curl, a receive error. */
            snprintf(msg, sizeof msg, "connection failed during the body: %s", strerror(err));
            req_fail(r, CLIENT_E_RECV, msg);
            return;
        }
        snprintf(msg, sizeof msg, "%s", why);
        req_fail(r, CLIENT_E_TRUNCATED, msg);
        return;
    }
    if (err != 0)
        snprintf(msg, sizeof msg, "connection failed before the response: %s", strerror(err));
    else if (c->in.len > 0)
        snprintf(msg, sizeof msg, "connection closed inside the response head");
    else
        snprintf(msg, sizeof msg, "connection closed before the response");
    conn_fail(c, err == 0 && c->in.len == 0 && !r->got_bytes ? CLIENT_E_EMPTY : CLIENT_E_RECV,
              msg);
}

/* While a sink waits for the socket, SO_RCVLOWAT (the remaining length,
 * at most CLIENT_SPLICE_LOWAT) wakes the loop for a batch of bytes rather
 * than for every segment; off (the default, 1) before the connection
 * reads anything else. A refusal only means more wakeups. */
static void sink_lowat(struct conn *c, client_req_t *r, int on)
{
    int v = 1;
    if (on) {
        uint64_t want = r->dec.remaining < CLIENT_SPLICE_LOWAT ? r->dec.remaining
                                                               : CLIENT_SPLICE_LOWAT;
        v = want > 1 ? (int)want : 1;
    }
    if (v == (r->lowat ? r->lowat : 1))
        return;
    if (setsockopt(c->io.fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0)
        r->lowat = v > 1 ? v : 0;
}

/* The read timeout fired while SO_RCVLOWAT held bytes back: bytes that
 * came are progress, not a stall. Returns 1 when they were taken (the
 * timer is armed again, or the request ended). */
static int sink_timer_check(struct conn *c, client_req_t *r)
{
    int queued = 0;
    if (r->lowat == 0 || r->state != R_BODY || r->sink_fd < 0 ||
        ioctl(c->io.fd, FIONREAD, &queued) != 0 || queued <= 0)
        return 0;
    timer_arm(c, c->pool->o.read_timeout_ms);
    conn_read(c);
    return 1;
}

/* splice(2) moved nothing to the sink (EINVAL: it cannot take a splice,
 * as a file opened O_APPEND): the n bytes already in the pipe go back to
 * the read buffer, the sink is dropped and the ordinary path goes on.
 * c->in is empty here and n <= CLIENT_READ_CHUNK. Returns 0, or 1 when
 * the request failed. */
static int sink_fall_back(struct conn *c, client_req_t *r, size_t n)
{
    if (buf_reserve(&c->in, CLIENT_READ_CHUNK) != 0) {
        req_fail(r, CLIENT_E_NOMEM, "out of memory for the response");
        return 1;
    }
    sink_lowat(c, r, 0);
    while (n > 0) {
        ssize_t m = read(r->pipe_fd[0], buf_tail(&c->in), n);
        if (m == -1 && errno == EINTR)
            continue;
        if (m <= 0) {
            req_fail(r, CLIENT_E_RECV, "cannot take the body back from the splice pipe");
            return 1;
        }
        buf_commit(&c->in, (size_t)m);
        n -= (size_t)m;
    }
    req_sink_close(r);
    return 0;
}

/* Empties the pipe (n bytes) into the sink. Returns 0, 1 when the request
 * ended (failed, or cancelled from on_sunk), -1 after a fall back. */
static int sink_drain(struct conn *c, client_req_t *r, size_t n)
{
    while (n > 0) {
        ssize_t m = splice(r->pipe_fd[0], NULL, r->sink_fd, NULL, n, SPLICE_F_MOVE);
        if (m == -1 && errno == EINTR)
            continue;
        if (m == -1 && errno == EINVAL && !r->sunk)
            return sink_fall_back(c, r, n) == 0 ? -1 : 1;
        if (m == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A sink opened non-blocking by someone else (an inherited
             * stdout): wait for it, as a blocking write would. */
            int rc = fs_wait_writable(r->sink_fd);
            if (rc == 0)
                continue;
            errno = -rc;
        }
        if (m <= 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "write error: %s",
                     m == 0 ? "the output took no bytes" : strerror(errno));
            req_fail(r, CLIENT_E_SINK, msg);
            return 1;
        }
        r->sunk = 1;
        n -= (size_t)m;
        r->dec.remaining -= (uint64_t)m;
        if (r->cbs.on_sunk != NULL)
            r->cbs.on_sunk(r, (size_t)m, r->arg);
        if (r->state == R_DONE)
            return 1;
    }
    return 0;
}

/* Moves the rest of a Content-Length body from the socket to the sink
 * through the pipe, never more than the body's remaining length, so the
 * next response on the connection stays in the socket. Returns 0 to wait
 * for the socket, 1 when the request ended, -1 when it fell back to reads
 * (the sink could not take a splice; c->in may hold body bytes). */
static int conn_splice(struct conn *c, client_req_t *r)
{
    if (r->pipe_fd[0] < 0) {
        /* Once per request, and only when the body did not all come with
         * the first reads (small bodies never pay for it). Blocking: a
         * full sink pipe (stdout) waits as write(2) would; the socket side
         * is SPLICE_F_NONBLOCK, into a pipe always empty. */
        if (pipe2(r->pipe_fd, O_CLOEXEC) != 0) {
            r->pipe_fd[0] = r->pipe_fd[1] = -1;
            req_sink_close(r);
            return -1; /* no pipe (EMFILE): the ordinary path */
        }
        /* Fewer, larger moves; the default size stays when the system's
         * pipe-max-size (or the user's pipe quota) says no. */
        (void)fcntl(r->pipe_fd[1], F_SETPIPE_SZ, (int)CLIENT_SPLICE_PIPE);
    }
    for (;;) {
        /* Until the sink took a first splice, no more than the read buffer
         * could take back if it cannot. */
        uint64_t want = r->sunk ? CLIENT_SPLICE_PIPE : CLIENT_READ_CHUNK;
        if (want > r->dec.remaining)
            want = r->dec.remaining;
        ssize_t n = splice(c->io.fd, NULL, r->pipe_fd[1], NULL, (size_t)want,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0) {
            conn_eof(c, 0); /* remaining > 0: a truncated body */
            return 1;
        }
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                sink_lowat(c, r, 1);
                return 0;
            }
            if (errno == EINVAL && !r->sunk) {
                sink_lowat(c, r, 0);
                req_sink_close(r);
                return -1;
            }
            conn_eof(c, errno);
            return 1;
        }
        r->got_bytes = 1;
        timer_arm(c, c->pool->o.read_timeout_ms);
        int rc = sink_drain(c, r, (size_t)n);
        if (rc != 0)
            return rc;
        if (r->dec.remaining == 0) {
            sink_lowat(c, r, 0);
            req_complete(r);
            return 1;
        }
    }
}

int client_req_sink(client_req_t *r, int fd)
{
    if (r->state != R_BODY || r->dec.kind != HTTP_BODY_LENGTH || r->dec.remaining == 0 ||
        r->paused || fd < 0)
        return -EINVAL;
    r->sink_fd = fd; /* the pipe is made when a splice is due */
    return 0;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        client_req_t *r = c->req;
        if (c->state != C_BUSY || r == NULL || r->state == R_DONE)
            return;
        if (conn_process(c) != 0)
            return;
        if (r->sink_fd >= 0 && r->state == R_BODY && c->in.len == 0) {
            if (conn_splice(c, r) >= 0)
                return;
            continue; /* fell back: the bytes taken back, if any, first */
        }
        if (buf_reserve(&c->in, CLIENT_READ_CHUNK) != 0) {
            /* Only a head can fill the buffer: the parser reports the limit
             * once the cap is reached, so this is memory. */
            req_fail(r, CLIENT_E_NOMEM, "out of memory for the response");
            return;
        }
        ssize_t n = recv(c->io.fd, buf_tail(&c->in), buf_room(&c->in), 0);
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
            r->got_bytes = 1;
            /* The header timeout is a deadline from the end of sending to
             * the final head: bytes of a head trickled in do not move it. */
            if (r->state != R_HEAD)
                timer_arm(c, c->pool->o.read_timeout_ms);
            continue;
        }
        if (n == 0) {
            conn_eof(c, 0);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        conn_eof(c, errno);
        return;
    }
}

void client_req_resume(client_req_t *r)
{
    if (r->state != R_BODY || !r->paused)
        return;
    r->paused = 0;
    if (r->c != NULL) {
        timer_arm(r->c, r->pool->o.read_timeout_ms);
        conn_read(r->c);
    }
}

static void conn_io(io_t *io, uint32_t ev)
{
    struct conn *c = io->arg;
    switch (c->state) {
    case C_CONNECTING:
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_connect_result(c);
        return;
    case C_IDLE:
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
            c->pool->st.idle_closed++;
            conn_close(c);
        }
        return;
    case C_BUSY:
        if (ev & (EPOLLRDHUP | EPOLLHUP))
            c->peer_closed = 1; /* this edge will not come again once idle */
        if (ev & (EPOLLOUT | EPOLLERR))
            conn_send(c);
        if (c->state == C_BUSY && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            conn_read(c);
        return;
    default:
        return;
    }
}
