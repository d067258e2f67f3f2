/* test_dns_answer.c - the recursive server's sans-I/O side: address lists,
 * the classification of requests (a table of wire messages and the action
 * and RCODE each must get), and replies built from resolved and cached
 * messages: ID, flags, the client's letter case, TTL caps, OPT, and TC when
 * an answer is too big for the client's UDP size. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dns/answer.h"

static dns_name_t name_of(const char *text)
{
    dns_name_t n;
    assert_int_equal(dns_name_parse(&n, slice_cstr(text)), 0);
    return n;
}

static addr_t addr4(const char *ip)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    a.len = sizeof *s;
    return a;
}

static addr_t addr6(const char *ip)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.ss;
    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
    a.len = sizeof *s;
    return a;
}

static int allows(const dns_acl_t *acl, addr_t a) { return dns_acl_allows(acl, &a); }

static void test_acl(void **state)
{
    (void)state;
    dns_acl_t acl;
    memset(&acl, 0, sizeof acl);
    assert_int_equal(dns_acl_add(&acl, "127.0.0.0/8"), 0);
    assert_int_equal(dns_acl_add(&acl, "10.1.2.128/25"), 0);
    assert_int_equal(dns_acl_add(&acl, "::1"), 0);
    assert_int_equal(dns_acl_add(&acl, "2001:db8::/32"), 0);
    assert_true(allows(&acl, addr4("127.9.9.9")));
    assert_true(allows(&acl, addr4("10.1.2.200")));
    assert_false(allows(&acl, addr4("10.1.2.127")));
    assert_false(allows(&acl, addr4("128.0.0.1")));
    assert_true(allows(&acl, addr6("::1")));
    assert_false(allows(&acl, addr6("::2")));
    assert_true(allows(&acl, addr6("2001:db8:ffff::1")));
    assert_false(allows(&acl, addr6("2001:db9::1")));
    /* An IPv4-mapped address is its IPv4 one. */
    assert_true(allows(&acl, addr6("::ffff:127.0.0.1")));
    assert_false(allows(&acl, addr6("::ffff:8.8.8.8")));
    static const char *const bad[] = { "", "/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0/8",
                                       "10.0.0.0/8x", "host", "10.0.0.0/-1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dns_acl_add(&acl, bad[i]), -EINVAL);
    dns_acl_t empty;
    memset(&empty, 0, sizeof empty);
    assert_false(allows(&empty, addr4("127.0.0.1")));
}

/* A query for www.example.com with the given header fields. */
static size_t request(uint8_t *buf, uint16_t flags, uint16_t qdcount, uint16_t qtype,
                      uint16_t qclass, int edns_version)
{
    dns_builder_t b;
    dns_name_t n = name_of("WwW.Example.com");
    assert_int_equal(dns_builder_init(&b, buf, 512, 0xbeef, flags), 0);
    for (uint16_t i = 0; i < qdcount; i++)
        assert_int_equal(dns_builder_question(&b, &n, qtype, qclass), 0);
    if (edns_version >= 0) {
        dns_edns_t e;
        dns_edns_default(&e);
        e.version = (uint8_t)edns_version;
        assert_int_equal(dns_builder_edns(&b, &e), 0);
    }
    return b.len;
}

static void test_requests(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint16_t flags, qd, qtype, qclass;
        int edns, allowed;
        int action;
        int rcode;            /* of the reply, with BADVERS as 16 */
    } cases[] = {
        { "plain query", DNS_F_RD, 1, DNS_T_A, DNS_C_IN, -1, 1, DNS_ANSWER_RESOLVE, -1 },
        { "with EDNS", DNS_F_RD, 1, DNS_T_A, DNS_C_IN, 0, 1, DNS_ANSWER_RESOLVE, -1 },
        { "a response", DNS_F_QR | DNS_F_RD, 1, DNS_T_A, DNS_C_IN, -1, 1, DNS_ANSWER_DROP, -1 },
        { "STATUS opcode", 2u << 11, 1, DNS_T_A, DNS_C_IN, -1, 1, DNS_ANSWER_REPLY, DNS_R_NOTIMP },
        { "two questions", DNS_F_RD, 2, DNS_T_A, DNS_C_IN, -1, 1, DNS_ANSWER_REPLY, DNS_R_FORMERR },
        { "no question", DNS_F_RD, 0, DNS_T_A, DNS_C_IN, -1, 1, DNS_ANSWER_REPLY, DNS_R_FORMERR },
        { "OPT as the type", DNS_F_RD, 1, DNS_T_OPT, DNS_C_IN, -1, 1, DNS_ANSWER_REPLY,
          DNS_R_FORMERR },
        { "EDNS version 1", DNS_F_RD, 1, DNS_T_A, DNS_C_IN, 1, 1, DNS_ANSWER_REPLY, DNS_R_BADVERS },
        { "not allowed", DNS_F_RD, 1, DNS_T_A, DNS_C_IN, -1, 0, DNS_ANSWER_REPLY, DNS_R_REFUSED },
        { "class CH", DNS_F_RD, 1, DNS_T_TXT, DNS_C_CH, -1, 1, DNS_ANSWER_REPLY, DNS_R_REFUSED },
        { "AXFR", 0, 1, 252, DNS_C_IN, -1, 1, DNS_ANSWER_REPLY, DNS_R_NOTIMP },
        { "IXFR", 0, 1, 251, DNS_C_IN, -1, 1, DNS_ANSWER_REPLY, DNS_R_NOTIMP },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t in[512], out[DNS_ANSWER_ERROR_MAX];
        size_t len = request(in, cases[i].flags, cases[i].qd, cases[i].qtype, cases[i].qclass,
                             cases[i].edns);
        dns_query_t q;
        size_t olen = 0;
        int act = dns_answer_request(in, len, 0, cases[i].allowed, &q, out, sizeof out, &olen);
        if (act != cases[i].action)
            fail_msg("%s: action %d", cases[i].what, act);
        if (act == DNS_ANSWER_RESOLVE) {
            assert_int_equal(q.id, 0xbeef);
            assert_int_equal(q.qtype, cases[i].qtype);
            assert_int_equal(q.edns, cases[i].edns >= 0);
            assert_int_equal(q.udp_size, cases[i].edns >= 0 ? DNS_EDNS_PAYLOAD : DNS_UDP_MAX);
            assert_memory_equal(q.qname.wire, "\3WwW\7Example\3com", 17);
        }
        if (act != DNS_ANSWER_REPLY)
            continue;
        dns_question_t qq;
        dns_msg_t m;
        memset(&m, 0, sizeof m);
        m.qd = &qq;
        m.qd_cap = 1;
        assert_int_equal(dns_msg_decode(out, olen, &m), 0);
        assert_int_equal(m.h.id, 0xbeef);
        assert_true(m.h.flags & DNS_F_QR);
        if ((int)m.rcode != cases[i].rcode)
            fail_msg("%s: rcode %u", cases[i].what, m.rcode);
    }
    /* Runts and cut messages. */
    uint8_t in[512], out[DNS_ANSWER_ERROR_MAX];
    size_t len = request(in, DNS_F_RD, 1, DNS_T_A, DNS_C_IN, -1), olen;
    dns_query_t q;
    assert_int_equal(dns_answer_request(in, 11, 0, 1, &q, out, sizeof out, &olen), DNS_ANSWER_DROP);
    assert_int_equal(dns_answer_request(in, len - 1, 0, 1, &q, out, sizeof out, &olen),
                     DNS_ANSWER_REPLY);
    assert_int_equal(olen, DNS_HEADER_LEN);
    assert_int_equal(out[3] & 0xf, DNS_R_FORMERR);
}

/* A resolved message: www.example.com A with n records of TTL 3600. */
static size_t resolved(uint8_t *buf, size_t cap, unsigned n)
{
    dns_builder_t b;
    dns_name_t qn = name_of("www.example.com");
    assert_int_equal(dns_builder_init(&b, buf, cap, 0, DNS_F_QR | DNS_F_RA), 0);
    assert_int_equal(dns_builder_question(&b, &qn, DNS_T_A, DNS_C_IN), 0);
    for (unsigned i = 0; i < n; i++) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = qn;
        rr.type = DNS_T_A;
        rr.rclass = DNS_C_IN;
        rr.ttl = 3600;
        rr.a[0] = 192, rr.a[3] = (uint8_t)i;
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
    }
    return b.len;
}

static void test_replies(void **state)
{
    (void)state;
    uint8_t in[512], src[DNS_MSG_MAX], out[DNS_MSG_MAX];
    dns_query_t q;
    size_t olen, len = request(in, DNS_F_RD | DNS_F_CD, 1, DNS_T_A, DNS_C_IN, -1);
    assert_int_equal(dns_answer_request(in, len, 0, 1, &q, out, sizeof out, &olen),
                     DNS_ANSWER_RESOLVE);
    size_t slen = resolved(src, sizeof src, 3);
    assert_int_equal(dns_answer_build(&q, src, slen, 60, out, sizeof out, &olen), 0);
    dns_rr_t an[4];
    dns_question_t qq;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &qq;
    m.qd_cap = 1;
    m.sec[0] = (dns_rrs_t){ an, 4, 0, 0 };
    assert_int_equal(dns_msg_decode(out, olen, &m), 0);
    assert_int_equal(m.h.id, 0xbeef);
    assert_int_equal(m.h.flags, DNS_F_QR | DNS_F_RD | DNS_F_RA | DNS_F_CD);
    assert_memory_equal(qq.name.wire, "\3WwW\7Example\3com", 17); /* the client's case */
    assert_int_equal(m.sec[0].n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(an[i].ttl, 60);
    assert_false(m.edns.present);

    /* 40 records (656 bytes) do not fit in 512: header and question, TC. */
    slen = resolved(src, sizeof src, 40);
    assert_true(slen > DNS_UDP_MAX);
    assert_int_equal(dns_answer_build(&q, src, slen, UINT32_MAX, out, sizeof out, &olen), 0);
    assert_int_equal(olen, DNS_HEADER_LEN + 17 + 4);
    assert_true(out[2] & (DNS_F_TC >> 8));
    assert_int_equal(out[7], 0);
    /* With EDNS (1232) they fit, with the OPT record added. */
    len = request(in, DNS_F_RD, 1, DNS_T_A, DNS_C_IN, 0);
    assert_int_equal(dns_answer_request(in, len, 0, 1, &q, out, sizeof out, &olen),
                     DNS_ANSWER_RESOLVE);
    assert_int_equal(dns_answer_build(&q, src, slen, UINT32_MAX, out, sizeof out, &olen), 0);
    assert_int_equal(olen, slen + 11);
    assert_false(out[2] & (DNS_F_TC >> 8));
    memset(&m, 0, sizeof m);
    m.qd = &qq;
    m.qd_cap = 1;
    assert_int_equal(dns_msg_decode(out, olen, &m), 0);
    assert_true(m.edns.present);
    assert_int_equal(m.edns.udp_size, DNS_EDNS_PAYLOAD);
    assert_int_equal(m.h.ancount, 40);
    /* Over TCP nothing is cut. */
    q.tcp = 1;
    q.edns = 0;
    assert_int_equal(dns_answer_build(&q, src, slen, UINT32_MAX, out, sizeof out, &olen), 0);
    assert_int_equal(olen, slen);

    /* A message about another question is refused. */
    q.qname = name_of("mail.example.com");
    assert_int_equal(dns_answer_build(&q, src, slen, 60, out, sizeof out, &olen), DNS_E_ARG);
    q.qname = name_of("www.example.com");
    q.qtype = DNS_T_AAAA;
    assert_int_equal(dns_answer_build(&q, src, slen, 60, out, sizeof out, &olen), DNS_E_ARG);
}

static void test_from_cache(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(1 << 20);
    uint8_t in[512], src[DNS_MSG_MAX], out[DNS_MSG_MAX];
    size_t slen = resolved(src, sizeof src, 2), olen;
    dns_name_t qn = name_of("www.example.com");
    assert_int_equal(dns_cache_put(c, &qn, DNS_T_A, DNS_C_IN, src, slen, 100), DNS_CACHE_STORED);
    dns_query_t q;
    size_t len = request(in, DNS_F_RD, 1, DNS_T_A, DNS_C_IN, 0);
    assert_int_equal(dns_answer_request(in, len, 0, 1, &q, out, sizeof out, &olen),
                     DNS_ANSWER_RESOLVE);
    /* 1000 s later the records have 2600 s left. */
    assert_int_equal(dns_answer_cached(c, 1100, &q, out, sizeof out, &olen), 1);
    dns_rr_t an[2];
    dns_question_t qq;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &qq;
    m.qd_cap = 1;
    m.sec[0] = (dns_rrs_t){ an, 2, 0, 0 };
    assert_int_equal(dns_msg_decode(out, olen, &m), 0);
    assert_int_equal(m.h.id, 0xbeef);
    assert_int_equal(an[0].ttl, 2600);
    assert_int_equal(an[1].ttl, 2600);
    assert_true(m.edns.present);
    /* Expired: a miss. Another type: a miss. */
    assert_int_equal(dns_answer_cached(c, 100 + 3600, &q, out, sizeof out, &olen), 0);
    q.qtype = DNS_T_MX;
    assert_int_equal(dns_answer_cached(c, 200, &q, out, sizeof out, &olen), 0);
    assert_int_equal(dns_answer_cached(NULL, 200, &q, out, sizeof out, &olen), 0);
    dns_cache_free(c);
}

static void test_clean_forwarded(void **state)
{
    (void)state;
    uint8_t src[DNS_MSG_MAX], fwd[DNS_MSG_MAX], out[DNS_MSG_MAX];
    /* A forwarder's reply: AA, records, OPT. */
    dns_builder_t b;
    dns_name_t qn = name_of("www.example.com");
    assert_int_equal(dns_builder_init(&b, fwd, sizeof fwd, 9, DNS_F_QR | DNS_F_AA | DNS_F_RA), 0);
    assert_int_equal(dns_builder_question(&b, &qn, DNS_T_A, DNS_C_IN), 0);
    dns_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.name = qn;
    rr.type = DNS_T_A;
    rr.rclass = DNS_C_IN;
    rr.ttl = 30;
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
    dns_edns_t e;
    dns_edns_default(&e);
    assert_int_equal(dns_builder_edns(&b, &e), 0);
    size_t len;
    assert_int_equal(dns_answer_clean(fwd, b.len, src, sizeof src, &len), 0);
    assert_int_equal(len, b.len - 11);
    dns_msg_t m;
    dns_question_t qq;
    memset(&m, 0, sizeof m);
    m.qd = &qq;
    m.qd_cap = 1;
    assert_int_equal(dns_msg_decode(src, len, &m), 0);
    assert_false(m.edns.present);
    assert_int_equal(m.h.ancount, 1);
    assert_true(m.h.flags & DNS_F_AA);
    (void)out;
    assert_true(dns_answer_clean(fwd, 11, src, sizeof src, &len) < 0);
    assert_true(dns_answer_clean(fwd, b.len - 1, src, sizeof src, &len) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acl),
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_from_cache),
        cmocka_unit_test(test_clean_forwarded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
