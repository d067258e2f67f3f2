/* test_dns_stub.c - the stub resolver's state machine, driven with virtual
 * time and replies built with the dns builder: answers, hosts, the search
 * list with ndots, absolute names, the timeout schedule to the
 * millisecond, spoofed replies, TC and TCP, SERVFAIL and friends,
 * NXDOMAIN across the search list, NODATA and CNAME chains.
 *
 * Servers are 192.0.2.1, .2 and .3, port 53; they are only addresses here.
 * The random bytes are fixed, so the query ID of the i-th name asked is
 * 0x1111 * (i + 1). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns/stub.h"

/* ----------------------------------------------------------- helpers */

static uint8_t rnd[DNS_STUB_RANDOM_LEN];

static uint16_t id_of(size_t name_index) { return (uint16_t)(0x1111 * (name_index + 1)); }

static addr_t ip4(const char *ip, uint16_t port)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    a.len = sizeof *s4;
    return a;
}

static addr_t srv_addr(size_t i)
{
    char ip[32];
    snprintf(ip, sizeof ip, "192.0.2.%zu", i + 1);
    return ip4(ip, 53);
}

/* nns servers, the given resolv.conf text on top of the defaults. */
static void conf_make(dns_conf_t *c, size_t nns, const char *resolv)
{
    dns_conf_init(c);
    for (size_t i = 0; i < nns; i++) {
        addr_t a = srv_addr(i);
        dns_conf_add_ns(c, &a);
    }
    if (resolv != NULL)
        dns_conf_parse_resolv(c, slice_cstr(resolv));
}

static dns_stub_t *stub_new(const dns_conf_t *c, const char *name, uint16_t qtype)
{
    dns_stub_t *st = NULL;
    assert_int_equal(dns_stub_new(&st, c, slice_cstr(name), qtype), 0);
    return st;
}

static void name_is(const dns_name_t *n, const char *text)
{
    char buf[DNS_NAME_STR_MAX];
    assert_true(dns_name_format(n, buf, sizeof buf) >= 0);
    assert_string_equal(buf, text);
}

static dns_name_t name_of(const char *text)
{
    dns_name_t n;
    assert_int_equal(dns_name_parse(&n, slice_cstr(text)), 0);
    return n;
}

/* Pops the next send and checks it: server, transport, question, ID. */
static void expect_tx(dns_stub_t *st, size_t server, int tcp, const char *qname, uint16_t qtype,
                      uint16_t id)
{
    dns_stub_tx_t tx;
    assert_true(dns_stub_next_tx(st, &tx));
    assert_int_equal(tx.server, server);
    assert_int_equal(tx.tcp, tcp);
    addr_t want = srv_addr(server);
    assert_int_equal(tx.to->len, want.len);
    assert_memory_equal(&tx.to->ss, &want.ss, want.len);
    dns_question_t q;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    assert_int_equal(dns_msg_decode(tx.msg, tx.len, &m), 0);
    assert_int_equal(m.h.id, id);
    assert_int_equal(m.h.flags, DNS_F_RD);
    assert_int_equal(m.nqd, 1);
    name_is(&q.name, qname);
    assert_int_equal(q.qtype, qtype);
    assert_int_equal(q.qclass, DNS_C_IN);
    assert_false(dns_stub_next_tx(st, &tx)); /* one at a time */
}

static void expect_no_tx(dns_stub_t *st)
{
    dns_stub_tx_t tx;
    assert_false(dns_stub_next_tx(st, &tx));
}

static dns_rr_t rr_a(const char *owner, uint8_t last)
{
    dns_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.name = name_of(owner);
    rr.type = DNS_T_A;
    rr.rclass = DNS_C_IN;
    rr.ttl = 300;
    rr.a[0] = 192;
    rr.a[1] = 0;
    rr.a[2] = 2;
    rr.a[3] = last;
    return rr;
}

static dns_rr_t rr_cname(const char *owner, const char *target)
{
    dns_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.name = name_of(owner);
    rr.type = DNS_T_CNAME;
    rr.rclass = DNS_C_IN;
    rr.ttl = 300;
    rr.target = name_of(target);
    return rr;
}

struct reply {
    uint8_t buf[4096];
    size_t len;
};

/* A reply: QR RD RA, the flags given (RCODE, TC, ...), the question, the
 * answer records. qname NULL: no question. */
static void reply_make(struct reply *r, uint16_t id, uint16_t flags, const char *qname,
                       uint16_t qtype, const dns_rr_t *an, size_t nan)
{
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, r->buf, sizeof r->buf, id,
                                      (uint16_t)(DNS_F_QR | DNS_F_RD | DNS_F_RA | flags)), 0);
    if (qname != NULL) {
        dns_name_t q = name_of(qname);
        assert_int_equal(dns_builder_question(&b, &q, qtype, DNS_C_IN), 0);
    }
    for (size_t i = 0; i < nan; i++)
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &an[i]), 0);
    r->len = b.len;
}

/* Feeds a reply from server i over UDP (or TCP); returns the stub's verdict. */
static int feed(dns_stub_t *st, uint64_t now, size_t server, const struct reply *r, int tcp)
{
    addr_t from = srv_addr(server);
    return dns_stub_input(st, now, &from, r->buf, r->len, tcp);
}

static int feed_rcode(dns_stub_t *st, uint64_t now, size_t server, uint16_t id, unsigned rcode,
                      const char *qname, uint16_t qtype)
{
    struct reply r;
    reply_make(&r, id, (uint16_t)rcode, qname, qtype, NULL, 0);
    return feed(st, now, server, &r, 0);
}

static const dns_stub_result_t *expect_done(dns_stub_t *st, enum dns_stub_status s)
{
    assert_true(dns_stub_done(st));
    const dns_stub_result_t *res = dns_stub_result(st);
    assert_non_null(res);
    if (res->status != s)
        fail_msg("status %s, expected %s", dns_stub_status_name(res->status),
                 dns_stub_status_name(s));
    assert_int_equal(dns_stub_deadline(st), UINT64_MAX);
    expect_no_tx(st);
    return res;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < DNS_STUB_RANDOM_LEN; i++)
        rnd[i] = (uint8_t)(0x11 * (i / 2 + 1));
    return 0;
}

/* ----------------------------------------------------------- answers */

static void test_answer(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "www.example.test.", DNS_T_A);
    assert_null(dns_stub_result(st));
    assert_int_equal(dns_stub_deadline(st), UINT64_MAX);
    dns_stub_start(st, 1000, rnd);
    expect_tx(st, 0, 0, "www.example.test.", DNS_T_A, id_of(0));
    assert_int_equal(dns_stub_deadline(st), 6000);
    assert_false(dns_stub_done(st));
    dns_stub_timeout(st, 5999); /* early: nothing */
    expect_no_tx(st);

    dns_rr_t an[2] = { rr_a("www.example.test", 1), rr_a("www.example.test", 2) };
    struct reply r;
    reply_make(&r, id_of(0), 0, "www.example.test", DNS_T_A, an, 2);
    assert_true(feed(st, 1042, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->nrr, 2);
    assert_int_equal(res->rr[0].a[3], 1);
    assert_int_equal(res->rr[1].a[3], 2);
    assert_int_equal(res->rr[0].ttl, 300);
    name_is(&res->qname, "www.example.test.");
    assert_int_equal(res->nchain, 1);
    name_is(&res->chain[0], "www.example.test.");
    assert_false(res->from_hosts);
    assert_int_equal(res->server_idx, 0);
    assert_false(res->via_tcp);
    assert_int_equal(res->elapsed_ms, 42);
    assert_int_equal(res->sent, 1);
    assert_int_equal(res->rcode, DNS_R_NOERROR);
    assert_int_equal(res->reply_len, r.len);
    assert_memory_equal(res->reply, r.buf, r.len);
    assert_int_equal(res->msg.sec[DNS_SEC_AN].n, 2);
    assert_int_equal(res->qtype, DNS_T_A);

    /* Late duplicates are ignored and counted. */
    assert_false(feed(st, 1043, 0, &r, 0));
    assert_int_equal(dns_stub_stats(st)->late, 1);
    assert_int_equal(dns_stub_stats(st)->ignored, 1);
    dns_stub_timeout(st, 100000);
    expect_done(st, DNS_STUB_OK);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

static void test_bad_name(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, NULL);
    dns_stub_t *st = NULL;
    assert_int_equal(dns_stub_new(&st, &c, SLICE_LIT("a..b"), DNS_T_A), DNS_E_EMPTY_LABEL);
    assert_int_equal(dns_stub_new(&st, &c, SLICE_LIT(""), DNS_T_A), DNS_E_EMPTY_LABEL);
    assert_null(st);
    dns_conf_dispose(&c);
}

static void test_edns0_and_use_vc(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, "options edns0 use-vc\n");
    dns_stub_t *st = stub_new(&c, "e.test.", DNS_T_TXT);
    dns_stub_start(st, 0, rnd);
    dns_stub_tx_t tx;
    assert_true(dns_stub_next_tx(st, &tx));
    assert_true(tx.tcp);
    dns_msg_t m;
    dns_question_t q;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    assert_int_equal(dns_msg_decode(tx.msg, tx.len, &m), 0);
    assert_true(m.edns.present);
    assert_int_equal(m.edns.udp_size, DNS_EDNS_PAYLOAD);

    /* A UDP reply is not what was asked for. */
    struct reply r;
    reply_make(&r, id_of(0), 0, "e.test", DNS_T_TXT, NULL, 0);
    assert_false(feed(st, 10, 0, &r, 0));
    assert_int_equal(dns_stub_stats(st)->bad_source, 1);
    assert_true(feed(st, 10, 0, &r, 1));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_NODATA);
    assert_true(res->via_tcp);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* ------------------------------------------------------------- hosts */

static void test_hosts_first(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, "search example.test\n");
    assert_int_equal(dns_hosts_parse(&c.hosts, SLICE_LIT("192.0.2.9 myhost myhost.example.test\n"
                                                         "2001:db8::9 v6only\n")), 2);
    dns_stub_t *st = stub_new(&c, "MyHost", DNS_T_A);
    dns_stub_start(st, 500, rnd);
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_true(res->from_hosts);
    assert_int_equal(res->nrr, 1);
    assert_memory_equal(res->rr[0].a, ((uint8_t[]){ 192, 0, 2, 9 }), 4);
    name_is(&res->qname, "MyHost.");
    assert_int_equal(res->sent, 0);
    assert_int_equal(res->elapsed_ms, 0);
    assert_null(res->reply);
    dns_stub_free(st);

    /* Reverse. */
    st = stub_new(&c, "9.2.0.192.in-addr.arpa.", DNS_T_PTR);
    dns_stub_start(st, 0, rnd);
    res = expect_done(st, DNS_STUB_OK);
    assert_true(res->from_hosts);
    name_is(&res->rr[0].target, "myhost.");
    dns_stub_free(st);

    /* In hosts, but not for this type: the servers are asked, with the
     * search list (hosts is not). */
    st = stub_new(&c, "myhost", DNS_T_AAAA);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "myhost.example.test.", DNS_T_AAAA, id_of(0));
    dns_stub_free(st);
    st = stub_new(&c, "v6only", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "v6only.example.test.", DNS_T_A, id_of(0));
    dns_stub_free(st);
    st = stub_new(&c, "myhost", DNS_T_MX);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "myhost.example.test.", DNS_T_MX, id_of(0));
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* ------------------------------------------------------- search list */

/* Runs `name` against NXDOMAIN from server 0 for every name asked, and
 * checks the names asked, in order. */
static void search_order(const char *resolv, const char *name, const char *const *want,
                         size_t nwant)
{
    dns_conf_t c;
    conf_make(&c, 1, resolv);
    dns_stub_t *st = stub_new(&c, name, DNS_T_A);
    dns_stub_start(st, 0, rnd);
    for (size_t i = 0; i < nwant; i++) {
        expect_tx(st, 0, 0, want[i], DNS_T_A, id_of(i));
        assert_true(feed_rcode(st, 10 * (i + 1), 0, id_of(i), DNS_R_NXDOMAIN, want[i], DNS_T_A));
    }
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_NXDOMAIN);
    name_is(&res->qname, want[nwant - 1]);
    assert_int_equal(res->sent, nwant);
    assert_int_equal(res->rcode, DNS_R_NXDOMAIN);
    assert_non_null(res->reply);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

static void test_search_order_ndots(void **state)
{
    (void)state;
    const char *s = "search a.test b.test\n";
    /* 0 dots < ndots 1: search first, as is last. */
    search_order(s, "foo", (const char *const[]){ "foo.a.test.", "foo.b.test.", "foo." }, 3);
    /* 1 dot >= ndots 1: as is first. */
    search_order(s, "foo.bar",
                 (const char *const[]){ "foo.bar.", "foo.bar.a.test.", "foo.bar.b.test." }, 3);
    /* ndots 2: one dot is not enough. */
    search_order("search a.test b.test\noptions ndots:2\n", "foo.bar",
                 (const char *const[]){ "foo.bar.a.test.", "foo.bar.b.test.", "foo.bar." }, 3);
    /* ndots 0: even a single label is tried as is first. */
    search_order("search a.test\noptions ndots:0\n", "foo",
                 (const char *const[]){ "foo.", "foo.a.test." }, 2);
    /* no-tld-query: a single label never goes out alone. */
    search_order("search a.test b.test\noptions no-tld-query\n", "foo",
                 (const char *const[]){ "foo.a.test.", "foo.b.test." }, 2);
    /* ... unless there is no search list. */
    search_order("options no-tld-query\n", "foo", (const char *const[]){ "foo." }, 1);
    /* The root in the search list is the name as is: asked once. */
    search_order("search a.test .\n", "foo", (const char *const[]){ "foo.a.test.", "foo." }, 2);
    /* Duplicates asked once; search domains that make a name too long are
     * skipped. */
    char longdom[300], resolv[400];
    memset(longdom, 'x', 63);
    strcpy(longdom + 63, ".");
    memset(longdom + 64, 'y', 63);
    strcpy(longdom + 127, ".");
    memset(longdom + 128, 'z', 63);
    strcpy(longdom + 191, ".test");
    snprintf(resolv, sizeof resolv, "search a.test a.test. %s b.test\n", longdom);
    search_order(resolv, "a-long-label-of-sixty-bytes-that-will-not-fit-after-longdom",
                 (const char *const[]){
                     "a-long-label-of-sixty-bytes-that-will-not-fit-after-longdom.a.test.",
                     "a-long-label-of-sixty-bytes-that-will-not-fit-after-longdom.b.test.",
                     "a-long-label-of-sixty-bytes-that-will-not-fit-after-longdom." },
                 3);
}

static void test_absolute_names(void **state)
{
    (void)state;
    const char *s = "search a.test b.test\noptions ndots:5\n";
    search_order(s, "foo.", (const char *const[]){ "foo." }, 1);
    search_order(s, "foo.bar.", (const char *const[]){ "foo.bar." }, 1);
    search_order(s, ".", (const char *const[]){ "." }, 1);
    /* An escaped final dot belongs to the label: the name is relative. */
    search_order(s, "foo\\.",
                 (const char *const[]){ "foo\\..a.test.", "foo\\..b.test.", "foo\\.." }, 3);
    search_order(s, "foo\\\\.", (const char *const[]){ "foo\\\\." }, 1);
}

/* NXDOMAIN for the first names, an answer for the next: its name is the
 * result's. */
static void test_nxdomain_then_answer(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, "search a.test b.test\n");
    dns_stub_t *st = stub_new(&c, "foo", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "foo.a.test.", DNS_T_A, id_of(0));
    assert_true(feed_rcode(st, 5, 0, id_of(0), DNS_R_NXDOMAIN, "foo.a.test", DNS_T_A));
    expect_tx(st, 0, 0, "foo.b.test.", DNS_T_A, id_of(1));
    assert_int_equal(dns_stub_deadline(st), 5005);
    /* A late reply for the first name has the old ID. */
    assert_false(feed_rcode(st, 6, 0, id_of(0), DNS_R_NXDOMAIN, "foo.a.test", DNS_T_A));
    assert_int_equal(dns_stub_stats(st)->bad_id, 1);
    dns_rr_t an = rr_a("foo.b.test", 7);
    struct reply r;
    reply_make(&r, id_of(1), 0, "foo.b.test", DNS_T_A, &an, 1);
    assert_true(feed(st, 9, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    name_is(&res->qname, "foo.b.test.");
    assert_int_equal(res->nrr, 1);
    assert_int_equal(res->sent, 2);
    assert_int_equal(res->elapsed_ms, 9);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* NODATA is an answer: the search list stops there. */
static void test_nodata_stops_search(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, "search a.test b.test\n");
    dns_stub_t *st = stub_new(&c, "foo", DNS_T_AAAA);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "foo.a.test.", DNS_T_AAAA, id_of(0));
    /* An A record is not an AAAA one. */
    dns_rr_t an = rr_a("foo.a.test", 7);
    struct reply r;
    reply_make(&r, id_of(0), 0, "foo.a.test", DNS_T_AAAA, &an, 1);
    assert_true(feed(st, 3, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_NODATA);
    assert_int_equal(res->nrr, 0);
    name_is(&res->qname, "foo.a.test.");
    assert_int_equal(res->msg.sec[DNS_SEC_AN].n, 1);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* ------------------------------------------------------------ timing */

/* Sends at `at[i]` to server `to[i]`, nothing answering; TIMEOUT at `end`. */
static void schedule(size_t nns, const char *resolv, const uint64_t *at, const size_t *to,
                     size_t n, uint64_t end)
{
    dns_conf_t c;
    conf_make(&c, nns, resolv);
    dns_stub_t *st = stub_new(&c, "slow.test.", DNS_T_A);
    dns_stub_start(st, at[0], rnd);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            dns_stub_timeout(st, at[i] - 1);
            expect_no_tx(st);
            dns_stub_timeout(st, at[i]);
        }
        expect_tx(st, to[i], 0, "slow.test.", DNS_T_A, id_of(0));
        assert_int_equal(dns_stub_deadline(st), i + 1 < n ? at[i + 1] : end);
    }
    dns_stub_timeout(st, end - 1);
    assert_false(dns_stub_done(st));
    dns_stub_timeout(st, end);
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_TIMEOUT);
    assert_int_equal(res->elapsed_ms, end - at[0]);
    assert_int_equal(res->sent, n);
    assert_null(res->reply);
    assert_int_equal(res->nrr, 0);
    name_is(&res->qname, "slow.test.");
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

static void test_timeout_schedule(void **state)
{
    (void)state;
    /* glibc's res_send: timeout 5 s in round 0, (5 << r) / nservers after. */
    schedule(2, NULL, (const uint64_t[]){ 0, 5000, 10000, 15000 }, (const size_t[]){ 0, 1, 0, 1 },
             4, 20000);
    schedule(1, NULL, (const uint64_t[]){ 0, 5000 }, (const size_t[]){ 0, 0 }, 2, 15000);
    schedule(3, NULL, (const uint64_t[]){ 100, 5100, 10100, 15100, 18100, 21100 },
             (const size_t[]){ 0, 1, 2, 0, 1, 2 }, 6, 24100);
    schedule(1, "options timeout:1 attempts:1\n", (const uint64_t[]){ 0 }, (const size_t[]){ 0 },
             1, 1000);
    /* Round r of 3 attempts with 2 servers: 2 s, 2 s, (2<<1)/2 = 2 s each,
     * (2<<2)/2 = 4 s each. */
    schedule(2, "options timeout:2 attempts:3\n",
             (const uint64_t[]){ 0, 2000, 4000, 6000, 8000, 12000 },
             (const size_t[]){ 0, 1, 0, 1, 0, 1 }, 6, 16000);
    /* timeout:0 still waits a second; timeout 1 over 3 servers rounds to
     * 0 s and so 1 s too. */
    schedule(1, "options timeout:0 attempts:2\n", (const uint64_t[]){ 0, 1000 },
             (const size_t[]){ 0, 0 }, 2, 2000);
    schedule(3, "options timeout:1 attempts:2\n",
             (const uint64_t[]){ 0, 1000, 2000, 3000, 4000, 5000 },
             (const size_t[]){ 0, 1, 2, 0, 1, 2 }, 6, 6000);
    /* rotate: the first server comes from the random bytes (rnd[14] = 0x88,
     * 136 % 3 = 1), then in order. */
    schedule(3, "options rotate attempts:1\n", (const uint64_t[]){ 0, 5000, 10000 },
             (const size_t[]){ 1, 2, 0 }, 3, 15000);
}

/* A TIMEOUT ends the lookup: the search list is not gone on with. */
static void test_timeout_stops_search(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, "search a.test b.test\noptions attempts:1 timeout:3\n");
    dns_stub_t *st = stub_new(&c, "foo", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "foo.a.test.", DNS_T_A, id_of(0));
    dns_stub_timeout(st, 3000);
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_TIMEOUT);
    name_is(&res->qname, "foo.a.test.");
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* A server that was given up on may still answer: the answer is taken. */
static void test_late_answer_from_earlier_server(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "late.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "late.test.", DNS_T_A, id_of(0));
    dns_stub_timeout(st, 5000);
    expect_tx(st, 1, 0, "late.test.", DNS_T_A, id_of(0));
    dns_rr_t an = rr_a("late.test", 5);
    struct reply r;
    reply_make(&r, id_of(0), 0, "late.test", DNS_T_A, &an, 1);
    assert_true(feed(st, 6000, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->server_idx, 0);
    addr_t s0 = srv_addr(0);
    assert_memory_equal(&res->server.ss, &s0.ss, s0.len);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* dns_stub_fail moves on at once; if every send failed, ERROR. */
static void test_send_failures(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "f.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "f.test.", DNS_T_A, id_of(0));
    dns_stub_fail(st, 1);
    expect_tx(st, 1, 0, "f.test.", DNS_T_A, id_of(0));
    assert_int_equal(dns_stub_deadline(st), 5001);
    dns_stub_fail(st, 2);
    expect_tx(st, 0, 0, "f.test.", DNS_T_A, id_of(0));
    assert_int_equal(dns_stub_deadline(st), 5002);
    dns_stub_fail(st, 3);
    expect_tx(st, 1, 0, "f.test.", DNS_T_A, id_of(0));
    dns_stub_fail(st, 4);
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_ERROR);
    assert_int_equal(res->sent, 4);
    dns_stub_free(st);

    /* One failure and one timeout: a TIMEOUT. */
    st = stub_new(&c, "f.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "f.test.", DNS_T_A, id_of(0));
    dns_stub_fail(st, 0);
    expect_tx(st, 1, 0, "f.test.", DNS_T_A, id_of(0));
    dns_stub_timeout(st, 5000);
    expect_tx(st, 0, 0, "f.test.", DNS_T_A, id_of(0));
    dns_stub_fail(st, 5000);
    expect_tx(st, 1, 0, "f.test.", DNS_T_A, id_of(0));
    dns_stub_fail(st, 5000);
    expect_done(st, DNS_STUB_TIMEOUT);
    dns_stub_free(st);

    /* No server at all. */
    dns_conf_t empty;
    dns_conf_init(&empty);
    st = stub_new(&empty, "f.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_done(st, DNS_STUB_ERROR);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* ------------------------------------------------------------ spoofing */

static void test_spoofed_replies_ignored(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "bank.example.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "bank.example.test.", DNS_T_A, id_of(0));
    const uint16_t id = id_of(0);
    dns_rr_t evil = rr_a("bank.example.test", 66);
    struct reply r;
    addr_t from;

    /* Wrong ID. */
    reply_make(&r, (uint16_t)(id ^ 1), 0, "bank.example.test", DNS_T_A, &evil, 1);
    assert_false(feed(st, 1, 0, &r, 0));
    /* Right ID, wrong source port, then wrong source address, then a
     * server that was not asked yet. */
    reply_make(&r, id, 0, "bank.example.test", DNS_T_A, &evil, 1);
    from = ip4("192.0.2.1", 5353);
    assert_false(dns_stub_input(st, 2, &from, r.buf, r.len, 0));
    from = ip4("198.51.100.1", 53);
    assert_false(dns_stub_input(st, 3, &from, r.buf, r.len, 0));
    assert_false(feed(st, 3, 1, &r, 0));
    /* Over TCP, when no TCP exchange is going on. */
    assert_false(feed(st, 3, 0, &r, 1));
    /* Wrong question: another name, type, class; none; two. */
    reply_make(&r, id, 0, "bank.example.test.evil", DNS_T_A, &evil, 1);
    assert_false(feed(st, 4, 0, &r, 0));
    reply_make(&r, id, 0, "bank.example.test", DNS_T_AAAA, NULL, 0);
    assert_false(feed(st, 4, 0, &r, 0));
    reply_make(&r, id, 0, "bank.example.test", DNS_T_A, &evil, 1);
    r.buf[12 + 19 + 2 + 1] = DNS_C_CH; /* the question's class, low byte */
    assert_false(feed(st, 4, 0, &r, 0));
    reply_make(&r, id, 0, NULL, 0, &evil, 1);
    assert_false(feed(st, 4, 0, &r, 0));
    {
        dns_builder_t b;
        dns_name_t q = name_of("bank.example.test");
        dns_builder_init(&b, r.buf, sizeof r.buf, id, DNS_F_QR | DNS_F_RD | DNS_F_RA);
        dns_builder_question(&b, &q, DNS_T_A, DNS_C_IN);
        dns_builder_question(&b, &q, DNS_T_A, DNS_C_IN);
        r.len = b.len;
        assert_false(feed(st, 4, 0, &r, 0));
    }
    /* Not a reply (QR clear), another opcode. */
    reply_make(&r, id, 0, "bank.example.test", DNS_T_A, &evil, 1);
    r.buf[2] &= 0x7f;
    assert_false(feed(st, 5, 0, &r, 0));
    reply_make(&r, id, 0, "bank.example.test", DNS_T_A, &evil, 1);
    r.buf[2] |= 2u << 3; /* opcode 2, STATUS */
    assert_false(feed(st, 5, 0, &r, 0));
    /* Malformed: short, cut, trailing bytes. */
    reply_make(&r, id, 0, "bank.example.test", DNS_T_A, &evil, 1);
    struct reply cut = r;
    cut.len = 11;
    assert_false(feed(st, 6, 0, &cut, 0));
    cut.len = r.len - 1;
    assert_false(feed(st, 6, 0, &cut, 0));
    cut.len = r.len + 1;
    assert_false(feed(st, 6, 0, &cut, 0));
    /* An error RCODE without a question is taken (it only moves on), but
     * an answer without one is not: see above. */

    const dns_stub_stats_t *s = dns_stub_stats(st);
    assert_int_equal(s->bad_id, 1);
    assert_int_equal(s->bad_source, 4);
    assert_int_equal(s->bad_question, 7);
    assert_int_equal(s->malformed, 3);
    assert_int_equal(s->late, 0);
    assert_int_equal(s->ignored, 15);
    assert_false(dns_stub_done(st));
    expect_no_tx(st);
    assert_int_equal(dns_stub_deadline(st), 5000);

    /* The real answer, its question in another case (RFC 4343): taken. */
    dns_rr_t good = rr_a("BANK.example.TEST", 1);
    reply_make(&r, id, 0, "BaNk.ExAmPlE.tEsT", DNS_T_A, &good, 1);
    assert_true(feed(st, 7, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->nrr, 1);
    assert_int_equal(res->rr[0].a[3], 1);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* --------------------------------------------------------- TC and TCP */

static void test_tc_then_tcp(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "big.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "big.test.", DNS_T_A, id_of(0));
    struct reply r;
    reply_make(&r, id_of(0), DNS_F_TC, "big.test", DNS_T_A, NULL, 0);
    assert_true(feed(st, 100, 0, &r, 0));
    expect_tx(st, 0, 1, "big.test.", DNS_T_A, id_of(0)); /* same server, same query, TCP */
    assert_int_equal(dns_stub_deadline(st), 5100);
    /* The UDP reply again (a duplicate): the TCP exchange goes on. */
    assert_true(feed(st, 101, 0, &r, 0));
    expect_no_tx(st);
    /* The whole answer over TCP, from the server asked. */
    dns_rr_t an[40];
    for (size_t i = 0; i < 40; i++)
        an[i] = rr_a("big.test", (uint8_t)(i + 1));
    reply_make(&r, id_of(0), 0, "big.test", DNS_T_A, an, 40);
    assert_true(r.len > DNS_UDP_MAX);
    addr_t other = srv_addr(1);
    assert_false(dns_stub_input(st, 150, &other, r.buf, r.len, 1));
    assert_true(feed(st, 200, 0, &r, 1));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->nrr, 40);
    assert_int_equal(res->rr[39].a[3], 40);
    assert_true(res->via_tcp);
    assert_int_equal(res->sent, 2);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* TCP that times out goes on to the next server over UDP; a TC reply cut
 * in the middle of a record still sends the query to TCP. */
static void test_tcp_timeout_and_cut_tc(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "big.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "big.test.", DNS_T_A, id_of(0));
    dns_rr_t an[3] = { rr_a("big.test", 1), rr_a("big.test", 2), rr_a("big.test", 3) };
    struct reply r;
    reply_make(&r, id_of(0), DNS_F_TC, "big.test", DNS_T_A, an, 3);
    r.len -= 5; /* cut inside the last record, as old servers did */
    assert_true(feed(st, 1000, 0, &r, 0));
    expect_tx(st, 0, 1, "big.test.", DNS_T_A, id_of(0));
    assert_int_equal(dns_stub_deadline(st), 6000);
    dns_stub_timeout(st, 6000);
    expect_tx(st, 1, 0, "big.test.", DNS_T_A, id_of(0));
    assert_int_equal(dns_stub_deadline(st), 11000);
    /* A TCP reply from server 0 is too late now. */
    reply_make(&r, id_of(0), 0, "big.test", DNS_T_A, an, 3);
    assert_false(feed(st, 6001, 0, &r, 1));
    /* Server 1 truncates too; its TCP connection fails. */
    reply_make(&r, id_of(0), DNS_F_TC, "big.test", DNS_T_A, NULL, 0);
    assert_true(feed(st, 7000, 1, &r, 0));
    expect_tx(st, 1, 1, "big.test.", DNS_T_A, id_of(0));
    dns_stub_fail(st, 7001);
    expect_tx(st, 0, 0, "big.test.", DNS_T_A, id_of(0)); /* round 1 */
    assert_int_equal(dns_stub_deadline(st), 12001);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* ------------------------------------------- SERVFAIL and other RCODEs */

static void test_servfail_next_server(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 3, NULL);
    dns_stub_t *st = stub_new(&c, "sf.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "sf.test.", DNS_T_A, id_of(0));
    assert_true(feed_rcode(st, 10, 0, id_of(0), DNS_R_SERVFAIL, "sf.test", DNS_T_A));
    expect_tx(st, 1, 0, "sf.test.", DNS_T_A, id_of(0)); /* at once */
    assert_int_equal(dns_stub_deadline(st), 5010);
    /* REFUSED, without a question (some servers do): next again. */
    assert_true(feed_rcode(st, 20, 1, id_of(0), DNS_R_REFUSED, NULL, 0));
    expect_tx(st, 2, 0, "sf.test.", DNS_T_A, id_of(0));
    /* A late SERVFAIL from server 0 again: noted, the wait goes on. */
    assert_true(feed_rcode(st, 30, 0, id_of(0), DNS_R_SERVFAIL, "sf.test", DNS_T_A));
    expect_no_tx(st);
    assert_int_equal(dns_stub_deadline(st), 5020);
    dns_rr_t an = rr_a("sf.test", 3);
    struct reply r;
    reply_make(&r, id_of(0), 0, "sf.test", DNS_T_A, &an, 1);
    assert_true(feed(st, 40, 2, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->server_idx, 2);
    assert_int_equal(res->sent, 3);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* Every server fails: the last failure is the status; its reply is kept. */
static void expect_all_fail(unsigned rcode, enum dns_stub_status want)
{
    dns_conf_t c;
    conf_make(&c, 2, NULL);
    dns_stub_t *st = stub_new(&c, "sf.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    size_t order[4] = { 0, 1, 0, 1 };
    for (size_t i = 0; i < 4; i++) {
        expect_tx(st, order[i], 0, "sf.test.", DNS_T_A, id_of(0));
        assert_true(feed_rcode(st, i, order[i], id_of(0), rcode, "sf.test", DNS_T_A));
    }
    const dns_stub_result_t *res = expect_done(st, want);
    assert_int_equal(res->sent, 4);
    assert_int_equal(res->rcode, rcode);
    assert_int_equal(res->server_idx, 1);
    assert_non_null(res->reply);
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

static void test_all_servers_fail(void **state)
{
    (void)state;
    expect_all_fail(DNS_R_SERVFAIL, DNS_STUB_SERVFAIL);
    expect_all_fail(DNS_R_REFUSED, DNS_STUB_REFUSED);
    expect_all_fail(DNS_R_FORMERR, DNS_STUB_ERROR);
    expect_all_fail(DNS_R_NOTIMP, DNS_STUB_ERROR);
    expect_all_fail(9, DNS_STUB_ERROR);
}

/* SERVFAIL for a search name goes on to the next; a later NXDOMAIN does
 * not hide it (glibc's TRY_AGAIN), a later answer does. */
static void test_servfail_across_search(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, "search a.test b.test\noptions attempts:1\n");
    dns_stub_t *st = stub_new(&c, "foo", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "foo.a.test.", DNS_T_A, id_of(0));
    assert_true(feed_rcode(st, 1, 0, id_of(0), DNS_R_SERVFAIL, "foo.a.test", DNS_T_A));
    expect_tx(st, 0, 0, "foo.b.test.", DNS_T_A, id_of(1));
    assert_true(feed_rcode(st, 2, 0, id_of(1), DNS_R_NXDOMAIN, "foo.b.test", DNS_T_A));
    expect_tx(st, 0, 0, "foo.", DNS_T_A, id_of(2));
    assert_true(feed_rcode(st, 3, 0, id_of(2), DNS_R_NXDOMAIN, "foo", DNS_T_A));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_SERVFAIL);
    assert_int_equal(res->rcode, DNS_R_SERVFAIL);
    dns_stub_free(st);

    st = stub_new(&c, "foo", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "foo.a.test.", DNS_T_A, id_of(0));
    assert_true(feed_rcode(st, 1, 0, id_of(0), DNS_R_REFUSED, "foo.a.test", DNS_T_A));
    expect_tx(st, 0, 0, "foo.b.test.", DNS_T_A, id_of(1));
    dns_rr_t an = rr_a("foo.b.test", 1);
    struct reply r;
    reply_make(&r, id_of(1), 0, "foo.b.test", DNS_T_A, &an, 1);
    assert_true(feed(st, 2, 0, &r, 0));
    res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->rcode, DNS_R_NOERROR);
    name_is(&res->qname, "foo.b.test.");
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

/* ------------------------------------------------------------- CNAME */

static void test_cname_chain(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, NULL);
    dns_stub_t *st = stub_new(&c, "alias.example.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "alias.example.test.", DNS_T_A, id_of(0));
    /* Out of order, with a stray A record of another name. */
    dns_rr_t an[] = {
        rr_a("www.example.test", 1),
        rr_cname("alias2.example.test", "WWW.example.test"),
        rr_a("other.example.test", 9),
        rr_cname("alias.example.test", "alias2.example.test"),
        rr_a("www.example.test", 2),
    };
    struct reply r;
    reply_make(&r, id_of(0), 0, "alias.example.test", DNS_T_A, an, 5);
    assert_true(feed(st, 1, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->nchain, 3);
    name_is(&res->chain[0], "alias.example.test.");
    name_is(&res->chain[1], "alias2.example.test.");
    name_is(&res->chain[2], "WWW.example.test.");
    assert_int_equal(res->nrr, 2);
    assert_int_equal(res->rr[0].a[3], 1);
    assert_int_equal(res->rr[1].a[3], 2);
    name_is(&res->qname, "alias.example.test.");
    dns_stub_free(st);

    /* Asking for the CNAME itself: not followed. */
    st = stub_new(&c, "alias.example.test.", DNS_T_CNAME);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "alias.example.test.", DNS_T_CNAME, id_of(0));
    reply_make(&r, id_of(0), 0, "alias.example.test", DNS_T_CNAME, &an[3], 1);
    assert_true(feed(st, 1, 0, &r, 0));
    res = expect_done(st, DNS_STUB_OK);
    assert_int_equal(res->nchain, 1);
    assert_int_equal(res->nrr, 1);
    name_is(&res->rr[0].target, "alias2.example.test.");
    dns_stub_free(st);
    dns_conf_dispose(&c);
}

static void test_cname_dead_ends(void **state)
{
    (void)state;
    dns_conf_t c;
    conf_make(&c, 1, "search a.test\n");
    struct reply r;

    /* A chain to a name without the type: NODATA, chain reported. */
    dns_stub_t *st = stub_new(&c, "x.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "x.test.", DNS_T_A, id_of(0));
    dns_rr_t an1[] = { rr_cname("x.test", "y.test") };
    reply_make(&r, id_of(0), 0, "x.test", DNS_T_A, an1, 1);
    assert_true(feed(st, 1, 0, &r, 0));
    const dns_stub_result_t *res = expect_done(st, DNS_STUB_NODATA);
    assert_int_equal(res->nchain, 2);
    name_is(&res->chain[1], "y.test.");
    dns_stub_free(st);

    /* A chain whose target does not exist: NXDOMAIN for the name, the
     * search list goes on; the final NXDOMAIN reports the last name. */
    st = stub_new(&c, "x", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "x.a.test.", DNS_T_A, id_of(0));
    dns_rr_t an2[] = { rr_cname("x.a.test", "gone.test") };
    reply_make(&r, id_of(0), DNS_R_NXDOMAIN, "x.a.test", DNS_T_A, an2, 1);
    assert_true(feed(st, 1, 0, &r, 0));
    expect_tx(st, 0, 0, "x.", DNS_T_A, id_of(1));
    assert_true(feed_rcode(st, 2, 0, id_of(1), DNS_R_NXDOMAIN, "x", DNS_T_A));
    res = expect_done(st, DNS_STUB_NXDOMAIN);
    name_is(&res->qname, "x.");
    dns_stub_free(st);

    /* A loop: ERROR. */
    st = stub_new(&c, "l1.test.", DNS_T_A);
    dns_stub_start(st, 0, rnd);
    expect_tx(st, 0, 0, "l1.test.", DNS_T_A, id_of(0));
    dns_rr_t an3[] = { rr_cname("l1.test", "l2.test"), rr_cname("l2.test", "L1.test"),
                       rr_a("l1.test", 1) };
    reply_make(&r, id_of(0), 0, "l1.test", DNS_T_A, an3, 3);
    assert_true(feed(st, 1, 0, &r, 0));
    res = expect_done(st, DNS_STUB_ERROR);
    assert_non_null(res->reply);
    dns_stub_free(st);

    /* Longer than DNS_STUB_CHAIN_MAX: ERROR; exactly that long: followed. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = DNS_STUB_CHAIN_MAX + (size_t)extra;
        dns_rr_t *an = calloc(n + 1, sizeof *an);
        assert_non_null(an);
        char a[32], b[32];
        for (size_t i = 0; i < n; i++) {
            snprintf(a, sizeof a, "c%zu.test", i);
            snprintf(b, sizeof b, "c%zu.test", i + 1);
            an[i] = rr_cname(a, b);
        }
        snprintf(a, sizeof a, "c%zu.test", n);
        an[n] = rr_a(a, 4);
        st = stub_new(&c, "c0.test.", DNS_T_A);
        dns_stub_start(st, 0, rnd);
        expect_tx(st, 0, 0, "c0.test.", DNS_T_A, id_of(0));
        reply_make(&r, id_of(0), 0, "c0.test", DNS_T_A, an, n + 1);
        assert_true(feed(st, 1, 0, &r, 0));
        res = expect_done(st, extra ? DNS_STUB_ERROR : DNS_STUB_OK);
        if (!extra) {
            assert_int_equal(res->nchain, DNS_STUB_CHAIN_MAX + 1);
            assert_int_equal(res->nrr, 1);
        }
        dns_stub_free(st);
        free(an);
    }
    dns_conf_dispose(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_edns0_and_use_vc),
        cmocka_unit_test(test_hosts_first),
        cmocka_unit_test(test_search_order_ndots),
        cmocka_unit_test(test_absolute_names),
        cmocka_unit_test(test_nxdomain_then_answer),
        cmocka_unit_test(test_nodata_stops_search),
        cmocka_unit_test(test_timeout_schedule),
        cmocka_unit_test(test_timeout_stops_search),
        cmocka_unit_test(test_late_answer_from_earlier_server),
        cmocka_unit_test(test_send_failures),
        cmocka_unit_test(test_spoofed_replies_ignored),
        cmocka_unit_test(test_tc_then_tcp),
        cmocka_unit_test(test_tcp_timeout_and_cut_tc),
        cmocka_unit_test(test_servfail_next_server),
        cmocka_unit_test(test_all_servers_fail),
        cmocka_unit_test(test_servfail_across_search),
        cmocka_unit_test(test_cname_chain),
        cmocka_unit_test(test_cname_dead_ends),
    };
    return cmocka_run_group_tests_name("dns_stub", tests, setup, NULL);
}
