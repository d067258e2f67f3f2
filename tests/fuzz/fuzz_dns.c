/* fuzz_dns.c - libFuzzer target for the DNS message codec.
 *
 * The input is a DNS message. It is decoded from a heap copy of exactly its
 * length (so AddressSanitizer sees any read past it), with arrays just big
 * enough for the header's counts. A failure must come with a known error,
 * an offset inside the input and the header filled. A success is written
 * again with the builder and decoded again: the second decode must equal
 * the first (header, names byte for byte, types, classes, TTLs, typed
 * fields or opaque RDATA, EDNS), and writing the second must give the same
 * bytes as writing the first. The only refusal allowed is DNS_E_NOSPACE,
 * when the input's compression beat ours and the message no longer fits
 * in 65535 bytes.
 *
 * Also: decoding with room for one record per section gives the same
 * verdict and the same first records; every decoded name survives
 * dns_name_format -> dns_name_parse; and the input read as a presentation
 * name, if it parses, survives the same trip. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/msg.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_dns: %s\n", what);
    abort();
}

static int name_same(const dns_name_t *a, const dns_name_t *b)
{
    return a->len == b->len && memcmp(a->wire, b->wire, a->len) == 0;
}

static int slice_same(slice_t a, slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int rr_same(const dns_rr_t *a, const dns_rr_t *b)
{
    if (!name_same(&a->name, &b->name) || a->type != b->type || a->rclass != b->rclass ||
        a->ttl != b->ttl)
        return 0;
    if (!dns_rr_is_typed(a->type, a->rclass))
        return slice_same(a->rdata, b->rdata);
    switch (a->type) {
    case DNS_T_A:
        return memcmp(a->a, b->a, 4) == 0;
    case DNS_T_AAAA:
        return memcmp(a->aaaa, b->aaaa, 16) == 0;
    case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR:
        return name_same(&a->target, &b->target);
    case DNS_T_SOA:
        return name_same(&a->soa.mname, &b->soa.mname) && name_same(&a->soa.rname, &b->soa.rname) &&
               a->soa.serial == b->soa.serial && a->soa.refresh == b->soa.refresh &&
               a->soa.retry == b->soa.retry && a->soa.expire == b->soa.expire &&
               a->soa.minimum == b->soa.minimum;
    case DNS_T_MX:
        return a->mx.preference == b->mx.preference && name_same(&a->mx.exchange, &b->mx.exchange);
    case DNS_T_TXT:
        return slice_same(a->txt.data, b->txt.data) && a->txt.count == b->txt.count;
    case DNS_T_SRV:
        return a->srv.priority == b->srv.priority && a->srv.weight == b->srv.weight &&
               a->srv.port == b->srv.port && name_same(&a->srv.target, &b->srv.target);
    case DNS_T_CAA:
        return a->caa.flags == b->caa.flags && slice_same(a->caa.tag, b->caa.tag) &&
               slice_same(a->caa.value, b->caa.value);
    }
    fail("typed record of an unknown type");
    return 0;
}

static void same_msg(const dns_msg_t *a, const dns_msg_t *b)
{
    if (a->h.id != b->h.id || a->h.flags != b->h.flags)
        fail("header differs after the round trip");
    if (a->h.qdcount != b->h.qdcount || a->h.ancount != b->h.ancount ||
        a->h.nscount != b->h.nscount || a->h.arcount != b->h.arcount)
        fail("counts differ after the round trip");
    if (a->nqd != b->nqd)
        fail("question count differs");
    for (size_t i = 0; i < a->nqd; i++)
        if (!name_same(&a->qd[i].name, &b->qd[i].name) || a->qd[i].qtype != b->qd[i].qtype ||
            a->qd[i].qclass != b->qd[i].qclass)
            fail("question differs after the round trip");
    for (int s = 0; s < 3; s++) {
        if (a->sec[s].n != b->sec[s].n)
            fail("record count differs");
        for (size_t i = 0; i < a->sec[s].n; i++)
            if (!rr_same(&a->sec[s].rr[i], &b->sec[s].rr[i]))
                fail("record differs after the round trip");
    }
    if (a->edns.present != b->edns.present || a->edns.udp_size != b->edns.udp_size ||
        a->edns.ext_rcode != b->edns.ext_rcode || a->edns.version != b->edns.version ||
        a->edns.flags != b->edns.flags || !slice_same(a->edns.options, b->edns.options))
        fail("EDNS differs after the round trip");
    if (a->rcode != b->rcode)
        fail("RCODE differs after the round trip");
}

/* Arrays sized to the header's counts (0 when they cannot fit anyway). */
struct store {
    dns_msg_t m;
};

static void store_init(struct store *st, const uint8_t *buf, size_t len, size_t cap_max)
{
    dns_header_t h;
    size_t c[4] = { 0, 0, 0, 0 };
    memset(st, 0, sizeof *st);
    if (dns_header_decode(buf, len, &h) == 0) {
        size_t need = (size_t)h.qdcount * 5 + ((size_t)h.ancount + h.nscount + h.arcount) * 11;
        if (need <= len - DNS_HEADER_LEN) {
            c[0] = h.qdcount;
            c[1] = h.ancount;
            c[2] = h.nscount;
            c[3] = h.arcount;
        }
    }
    for (int i = 0; i < 4; i++)
        if (c[i] > cap_max)
            c[i] = cap_max;
    st->m.qd = c[0] ? calloc(c[0], sizeof(dns_question_t)) : NULL;
    st->m.qd_cap = c[0];
    for (int s = 0; s < 3; s++) {
        st->m.sec[s].rr = c[s + 1] ? calloc(c[s + 1], sizeof(dns_rr_t)) : NULL;
        st->m.sec[s].cap = c[s + 1];
    }
}

static void store_free(struct store *st)
{
    free(st->m.qd);
    for (int s = 0; s < 3; s++)
        free(st->m.sec[s].rr);
}

static int encode(const dns_msg_t *m, uint8_t *out, size_t cap, size_t *len)
{
    dns_builder_t b;
    int rc = dns_builder_init(&b, out, cap, m->h.id, m->h.flags);
    for (size_t i = 0; rc == 0 && i < m->nqd; i++)
        rc = dns_builder_question(&b, &m->qd[i].name, m->qd[i].qtype, m->qd[i].qclass);
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; rc == 0 && i < m->sec[s].n; i++)
            rc = dns_builder_rr(&b, (enum dns_section)s, &m->sec[s].rr[i]);
    if (rc == 0 && m->edns.present)
        rc = dns_builder_edns(&b, &m->edns);
    *len = b.len;
    return rc;
}

static void check_name(const dns_name_t *n)
{
    char text[DNS_NAME_STR_MAX];
    dns_name_t back;
    int len = dns_name_format(n, text, sizeof text);
    if (len < 0 || (size_t)len >= sizeof text || text[len] != '\0')
        fail("decoded name does not format");
    if (dns_name_parse(&back, slice_make(text, (size_t)len)) != 0 || !name_same(n, &back))
        fail("formatted name does not parse back to itself");
    if (!dns_name_eq(n, &back))
        fail("name not equal to itself");
}

static void check_names(const dns_msg_t *m)
{
    for (size_t i = 0; i < m->nqd; i++)
        check_name(&m->qd[i].name);
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; i < m->sec[s].n; i++) {
            const dns_rr_t *rr = &m->sec[s].rr[i];
            check_name(&rr->name);
            if (!dns_rr_is_typed(rr->type, rr->rclass))
                continue;
            switch (rr->type) {
            case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR:
                check_name(&rr->target);
                break;
            case DNS_T_SOA:
                check_name(&rr->soa.mname);
                check_name(&rr->soa.rname);
                break;
            case DNS_T_MX:
                check_name(&rr->mx.exchange);
                break;
            case DNS_T_SRV:
                check_name(&rr->srv.target);
                break;
            }
        }
}

/* The input as a presentation name. */
static void check_text_name(const uint8_t *data, size_t size)
{
    dns_name_t n, back;
    char text[DNS_NAME_STR_MAX];
    if (size > 1100)
        size = 1100;
    if (dns_name_parse(&n, slice_make((const char *)data, size)) != 0)
        return;
    if (n.len < 1 || n.wire[n.len - 1] != 0)
        fail("parsed name not ending in the root label");
    int len = dns_name_format(&n, text, sizeof text);
    if (len < 0)
        fail("parsed name does not format");
    if (dns_name_parse(&back, slice_make(text, (size_t)len)) != 0 || !name_same(&n, &back))
        fail("parse -> format -> parse changed the name");
}

static uint8_t out1[DNS_MSG_MAX], out2[DNS_MSG_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *msg = malloc(size ? size : 1);
    if (size)
        memcpy(msg, data, size);
    check_text_name(data, size);

    struct store a, small;
    store_init(&a, msg, size, SIZE_MAX);
    int rc = dns_msg_decode(msg, size, &a.m);
    if (rc > 0 || (rc < 0 && strcmp(dns_strerror(rc), "unknown error") == 0))
        fail("unknown result code");
    if (rc < 0 && a.m.err_off > size)
        fail("error offset past the input");
    if (size >= DNS_HEADER_LEN && (a.m.h.id != (msg[0] << 8 | msg[1]) ||
                                   a.m.h.arcount != (msg[10] << 8 | msg[11])))
        fail("header not filled");

    /* One record per section: same verdict, same first records. */
    store_init(&small, msg, size, 1);
    int rc_small = dns_msg_decode(msg, size, &small.m);
    if (rc_small != rc || (rc < 0 && small.m.err_off != a.m.err_off))
        fail("verdict depends on the caller's array sizes");
    if (rc == 0) {
        for (int s = 0; s < 3; s++) {
            if (small.m.sec[s].n + small.m.sec[s].skipped != a.m.sec[s].n)
                fail("records stored and skipped do not add up");
            if (small.m.sec[s].n && !rr_same(&small.m.sec[s].rr[0], &a.m.sec[s].rr[0]))
                fail("first record depends on the caller's array sizes");
        }
    }
    store_free(&small);

    if (rc == 0) {
        for (int s = 0; s < 3; s++)
            if (a.m.sec[s].skipped)
                fail("records skipped with arrays sized to the counts");
        check_names(&a.m);

        size_t n1, n2;
        int erc = encode(&a.m, out1, sizeof out1, &n1);
        if (erc == DNS_E_NOSPACE)
            goto out;
        if (erc != 0) {
            fprintf(stderr, "builder: %s\n", dns_strerror(erc));
            fail("a decoded message could not be written again");
        }
        struct store b;
        store_init(&b, out1, n1, SIZE_MAX);
        int rc2 = dns_msg_decode(out1, n1, &b.m);
        if (rc2 != 0) {
            fprintf(stderr, "second decode: %s at %zu\n", dns_strerror(rc2), b.m.err_off);
            fail("our own encoding does not decode");
        }
        same_msg(&a.m, &b.m);
        if (encode(&b.m, out2, sizeof out2, &n2) != 0 || n2 != n1 || memcmp(out1, out2, n1) != 0)
            fail("writing the second decode gives other bytes");
        store_free(&b);
    }
out:
    store_free(&a);
    free(msg);
    return 0;
}
