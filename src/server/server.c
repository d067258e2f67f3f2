#include "server/server.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/workers.h"
#include "http/chunked.h"
#include "http/date.h"
#include "http/status.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HS_SCRATCH_CAP   (32u * 1024u * 1024u) /* header block + generated body */
#define HS_BODY_CAP      (16u * 1024u * 1024u) /* a generated body (a listing) */
#define HS_OUT_CAP       (64u * 1024u * 1024u)
#define HS_ALOG_FLUSH    (32u * 1024u)
#define HS_ALOG_CAP      (256u * 1024u)
#define HS_ALOG_EVERY_MS 1000u
#define HS_SENDFILE_MAX  (1u << 30)
/* A connection's timer armed for at most this much earlier than a new
 * deadline is left alone: it fires early and moves itself on. Keeps the
 * heap untouched on most requests of a kept-alive connection. */
#define HS_TIMER_LAZY_MS 1000u
#define HS_ACCEPT_PER_EVENT 1
#define HS_STREAM_HIGH   (256u * 1024u)        /* queued body: writers pause */
#define HS_STREAM_LOW    (64u * 1024u)         /* and resume below this */

enum { C_READ, C_WRITE, C_DISCARD, C_LINGER, C_BODY, C_WAIT };
enum { F_DONE, F_AGAIN, F_ERR };

struct hs_conn {
    io_t io;
    struct hs_worker *w;
    struct hs_conn *prev, *next;
    char *rbuf;              /* read block, NULL while idle */
    uint32_t rlen, rpos;     /* bytes in rbuf; start of the current request */
    http_parse_state_t ps;
    ptimer_t timer;
    uint64_t deadline;       /* when the timer is really due (loop ms) */
    uint8_t state;
    uint8_t close_after;     /* close once the current response is out */
    uint8_t linger;          /* and read what the client still sends first */
    uint8_t drained;         /* the last recv emptied the socket; no event since */
    uint8_t head_timer;      /* the timer runs for a head in progress */
    uint8_t corked;          /* the last response waits in the socket for the FIN */
    uint32_t nreq;
    int file_fd;
    void (*file_release)(void *);   /* NULL: the engine owns file_fd */
    const char *file_map;    /* non-NULL: the file's bytes are mapped here */
    void *file_ref;
    off_t file_off;
    uint64_t file_left;
    uint64_t discard_left;   /* request body bytes to drop */
    hs_req_t *req;           /* the request being answered, NULL between */
    buf_t out;               /* response bytes not yet sent */
    loop_defer_t dfree;
    loop_defer_t dkick;
    int head_held;           /* a streamed head waits in out for its body */
    union {                  /* from accept (hs_peer), compact: an addr_t */
        struct sockaddr_in in;   /* would add 104 bytes to every connection */
        struct sockaddr_in6 in6;
    } peer;
    socklen_t peer_len;      /* 0: unknown, ask the socket */
    const char *mem;         /* hs_resp_mem_ref: body bytes not yet sent */
    size_t mem_left;
    void (*mem_release)(void *);
    void *mem_ref;      /* a streamed response got bytes: send them */
};

struct hs_server;

struct hs_worker {
    struct hs_server *s;
    loop_t *loop;
    int idx;
    int fds[HS_MAX_LISTEN];
    io_t lis[HS_MAX_LISTEN];
    int nlis;
    int paused;                /* listeners off: at max connections or out of fds */
    int stopping;
    struct hs_conn *conns;
    size_t nconns, max_conns;
    ptimer_t stop_timer;
    ptimer_t pause_timer;
    ptimer_t alog_timer;
    pool_t rpool;
    buf_t scratch;
    buf_t body;                /* generated bodies, see hs_scratch() */
    buf_t alog;
    http_field_t *fields;
    http_request_t parsed;     /* the parser's output, copied into a hs_req_t */
    hs_req_t *free_reqs;
    size_t holds;              /* requests held by the handler (hs_hold) */
    void *hctx;
    time_t date_sec;
    char date[HTTP_DATE_LEN + 1];
    char clf_date[32];
};

struct hs_server {
    const struct hs_config *cfg;
    const struct hs_handler *h;
    void *harg;
    struct hs_worker *w;
    size_t rbuf_size;
    _Atomic int alog_fd;       /* -1: off */
    const char *alog_path;     /* NULL for stdout */
};

static void conn_run(struct hs_conn *c);
static void stream_gone(hs_req_t *r);
static int stream_wait(struct hs_conn *c);

/* ------------------------------------------------------------ helpers */

static void worker_clock(struct hs_worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == w->date_sec)
        return;
    w->date_sec = ts.tv_sec;
    http_date_format(w->date, ts.tv_sec);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(w->clf_date, sizeof w->clf_date, "%d/%b/%Y:%H:%M:%S +0000", &tm);
}

static void put(buf_t *b, const char *p, size_t n)
{
    /* The scratch cap is far above any header block portico builds; a
     * failed append shows up as a truncated response, caught by tests. */
    if (buf_append(b, p, n) < 0)
        log_error("response buffer full");
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    size_t k = sizeof tmp;
    do {
        tmp[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + k, sizeof tmp - k);
}

/* --------------------------------------------------------- access log */

static void alog_flush(struct hs_worker *w)
{
    int fd = atomic_load(&w->s->alog_fd);
    size_t off = 0;
    while (off < w->alog.len && fd >= 0) {
        ssize_t n = write(fd, buf_head(&w->alog) + off, w->alog.len - off);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            break; /* a full disk or closed pipe: drop the lines, keep serving */
        }
        off += (size_t)n;
    }
    buf_reset(&w->alog);
}

static void alog_escape(buf_t *b, slice_t s)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
            put(b, e, 4);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
}

/* The request's own parts of a Combined Log Format line: the request line
 * (part 0) and the quoted referer and user agent (part 1). */
static void alog_part(buf_t *b, const hs_req_t *r, int part)
{
    if (r->alog == NULL && r->alog_tried) {
        puts_(b, part == 0 ? "-" : "\"-\" \"-\""); /* the copy failed: the head is gone */
        return;
    }
    if (r->alog != NULL) {
        const char *p = r->alog;
        if (part == 1)
            p += strlen(p) + 1;
        puts_(b, p);
        return;
    }
    if (part == 0) {
        if (r->req.method.len) {
            alog_escape(b, r->req.method);
            puts_(b, " ");
            alog_escape(b, r->req.target);
            puts_(b, r->req.version == 11 ? " HTTP/1.1" : " HTTP/1.0");
        } else {
            puts_(b, "-");
        }
        return;
    }
    const http_field_t *ref = r->req.nfields ? http_find_field(&r->req, "referer") : NULL;
    const http_field_t *ua = r->req.nfields ? http_find_field(&r->req, "user-agent") : NULL;
    puts_(b, "\"");
    if (ref)
        alog_escape(b, ref->value);
    else
        puts_(b, "-");
    puts_(b, "\" \"");
    if (ua)
        alog_escape(b, ua->value);
    else
        puts_(b, "-");
    puts_(b, "\"");
}

/* Keeps the log's request parts once the head they point into goes away
 * (a body is read over it, or the answer comes later). */
static void alog_copy(hs_req_t *r)
{
    if (r->alog != NULL || atomic_load_explicit(&r->w->s->alog_fd, memory_order_relaxed) < 0)
        return;
    /* Escaping makes a byte at most 4: room for the whole head so escaped. */
    r->alog_tried = 1;
    buf_t b;
    buf_init(&b, 4 * r->req.head_len + 64);
    alog_part(&b, r, 0);
    buf_append(&b, "", 1);
    alog_part(&b, r, 1);
    int rc = buf_append(&b, "", 1);
    static const char none[] = "-\0\"-\" \"-\"";
    const char *src = rc == 0 ? buf_head(&b) : none;
    size_t n = rc == 0 ? b.len : sizeof none;
    /* Never fall back to r->req later: its slices die with the head. */
    r->alog = malloc(n);
    if (r->alog != NULL)
        memcpy(r->alog, src, n);
    buf_dispose(&b);
}

/* The client's address as accept() gave it, or from the socket. */
static int conn_peer(const struct hs_conn *c, addr_t *a)
{
    if (c->peer_len == 0)
        return sock_peer(c->io.fd, a);
    memset(a, 0, sizeof *a);
    memcpy(&a->ss, &c->peer, c->peer_len);
    a->len = c->peer_len;
    return 0;
}

/* Combined Log Format: host ident user [date] "request" status bytes
 * "referer" "user-agent". */
static void alog_request(struct hs_worker *w, struct hs_conn *c, hs_req_t *r)
{
    if (atomic_load_explicit(&w->s->alog_fd, memory_order_relaxed) < 0)
        return;
    buf_t *b = &w->alog;
    addr_t peer;
    char a[ADDR_STRLEN];
    if (conn_peer(c, &peer) == 0) {
        addr_format(&peer, a, sizeof a);
        /* host only: strip ":port" and IPv6 brackets */
        char *colon = strrchr(a, ':');
        if (colon)
            *colon = '\0';
        if (a[0] == '[') {
            size_t n = strlen(a);
            memmove(a, a + 1, n);
            a[n - 2] = '\0';
        }
    } else {
        strcpy(a, "-");
    }
    puts_(b, a);
    puts_(b, " - - [");
    puts_(b, w->clf_date);
    puts_(b, "] \"");
    alog_part(b, r, 0);
    puts_(b, "\" ");
    put_u64(b, (uint64_t)r->status);
    puts_(b, " ");
    if (r->body_len && !r->head_only)
        put_u64(b, r->body_len);
    else
        puts_(b, "-");
    puts_(b, " ");
    alog_part(b, r, 1);
    puts_(b, "\n");
    if (b->len >= HS_ALOG_FLUSH)
        alog_flush(w);
}

static void on_alog_timer(ptimer_t *t, void *arg)
{
    (void)t;
    struct hs_worker *w = arg;
    if (w->alog.len)
        alog_flush(w);
    loop_timer_set(w->loop, &w->alog_timer, HS_ALOG_EVERY_MS);
}

/* ----------------------------------------------------- request objects */

static hs_req_t *req_new(struct hs_worker *w, struct hs_conn *c)
{
    hs_req_t *r = w->free_reqs;
    if (r != NULL)
        w->free_reqs = r->next_free;
    else if ((r = malloc(sizeof *r)) == NULL)
        return NULL;
    memset(r, 0, sizeof *r);
    r->conn = c;
    r->w = w;
    r->hdr = &w->scratch;
    return r;
}

static void req_free(hs_req_t *r)
{
    struct hs_worker *w = r->w;
    free(r->alog);
    free(r->parts);
    r->next_free = w->free_reqs;
    w->free_reqs = r;
}

/* ------------------------------------------------------ connections */

static void conn_free(void *arg)
{
    struct hs_conn *c = arg;
    if (c->dkick.queued) {
        /* A stream kick of this connection is still in the batch being
         * run (deferred calls run newest first): free after it. */
        loop_defer(c->w->loop, &c->dfree, conn_free, c);
        return;
    }
    free(c);
}

static void listeners_set(struct hs_worker *w, int on)
{
    for (int i = 0; i < w->nlis; i++)
        loop_io_mod(&w->lis[i], on ? EPOLLIN : 0);
    w->paused = !on;
}

static void conn_drop_mem(struct hs_conn *c);

static void conn_drop_file(struct hs_conn *c)
{
    conn_drop_mem(c);
    if (c->file_fd < 0)
        return;
    if (c->file_release != NULL)
        c->file_release(c->file_ref);
    else
        close(c->file_fd);
    c->file_fd = -1;
    c->file_release = NULL;
    c->file_map = NULL;
    c->file_left = 0;
}

static void worker_maybe_done(struct hs_worker *w)
{
    if (w->stopping && w->nconns == 0 && w->holds == 0)
        loop_break(w->loop);
}

/* Lets go of the current request: the handler is told when it is still
 * reading the body; a held request stays with the handler, marked gone. */
static void conn_drop_req(struct hs_conn *c)
{
    hs_req_t *r = c->req;
    if (r == NULL)
        return;
    c->req = NULL;
    if (r->held) {
        r->conn = NULL;
        return;
    }
    if (c->state == C_BODY && r->body_ops != NULL)
        r->body_ops->on_end(r, r->body_ctx, -1);
    stream_gone(r);
    if (r->held) {        /* on_end may not hold a request it cannot answer */
        r->conn = NULL;
        return;
    }
    req_free(r);
}

static void conn_close(struct hs_conn *c)
{
    struct hs_worker *w = c->w;
    loop_io_close_sole(&c->io); /* accepted here, never shared */
    loop_timer_cancel(w->loop, &c->timer);
    pool_put(&w->rpool, c->rbuf);
    c->rbuf = NULL;
    conn_drop_file(c);
    conn_drop_req(c);
    buf_dispose(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    loop_defer(w->loop, &c->dfree, conn_free, c);
    if (w->stopping) {
        worker_maybe_done(w);
    } else if (w->paused && w->nconns < w->max_conns && !timer_armed(&w->pause_timer)) {
        listeners_set(w, 1);
    }
}

static void conn_timer_set(struct hs_conn *c, uint32_t ms)
{
    loop_t *l = c->w->loop;
    c->deadline = loop_now(l) + ms;
    if (timer_armed(&c->timer) && c->deadline >= c->timer.when
        && c->deadline - c->timer.when <= HS_TIMER_LAZY_MS)
        return; /* on_conn_timer re-arms it for the rest */
    loop_timer_set(l, &c->timer, ms);
}

static void start_linger(struct hs_conn *c)
{
    shutdown(c->io.fd, SHUT_WR);
    c->state = C_LINGER;
    conn_timer_set(c, c->w->s->cfg->lim.linger_ms);
}

/* ---------------------------------------------------------- responses */

void hs_resp_start(hs_req_t *r, int status)
{
    buf_t *b = r->hdr;
    worker_clock(r->w); /* an answer after a long upload or a disk job */
    buf_reset(b);
    r->status = status;
    puts_(b, "HTTP/1.1 ");
    put_u64(b, (uint64_t)status);
    puts_(b, " ");
    puts_(b, http_reason(status));
    puts_(b, "\r\nServer: portico\r\nDate: ");
    put(b, r->w->date, HTTP_DATE_LEN);
    puts_(b, "\r\n");
}

void hs_resp_field(hs_req_t *r, const char *name, const char *value, size_t vlen)
{
    puts_(r->hdr, name);
    puts_(r->hdr, ": ");
    put(r->hdr, value, vlen);
    puts_(r->hdr, "\r\n");
}

void hs_resp_field_str(hs_req_t *r, const char *name, const char *value)
{
    hs_resp_field(r, name, value, strlen(value));
}

void hs_resp_close(hs_req_t *r)
{
    r->close = 1;
}

buf_t *hs_scratch(hs_req_t *r)
{
    buf_reset(&r->w->body);
    return &r->w->body;
}

static int unread_body_closes(const hs_req_t *r);

static void end_head(hs_req_t *r)
{
    /* A body nobody reads that is too large to drop makes the answer close
     * the connection: say so in the answer (RFC 9112 §9.6). */
    if (!r->close && unread_body_closes(r))
        r->close = 1;
    if (r->close)
        puts_(r->hdr, "Connection: close\r\n");
    else if (r->req.version == 10)
        puts_(r->hdr, "Connection: keep-alive\r\n");
    puts_(r->hdr, "\r\n");
    r->responded = 1;
}

static void content_length(hs_req_t *r, uint64_t len)
{
    puts_(r->hdr, "Content-Length: ");
    put_u64(r->hdr, len);
    puts_(r->hdr, "\r\n");
    r->body_len = len;
}

void hs_resp_file_ref(hs_req_t *r, int fd, uint64_t off, uint64_t len,
                      void (*release)(void *), void *ref)
{
    struct hs_conn *c = r->conn;
    content_length(r, len);
    end_head(r);
    c->file_fd = fd;
    c->file_release = release;
    c->file_ref = ref;
    c->file_off = (off_t)off;
    c->file_left = len;
    if (r->head_only || len == 0)
        conn_drop_file(c);
}

void hs_resp_file_mapped(hs_req_t *r, int fd, const char *map, uint64_t off, uint64_t len,
                         void (*release)(void *), void *ref)
{
    hs_resp_file_ref(r, fd, off, len, release, ref);
    if (r->conn->file_fd >= 0)
        r->conn->file_map = map;
}

void hs_resp_file_parts(hs_req_t *r, int fd, struct hs_part *parts, size_t n,
                        uint64_t total, void (*release)(void *), void *ref)
{
    struct hs_conn *c = r->conn;
    content_length(r, total);
    end_head(r);
    c->file_fd = fd;
    c->file_release = release;
    c->file_ref = ref;
    c->file_left = 0;
    if (r->head_only || n == 0) {
        free(parts);
        conn_drop_file(c);
        return;
    }
    r->parts = parts;
    r->nparts = n;
    r->part = 1;
    put(r->hdr, parts[0].mem, parts[0].memlen);
    c->file_off = (off_t)parts[0].off;
    c->file_left = parts[0].len;
}

void hs_resp_file(hs_req_t *r, int fd, uint64_t off, uint64_t len)
{
    hs_resp_file_ref(r, fd, off, len, NULL, NULL);
}

void hs_resp_body(hs_req_t *r, const char *p, size_t len)
{
    content_length(r, len);
    end_head(r);
    if (!r->head_only)
        put(r->hdr, p, len);
}

void hs_resp_dynamic(hs_req_t *r, const char *p, size_t len)
{
    r->body_len = len;
    if (r->req.version == 11) {
        puts_(r->hdr, "Transfer-Encoding: chunked\r\n");
        end_head(r);
        if (r->head_only)
            return;
        if (len > 0) {
            char ch[24];
            put(r->hdr, ch, http_chunk_head(ch, len));
            put(r->hdr, p, len);
            puts_(r->hdr, "\r\n");
        }
        puts_(r->hdr, "0\r\n\r\n");
    } else {
        r->close = 1;
        end_head(r);
        if (!r->head_only)
            put(r->hdr, p, len);
    }
}

void hs_resp_empty(hs_req_t *r)
{
    end_head(r);
}

static void error_page(hs_req_t *r)
{
    char page[512];
    int n = snprintf(page, sizeof page,
                     "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
                     "<body><h1>%d %s</h1></body></html>\n",
                     r->status, http_reason(r->status), r->status, http_reason(r->status));
    hs_resp_field_str(r, "Content-Type", "text/html; charset=utf-8");
    hs_resp_dynamic(r, page, (size_t)n);
}

void hs_resp_page(hs_req_t *r)
{
    error_page(r);
}

void hs_resp_error(hs_req_t *r, int status)
{
    hs_resp_start(r, status);
    error_page(r);
}

/* ------------------------------------------------------------ writing */

/* More body follows what is queued now: a file range or another part. */
static int more_coming(const struct hs_conn *c)
{
    return c->file_left > 0 || c->mem_left > 0 || (c->req != NULL && c->req->part < c->req->nparts);
}

/* MSG_MORE for the last bytes of a response after which the connection
 * closes: they wait in the socket for the close() (or the linger's
 * shutdown()) that follows at once, which sends them with the FIN in one
 * segment: one packet fewer for both ends. Not for a streamed body, whose
 * end is not known here, nor a tunnel's head. The close is then preceded
 * by shutdown(SHUT_WR) (response_done): close() alone, with input the
 * client sent that was never read, resets the connection and the kernel
 * drops the held bytes unsent. */
static int fin_follows(struct hs_conn *c)
{
    const hs_req_t *r = c->req;
    if (!c->close_after || (r != NULL && (r->streaming || r->tunnel_cb != NULL)))
        return 0; /* a tunnel keeps the socket: nothing would flush the head */
    c->corked = 1;
    return MSG_MORE;
}

/* Sends what the handler built in the worker's scratch buffer; what the
 * socket does not take is kept in c->out. */
static int conn_send_first_mem(struct hs_conn *c);

static void stream_queue_kick(struct hs_conn *c);

/* 1 when the head going out opens a streamed body not begun yet. */
static int stream_head_hold(const struct hs_conn *c)
{
    const hs_req_t *r = c->req;
    return r != NULL && r->streaming && !r->stream_ended && r->body_len == 0 && r->tunnel_cb == NULL &&
           c->out.len == 0 && c->file_left == 0 && !c->close_after;
}

static int conn_send_first(struct hs_conn *c)
{
    buf_t *s = &c->w->scratch;
    const char *p = buf_head(s);
    size_t n = s->len;
    if (c->mem_left > 0 && c->out.len == 0)
        return conn_send_first_mem(c);
    if (stream_head_hold(c)) {
        /* The body's first bytes usually come in the same loop turn: the
         * head waits in out for them (stream_kick sends both at once). */
        int rc = buf_append(&c->out, p, n);
        buf_reset(s);
        if (rc < 0)
            return F_ERR;
        c->head_held = 1;
        stream_queue_kick(c);
        return F_AGAIN;
    }
    if (c->out.len > 0) {
        /* Bytes already queued (a 100 Continue) go first. */
        int rc = buf_append(&c->out, p, n);
        buf_reset(s);
        return rc < 0 ? F_ERR : F_AGAIN;
    }
    if (c->file_map != NULL && c->file_left > 0) {
        /* Head and a mapped file's bytes in one sendmsg(): the kernel
         * copies from the page cache; portico never reads them. The file
         * was checked (fstat) by the cache just before; what the socket
         * does not take now leaves with sendfile() (conn_flush). */
        struct iovec iov[2] = {
            { (void *)p, n },
            { (void *)(c->file_map + c->file_off), (size_t)c->file_left },
        };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t k;
        int flags = MSG_NOSIGNAL | (c->req != NULL && c->req->part < c->req->nparts ? MSG_MORE : fin_follows(c));
        do
            k = sendmsg(c->io.fd, &mh, flags);
        while (k == -1 && errno == EINTR);
        if (k == -1 && errno != EAGAIN)
            return F_ERR; /* EFAULT too: the file shrank under its mapping */
        size_t sent = k > 0 ? (size_t)k : 0;
        if (sent < n && buf_append(&c->out, p + sent, n - sent) < 0)
            return F_ERR;
        if (sent > n) {
            c->file_off += (off_t)(sent - n);
            c->file_left -= sent - n;
        }
        buf_reset(s);
        return c->out.len > 0 || c->file_left > 0 ? F_AGAIN : F_DONE;
    }
    int more = more_coming(c) ? MSG_MORE : fin_follows(c);
    while (n > 0) {
        ssize_t k = send(c->io.fd, p, n, MSG_NOSIGNAL | more);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return F_ERR;
            break;
        }
        p += k;
        n -= (size_t)k;
    }
    if (n > 0 && buf_append(&c->out, p, n) < 0)
        return F_ERR;
    buf_reset(s);
    return n > 0 ? F_AGAIN : F_DONE;
}

static int conn_flush(struct hs_conn *c)
{
    if (c->head_held)
        return F_AGAIN; /* stream_kick sends it, with body bytes if any */
again:
    while (c->out.len > 0) {
        ssize_t k = send(c->io.fd, buf_head(&c->out), c->out.len,
                         MSG_NOSIGNAL | (more_coming(c) ? MSG_MORE : 0));
        if (k == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? F_AGAIN : F_ERR;
        }
        buf_consume(&c->out, (size_t)k);
    }
    while (c->mem_left > 0) {
        ssize_t k = send(c->io.fd, c->mem, c->mem_left, MSG_NOSIGNAL);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? F_AGAIN : F_ERR;
        }
        c->mem += k;
        c->mem_left -= (size_t)k;
    }
    while (c->file_left > 0) {
        size_t n = c->file_left > HS_SENDFILE_MAX ? HS_SENDFILE_MAX : (size_t)c->file_left;
        /* Never from the mapping, even for a mapped file: if the file
         * shrank since the head left, the mapping's last page reads as
         * zeros past the new end (EFAULT comes only past that page), where
         * sendfile() stops at the end and the connection closes. */
        ssize_t k = sendfile(c->io.fd, c->file_fd, &c->file_off, n);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? F_AGAIN : F_ERR;
        }
        if (k == 0) {
            /* The file shrank under us: the promised length cannot be met,
             * and only closing tells the client. */
            log_warn("file shorter than announced; closing the connection");
            return F_ERR;
        }
        c->file_left -= (uint64_t)k;
    }
    hs_req_t *r = c->req;
    if (r != NULL && r->part < r->nparts) {
        const struct hs_part *p = &r->parts[r->part++];
        if (buf_append(&c->out, p->mem, p->memlen) < 0)
            return F_ERR;
        c->file_off = (off_t)p->off;
        c->file_left = p->len;
        goto again;
    }
    return F_DONE;
}

/* The response is out: close, or get ready for the next request. Returns
 * 0 to go on, 1 to wait for the next readiness event, -1 when the
 * connection is closing. */
static int response_done(struct hs_conn *c)
{
    struct hs_worker *w = c->w;
    conn_drop_file(c);
    conn_drop_req(c);
    if (c->out.size > 4096)
        buf_dispose(&c->out);
    if (c->close_after) {
        if (c->linger || c->rlen > c->rpos) {
            start_linger(c);
        } else {
            if (c->corked)
                shutdown(c->io.fd, SHUT_WR); /* the held bytes leave with the FIN */
            conn_close(c);
        }
        return -1;
    }
    c->state = c->discard_left ? C_DISCARD : C_READ;
    int pending = c->rlen > c->rpos;
    c->head_timer = pending || c->discard_left;
    conn_timer_set(c, c->head_timer ? w->s->cfg->lim.header_timeout_ms
                                    : w->s->cfg->lim.idle_timeout_ms);
    if (!pending && !c->discard_left && c->drained) {
        /* Nothing buffered and the socket was empty when last read, with
         * no readiness event since: new bytes will bring a new edge, so a
         * recv now could only say EAGAIN. Give the block back and wait. */
        pool_put(&w->rpool, c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rpos = 0;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ requests */

/* Puts the answer the handler built in the scratch buffer on its way.
 * Returns 0, or -1 when the connection was closed. */
static int conn_answer(struct hs_conn *c)
{
    hs_req_t *r = c->req;
    if (r->close)
        c->close_after = 1;
    alog_request(c->w, c, r);
    c->state = C_WRITE;
    if (conn_send_first(c) == F_ERR) {
        conn_close(c);
        return -1;
    }
    return 0;
}

/* conn_fail() once the handler had its chance to answer the refusal
 * itself (on_refused, on_end): an answer it made with that status is kept,
 * for the fields it adds. */
static int conn_refused(struct hs_conn *c, int status)
{
    hs_req_t *r = c->req;
    r->close = 1;
    r->body_ops = NULL;
    c->linger = 1;
    if (!r->responded || r->status != status)
        hs_resp_error(r, status);
    c->rpos = c->rlen; /* framing is lost: nothing after this is read */
    return conn_answer(c);
}

/* Answers with an error and closes: the request cannot be read further. */
static int conn_fail(struct hs_conn *c, int status)
{
    c->req->responded = 0;
    return conn_refused(c, status);
}

/* The answer is ready and the handler did not read the body: a small one
 * is dropped to keep the connection; a large, chunked or awaited
 * (100-continue) one closes it, lingering so that the client sees the
 * answer. Never may body bytes be read as the next request. */
/* Whether r's body, if the handler leaves it unread, closes the connection. */
static int unread_body_closes(const hs_req_t *r)
{
    const http_request_t *q = &r->req;
    if (r->body_taken)
        return 0; /* read (or being read) by the handler */
    return q->chunked || (q->content_length > 0 &&
                          ((uint64_t)q->content_length > r->w->s->cfg->lim.discard_body || q->expect_continue));
}

static void unread_body(struct hs_conn *c)
{
    hs_req_t *r = c->req;
    const http_request_t *q = &r->req;
    if (r->body_taken)
        return; /* read (or being read) by the handler */
    if (unread_body_closes(r)) {
        r->close = 1;
        c->linger = 1;
    } else if (q->content_length > 0) {
        c->discard_left = (uint64_t)q->content_length;
    }
}

static void dispatch(struct hs_conn *c)
{
    struct hs_worker *w = c->w;
    const struct http_limits *lim = &w->s->cfg->lim;
    hs_req_t *r = c->req;
    http_request_t *q = &r->req;

    r->head_only = q->method_id == HTTP_M_HEAD;
    c->nreq++;
    if (!q->keep_alive || w->stopping || (lim->max_requests && c->nreq >= lim->max_requests))
        r->close = 1;

    if (q->content_length > 0 && (uint64_t)q->content_length > lim->max_body) {
        r->close = 1;
        if (w->s->h->on_refused != NULL)
            w->s->h->on_refused(r, w->hctx, 413);
        conn_refused(c, 413);
        return;
    }
    if (q->method_id == HTTP_M_UNKNOWN && !w->s->cfg->any_method) {
        conn_fail(c, 501);
        return;
    }
    w->s->h->on_request(r, w->hctx);
    if (r->body_ops != NULL && !r->held) {
        c->state = C_BODY;
        conn_timer_set(c, lim->header_timeout_ms);
        return;
    }
    if (r->held) {
        c->state = C_WAIT;
        loop_timer_cancel(w->loop, &c->timer);
        return;
    }
    if (!r->responded) {
        log_error("handler gave no response to %.*s %.*s", (int)q->method.len, q->method.p,
                  (int)q->target.len, q->target.p);
        r->close = 1;
        hs_resp_error(r, 500);
    }
    unread_body(c);
    conn_answer(c);
}

/* Consumes body bytes the handler did not want. Returns 1 when done, 0
 * when more must be read. */
static int discard_buffered(struct hs_conn *c)
{
    uint64_t avail = c->rlen - c->rpos;
    uint64_t n = avail < c->discard_left ? avail : c->discard_left;
    c->rpos += (uint32_t)n;
    c->discard_left -= n;
    return c->discard_left == 0;
}

/* Parses what rbuf holds. Returns 1 when the request was dispatched, 0
 * when more bytes are needed, -1 when the connection was closed. */
static int conn_parse(struct hs_conn *c)
{
    struct hs_worker *w = c->w;
    const char *why;
    int rc = http_parse_request(c->rbuf + c->rpos, c->rlen - c->rpos, &c->ps, &w->s->cfg->lim,
                                w->fields, &w->parsed, &why);
    if (rc == HTTP_PARSE_INCOMPLETE)
        return 0;
    if (rc == HTTP_PARSE_PREFACE) {
        log_debug("HTTP/2 preface on an HTTP/1.1 port: closing");
        conn_close(c);
        return -1;
    }
    worker_clock(w);
    c->req = req_new(w, c);
    if (c->req == NULL) {
        log_error("out of memory for a request");
        conn_close(c);
        return -1;
    }
    c->req->req = w->parsed;
    if (rc < 0) {
        log_debug("bad request: %d %s", -rc, why);
        c->req->head_only = c->req->req.method_id == HTTP_M_HEAD;
        return conn_fail(c, -rc) < 0 ? -1 : 1;
    }
    c->rpos += (uint32_t)rc;
    http_parse_state_init(&c->ps);
    dispatch(c);
    return c->io.fd < 0 ? -1 : 1;
}

/* ---------------------------------------------------------- bodies */

static void alog_copy(hs_req_t *r);

/* Queues an interim (1xx) response ahead of the answer, in the same queue
 * so that the order holds even when the socket takes only part of it now,
 * and sends what it can. */
static void queue_interim(struct hs_conn *c, const char *p, size_t n)
{
    if (n > 0 && buf_append(&c->out, p, n) < 0)
        return;
    ssize_t k = send(c->io.fd, buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
    if (k > 0)
        buf_consume(&c->out, (size_t)k);
}

void hs_read_body(hs_req_t *r, const struct hs_body_ops *ops, void *ctx)
{
    struct hs_conn *c = r->conn;
    r->body_ops = ops;
    r->body_ctx = ctx;
    r->body_taken = 1;
    r->body_left = r->req.content_length > 0 ? (uint64_t)r->req.content_length : 0;
    if (r->req.chunked)
        http_chunked_init(&r->dec);
    alog_copy(r);
    if (c == NULL)
        return; /* the client left during a hold: hs_resume() ends it */
    if (r->req.expect_continue && c->rlen == c->rpos) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        queue_interim(c, cont, sizeof cont - 1);
    }
}

void hs_resp_interim(hs_req_t *r, int status, const char *fields, size_t len)
{
    struct hs_conn *c = r->conn;
    /* No 1xx to an HTTP/1.0 client (RFC 9110 §15.2), nor once the answer
     * has begun. */
    if (c == NULL || r->req.version < 11 || r->responded || status < 100 || status > 199)
        return;
    char line[80];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    size_t mark = c->out.len;
    if (buf_append(&c->out, line, (size_t)n) < 0 || buf_append(&c->out, fields, len) < 0 ||
        buf_append(&c->out, "\r\n", 2) < 0) {
        c->out.len = mark; /* all of it or nothing */
        return;
    }
    queue_interim(c, NULL, 0);
}

void *hs_handler_ctx(hs_req_t *r)
{
    return r->w->hctx;
}

loop_t *hs_loop(hs_req_t *r)
{
    return r->w->loop;
}

void hs_hold(hs_req_t *r)
{
    if (r->held)
        return;
    r->held = 1;
    r->w->holds++;
    alog_copy(r);
}

void hs_resume(hs_req_t *r)
{
    struct hs_worker *w = r->w;
    struct hs_conn *c = r->conn;
    r->held = 0;
    w->holds--;
    if (c == NULL) {
        if (r->body_ops != NULL && !r->responded)
            r->body_ops->on_end(r, r->body_ctx, -1);
        req_free(r);
        worker_maybe_done(w);
        return;
    }
    if (!r->responded && r->body_ops != NULL) {
        /* Held to decide (say, check a password), now reading the body. */
        c->state = C_BODY;
        conn_timer_set(c, w->s->cfg->lim.header_timeout_ms);
        conn_run(c);
        return;
    }
    if (!r->responded) {
        r->close = 1;
        hs_resp_error(r, 500);
    }
    worker_clock(w);
    unread_body(c);
    if (conn_answer(c) == 0)
        conn_run(c);
}

void hs_body_resume(hs_req_t *r)
{
    struct hs_conn *c = r->conn;
    if (!r->body_paused)
        return;
    r->body_paused = 0;
    if (c == NULL || c->state != C_BODY)
        return;
    conn_timer_set(c, c->w->s->cfg->lim.header_timeout_ms);
    stream_queue_kick(c); /* not from inside the handler's own call chain */
}

void hs_body_stop(hs_req_t *r)
{
    struct hs_conn *c = r->conn;
    if (r->body_ops == NULL || r->responded || r->held)
        return;
    r->body_ops = NULL;
    r->body_paused = 0;
    r->close = 1;
    hs_hold(r);
    if (c == NULL)
        return;
    c->linger = 1;
    c->rpos = c->rlen; /* framing is lost: nothing after this is read */
    c->state = C_WAIT;
    loop_timer_cancel(c->w->loop, &c->timer);
}

/* The body ended with `status` (0 complete). Returns 0 to go on, -1 when
 * the connection was closed. */
static int body_end(struct hs_conn *c, int status)
{
    hs_req_t *r = c->req;
    const struct hs_body_ops *ops = r->body_ops;
    r->body_ops = NULL;
    c->state = C_WRITE;
    if (status != 0) {
        r->responded = 0; /* on_end may answer the refusal itself */
        r->close = 1;
    }
    ops->on_end(r, r->body_ctx, status);
    if (status != 0) {
        if (r->held) {
            log_error("handler held a request whose body was refused");
            r->held = 0;
            r->w->holds--;
        }
        return conn_refused(c, status);
    }
    if (r->held) {
        c->state = C_WAIT;
        loop_timer_cancel(c->w->loop, &c->timer);
        return 0;
    }
    if (!r->responded) {
        r->close = 1;
        hs_resp_error(r, 500);
    }
    return conn_answer(c);
}

/* Hands what rbuf holds of the body to the handler. Returns 1 when the
 * body is over (the state moved on), 0 when more is needed, -1 when the
 * connection was closed. */
static int body_feed(struct hs_conn *c)
{
    hs_req_t *r = c->req;
    const struct http_limits *lim = &c->w->s->cfg->lim;
    while (!r->body_paused && (c->rlen > c->rpos || (!r->req.chunked && r->body_left == 0))) {
        size_t avail = c->rlen - c->rpos;
        const char *p = avail ? c->rbuf + c->rpos : "";
        slice_t data = { "", 0 };
        int done = 0;
        if (r->req.chunked) {
            size_t used;
            const char *why;
            int rc = http_chunked_decode(&r->dec, p, avail, &used, &data, &why);
            c->rpos += (uint32_t)used;
            if (rc < 0) {
                log_debug("bad chunked body: %s", why);
                return body_end(c, 400) < 0 ? -1 : 1;
            }
            if (rc == HTTP_CHUNK_DONE)
                done = 1;
            else if (rc == HTTP_CHUNK_MORE)
                return 0;
        } else {
            size_t n = avail < r->body_left ? avail : (size_t)r->body_left;
            data = slice_make(p, n);
            c->rpos += (uint32_t)n;
            r->body_left -= n;
            done = r->body_left == 0;
        }
        if (data.len > 0) {
            r->body_seen += data.len;
            if (r->body_seen > lim->max_body)
                return body_end(c, 413) < 0 ? -1 : 1;
            int st = r->body_ops->on_data(r, r->body_ctx, data.p, data.len);
            if (st == HS_BODY_PAUSE && !done) {
                /* The handler's sink is full: the client waits, untimed. */
                r->body_paused = 1;
                loop_timer_cancel(c->w->loop, &c->timer);
                return 0;
            }
            if (st != 0 && st != HS_BODY_PAUSE)
                return body_end(c, st) < 0 ? -1 : 1;
        }
        if (done)
            return body_end(c, 0) < 0 ? -1 : 1;
    }
    return 0;
}

/* Reads into rbuf. Returns 1 when bytes arrived, 0 on EAGAIN, -1 when the
 * connection was closed. */
static int conn_read(struct hs_conn *c)
{
    struct hs_worker *w = c->w;
    size_t cap = w->s->rbuf_size;
    if (c->rbuf == NULL) {
        c->rbuf = pool_get(&w->rpool);
        if (c->rbuf == NULL) {
            log_error("out of memory for a read buffer");
            conn_close(c);
            return -1;
        }
        c->rlen = c->rpos = 0;
    }
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rlen == cap && c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == cap) {
        /* Cannot happen while rbuf_size > max_head: the parser answers 431
         * first. Close rather than spin. */
        conn_close(c);
        return -1;
    }
    for (;;) {
        size_t room = cap - c->rlen;
        ssize_t n = recv(c->io.fd, c->rbuf + c->rlen, room, 0);
        if (n > 0) {
            c->drained = (size_t)n < room;
            c->rlen += (uint32_t)n;
            return 1;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno == EAGAIN) {
            c->drained = 1;
            if (c->rlen == c->rpos) {
                pool_put(&w->rpool, c->rbuf);
                c->rbuf = NULL;
                c->rlen = c->rpos = 0;
            }
            return 0;
        }
        conn_close(c);
        return -1;
    }
}

static void conn_run(struct hs_conn *c)
{
    for (;;) {
        switch (c->state) {
        case C_WRITE: {
            int f = conn_flush(c);
            if (f == F_AGAIN) {
                conn_timer_set(c, c->w->s->cfg->lim.send_timeout_ms);
                return;
            }
            if (f == F_ERR) {
                conn_close(c);
                return;
            }
            if (stream_wait(c))
                return;
            if (response_done(c) != 0)
                return;
            break;
        }
        case C_BODY: {
            if (c->out.len > 0) { /* a 100 Continue the socket did not take at once */
                ssize_t k = send(c->io.fd, buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
                if (k > 0)
                    buf_consume(&c->out, (size_t)k);
            }
            int rc = body_feed(c);
            if (rc < 0)
                return;
            if (rc > 0)
                break;
            if (c->req->body_paused)
                return; /* hs_body_resume() kicks us */
            if (conn_read(c) <= 0)
                return;
            conn_timer_set(c, c->w->s->cfg->lim.header_timeout_ms);
            break;
        }
        case C_WAIT:
            return; /* the handler answers later; the client waits */
        case C_DISCARD:
            if (c->rbuf != NULL && discard_buffered(c)) {
                c->state = C_READ;
                break;
            }
            if (conn_read(c) <= 0)
                return;
            break;
        case C_LINGER: {
            char sink[4096];
            for (;;) {
                ssize_t n = recv(c->io.fd, sink, sizeof sink, 0);
                if (n > 0)
                    continue;
                if (n == -1 && errno == EINTR)
                    continue;
                if (n == -1 && errno == EAGAIN)
                    return;
                conn_close(c); /* EOF or error: the client is done */
                return;
            }
        }
        case C_READ:
        default:
            if (c->rbuf != NULL && c->rlen > c->rpos) {
                int rc = conn_parse(c);
                if (rc != 0) {
                    if (rc < 0)
                        return;
                    break;
                }
                if (!c->head_timer) {
                    /* A head has begun: it has the header timeout to end. A
                     * head that arrives whole never gets here. */
                    c->head_timer = 1;
                    conn_timer_set(c, c->w->s->cfg->lim.header_timeout_ms);
                }
            }
            if (conn_read(c) <= 0)
                return;
            break;
        }
    }
}

static void on_conn(io_t *io, uint32_t ev)
{
    struct hs_conn *c = io->arg;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->drained = 0;
    if ((ev & (EPOLLHUP | EPOLLERR)) && c->state == C_BODY && c->req->body_paused) {
        /* Reset while the handler holds its body back: no read would
         * notice, so tell the handler now (on_end -1). */
        conn_close(c);
        return;
    }
    conn_run(c);
}

static void on_conn_timer(ptimer_t *t, void *arg)
{
    (void)t;
    struct hs_conn *c = arg;
    struct hs_worker *w = c->w;
    uint64_t now = loop_now(w->loop);
    if (now < c->deadline) { /* a lazily kept timer: not due yet */
        loop_timer_set(w->loop, &c->timer, c->deadline - now);
        return;
    }
    if (c->state == C_READ && c->rbuf != NULL && c->rlen > c->rpos) {
        /* A head that did not arrive in time: 408, then close. */
        worker_clock(w);
        c->req = req_new(w, c);
        if (c->req == NULL) {
            conn_close(c);
            return;
        }
        c->req->req.version = 10;
        if (conn_fail(c, 408) == 0)
            conn_run(c);
        return;
    }
    if (c->state == C_BODY && c->req->body_paused)
        return; /* the handler holds the body back: not the client's delay */
    if (c->state == C_BODY) {
        /* A body that stopped coming. */
        worker_clock(w);
        if (body_end(c, 408) == 0)
            conn_run(c);
        return;
    }
    conn_close(c);
}

/* ----------------------------------------------------------- accepting */

static void on_pause_end(ptimer_t *t, void *arg)
{
    (void)t;
    struct hs_worker *w = arg;
    if (!w->stopping && w->nconns < w->max_conns)
        listeners_set(w, 1);
}

/* Listeners are level-triggered and take HS_ACCEPT_PER_EVENT connections
 * per readiness: no accept4() that can only say EAGAIN after each one (the
 * loop reports the listener again while more wait). */
static void on_accept(io_t *io, uint32_t ev)
{
    (void)ev;
    struct hs_worker *w = io->arg;
    for (int taken = 0; taken < HS_ACCEPT_PER_EVENT;) {
        if (w->nconns >= w->max_conns) {
            log_warn("worker %d: %zu connections, the maximum: not accepting", w->idx, w->nconns);
            listeners_set(w, 0);
            return;
        }
        addr_t peer;
        peer.len = 0;
        int fd = sock_accept(io->fd, &peer);
        if (fd < 0) {
            if (fd == -EINTR || fd == -ECONNABORTED)
                continue;
            if (fd != -EAGAIN) {
                log_warn("accept: %s; pausing accepts for 100 ms", strerror(-fd));
                listeners_set(w, 0);
                loop_timer_set(w->loop, &w->pause_timer, 100);
            }
            return;
        }
        taken++;
        struct hs_conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->w = w;
        if (peer.len > 0 && peer.len <= sizeof c->peer) {
            memcpy(&c->peer, &peer.ss, peer.len);
            c->peer_len = peer.len;
        }
        c->file_fd = -1;
        buf_init(&c->out, HS_OUT_CAP);
        timer_init(&c->timer, on_conn_timer, c);
        /* TCP_NODELAY came from the listener (listen_options). */
        if (loop_io_add(w->loop, &c->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_conn, c) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        c->state = C_READ;
        c->head_timer = 1; /* from accept: a client that sends nothing is dropped */
        conn_timer_set(c, w->s->cfg->lim.header_timeout_ms);
    }
}

/* ------------------------------------------------------------- workers */

static void close_listeners(struct hs_worker *w)
{
    for (int i = 0; i < w->nlis; i++)
        loop_io_close(&w->lis[i]);
    w->nlis = 0;
    loop_timer_cancel(w->loop, &w->pause_timer);
}

static void on_stop_timeout(ptimer_t *t, void *arg)
{
    (void)t;
    struct hs_worker *w = arg;
    if (w->nconns)
        log_info("worker %d: closing %zu connections at the shutdown timeout", w->idx, w->nconns);
    while (w->conns)
        conn_close(w->conns);
    if (w->holds > 0 && w->s->cfg->on_stop != NULL)
        w->s->cfg->on_stop(w->hctx);
    /* Held requests wait for their disk jobs, which post back to this
     * loop: it must outlive them. The last hs_resume() breaks it. */
    if (w->holds == 0)
        loop_break(w->loop);
}

static int worker_start(loop_t *l, int idx, void *arg)
{
    struct hs_server *s = arg;
    struct hs_worker *w = &s->w[idx];
    w->loop = l;
    timer_init(&w->stop_timer, on_stop_timeout, w);
    timer_init(&w->pause_timer, on_pause_end, w);
    timer_init(&w->alog_timer, on_alog_timer, w);
    pool_init_size(&w->rpool, s->rbuf_size, POOL_MAX_FREE);
    buf_init(&w->scratch, HS_SCRATCH_CAP);
    buf_init(&w->body, HS_BODY_CAP);
    buf_init(&w->alog, HS_ALOG_CAP);
    w->fields = calloc(s->cfg->lim.max_fields + 1, sizeof *w->fields);
    if (w->fields == NULL)
        return -ENOMEM;
    size_t per = (s->cfg->lim.max_conns + (size_t)s->cfg->workers - 1) / (size_t)s->cfg->workers;
    w->max_conns = per ? per : 1;
    if (s->h->worker_init != NULL)
        w->hctx = s->h->worker_init(idx, s->harg);
    worker_clock(w);
    if (atomic_load(&s->alog_fd) >= 0)
        loop_timer_set(l, &w->alog_timer, HS_ALOG_EVERY_MS);
    for (int i = 0; i < w->nlis; i++) {
        int rc = loop_io_add(l, &w->lis[i], w->fds[i], EPOLLIN, on_accept, w);
        if (rc < 0)
            return rc;
        w->fds[i] = -1;
    }
    return 0;
}

static void worker_stop(loop_t *l, int idx, int force, void *arg)
{
    struct hs_server *s = arg;
    struct hs_worker *w = &s->w[idx];
    (void)l;
    w->stopping = 1;
    close_listeners(w);
    /* Idle connections go now; the others finish the response in flight
     * and then close. */
    struct hs_conn *c = w->conns;
    while (c != NULL) {
        struct hs_conn *next = c->next;
        if (force || (c->state == C_READ && (c->rbuf == NULL || c->rlen == c->rpos)))
            conn_close(c);
        else
            c->close_after = 1;
        c = next;
    }
    if (w->nconns == 0 && w->holds == 0) {
        loop_break(w->loop);
        return;
    }
    if (!timer_armed(&w->stop_timer))
        loop_timer_set(w->loop, &w->stop_timer, s->cfg->shutdown_ms);
}

static void worker_finish(loop_t *l, int idx, void *arg)
{
    struct hs_server *s = arg;
    struct hs_worker *w = &s->w[idx];
    (void)l;
    while (w->conns)
        conn_close(w->conns);
    close_listeners(w);
    loop_timer_cancel(l, &w->stop_timer);
    loop_timer_cancel(l, &w->alog_timer);
    if (w->alog.len)
        alog_flush(w);
    if (s->h->worker_free != NULL)
        s->h->worker_free(w->hctx);
    while (w->free_reqs) {
        hs_req_t *r = w->free_reqs;
        w->free_reqs = r->next_free;
        free(r);
    }
    buf_dispose(&w->scratch);
    buf_dispose(&w->body);
    buf_dispose(&w->alog);
    free(w->fields);
    pool_dispose(&w->rpool);
}

static void server_reopen(void *arg)
{
    struct hs_server *s = arg;
    if (s->alog_path == NULL)
        return;
    int fd = open(s->alog_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1) {
        log_error("cannot reopen the access log '%s': %s", s->alog_path, strerror(errno));
        return;
    }
    /* Put the new file under the old number, so that no worker can write a
     * log line to an fd that was closed and handed to a new connection. */
    int old = atomic_load(&s->alog_fd);
    if (old > STDERR_FILENO && dup3(fd, old, O_CLOEXEC) != -1) {
        close(fd);
        return;
    }
    log_error("cannot reopen the access log '%s': %s", s->alog_path, strerror(errno));
    close(fd);
}

static const char *hs_name(const struct hs_config *cfg)
{
    return cfg->name != NULL ? cfg->name : "serve";
}

/* Listener options that accepted sockets inherit (Linux copies the
 * listener's TCP state into each child, test_sock.c checks it), so that
 * no accept pays a setsockopt(): TCP_NODELAY, and the congestion control.
 * BBR needs pacing, and without the fq qdisc the kernel paces each socket
 * with its own timer. Between
 * two processes of one host there is no bottleneck to pace for, and that
 * timer made a 1 MiB response cost 2-6 times the CPU, at random by run
 * (bench/http.sh). So by default a listener on a loopback address that
 * inherited BBR moves to CUBIC; a listener on any other address keeps
 * the system's choice. fds holds cfg->workers groups of cfg->nlisten.
 * Returns 0, or -1 with err set when the configured name is refused. */
static int listen_options(const struct hs_config *cfg, const int *fds, char *err, size_t errlen)
{
    for (int g = 0; g < cfg->workers; g++) {
        for (int i = 0; i < cfg->nlisten; i++) {
            int fd = fds[g * cfg->nlisten + i];
            int rc = sock_nodelay(fd);
            if (rc < 0) {
                snprintf(err, errlen, "cannot set TCP_NODELAY: %s", strerror(-rc));
                return -1;
            }
            if (cfg->tcp_congestion != NULL) {
                rc = sock_set_congestion(fd, cfg->tcp_congestion);
                if (rc < 0) {
                    snprintf(err, errlen, "cannot use TCP congestion control '%s': %s",
                             cfg->tcp_congestion, rc == -ENOENT ? "not available in this kernel" : strerror(-rc));
                    return -1;
                }
                continue;
            }
            char cur[32];
            if (addr_is_loopback(&cfg->listen[i]) && sock_congestion(fd, cur, sizeof cur) == 0 &&
                strcmp(cur, "bbr") == 0)
                (void)sock_set_congestion(fd, "cubic"); /* best effort: else BBR stays */
        }
    }
    return 0;
}

int hs_run(const struct hs_config *cfg, const struct hs_handler *h, void *arg)
{
    struct hs_server s = { .cfg = cfg, .h = h, .harg = arg };
    int rc = 1, opened = 0;
    char a[ADDR_STRLEN];

    atomic_store(&s.alog_fd, -1);
    if (cfg->access_log != NULL) {
        if (strcmp(cfg->access_log, "-") == 0) {
            atomic_store(&s.alog_fd, STDOUT_FILENO);
        } else {
            int fd = open(cfg->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd == -1) {
                fprintf(stderr, "portico %s: cannot open access log '%s': %s\n", hs_name(cfg), cfg->access_log,
                        strerror(errno));
                return 1;
            }
            atomic_store(&s.alog_fd, fd);
            s.alog_path = cfg->access_log;
        }
    }
    /* Room for the largest head the limits allow, plus one byte, so that a
     * full buffer always means the parser has answered 431 or 414. */
    s.rbuf_size = cfg->lim.max_head + 1;
    if (s.rbuf_size < POOL_BLOCK_SIZE)
        s.rbuf_size = POOL_BLOCK_SIZE;

    s.w = calloc((size_t)cfg->workers, sizeof *s.w);
    if (s.w == NULL)
        goto out;
    int *fds = calloc((size_t)cfg->workers * (size_t)cfg->nlisten, sizeof *fds);
    char err[ERR_MAX];
    if (fds == NULL || sock_listen_group(cfg->listen, cfg->nlisten, SOCK_STREAM, cfg->workers, 1, fds,
                                         err, sizeof err) < 0) {
        fprintf(stderr, "portico %s: %s\n", hs_name(cfg), fds ? err : "out of memory");
        free(fds);
        goto out;
    }
    if (listen_options(cfg, fds, err, sizeof err) < 0) {
        fprintf(stderr, "portico %s: %s\n", hs_name(cfg), err);
        for (int i = 0; i < cfg->workers * cfg->nlisten; i++)
            close(fds[i]);
        free(fds);
        goto out;
    }
    for (int i = 0; i < cfg->workers; i++) {
        struct hs_worker *w = &s.w[i];
        w->s = &s;
        w->idx = i;
        w->nlis = cfg->nlisten;
        memcpy(w->fds, fds + i * cfg->nlisten, (size_t)cfg->nlisten * sizeof *fds);
    }
    free(fds);
    opened = cfg->workers;
    if (cfg->verbose)
        for (int j = 0; j < cfg->nlisten; j++)
            fprintf(stderr, "portico %s: listening on http://%s/ (%d workers)\n", hs_name(cfg),
                    addr_format(&cfg->listen[j], a, sizeof a), cfg->workers);
    static const struct workers_ops ops = { worker_start, worker_stop, worker_finish, server_reopen };
    int wr = workers_run(cfg->workers, &ops, &s);
    if (wr < 0)
        fprintf(stderr, "portico %s: cannot start the workers: %s\n", hs_name(cfg), strerror(-wr));
    rc = wr < 0 ? 1 : 0;
out:
    for (int i = 0; i < opened; i++)
        for (int j = 0; j < s.w[i].nlis; j++)
            if (s.w[i].fds[j] >= 0)
                close(s.w[i].fds[j]);
    free(s.w);
    int fd = atomic_load(&s.alog_fd);
    if (fd > STDERR_FILENO)
        close(fd);
    return rc;
}

/* ------------------------------------------------- streamed responses */

/* The client is gone while a streamed body or a tunnel was owed: tell the
 * handler, which must let go of r. */
static void stream_gone(hs_req_t *r)
{
    if (r->tunnel_cb != NULL) {
        void (*cb)(void *, int, char *, size_t) = r->tunnel_cb;
        r->tunnel_cb = NULL;
        cb(r->tunnel_ctx, -1, NULL, 0);
        return;
    }
    if (r->streaming && !r->stream_ended && r->stream_ops && r->stream_ops->on_abort) {
        r->stream_ended = 1;
        r->stream_ops->on_abort(r, r->stream_ctx);
    }
}

static void stream_kick(void *arg)
{
    struct hs_conn *c = arg;
    c->head_held = 0;
    if (c->io.fd >= 0 && (c->state == C_WRITE || c->state == C_BODY))
        conn_run(c);
}

static void stream_queue_kick(struct hs_conn *c)
{
    loop_defer(c->w->loop, &c->dkick, stream_kick, c);
}

/* Hands the socket of a CONNECT whose 2xx is out to the tunnel. */
static void conn_detach(struct hs_conn *c)
{
    hs_req_t *r = c->req;
    void (*cb)(void *, int, char *, size_t) = r->tunnel_cb;
    void *ctx = r->tunnel_ctx;
    r->tunnel_cb = NULL;
    size_t n = c->rbuf ? c->rlen - c->rpos : 0;
    char *early = n ? malloc(n) : NULL;
    if (n && early == NULL) {
        conn_close(c);
        cb(ctx, -1, NULL, 0);
        return;
    }
    if (n)
        memcpy(early, c->rbuf + c->rpos, n);
    int fd = c->io.fd;
    loop_io_del(&c->io);
    conn_close(c); /* the engine's part; the fd lives on */
    cb(ctx, fd, early, n);
}

/* After a flush emptied the queue: 1 when a streamed body still owes
 * bytes (wait for the handler), or a tunnel took the connection. */
static int stream_wait(struct hs_conn *c)
{
    hs_req_t *r = c->req;
    if (r == NULL)
        return 0;
    if (r->tunnel_cb != NULL) {
        conn_detach(c);
        return 1;
    }
    if (!r->streaming || r->stream_ended)
        return 0;
    loop_timer_cancel(c->w->loop, &c->timer); /* the upstream's timers run now */
    if (r->stream_paused) {
        r->stream_paused = 0;
        if (r->stream_ops && r->stream_ops->on_drain)
            r->stream_ops->on_drain(r, r->stream_ctx);
    }
    return 1;
}

void hs_resp_stream(hs_req_t *r, int64_t len, const struct hs_stream_ops *ops, void *ctx)
{
    r->stream_ops = ops;
    r->stream_ctx = ctx;
    r->streaming = 1;
    int bodyless = r->status < 200 || r->status == 204 || r->status == 304;
    if (len >= 0) {
        if (!bodyless)
            content_length(r, (uint64_t)len);
        r->body_len = 0;
        end_head(r);
    } else if (bodyless) {
        end_head(r);
    } else if (r->req.version == 11) {
        puts_(r->hdr, "Transfer-Encoding: chunked\r\n");
        r->stream_chunked = 1;
        end_head(r);
    } else {
        r->close = 1;
        end_head(r);
    }
    if (r->head_only || bodyless || len == 0)
        r->stream_ended = 1;
}

int hs_stream_write(hs_req_t *r, const char *p, size_t n)
{
    struct hs_conn *c = r->conn;
    if (c == NULL)
        return -EPIPE;
    if (r->stream_ended || n == 0)
        return 0;
    if (r->stream_chunked) {
        char ch[24];
        size_t k = http_chunk_head(ch, n);
        if (buf_append(&c->out, ch, k) < 0)
            return -ENOBUFS;
        if (buf_append(&c->out, p, n) < 0 || buf_append(&c->out, "\r\n", 2) < 0)
            return -ENOBUFS; /* the framing is broken now: the caller aborts */
    } else if (buf_append(&c->out, p, n) < 0) {
        return -ENOBUFS;
    }
    r->body_len += n;
    stream_queue_kick(c);
    if (c->out.len >= HS_STREAM_HIGH) {
        r->stream_paused = 1;
        return 1;
    }
    return 0;
}

/* Marks a streamed body over; `cut` closes the connection after what is
 * queued instead of ending the body properly. */
static void stream_finish(hs_req_t *r, int cut)
{
    struct hs_conn *c = r->conn;
    if (r->stream_ended)
        return;
    r->stream_ended = 1;
    if (c == NULL)
        return;
    if (cut) {
        r->close = 1;
        c->close_after = 1;
    } else if (r->stream_chunked && buf_append(&c->out, HTTP_CHUNK_LAST, sizeof HTTP_CHUNK_LAST - 1) < 0) {
        c->close_after = 1;
    }
    stream_queue_kick(c);
}

void hs_stream_end(hs_req_t *r)
{
    stream_finish(r, 0);
}

void hs_stream_abort(hs_req_t *r)
{
    stream_finish(r, 1);
}

void hs_resp_tunnel(hs_req_t *r, void (*cb)(void *, int, char *, size_t), void *ctx)
{
    end_head(r);
    r->tunnel_cb = cb;
    r->tunnel_ctx = ctx;
    if (r->conn == NULL) {
        r->tunnel_cb = NULL;
        cb(ctx, -1, NULL, 0);
    }
}

void hs_resp_start_relay(hs_req_t *r, int status)
{
    buf_t *b = r->hdr;
    worker_clock(r->w);
    buf_reset(b);
    r->status = status;
    puts_(b, "HTTP/1.1 ");
    put_u64(b, (uint64_t)status);
    puts_(b, " ");
    puts_(b, http_reason(status));
    puts_(b, "\r\n");
}

int hs_peer(hs_req_t *r, addr_t *a)
{
    if (r->conn == NULL)
        return -ENOTCONN;
    return conn_peer(r->conn, a);
}

int hs_local(hs_req_t *r, addr_t *a)
{
    return r->conn ? sock_local(r->conn->io.fd, a) : -ENOTCONN;
}

/* ------------------------------------------------ bodies from memory */

static void conn_drop_mem(struct hs_conn *c)
{
    if (c->mem_release != NULL)
        c->mem_release(c->mem_ref);
    c->mem_release = NULL;
    c->mem = NULL;
    c->mem_left = 0;
}

/* The head in scratch and the memory body in one writev; what the socket
 * does not take of the head goes to c->out, the body stays referenced. */
static int conn_send_first_mem(struct hs_conn *c)
{
    buf_t *s = &c->w->scratch;
    struct iovec iov[2] = { { buf_head(s), s->len }, { (void *)c->mem, c->mem_left } };
    ssize_t k;
    do {
        k = writev(c->io.fd, iov, 2);
    } while (k == -1 && errno == EINTR);
    if (k == -1 && errno != EAGAIN) {
        buf_reset(s);
        return F_ERR;
    }
    size_t sent = k > 0 ? (size_t)k : 0;
    if (sent < s->len) {
        if (buf_append(&c->out, buf_head(s) + sent, s->len - sent) < 0) {
            buf_reset(s);
            return F_ERR;
        }
        sent = 0;
    } else {
        sent -= s->len;
    }
    buf_reset(s);
    c->mem += sent;
    c->mem_left -= sent;
    return c->out.len > 0 || c->mem_left > 0 ? F_AGAIN : F_DONE;
}

void hs_resp_mem_ref(hs_req_t *r, const char *p, size_t len, void (*release)(void *), void *ref)
{
    struct hs_conn *c = r->conn;
    content_length(r, len);
    end_head(r);
    if (c == NULL || r->head_only || len == 0) {
        if (release != NULL)
            release(ref);
        return;
    }
    c->mem = p;
    c->mem_left = len;
    c->mem_release = release;
    c->mem_ref = ref;
}
