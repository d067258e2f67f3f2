/* test_client.c - the client engine (src/client/client.c) on a real loop
 * against a scripted server thread on loopback: streamed request bodies
 * (chunked and with a length), pause/resume of the response body, pool
 * reuse, cancel from a callback, errors for bad input and timeouts.
 *
 * The server thread uses blocking sockets with timeouts; every test ends
 * its loop with loop_break from the request's last callback, and a guard
 * timer fails the test if that never comes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/client.h"

/* ------------------------------------------------------------ server */

enum script { S_ECHO_BODY, S_BIG_CHUNKED, S_SILENT, S_CLOSE_AFTER, S_TRICKLE_HEAD, S_SIZED };

#define SIZED_LEN (300u * 1024u)   /* S_SIZED: the body's length */

static char sized_byte(size_t i)
{
    return (char)((i * 7 + 3) % 251);
}

struct server {
    int lfd;
    uint16_t port;
    enum script script;
    int max_conns;
    int accepted;
    int requests;
    char body[1 << 19];      /* the last request body, decoded */
    size_t body_len;
    pthread_t th;
};

static ssize_t read_until(int fd, char *buf, size_t cap, size_t *len, const char *mark)
{
    while (memmem(buf, *len, mark, strlen(mark)) == NULL) {
        if (*len == cap)
            return -1;
        ssize_t n = recv(fd, buf + *len, cap - *len, 0);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
    }
    return (ssize_t)((char *)memmem(buf, *len, mark, strlen(mark)) - buf) + (ssize_t)strlen(mark);
}

/* Reads one request and decodes its body (Content-Length or chunked). */
static int read_request(struct server *s, int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t h = read_until(fd, buf, cap, len, "\r\n\r\n");
    if (h < 0)
        return -1;
    s->body_len = 0;
    char saved = buf[h];
    buf[h] = '\0'; /* search the head only */
    char *cl = strcasestr(buf, "content-length:");
    int chunked = strcasestr(buf, "transfer-encoding: chunked") != NULL;
    buf[h] = saved;
    if (cl != NULL) {
        size_t n = strtoul(cl + 15, NULL, 10);
        while (*len < (size_t)h + n) {
            ssize_t r = recv(fd, buf + *len, cap - *len, 0);
            if (r <= 0)
                return -1;
            *len += (size_t)r;
        }
        memcpy(s->body, buf + h, n);
        s->body_len = n;
    } else if (chunked) {
        size_t pos = (size_t)h;
        for (;;) {
            size_t l2 = *len - pos;
            char *p = buf + pos;
            while (memmem(p, l2, "\r\n", 2) == NULL) {
                ssize_t r = recv(fd, buf + *len, cap - *len, 0);
                if (r <= 0)
                    return -1;
                *len += (size_t)r;
                l2 = *len - pos;
            }
            size_t sz = strtoul(p, NULL, 16);
            size_t line = (size_t)((char *)memmem(p, l2, "\r\n", 2) - p) + 2;
            while (*len < pos + line + sz + 2) {
                ssize_t r = recv(fd, buf + *len, cap - *len, 0);
                if (r <= 0)
                    return -1;
                *len += (size_t)r;
            }
            memcpy(s->body + s->body_len, p + line, sz);
            s->body_len += sz;
            pos += line + sz + 2;
            if (sz == 0)
                break;
        }
    }
    s->requests++;
    return 0;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    static char buf[1 << 20];
    for (int k = 0; k < s->max_conns; k++) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        s->accepted++;
        struct timeval tv = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        for (;;) {
            size_t len = 0;
            if (read_request(s, fd, buf, sizeof buf, &len) != 0)
                break;
            if (s->script == S_TRICKLE_HEAD) {
                /* A head one byte per 50 ms (2 s in all), then a body. */
                const char *h = "HTTP/1.1 200 OK\r\nX-Slow: ";
                const char *t = "\r\nContent-Length: 2\r\n\r\nok";
                send_all(fd, h, strlen(h));
                for (int i = 0; i < 40; i++) {
                    usleep(50 * 1000);
                    send_all(fd, "z", 1);
                }
                send_all(fd, t, strlen(t));
                continue;
            }
            if (s->script == S_SIZED) {
                /* The head alone, then the body after a pause: the body
                 * comes after on_head, so a sink gets it by splice. */
                static char body[SIZED_LEN];
                for (size_t i = 0; i < SIZED_LEN; i++)
                    body[i] = sized_byte(i);
                char head[96];
                int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
                                 SIZED_LEN);
                send_all(fd, head, (size_t)n);
                usleep(50 * 1000);
                send_all(fd, body, SIZED_LEN);
                continue;
            }
            if (s->script == S_SILENT) {
                sleep(2);
                break;
            }
            if (s->script == S_CLOSE_AFTER) {
                /* Keep-alive by default in 1.1, then closed anyway. */
                send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
                usleep(100 * 1000); /* closed while the client holds it idle */
                break;
            }
            if (s->script == S_ECHO_BODY) {
                char head[128];
                int n = snprintf(head, sizeof head,
                                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", s->body_len);
                send_all(fd, head, (size_t)n);
                send_all(fd, s->body, s->body_len);
            } else {
                const char *h = "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                send_all(fd, h, strlen(h));
                char chunk[4096 + 16];
                for (int i = 0; i < 64; i++) {
                    int n = snprintf(chunk, sizeof chunk, "1000\r\n");
                    memset(chunk + n, 'a' + i % 26, 4096);
                    memcpy(chunk + n + 4096, "\r\n", 2);
                    send_all(fd, chunk, (size_t)n + 4098);
                }
                send_all(fd, "0\r\nX-T: 1\r\n\r\n", 13);
            }
        }
        close(fd);
    }
    return NULL;
}

/* The scripted server on the loopback address of `family`. */
static void server_start_on(struct server *s, enum script sc, int max_conns, int family)
{
    memset(s, 0, sizeof *s);
    s->script = sc;
    s->max_conns = max_conns;
    s->lfd = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss = { 0 };
    socklen_t al = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&ss, al), 0);
    getsockname(s->lfd, (struct sockaddr *)&ss, &al);
    s->port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    assert_int_equal(listen(s->lfd, 8), 0);
    pthread_create(&s->th, NULL, server_main, s);
}

static void server_start(struct server *s, enum script sc, int max_conns)
{
    server_start_on(s, sc, max_conns, AF_INET);
}

static void server_stop(struct server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->th, NULL);
}

/* ------------------------------------------------------------ client */

struct ctx {
    loop_t *loop;
    client_pool_t *pool;
    client_req_t *r;
    int status, ninfo, ended, failed, err;
    char msg[256];
    char body[1 << 19];
    size_t body_len;
    int pause_every;          /* pause after every Nth on_data (0: never) */
    uint64_t resume_ms;       /* how long a pause lasts (0: 1 ms) */
    int ndata, pauses;
    ptimer_t resume;
    /* streamed body */
    const char *src;
    size_t src_len, src_off, piece;
    int cancel_on_head;
    int sink_fd;              /* >= 0: client_req_sink() from on_head */
    size_t sunk;
};

static void on_info(client_req_t *r, const http_response_t *res, void *arg)
{
    (void)r;
    struct ctx *c = arg;
    assert_true(res->status >= 100 && res->status < 200);
    c->ninfo++;
}

static void on_head(client_req_t *r, const http_response_t *res, void *arg)
{
    struct ctx *c = arg;
    c->status = res->status;
    if (c->sink_fd >= 0)
        assert_int_equal(client_req_sink(r, c->sink_fd), 0);
    if (c->cancel_on_head) {
        client_req_cancel(r);
        loop_break(c->loop);
    }
}

static void do_resume(ptimer_t *t, void *arg)
{
    (void)t;
    struct ctx *c = arg;
    client_req_resume(c->r);
}

static int on_data(client_req_t *r, slice_t d, void *arg)
{
    (void)r;
    struct ctx *c = arg;
    assert_true(c->body_len + d.len <= sizeof c->body);
    memcpy(c->body + c->body_len, d.p, d.len);
    c->body_len += d.len;
    if (c->pause_every && ++c->ndata % c->pause_every == 0) {
        c->pauses++;
        loop_timer_set(c->loop, &c->resume, c->resume_ms ? c->resume_ms : 1);
        return CLIENT_PAUSE;
    }
    return 0;
}

static void on_sunk(client_req_t *r, size_t n, void *arg)
{
    (void)r;
    struct ctx *c = arg;
    c->sunk += n;
}

static void on_end(client_req_t *r, void *arg)
{
    (void)r;
    struct ctx *c = arg;
    c->ended++;
    loop_break(c->loop);
}

static void on_error(client_req_t *r, enum client_err e, const char *msg, void *arg)
{
    (void)r;
    struct ctx *c = arg;
    c->failed++;
    c->err = (int)e;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    loop_break(c->loop);
}

static void feed(struct ctx *c)
{
    while (c->src_off < c->src_len) {
        size_t n = c->src_len - c->src_off;
        if (n > c->piece)
            n = c->piece;
        int rc = client_req_write(c->r, c->src + c->src_off, n);
        if (rc == -ENOBUFS)
            return;
        assert_int_equal(rc, 0);
        c->src_off += n;
    }
    if (c->src_off == c->src_len && c->src_len != (size_t)-1) {
        assert_int_equal(client_req_finish(c->r), 0);
        c->src_len = (size_t)-1;
    }
}

static void on_drain(client_req_t *r, void *arg)
{
    (void)r;
    struct ctx *c = arg;
    if (c->src_len != (size_t)-1)
        feed(c);
}

static const client_cbs_t cbs = {
    .on_info = on_info, .on_head = on_head, .on_data = on_data,
    .on_end = on_end, .on_error = on_error, .on_drain = on_drain, .on_sunk = on_sunk,
};

static void on_head_refused(client_req_t *r, const http_response_t *res, void *arg)
{
    on_head(r, res, arg);
    assert_int_equal(client_req_sink(r, STDOUT_FILENO), -EINVAL);
}

static const client_cbs_t cbs_refused = {
    .on_head = on_head_refused, .on_data = on_data, .on_end = on_end,
    .on_error = on_error, .on_sunk = on_sunk,
};

static void guard_fire(ptimer_t *t, void *arg)
{
    (void)t;
    struct ctx *c = arg;
    fail_msg("the request never ended (%zu body bytes, %d pauses, ended %d)", c ? c->body_len : 0, c ? c->pauses : 0, c ? c->ended : 0);
}

static struct ctx *ctx_new(const client_opts_t *o)
{
    struct ctx *c = calloc(1, sizeof *c);
    c->loop = loop_new();
    c->pool = client_pool_new(c->loop, o);
    c->sink_fd = -1;
    timer_init(&c->resume, do_resume, c);
    return c;
}

static void ctx_free(struct ctx *c)
{
    loop_timer_cancel(c->loop, &c->resume);
    client_pool_free(c->pool);
    loop_free(c->loop);
    free(c);
}

static void run_loop(struct ctx *c)
{
    ptimer_t g;
    timer_init(&g, guard_fire, c);
    loop_timer_set(c->loop, &g, 20000);
    loop_run(c->loop);
    loop_timer_cancel(c->loop, &g);
}

static client_req_opts_t opts_for(const struct server *s, const char *method)
{
    client_req_opts_t o = { 0 };
    o.host = SLICE_LIT("127.0.0.1");
    o.port = s->port;
    o.method = slice_cstr(method);
    o.target = SLICE_LIT("/x");
    return o;
}

/* ------------------------------------------------------------- tests */

static void stream_body(int64_t declared)
{
    struct server s;
    server_start(&s, S_ECHO_BODY, 1);
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    static char src[300000];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)('A' + i % 23);
    c->src = src;
    c->src_len = sizeof src;
    c->piece = 10000;
    client_req_opts_t o = opts_for(&s, "POST");
    o.body = CLIENT_BODY_STREAM;
    o.body_len = declared;
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    feed(c);
    run_loop(c);
    if (c->failed)
        fail_msg("failed: %s", c->msg);
    assert_int_equal(c->ended, 1);
    assert_int_equal(c->status, 200);
    assert_int_equal(s.body_len, sizeof src);
    assert_memory_equal(s.body, src, sizeof src);
    assert_int_equal(c->body_len, sizeof src);
    assert_memory_equal(c->body, src, sizeof src);
    ctx_free(c);
    server_stop(&s);
}

static void test_stream_chunked(void **state)
{
    (void)state;
    stream_body(-1);
}

static void test_stream_length(void **state)
{
    (void)state;
    stream_body(300000);
}

static void test_pause_resume_and_reuse(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_BIG_CHUNKED, 1);
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    c->pause_every = 3;
    client_req_opts_t o = opts_for(&s, "GET");
    for (int round = 0; round < 2; round++) {
        c->body_len = 0;
        c->ended = 0;
        assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
        run_loop(c);
        if (c->failed)
            fail_msg("failed: %s", c->msg);
        assert_int_equal(c->ended, 1);
        assert_int_equal(c->body_len, 64 * 4096);
        for (int i = 0; i < 64; i++)
            assert_int_equal(c->body[i * 4096 + 17], 'a' + i % 26);
    }
    assert_true(c->pauses > 2);
    assert_int_equal(c->ninfo, 2);
    client_stats_t st;
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reuses, 1);
    assert_int_equal(s.accepted, 1);
    ctx_free(c);
    server_stop(&s);
}

/* A pause is the caller's choice, not a stall: it may outlast the read
 * timeout. */
static void test_pause_longer_than_read_timeout(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_BIG_CHUNKED, 1);
    client_opts_t co;
    client_opts_default(&co);
    co.read_timeout_ms = 100;
    struct ctx *c = ctx_new(&co);
    c->pause_every = 10;
    c->resume_ms = 300;
    client_req_opts_t o = opts_for(&s, "GET");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    if (c->failed)
        fail_msg("failed: %s", c->msg);
    assert_int_equal(c->ended, 1);
    assert_true(c->pauses >= 1);
    assert_int_equal(c->body_len, 64 * 4096);
    ctx_free(c);
    server_stop(&s);
}

static void wait_fire(ptimer_t *t, void *arg)
{
    (void)t;
    loop_break(arg);
}

/* A pooled connection the server closes is dropped while idle: the next
 * request opens a new one without a failed attempt or a retry. */
static void test_idle_close_detected(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_CLOSE_AFTER, 2);
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->ended, 1);
    client_stats_t st;
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.idle, 1);
    /* Let the loop see the server's FIN on the idle connection. */
    ptimer_t w;
    timer_init(&w, wait_fire, c->loop);
    for (int i = 0; i < 50; i++) {
        loop_timer_set(c->loop, &w, 20);
        loop_run(c->loop);
        client_pool_stats(c->pool, &st);
        if (st.idle_closed == 1)
            break;
    }
    assert_int_equal(st.idle_closed, 1);
    assert_int_equal(st.idle, 0);
    c->ended = 0;
    c->body_len = 0;
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->ended, 1);
    assert_int_equal(c->body_len, 2);
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.reuses, 0);
    assert_int_equal(st.retries, 0);
    ctx_free(c);
    server_stop(&s);
}

static int forbid_calls;

static int forbid_port(void *arg, const addr_t *a)
{
    const struct server *s = arg;
    struct sockaddr_in sin;
    memcpy(&sin, &a->ss, sizeof sin);
    forbid_calls++;
    return a->ss.ss_family == AF_INET && ntohs(sin.sin_port) == s->port;
}

/* opts.forbid is asked about the address before connecting: refused, the
 * request fails with CLIENT_E_FORBIDDEN and no connection is made; an
 * address it lets through is used as usual. */
static void test_forbidden_address(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_CLOSE_AFTER, 1);
    client_opts_t co;
    client_opts_default(&co);
    co.forbid = forbid_port;
    co.forbid_arg = &s;
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    forbid_calls = 0;
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->err, CLIENT_E_FORBIDDEN);
    assert_non_null(strstr(c->msg, "forbidden address"));
    assert_int_equal(forbid_calls, 1);
    client_stats_t st;
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.connects, 0);
    ctx_free(c);
    /* Forbidding another port lets this one through. */
    struct server other = s;
    other.port = (uint16_t)(s.port + 1);
    co.forbid_arg = &other;
    c = ctx_new(&co);
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    if (c->failed)
        fail_msg("failed: %s", c->msg);
    assert_int_equal(c->ended, 1);
    assert_int_equal(c->body_len, 2);
    ctx_free(c);
    server_stop(&s);
}

static void test_cancel_in_head(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_BIG_CHUNKED, 1);
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    c->cancel_on_head = 1;
    client_req_opts_t o = opts_for(&s, "GET");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->status, 200);
    assert_int_equal(c->ended + c->failed, 0);
    assert_int_equal(c->body_len, 0);
    ctx_free(c);
    server_stop(&s);
}

static void test_header_timeout(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_SILENT, 1);
    client_opts_t co;
    client_opts_default(&co);
    co.header_timeout_ms = 200;
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->err, CLIENT_E_HEADER_TIMEOUT);
    assert_string_equal(c->msg, "no response head within 200 ms");
    ctx_free(c);
    server_stop(&s);
}

/* The header timeout runs from the end of the request to the final head:
 * a server that trickles its head a byte at a time does not restart it. */
static void test_header_timeout_not_restarted_by_bytes(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_TRICKLE_HEAD, 1);
    client_opts_t co;
    client_opts_default(&co);
    co.header_timeout_ms = 400;
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->ended, 0);
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->err, CLIENT_E_HEADER_TIMEOUT);
    assert_string_equal(c->msg, "no response head within 400 ms");
    ctx_free(c);
    server_stop(&s);
}

static void test_bad_input(void **state)
{
    (void)state;
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    struct server s = { .port = 9 };
    client_req_opts_t o = opts_for(&s, "GET");
    o.method = SLICE_LIT("G T");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, NULL), -EINVAL);
    o = opts_for(&s, "GET");
    o.target = SLICE_LIT("/a\r\nX: y");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, NULL), -EINVAL);
    http_field_t f = { SLICE_LIT("X-A"), SLICE_LIT("v\r\nInjected: 1") };
    o = opts_for(&s, "GET");
    o.fields = &f;
    o.nfields = 1;
    assert_int_equal(client_request(c->pool, &o, &cbs, c, NULL), -EINVAL);
    o = opts_for(&s, "GET");
    o.port = 0;
    assert_int_equal(client_request(c->pool, &o, &cbs, c, NULL), -EINVAL);
    /* A name without a resolver fails through on_error, not inline. */
    o = opts_for(&s, "GET");
    o.host = SLICE_LIT("example.invalid");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    assert_int_equal(c->failed, 0);
    run_loop(c);
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->err, CLIENT_E_RESOLVE);
    assert_string_equal(c->msg, "cannot resolve example.invalid: no resolver configured");
    ctx_free(c);
}

/* Names resolve through dns/hostaddr.h: a name with both an IPv4 and an
 * IPv6 address gets both (the IPv6 one first), so a server listening on
 * ::1 alone is reached; an IPv6 literal with a bad zone is refused with
 * hostaddr's reason, not looked up as a name. */
static void test_name_both_families(void **state)
{
    (void)state;
    struct server s;
    server_start_on(&s, S_CLOSE_AFTER, 1, AF_INET6);
    dns_conf_t conf;
    dns_conf_init(&conf);
    assert_int_equal(dns_hosts_parse(&conf.hosts,
                                     slice_cstr("127.0.0.1 both.test\n::1 both.test\n")), 2);
    dns_conf_finish(&conf);
    client_opts_t co;
    client_opts_default(&co);
    co.dns = &conf;
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    o.host = SLICE_LIT("both.test");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->failed, 0);
    assert_int_equal(c->ended, 1);
    assert_int_equal(c->body_len, 2);
    client_stats_t st;
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.connects, 1);   /* ::1 first: no refused IPv4 try */
    c->ended = 0;
    o.host = SLICE_LIT("fe80::1%no-such-if0");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->failed, 1);
    assert_int_equal(c->err, CLIENT_E_RESOLVE);
    assert_string_equal(c->msg, "cannot use 'fe80::1%no-such-if0': no network interface "
                                "'no-such-if0'");
    ctx_free(c);
    dns_conf_dispose(&conf);
    server_stop(&s);
}

/* A name's first address that never answers a SYN (a listener on ::1
 * whose accept queue is full) does not take the whole connect timeout: the
 * attempt gets its share, then the next address (IPv4) is tried, as a
 * host with broken IPv6 needs now that IPv6 comes first. */
static void test_connect_falls_back_to_next_address(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_CLOSE_AFTER, 1);
    int hang = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(hang, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback,
                               .sin6_port = htons(s.port) };
    assert_int_equal(bind(hang, (struct sockaddr *)&a6, sizeof a6), 0);
    assert_int_equal(listen(hang, 0), 0);
    int filler = socket(AF_INET6, SOCK_STREAM, 0);  /* fills the accept queue */
    assert_int_equal(connect(filler, (struct sockaddr *)&a6, sizeof a6), 0);
    dns_conf_t conf;
    dns_conf_init(&conf);
    assert_int_equal(dns_hosts_parse(&conf.hosts,
                                     slice_cstr("::1 slow6.test\n127.0.0.1 slow6.test\n")), 2);
    dns_conf_finish(&conf);
    client_opts_t co;
    client_opts_default(&co);
    co.dns = &conf;
    co.connect_timeout_ms = 3000;
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    o.host = SLICE_LIT("slow6.test");
    assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->failed, 0);
    assert_int_equal(c->ended, 1);
    assert_int_equal(c->body_len, 2);
    client_stats_t st;
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.connects, 2);
    ctx_free(c);
    dns_conf_dispose(&conf);
    close(filler);
    close(hang);
    server_stop(&s);
}

/* A sized body given to a sink: what on_data got, then the sink's bytes,
 * are the body exactly; the connection is reused for the second round
 * (nothing past Content-Length was taken from the socket). */
static void test_sink_splices_sized_body(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_SIZED, 1);
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    for (int round = 0; round < 2; round++) {
        FILE *f = tmpfile();
        assert_non_null(f);
        c->sink_fd = fileno(f);
        c->body_len = c->sunk = 0;
        c->ended = 0;
        assert_int_equal(client_request(c->pool, &o, &cbs, c, &c->r), 0);
        run_loop(c);
        if (c->failed)
            fail_msg("failed: %s", c->msg);
        assert_int_equal(c->ended, 1);
        assert_true(c->sunk > 0);
        assert_int_equal(c->body_len + c->sunk, SIZED_LEN);
        static char got[SIZED_LEN];
        memcpy(got, c->body, c->body_len);
        assert_int_equal(pread(fileno(f), got + c->body_len, c->sunk, 0), (ssize_t)c->sunk);
        for (size_t i = 0; i < SIZED_LEN; i++)
            if (got[i] != sized_byte(i))
                fail_msg("byte %zu differs", i);
        fclose(f);
    }
    client_stats_t st;
    client_pool_stats(c->pool, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reuses, 1);
    ctx_free(c);
    server_stop(&s);
}

/* A chunked body cannot be given to a sink. */
static void test_sink_refuses_chunked(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, S_BIG_CHUNKED, 1);
    client_opts_t co;
    client_opts_default(&co);
    struct ctx *c = ctx_new(&co);
    client_req_opts_t o = opts_for(&s, "GET");
    assert_int_equal(client_request(c->pool, &o, &cbs_refused, c, &c->r), 0);
    run_loop(c);
    assert_int_equal(c->failed, 0);
    assert_int_equal(c->ended, 1);
    assert_int_equal(c->sunk, 0);
    assert_int_equal(c->body_len, 64 * 4096);
    ctx_free(c);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_chunked),
        cmocka_unit_test(test_stream_length),
        cmocka_unit_test(test_pause_resume_and_reuse),
        cmocka_unit_test(test_pause_longer_than_read_timeout),
        cmocka_unit_test(test_idle_close_detected),
        cmocka_unit_test(test_forbidden_address),
        cmocka_unit_test(test_cancel_in_head),
        cmocka_unit_test(test_header_timeout),
        cmocka_unit_test(test_header_timeout_not_restarted_by_bytes),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_name_both_families),
        cmocka_unit_test(test_connect_falls_back_to_next_address),
        cmocka_unit_test(test_sink_splices_sized_body),
        cmocka_unit_test(test_sink_refuses_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
