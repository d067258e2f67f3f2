/* test_dns_resolve.c - the stub resolver on the event loop, against a tiny
 * fake DNS server on 127.0.0.1 (UDP and TCP on one port 0, driven by the
 * same loop), so no network is needed: a UDP answer, TC then TCP, no answer
 * then TIMEOUT, spoofed IDs, a refused TCP connection, hosts, cancelling,
 * and lookups side by side. Each test has a 5 s safety timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/loop.h"
#include "core/sock.h"
#include "dns/resolve.h"

/* ------------------------------------------------------- fake server */

#define FAKE_CONNS 4
#define FAKE_BIG   40   /* A records of big.test: over 512 bytes */

struct fake;

struct fake_conn {
    io_t io;
    struct fake *f;
    uint8_t in[2 + 512];
    size_t len;
};

struct fake {
    loop_t *loop;
    io_t udp, lsn;
    addr_t addr;
    int no_tcp;
    size_t udp_queries, tcp_queries;
    uint16_t src_ports[8];
    size_t nports;
    struct fake_conn conns[FAKE_CONNS];
    size_t nconns;
};

/* Builds the answer to `q` into out; returns its length, or 0 for none.
 * big.test is truncated over UDP and whole over TCP. */
static size_t fake_answer(const uint8_t *q, size_t qlen, int tcp, uint8_t *out, size_t cap,
                          uint16_t *id_out, int *spoof)
{
    dns_question_t qd;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &qd;
    m.qd_cap = 1;
    if (dns_msg_decode(q, qlen, &m) < 0 || m.nqd != 1)
        return 0;
    char name[DNS_NAME_STR_MAX];
    dns_name_format(&qd.name, name, sizeof name);
    *id_out = m.h.id;
    *spoof = strcmp(name, "spoof.test.") == 0;
    if (strcmp(name, "silent.test.") == 0)
        return 0;
    uint16_t flags = DNS_F_QR | DNS_F_RD | DNS_F_RA;
    size_t nan = 0;
    int big = strcmp(name, "big.test.") == 0;
    if (strcmp(name, "udp.test.") == 0 || *spoof)
        nan = 1;
    else if (big && tcp)
        nan = FAKE_BIG;
    else if (big)
        flags |= DNS_F_TC;
    else if (strcmp(name, "nx.test.") == 0)
        flags |= DNS_R_NXDOMAIN;
    else
        flags |= DNS_R_REFUSED;
    dns_builder_t b;
    dns_builder_init(&b, out, cap, m.h.id, flags);
    dns_builder_question(&b, &qd.name, qd.qtype, qd.qclass);
    for (size_t i = 0; i < nan; i++) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = qd.name;
        rr.type = DNS_T_A;
        rr.rclass = DNS_C_IN;
        rr.ttl = 60;
        rr.a[0] = 192;
        rr.a[1] = 0;
        rr.a[2] = 2;
        rr.a[3] = (uint8_t)(i + 1);
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
    }
    return b.len;
}

static void fake_on_udp(io_t *io, uint32_t events)
{
    (void)events;
    struct fake *f = io->arg;
    uint8_t q[1024], a[1024];
    for (;;) {
        addr_t from;
        from.len = sizeof from.ss;
        ssize_t n = recvfrom(io->fd, q, sizeof q, 0, (struct sockaddr *)&from.ss, &from.len);
        if (n < 0)
            return;
        f->udp_queries++;
        if (f->nports < 8)
            f->src_ports[f->nports++] = addr_port(&from);
        uint16_t id;
        int spoof;
        size_t len = fake_answer(q, (size_t)n, 0, a, sizeof a, &id, &spoof);
        if (len == 0)
            continue;
        if (spoof) { /* first a reply with another ID, as a blind spoofer would */
            a[1] ^= 1;
            sendto(io->fd, a, len, 0, (struct sockaddr *)&from.ss, from.len);
            a[1] ^= 1;
        }
        sendto(io->fd, a, len, 0, (struct sockaddr *)&from.ss, from.len);
    }
}

static void fake_on_conn(io_t *io, uint32_t events)
{
    (void)events;
    struct fake_conn *c = io->arg;
    for (;;) {
        ssize_t n = read(io->fd, c->in + c->len, sizeof c->in - c->len);
        if (n == -1 && errno == EAGAIN)
            return;
        if (n <= 0) {
            loop_io_close(io);
            return;
        }
        c->len += (size_t)n;
        if (c->len < 2 || c->len < 2u + (size_t)(c->in[0] << 8 | c->in[1]))
            continue;
        c->f->tcp_queries++;
        uint8_t a[2 + 2048];
        uint16_t id;
        int spoof;
        size_t len = fake_answer(c->in + 2, c->len - 2, 1, a + 2, sizeof a - 2, &id, &spoof);
        c->len = 0;
        a[0] = (uint8_t)(len >> 8);
        a[1] = (uint8_t)len;
        assert_int_equal(write(io->fd, a, 2 + len), (ssize_t)(2 + len));
    }
}

static void fake_on_accept(io_t *io, uint32_t events)
{
    (void)events;
    struct fake *f = io->arg;
    int fd;
    while ((fd = sock_accept(io->fd, NULL)) >= 0) {
        assert_true(f->nconns < FAKE_CONNS);
        struct fake_conn *c = &f->conns[f->nconns++];
        c->f = f;
        c->len = 0;
        assert_int_equal(loop_io_add(f->loop, &c->io, fd, EPOLLIN | EPOLLRDHUP | EPOLLET,
                                     fake_on_conn, c), 0);
    }
}

/* UDP on 127.0.0.1 port 0, then TCP on the same port (unless no_tcp). */
static void fake_start(struct fake *f, loop_t *l, int no_tcp)
{
    memset(f, 0, sizeof *f);
    f->loop = l;
    f->no_tcp = no_tcp;
    for (int tries = 0; tries < 20; tries++) {
        addr_t a;
        memset(&a, 0, sizeof a);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.len = sizeof *s4;
        int ufd = sock_listen(&a, SOCK_DGRAM, 0);
        assert_true(ufd >= 0);
        assert_int_equal(sock_local(ufd, &f->addr), 0);
        int tfd = -1;
        if (!no_tcp) {
            tfd = sock_listen(&f->addr, SOCK_STREAM, 0);
            if (tfd < 0) { /* the port is taken for TCP: another one */
                close(ufd);
                continue;
            }
        }
        assert_int_equal(loop_io_add(l, &f->udp, ufd, EPOLLIN | EPOLLET, fake_on_udp, f), 0);
        f->lsn.fd = -1;
        if (tfd >= 0)
            assert_int_equal(loop_io_add(l, &f->lsn, tfd, EPOLLIN | EPOLLET, fake_on_accept, f),
                             0);
        return;
    }
    fail_msg("no free port");
}

static void fake_stop(struct fake *f)
{
    loop_io_close(&f->udp);
    loop_io_close(&f->lsn);
    for (size_t i = 0; i < f->nconns; i++)
        loop_io_close(&f->conns[i].io);
}

/* ------------------------------------------------------------ harness */

struct outcome {
    int called;
    int in_start;
    enum dns_stub_status status;
    size_t nrr;
    uint8_t last_a[4];
    int via_tcp, from_hosts;
    uint16_t server_port;
    uint64_t elapsed;
    size_t sent;
    dns_stub_stats_t stats;
};

static loop_t *loop;
static int pending;
static int starting;

static void on_done(dns_resolve_t *r, const dns_stub_result_t *res, void *arg)
{
    struct outcome *o = arg;
    o->called++;
    o->in_start = starting;
    o->status = res->status;
    o->nrr = res->nrr;
    if (res->nrr > 0)
        memcpy(o->last_a, res->rr[res->nrr - 1].a, 4);
    o->via_tcp = res->via_tcp;
    o->from_hosts = res->from_hosts;
    o->server_port = res->reply != NULL ? addr_port(&res->server) : 0;
    o->elapsed = res->elapsed_ms;
    o->sent = res->sent;
    o->stats = *dns_resolve_stats(r);
    dns_resolve_cancel(r); /* a no-op from inside the callback */
    if (--pending == 0)
        loop_break(loop);
}

static int safety_fired;

static void on_safety(ptimer_t *t, void *arg)
{
    (void)t;
    safety_fired = 1;
    loop_break(arg);
}

/* Runs the loop until every started lookup called back, or `ms`. */
static void run(uint64_t ms)
{
    ptimer_t safety;
    timer_init(&safety, on_safety, loop);
    safety_fired = 0;
    assert_int_equal(loop_timer_set(loop, &safety, ms), 0);
    assert_int_equal(loop_run(loop), 0);
    loop_timer_cancel(loop, &safety);
}

static void conf_for(dns_conf_t *c, const struct fake *f)
{
    dns_conf_init(c);
    c->timeout = 1;
    c->attempts = 1;
    dns_conf_add_ns(c, &f->addr);
}

static dns_resolve_t *start(const dns_conf_t *c, const char *name, uint16_t qtype,
                            struct outcome *o)
{
    dns_resolve_t *r = NULL;
    memset(o, 0, sizeof *o);
    starting = 1;
    assert_int_equal(dns_resolve_start(loop, c, slice_cstr(name), qtype, on_done, o, &r), 0);
    starting = 0;
    assert_non_null(r);
    pending++;
    return r;
}

static int setup(void **state)
{
    (void)state;
    loop = loop_new();
    pending = 0;
    return loop == NULL;
}

static int teardown(void **state)
{
    (void)state;
    loop_free(loop);
    return 0;
}

/* -------------------------------------------------------------- tests */

static void test_udp_answer(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 0);
    dns_conf_t c;
    conf_for(&c, &f);
    struct outcome o;
    start(&c, "udp.test.", DNS_T_A, &o);
    run(5000);
    assert_false(safety_fired);
    assert_int_equal(o.called, 1);
    assert_false(o.in_start);
    assert_int_equal(o.status, DNS_STUB_OK);
    assert_int_equal(o.nrr, 1);
    assert_memory_equal(o.last_a, ((uint8_t[]){ 192, 0, 2, 1 }), 4);
    assert_false(o.via_tcp);
    assert_int_equal(o.server_port, addr_port(&f.addr));
    assert_int_equal(o.sent, 1);
    assert_int_equal(f.udp_queries, 1);
    assert_int_equal(f.tcp_queries, 0);
    assert_int_not_equal(f.src_ports[0], 0);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

static void test_tc_then_tcp(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 0);
    dns_conf_t c;
    conf_for(&c, &f);
    struct outcome o;
    start(&c, "big.test.", DNS_T_A, &o);
    run(5000);
    assert_false(safety_fired);
    assert_int_equal(o.status, DNS_STUB_OK);
    assert_int_equal(o.nrr, FAKE_BIG);
    assert_memory_equal(o.last_a, ((uint8_t[]){ 192, 0, 2, FAKE_BIG }), 4);
    assert_true(o.via_tcp);
    assert_int_equal(o.sent, 2);
    assert_int_equal(f.udp_queries, 1);
    assert_int_equal(f.tcp_queries, 1);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

static void test_no_answer_times_out(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 0);
    dns_conf_t c;
    conf_for(&c, &f);
    struct outcome o;
    start(&c, "silent.test.", DNS_T_A, &o);
    run(5000);
    assert_false(safety_fired);
    assert_int_equal(o.status, DNS_STUB_TIMEOUT);
    assert_true(o.elapsed >= 1000 && o.elapsed < 2000);
    assert_int_equal(o.sent, 1);
    assert_int_equal(f.udp_queries, 1);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

static void test_spoofed_id_is_ignored(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 0);
    dns_conf_t c;
    conf_for(&c, &f);
    struct outcome o;
    start(&c, "spoof.test.", DNS_T_A, &o);
    run(5000);
    assert_int_equal(o.status, DNS_STUB_OK);
    assert_int_equal(o.stats.bad_id, 1);
    assert_int_equal(o.stats.ignored, 1);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

/* TC, and nobody listens on TCP: the connection is refused, the stub is
 * told at once, and with one server and one attempt that is an ERROR
 * well before the 1 s timeout. */
static void test_tcp_refused(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 1);
    dns_conf_t c;
    conf_for(&c, &f);
    struct outcome o;
    start(&c, "big.test.", DNS_T_A, &o);
    run(5000);
    assert_false(safety_fired);
    assert_int_equal(o.status, DNS_STUB_ERROR);
    assert_true(o.elapsed < 1000);
    assert_int_equal(o.sent, 2);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

static void test_hosts_without_network(void **state)
{
    (void)state;
    dns_conf_t c;
    dns_conf_init(&c); /* no server at all: hosts must not need one */
    assert_int_equal(dns_hosts_parse(&c.hosts, SLICE_LIT("192.0.2.77 local.test\n")), 1);
    struct outcome o;
    start(&c, "local.test", DNS_T_A, &o);
    assert_int_equal(o.called, 0); /* not from inside dns_resolve_start */
    run(5000);
    assert_int_equal(o.called, 1);
    assert_false(o.in_start);
    assert_int_equal(o.status, DNS_STUB_OK);
    assert_true(o.from_hosts);
    assert_memory_equal(o.last_a, ((uint8_t[]){ 192, 0, 2, 77 }), 4);

    /* No server and not in hosts: ERROR, still from the loop. */
    start(&c, "elsewhere.test", DNS_T_A, &o);
    run(5000);
    assert_int_equal(o.called, 1);
    assert_int_equal(o.status, DNS_STUB_ERROR);

    dns_resolve_t *r;
    assert_int_equal(dns_resolve_start(loop, &c, SLICE_LIT("a..b"), DNS_T_A, on_done, &o, &r),
                     -EINVAL);
    dns_conf_dispose(&c);
}

static void test_cancel(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 0);
    dns_conf_t c;
    conf_for(&c, &f);
    assert_int_equal(dns_hosts_parse(&c.hosts, SLICE_LIT("192.0.2.77 local.test\n")), 1);
    struct outcome o1, o2, o3;
    dns_resolve_t *r1 = start(&c, "silent.test.", DNS_T_A, &o1);
    dns_resolve_t *r2 = start(&c, "local.test", DNS_T_A, &o2); /* done, not yet delivered */
    start(&c, "udp.test.", DNS_T_A, &o3);
    dns_resolve_cancel(r1);
    dns_resolve_cancel(r2);
    dns_resolve_cancel(r2);
    pending -= 2;
    run(5000);
    assert_false(safety_fired);
    assert_int_equal(o1.called, 0);
    assert_int_equal(o2.called, 0);
    assert_int_equal(o3.called, 1);
    assert_int_equal(o3.status, DNS_STUB_OK);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

/* Three lookups side by side on one loop, each with its own socket and so
 * its own source port. */
static void test_side_by_side(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, loop, 0);
    dns_conf_t c;
    conf_for(&c, &f);
    struct outcome o[3];
    start(&c, "udp.test.", DNS_T_A, &o[0]);
    start(&c, "big.test.", DNS_T_A, &o[1]);
    start(&c, "nx.test.", DNS_T_A, &o[2]);
    run(5000);
    assert_false(safety_fired);
    assert_int_equal(o[0].status, DNS_STUB_OK);
    assert_int_equal(o[1].status, DNS_STUB_OK);
    assert_int_equal(o[1].nrr, FAKE_BIG);
    assert_int_equal(o[2].status, DNS_STUB_NXDOMAIN);
    assert_int_equal(f.udp_queries, 3);
    assert_int_equal(f.nports, 3);
    assert_int_not_equal(f.src_ports[0], f.src_ports[1]);
    assert_int_not_equal(f.src_ports[1], f.src_ports[2]);
    assert_int_not_equal(f.src_ports[0], f.src_ports[2]);
    fake_stop(&f);
    dns_conf_dispose(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_udp_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tc_then_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spoofed_id_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_without_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_side_by_side, setup, teardown),
    };
    return cmocka_run_group_tests_name("dns_resolve", tests, NULL, NULL);
}
