/* fuzz_dnsserver.c - libFuzzer target for what the recursive server and
 * the iterative resolver read from the network, and the root hints parser.
 *
 * The input is used four ways, each from a heap copy of exactly its length:
 *   - as a client's request (UDP and TCP, allowed or not): an error reply
 *     must decode, carry the request's ID and QR; a query to resolve must
 *     get an error reply and, when the input is also a reply, a reply
 *     built from it, both decodable and within the UDP limit;
 *   - as a reply from an upstream: dns_answer_clean, then dns_cache_put
 *     under its own question (a stored entry must come back from a get);
 *   - as the reply of the root server to an iterative resolution, its ID
 *     and question patched to match what was asked (so the fuzzer reaches
 *     referrals, chains and negative answers), twice: for the name asked
 *     and for a name one step down the first referral;
 *   - as a root hints file.
 * Any broken invariant calls abort(). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/answer.h"
#include "dns/cache.h"
#include "dns/iter.h"
#include "dns/msg.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_dnsserver: %s\n", what);
    abort();
}

static int decodes(const uint8_t *m, size_t len)
{
    dns_msg_t msg;
    memset(&msg, 0, sizeof msg);
    int rc = dns_msg_decode(m, len, &msg);
    return rc == 0 || rc == DNS_E_COUNTS; /* records not kept: counts only */
}

static void as_request(const uint8_t *in, size_t len, int tcp, int allowed, dns_cache_t *cache)
{
    static uint8_t out[DNS_MSG_MAX];
    dns_query_t q;
    size_t olen = 0;
    int act = dns_answer_request(in, len, tcp, allowed, &q, out, sizeof out, &olen);
    if (act == DNS_ANSWER_REPLY) {
        if (olen < DNS_HEADER_LEN || memcmp(out, in, 2) != 0 || !(out[2] & 0x80))
            fail("error reply without the ID or QR");
        return;
    }
    if (act != DNS_ANSWER_RESOLVE)
        return;
    if (dns_answer_error(&q, DNS_R_SERVFAIL, out, sizeof out, &olen) != 0 || olen > DNS_UDP_MAX)
        fail("SERVFAIL reply");
    if (dns_answer_cached(cache, 0, &q, out, sizeof out, &olen) == 1 &&
        (!tcp && olen > DNS_EDNS_PAYLOAD))
        fail("cached reply over the UDP limit");
}

static void as_upstream(const uint8_t *in, size_t len, dns_cache_t *cache)
{
    static uint8_t clean[DNS_MSG_MAX], got[DNS_MSG_MAX];
    size_t clen;
    if (dns_answer_clean(in, len, clean, sizeof clean, &clen) != 0)
        return;
    dns_question_t q;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    if (dns_msg_decode(clean, clen, &m) != 0)
        fail("a cleaned reply does not decode");
    int rc = dns_cache_put(cache, &q.name, q.qtype, q.qclass, clean, clen, 0);
    size_t glen;
    if (rc >= 0 && dns_cache_get(cache, &q.name, q.qtype, q.qclass, 0, got, sizeof got, &glen,
                                 NULL, NULL) != 1)
        fail("a stored entry is not found");
    dns_query_t dq;
    memset(&dq, 0, sizeof dq);
    dq.id = 7;
    dq.flags = DNS_F_RD;
    dq.qname = q.name;
    dq.qtype = q.qtype;
    dq.qclass = q.qclass;
    size_t olen;
    if (dns_answer_build(&dq, clean, clen, 60, got, sizeof got, &olen) == 0 &&
        (!decodes(got, olen) || olen > DNS_UDP_MAX))
        fail("built reply");
}

static void as_root_reply(const uint8_t *in, size_t len, const char *name)
{
    dns_hints_t hints;
    size_t line;
    const char *why;
    if (dns_hints_parse(&hints, slice_cstr(". NS a.root.\na.root. A 192.0.2.1\n"), &line, &why) != 1)
        fail("hints");
    dns_iter_conf_t c;
    dns_iter_conf_init(&c, &hints);
    dns_cache_t *cache = dns_cache_new(1 << 20);
    c.cache = cache;
    dns_name_t n;
    dns_name_parse(&n, slice_cstr(name));
    dns_iter_t *it = dns_iter_new(&c, &n, DNS_T_A);
    uint8_t rnd[DNS_ITER_RANDOM_LEN] = { 0 };
    dns_iter_start(it, 0, rnd);
    uint64_t now = 0;
    for (int step = 0; step < 8 && !dns_iter_done(it); step++) {
        dns_iter_tx_t tx;
        if (!dns_iter_next_tx(it, &tx)) {
            now = dns_iter_deadline(it);
            dns_iter_timeout(it, now);
            continue;
        }
        /* The same bytes from whoever was asked, with the query's ID and
         * question put in. */
        size_t qlen = tx.len - 11; /* without the OPT record */
        uint8_t *msg = malloc(qlen + len);
        memcpy(msg, tx.msg, qlen);
        msg[2] = (uint8_t)(0x80 | (len > 0 ? in[0] & 0x07 : 0));
        msg[3] = len > 1 ? in[1] : 0;
        memset(msg + 6, 0, 6);
        size_t body = len > 8 ? len - 8 : 0;
        if (len > 8)
            memcpy(msg + 6, in + 2, 6);
        memcpy(msg + qlen, in + (len > 8 ? 8 : len), body);
        dns_iter_input(it, ++now, &tx.to, msg, qlen + body, tx.tcp);
        free(msg);
    }
    const dns_iter_result_t *r = dns_iter_result(it);
    if (r != NULL && r->msg != NULL && !decodes(r->msg, r->len))
        fail("the iterative result does not decode");
    dns_iter_free(it);
    dns_cache_free(cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dns_cache_t *cache;
    if (cache == NULL)
        cache = dns_cache_new(1 << 20);
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    for (int tcp = 0; tcp < 2; tcp++)
        for (int allowed = 0; allowed < 2; allowed++)
            as_request(in, size, tcp, allowed, cache);
    as_upstream(in, size, cache);
    as_root_reply(in, size, "www.example.com.");
    as_root_reply(in, size, "a.b.c.d.example.");
    dns_hints_t h;
    size_t line;
    const char *why;
    dns_hints_parse(&h, (slice_t){ (const char *)in, size }, &line, &why);
    free(in);
    return 0;
}
