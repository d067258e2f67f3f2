/* answer.c - requests checked, replies built (see answer.h). */
#include "dns/answer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------- address lists */

int dns_acl_add(dns_acl_t *a, const char *cidr)
{
    char host[64];
    const char *slash = strchr(cidr, '/');
    size_t hl = slash ? (size_t)(slash - cidr) : strlen(cidr);
    if (hl == 0 || hl >= sizeof host)
        return -EINVAL;
    memcpy(host, cidr, hl);
    host[hl] = '\0';
    struct dns_cidr e;
    memset(&e, 0, sizeof e);
    if (inet_pton(AF_INET, host, e.ip) == 1)
        e.family = AF_INET;
    else if (inet_pton(AF_INET6, host, e.ip) == 1)
        e.family = AF_INET6;
    else
        return -EINVAL;
    unsigned max = e.family == AF_INET ? 32 : 128, bits = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 3)
            return -EINVAL;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return -EINVAL;
    }
    if (a->n == DNS_ACL_MAX)
        return -ENOSPC;
    e.prefix = (uint8_t)bits;
    a->e[a->n++] = e;
    return 0;
}

static int prefix_eq(const uint8_t *x, const uint8_t *y, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp(x, y, whole) != 0)
        return 0;
    unsigned rest = bits % 8;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (x[whole] & mask) == (y[whole] & mask);
}

int dns_acl_allows(const dns_acl_t *a, const addr_t *addr)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    uint8_t ip[16];
    int family;
    if (addr->ss.ss_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)&addr->ss)->sin_addr, 4);
        family = AF_INET;
    } else if (addr->ss.ss_family == AF_INET6) {
        const uint8_t *p = (const uint8_t *)&((const struct sockaddr_in6 *)&addr->ss)->sin6_addr;
        if (memcmp(p, mapped, 12) == 0) {
            memcpy(ip, p + 12, 4);
            family = AF_INET;
        } else {
            memcpy(ip, p, 16);
            family = AF_INET6;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++)
        if (a->e[i].family == family && prefix_eq(a->e[i].ip, ip, a->e[i].prefix))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ replies */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint16_t reply_flags(const dns_query_t *q, unsigned rcode)
{
    return (uint16_t)(DNS_F_QR | DNS_F_RA | (q->flags & (DNS_F_RD | DNS_F_CD)) | (rcode & 0xfu));
}

/* The most a UDP reply to q may hold. */
static size_t reply_limit(const dns_query_t *q)
{
    if (q->tcp)
        return DNS_MSG_MAX;
    if (!q->edns || q->udp_size <= DNS_UDP_MAX)
        return DNS_UDP_MAX;
    return q->udp_size < DNS_EDNS_PAYLOAD ? q->udp_size : DNS_EDNS_PAYLOAD;
}

static int add_opt(const dns_query_t *q, uint8_t *buf, size_t cap, size_t *len, unsigned ext)
{
    if (!q->edns)
        return 0;
    if (*len + 11 > cap)
        return DNS_E_NOSPACE;
    uint8_t *p = buf + *len;
    p[0] = 0;                                   /* the root */
    put16(p + 1, DNS_T_OPT);
    put16(p + 3, DNS_EDNS_PAYLOAD);
    p[5] = (uint8_t)ext;                        /* extended RCODE */
    p[6] = 0;                                   /* version */
    put16(p + 7, 0);                            /* flags */
    put16(p + 9, 0);                            /* RDLENGTH */
    *len += 11;
    put16(buf + 10, (uint16_t)(get16(buf + 10) + 1));
    return 0;
}

int dns_answer_error(const dns_query_t *q, unsigned rcode, uint8_t *out, size_t cap,
                     size_t *outlen)
{
    dns_builder_t b;
    int rc = dns_builder_init(&b, out, cap, q->id, reply_flags(q, rcode));
    if (rc == 0)
        rc = dns_builder_question(&b, &q->qname, q->qtype, q->qclass);
    if (rc < 0)
        return rc;
    *outlen = b.len;
    return add_opt(q, out, cap, outlen, rcode >> 4);
}

/* Caps every record's TTL in buf at cap. Returns 0 or -1 if the records
 * do not walk. */
static int cap_ttls(uint8_t *buf, size_t len, size_t off, unsigned count, uint32_t cap)
{
    for (unsigned i = 0; i < count; i++) {
        off = dns_name_skip(buf, len, off);
        if (off + 10 > len)
            return -1;
        uint8_t *t = buf + off + 4;
        uint32_t ttl = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
        if (ttl > DNS_TTL_SANE_MAX)
            ttl = 0;
        if (ttl > cap)
            ttl = cap;
        t[0] = (uint8_t)(ttl >> 24), t[1] = (uint8_t)(ttl >> 16);
        t[2] = (uint8_t)(ttl >> 8), t[3] = (uint8_t)ttl;
        off += 10u + get16(buf + off + 8);
        if (off > len)
            return -1;
    }
    return 0;
}

/* Turns the resolved message in buf[0, *len) into the reply to q, in
 * place: header, the client's question bytes, TTLs, size, OPT. */
static int finish_reply(const dns_query_t *q, uint8_t *buf, size_t *len, size_t cap,
                        uint32_t ttl_cap)
{
    dns_header_t h;
    if (dns_header_decode(buf, *len, &h) < 0 || h.qdcount != 1)
        return DNS_E_ARG;
    size_t qend = DNS_HEADER_LEN + q->qname.len + 4;
    if (qend > *len || get16(buf + qend - 4) != q->qtype)
        return DNS_E_ARG;
    dns_name_t sent;
    sent.len = q->qname.len;
    memcpy(sent.wire, buf + DNS_HEADER_LEN, sent.len);
    if (!dns_name_eq(&sent, &q->qname))
        return DNS_E_ARG;
    memcpy(buf + DNS_HEADER_LEN, q->qname.wire, q->qname.len);
    put16(buf, q->id);
    put16(buf + 2, (uint16_t)(reply_flags(q, DNS_F_RCODE(h.flags)) | (h.flags & DNS_F_TC)));
    if (ttl_cap != UINT32_MAX &&
        cap_ttls(buf, *len, qend, (unsigned)h.ancount + h.nscount + h.arcount, ttl_cap) < 0)
        return DNS_E_ARG;
    if (*len + (q->edns ? 11u : 0u) > reply_limit(q)) {
        *len = qend;
        memset(buf + 6, 0, 6);
        put16(buf + 2, (uint16_t)(get16(buf + 2) | DNS_F_TC));
    }
    return add_opt(q, buf, cap, len, 0);
}

int dns_answer_build(const dns_query_t *q, const uint8_t *src, size_t len, uint32_t ttl_cap,
                     uint8_t *out, size_t cap, size_t *outlen)
{
    if (len > cap)
        return DNS_E_NOSPACE;
    memcpy(out, src, len);
    *outlen = len;
    return finish_reply(q, out, outlen, cap, ttl_cap);
}

int dns_answer_cached(dns_cache_t *c, uint64_t now_s, const dns_query_t *q, uint8_t *out,
                      size_t cap, size_t *outlen)
{
    uint32_t left;
    if (c == NULL ||
        dns_cache_get(c, &q->qname, q->qtype, q->qclass, now_s, out, cap, outlen, &left, NULL) != 1)
        return 0;
    return finish_reply(q, out, outlen, cap, left) == 0;
}

/* ----------------------------------------------------------- requests */

/* FORMERR and friends for a request whose question could not be read:
 * the header alone, ID, opcode and RD copied. */
static size_t bare_error(const dns_header_t *h, unsigned rcode, uint8_t *out)
{
    memset(out, 0, DNS_HEADER_LEN);
    put16(out, h->id);
    put16(out + 2, (uint16_t)(DNS_F_QR | (h->flags & (0x7800u | DNS_F_RD)) | rcode));
    return DNS_HEADER_LEN;
}

int dns_answer_request(const uint8_t *msg, size_t len, int tcp, int allowed, dns_query_t *q,
                       uint8_t *out, size_t cap, size_t *outlen)
{
    dns_header_t h;
    if (dns_header_decode(msg, len, &h) < 0 || (h.flags & DNS_F_QR))
        return DNS_ANSWER_DROP;
    if (DNS_F_OPCODE(h.flags) != 0) {
        *outlen = bare_error(&h, DNS_R_NOTIMP, out);
        return DNS_ANSWER_REPLY;
    }
    dns_question_t qq;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &qq;
    m.qd_cap = 1;
    if (dns_msg_decode(msg, len, &m) != 0 || m.nqd != 1 || m.qd_skipped != 0 ||
        qq.qtype == DNS_T_OPT) {
        *outlen = bare_error(&h, DNS_R_FORMERR, out);
        return DNS_ANSWER_REPLY;
    }
    memset(q, 0, sizeof *q);
    q->id = h.id;
    q->flags = h.flags;
    q->qname = qq.name;
    q->qtype = qq.qtype;
    q->qclass = qq.qclass;
    q->edns = m.edns.present;
    q->udp_size = m.edns.present ? m.edns.udp_size : DNS_UDP_MAX;
    q->tcp = tcp;
    unsigned rcode;
    if (m.edns.present && m.edns.version > 0)
        rcode = DNS_R_BADVERS;
    else if (!allowed || qq.qclass != DNS_C_IN)
        rcode = DNS_R_REFUSED;
    else if (qq.qtype == 251 || qq.qtype == 252 || qq.qtype == 253 || qq.qtype == 254)
        rcode = DNS_R_NOTIMP;
    else
        return DNS_ANSWER_RESOLVE;
    if (dns_answer_error(q, rcode, out, cap, outlen) < 0)
        *outlen = bare_error(&h, rcode & 0xfu, out);
    return DNS_ANSWER_REPLY;
}

/* ------------------------------------------------------ forwarded replies */

int dns_answer_clean(const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    dns_header_t h;
    if (dns_header_decode(msg, len, &h) < 0)
        return DNS_E_HEADER;
    dns_question_t q;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    const uint16_t counts[3] = { h.ancount, h.nscount, h.arcount };
    int rc = DNS_E_NOSPACE;
    for (int s = 0; s < 3; s++) {
        m.sec[s].cap = counts[s];
        m.sec[s].rr = counts[s] ? malloc(counts[s] * sizeof(dns_rr_t)) : NULL;
        if (counts[s] && m.sec[s].rr == NULL)
            goto out;
    }
    rc = dns_msg_decode(msg, len, &m);
    if (rc == 0 && m.nqd != 1)
        rc = DNS_E_ARG;
    dns_builder_t b;
    if (rc == 0)
        rc = dns_builder_init(&b, out, cap, h.id,
                              (uint16_t)((h.flags & (DNS_F_AA | DNS_F_QR)) | (m.rcode & 0xfu)));
    if (rc == 0)
        rc = dns_builder_question(&b, &q.name, q.qtype, q.qclass);
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; rc == 0 && i < m.sec[s].n; i++)
            rc = dns_builder_rr(&b, (enum dns_section)s, &m.sec[s].rr[i]);
    if (rc == 0)
        *outlen = b.len;
out:
    for (int s = 0; s < 3; s++)
        free(m.sec[s].rr);
    return rc;
}
