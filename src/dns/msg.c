#include "dns/msg.h"

#include <string.h>

const dns_name_t dns_name_root = { 1, { 0 } };

const char *dns_strerror(int err)
{
    switch (err) {
    case DNS_E_HEADER:      return "message shorter than the 12-byte header";
    case DNS_E_MSG_LONG:    return "message longer than 65535 bytes";
    case DNS_E_COUNTS:      return "section counts larger than the records present";
    case DNS_E_TRUNC_NAME:  return "name runs past the end of the message";
    case DNS_E_LABEL_LONG:  return "label longer than 63 bytes (or label type 0x40)";
    case DNS_E_LABEL_TYPE:  return "reserved label type 0x80";
    case DNS_E_NAME_LONG:   return "name longer than 255 bytes";
    case DNS_E_PTR_OUTSIDE: return "compression pointer outside the message";
    case DNS_E_PTR_HEADER:  return "compression pointer into the header";
    case DNS_E_PTR_FORWARD: return "compression pointer forward";
    case DNS_E_PTR_LOOP:    return "compression loop";
    case DNS_E_PTR_HOPS:    return "too many compression pointers in one name";
    case DNS_E_TRUNC_Q:     return "question truncated";
    case DNS_E_TRUNC_RR:    return "record truncated before its RDATA";
    case DNS_E_RDLEN:       return "RDLENGTH runs past the end of the message";
    case DNS_E_RDATA_SHORT: return "RDATA shorter than its type needs";
    case DNS_E_RDATA_EXTRA: return "RDATA longer than its type's fields";
    case DNS_E_CAA_TAG:     return "CAA tag empty or not alphanumeric";
    case DNS_E_OPT_SECTION: return "OPT record outside the additional section";
    case DNS_E_OPT_NAME:    return "OPT record not owned by the root";
    case DNS_E_OPT_DUP:     return "more than one OPT record";
    case DNS_E_OPT_OPTIONS: return "EDNS option overruns the OPT record";
    case DNS_E_TRAILING:    return "bytes after the last record";
    case DNS_E_NOSPACE:     return "does not fit in the buffer";
    case DNS_E_ORDER:       return "section added after a later one";
    case DNS_E_ARG:         return "invalid name or record";
    case DNS_E_EMPTY_LABEL: return "empty label in a name";
    case DNS_E_ESCAPE:      return "bad escape in a name";
    case DNS_E_UNKNOWN:     return "unknown type or class";
    }
    return "unknown error";
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c;
}

static int is_alnum(uint8_t c)
{
    c = lower(c);
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* ------------------------------------------------------------- names */

/* 1 if n is well-formed wire form: labels of at most 63 bytes ending
 * exactly at n->len with the root label. What the builder trusts. */
static int name_ok(const dns_name_t *n)
{
    if (n->len == 0)
        return 0;
    size_t i = 0;
    while (n->wire[i] != 0) {
        if (n->wire[i] > DNS_LABEL_MAX)
            return 0;
        i += 1u + n->wire[i];
        if (i >= n->len)
            return 0;
    }
    return i + 1 == n->len;
}

int dns_name_parse(dns_name_t *n, slice_t text)
{
    const uint8_t *s = (const uint8_t *)text.p;
    size_t len = text.len;
    if (len == 1 && s[0] == '.') {
        *n = dns_name_root;
        return 0;
    }
    if (len == 0)
        return DNS_E_EMPTY_LABEL;
    size_t wl = 1, lpos = 0, llen = 0;   /* wire[lpos] is the open label's length byte */
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i++];
        if (c == '.') {
            if (llen == 0)
                return DNS_E_EMPTY_LABEL;
            n->wire[lpos] = (uint8_t)llen;
            lpos = wl++;
            llen = 0;
            if (i == len)            /* trailing dot: lpos is the root's */
                goto root;
            continue;
        }
        if (c == '\\') {
            if (i == len)
                return DNS_E_ESCAPE;
            c = s[i++];
            if (c >= '0' && c <= '9') {
                if (len - i < 2 || s[i] < '0' || s[i] > '9' || s[i + 1] < '0' || s[i + 1] > '9')
                    return DNS_E_ESCAPE;
                unsigned v = (unsigned)(c - '0') * 100 + (unsigned)(s[i] - '0') * 10 +
                             (unsigned)(s[i + 1] - '0');
                if (v > 255)
                    return DNS_E_ESCAPE;
                c = (uint8_t)v;
                i += 2;
            }
        }
        if (llen == DNS_LABEL_MAX)
            return DNS_E_LABEL_LONG;
        /* The byte, and the root label still to come, must fit. */
        if (wl + 1 + 1 > DNS_NAME_MAX)
            return DNS_E_NAME_LONG;
        n->wire[wl++] = c;
        llen++;
    }
    /* No trailing dot: close the last label. */
    n->wire[lpos] = (uint8_t)llen;
    lpos = wl++;
root:
    /* Every byte appended was checked to leave room for this one. */
    n->wire[lpos] = 0;
    n->len = (uint8_t)(lpos + 1);
    return 0;
}

int dns_name_format(const dns_name_t *n, char *out, size_t cap)
{
    static const char special[] = ".\\\"();@$";
    size_t o = 0, i = 0;
    if (!name_ok(n))
        return DNS_E_ARG;
    if (n->wire[0] == 0) {
        if (cap < 2)
            return DNS_E_NOSPACE;
        memcpy(out, ".", 2);
        return 1;
    }
    while (n->wire[i] != 0) {
        size_t l = n->wire[i++];
        for (size_t k = 0; k < l; k++, i++) {
            uint8_t c = n->wire[i];
            char esc[5];
            size_t el;
            if (c < 0x21 || c > 0x7e) {
                esc[0] = '\\';
                esc[1] = (char)('0' + c / 100);
                esc[2] = (char)('0' + c / 10 % 10);
                esc[3] = (char)('0' + c % 10);
                el = 4;
            } else if (memchr(special, c, sizeof special - 1) != NULL) {
                esc[0] = '\\';
                esc[1] = (char)c;
                el = 2;
            } else {
                esc[0] = (char)c;
                el = 1;
            }
            if (cap - o < el + 1)
                return DNS_E_NOSPACE;
            memcpy(out + o, esc, el);
            o += el;
        }
        if (cap - o < 2)
            return DNS_E_NOSPACE;
        out[o++] = '.';
    }
    out[o] = '\0';
    return (int)o;
}

int dns_name_eq(const dns_name_t *a, const dns_name_t *b)
{
    if (a->len != b->len)
        return 0;
    /* Length bytes are at most 63, below 'A', so folding every byte only
     * ever changes letters. */
    for (size_t i = 0; i < a->len; i++)
        if (lower(a->wire[i]) != lower(b->wire[i]))
            return 0;
    return 1;
}

size_t dns_name_skip(const uint8_t *m, size_t len, size_t off)
{
    while (off < len) {
        uint8_t b = m[off];
        if (b == 0)
            return off + 1;
        if ((b & 0xc0) == 0xc0)
            return off + 2 <= len ? off + 2 : len;
        off += 1u + b;
    }
    return len;
}

int dns_name_under(const dns_name_t *n, const dns_name_t *zone)
{
    if (zone->len > n->len)
        return 0;
    size_t i = 0;
    while (n->len - i > zone->len)
        i += 1u + n->wire[i];
    if (n->len - i != zone->len)
        return 0;
    for (size_t k = 0; k < zone->len; k++)
        if (lower(n->wire[i + k]) != lower(zone->wire[k]))
            return 0;
    return 1;
}

/* -------------------------------------------------- types, classes, codes */

struct mnemonic {
    uint16_t value;
    const char *name;
};

static const struct mnemonic types[] = {
    { 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" }, { 12, "PTR" }, { 13, "HINFO" },
    { 15, "MX" }, { 16, "TXT" }, { 17, "RP" }, { 28, "AAAA" }, { 29, "LOC" }, { 33, "SRV" },
    { 35, "NAPTR" }, { 39, "DNAME" }, { 41, "OPT" }, { 43, "DS" }, { 44, "SSHFP" },
    { 46, "RRSIG" }, { 47, "NSEC" }, { 48, "DNSKEY" }, { 50, "NSEC3" }, { 51, "NSEC3PARAM" },
    { 52, "TLSA" }, { 64, "SVCB" }, { 65, "HTTPS" }, { 251, "IXFR" }, { 252, "AXFR" },
    { 255, "ANY" }, { 257, "CAA" },
};

static const struct mnemonic classes[] = {
    { 1, "IN" }, { 3, "CH" }, { 4, "HS" }, { 254, "NONE" }, { 255, "ANY" },
};

static const struct mnemonic rcodes[] = {
    { 0, "NOERROR" }, { 1, "FORMERR" }, { 2, "SERVFAIL" }, { 3, "NXDOMAIN" }, { 4, "NOTIMP" },
    { 5, "REFUSED" }, { 6, "YXDOMAIN" }, { 7, "YXRRSET" }, { 8, "NXRRSET" }, { 9, "NOTAUTH" },
    { 10, "NOTZONE" }, { 16, "BADVERS" },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *mnemonic_name(const struct mnemonic *t, size_t n, unsigned v)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].value == v)
            return t[i].name;
    return NULL;
}

/* 1 if s equals the upper-case string u without case. */
static int ieq(slice_t s, const char *u)
{
    size_t n = strlen(u);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((uint8_t)s.p[i]) != lower((uint8_t)u[i]))
            return 0;
    return 1;
}

/* The mnemonic's value, or the number after `generic` ("TYPE", "CLASS"):
 * 1 to 5 digits, at most 65535. */
static int mnemonic_lookup(const struct mnemonic *t, size_t n, const char *generic, slice_t s)
{
    for (size_t i = 0; i < n; i++)
        if (ieq(s, t[i].name))
            return t[i].value;
    size_t g = strlen(generic);
    if (s.len <= g || s.len > g + 5 || !ieq(slice_make(s.p, g), generic))
        return DNS_E_UNKNOWN;
    unsigned v = 0;
    for (size_t i = g; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return DNS_E_UNKNOWN;
        v = v * 10 + (unsigned)(s.p[i] - '0');
    }
    return v <= 65535 ? (int)v : DNS_E_UNKNOWN;
}

const char *dns_type_name(uint16_t type)
{
    return mnemonic_name(types, NELEM(types), type);
}

const char *dns_class_name(uint16_t rclass)
{
    return mnemonic_name(classes, NELEM(classes), rclass);
}

const char *dns_rcode_name(unsigned rcode)
{
    return mnemonic_name(rcodes, NELEM(rcodes), rcode);
}

int dns_type_lookup(slice_t s)
{
    return mnemonic_lookup(types, NELEM(types), "TYPE", s);
}

int dns_class_lookup(slice_t s)
{
    return mnemonic_lookup(classes, NELEM(classes), "CLASS", s);
}

/* ------------------------------------------------------- RDATA helpers */

int dns_rr_is_typed(uint16_t type, uint16_t rclass)
{
    switch (type) {
    case DNS_T_A:
    case DNS_T_AAAA:
        return rclass == DNS_C_IN;
    case DNS_T_NS: case DNS_T_CNAME: case DNS_T_SOA: case DNS_T_PTR: case DNS_T_MX:
    case DNS_T_TXT: case DNS_T_SRV: case DNS_T_CAA:
        return 1;
    }
    return 0;
}

int dns_txt_next(slice_t data, size_t *off, slice_t *s)
{
    if (*off >= data.len)
        return 0;
    size_t l = (uint8_t)data.p[*off];
    if (l > data.len - *off - 1)
        return DNS_E_RDATA_SHORT;
    *s = slice_make(data.p + *off + 1, l);
    *off += 1 + l;
    return 1;
}

/* Number of strings in TXT data, or DNS_E_RDATA_SHORT if it is empty or a
 * length overruns it (RFC 1035 §3.3.14: one or more strings). */
static int txt_count(slice_t data, size_t *count)
{
    size_t off = 0, k = 0;
    slice_t s;
    int rc;
    while ((rc = dns_txt_next(data, &off, &s)) == 1)
        k++;
    if (rc < 0 || k == 0)
        return DNS_E_RDATA_SHORT;
    *count = k;
    return 0;
}

int dns_txt_pack(uint8_t *out, size_t cap, const slice_t *strs, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return DNS_E_ARG;
    for (size_t i = 0; i < n; i++) {
        if (strs[i].len > 255)
            return DNS_E_ARG;
        if (cap - o < 1 + strs[i].len || o + 1 + strs[i].len > DNS_MSG_MAX)
            return DNS_E_NOSPACE;
        out[o++] = (uint8_t)strs[i].len;
        if (strs[i].len)
            memcpy(out + o, strs[i].p, strs[i].len);
        o += strs[i].len;
    }
    return (int)o;
}

static int caa_tag_ok(slice_t tag)
{
    if (tag.len == 0 || tag.len > 255)
        return 0;
    for (size_t i = 0; i < tag.len; i++)
        if (!is_alnum((uint8_t)tag.p[i]))
            return 0;
    return 1;
}

/* 1 if EDNS options are a whole number of (code, length, data). */
static int options_ok(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (len - i < 4)
            return 0;
        size_t l = get16(p + i + 2);
        if (l > len - i - 4)
            return 0;
        i += 4 + l;
    }
    return 1;
}

void dns_edns_default(dns_edns_t *e)
{
    memset(e, 0, sizeof *e);
    e->present = 1;
    e->udp_size = DNS_EDNS_PAYLOAD;
}

/* ------------------------------------------------------------ decode */

struct dec {
    const uint8_t *buf;
    size_t len;
    size_t err_off;
};

#define DFAIL(d, off, code) do { (d)->err_off = (off); return (code); } while (0)

int dns_header_decode(const uint8_t *buf, size_t len, dns_header_t *h)
{
    if (len < DNS_HEADER_LEN)
        return DNS_E_HEADER;
    h->id = get16(buf);
    h->flags = get16(buf + 2);
    h->qdcount = get16(buf + 4);
    h->ancount = get16(buf + 6);
    h->nscount = get16(buf + 8);
    h->arcount = get16(buf + 10);
    return 0;
}

/* Reads the name at *pos into *out and moves *pos past it (past its first
 * pointer if it has one). The labels in place, before any pointer, must end
 * by `end` (the end of the RDATA, or of the message) or the name is cut:
 * short_err. After a pointer the name may use any earlier byte of the
 * message, and running off the message is DNS_E_TRUNC_NAME.
 *
 * Why loops cannot happen: the name is read in runs, each starting where a
 * pointer led (the first at *pos). A pointer must lead strictly before the
 * start of the run it ends, so run starts strictly decrease. A pointer
 * that does not is classified for the error: back into bytes this name
 * already read is a loop, anywhere else a forward pointer. */
static int get_name(struct dec *d, size_t *pos, size_t end, int short_err, dns_name_t *out)
{
    const uint8_t *buf = d->buf;
    size_t p = *pos, run = p, lim = end, after = 0, wl = 0;
    unsigned hops = 0;
    uint16_t run_lo[DNS_PTR_HOPS_MAX], run_hi[DNS_PTR_HOPS_MAX];

    for (;;) {
        if (p >= lim)
            DFAIL(d, p, hops ? DNS_E_TRUNC_NAME : short_err);
        unsigned c = buf[p];
        if (c == 0) {
            out->wire[wl++] = 0;
            out->len = (uint8_t)wl;
            *pos = hops ? after : p + 1;
            return 0;
        }
        switch (c & 0xC0) {
        case 0x00:
            if (c + 1 > lim - p)
                DFAIL(d, p, hops ? DNS_E_TRUNC_NAME : short_err);
            /* The label, and the root label still to come, must fit. */
            if (wl + 1 + c + 1 > DNS_NAME_MAX)
                DFAIL(d, p, DNS_E_NAME_LONG);
            /* A plain loop: labels are short, and gcc's inline memcpy
             * of a variable length here (rep movsq) cost more than the
             * rest of the decode together. */
            for (unsigned k = 0; k <= c; k++)
                out->wire[wl + k] = buf[p + k];
            wl += 1 + c;
            p += 1 + c;
            break;
        case 0x40:
            DFAIL(d, p, DNS_E_LABEL_LONG);
        case 0x80:
            DFAIL(d, p, DNS_E_LABEL_TYPE);
        default: {
            if (lim - p < 2)
                DFAIL(d, p, hops ? DNS_E_TRUNC_NAME : short_err);
            size_t t = (c & 0x3Fu) << 8 | buf[p + 1];
            if (t >= d->len)
                DFAIL(d, p, DNS_E_PTR_OUTSIDE);
            if (t >= run) {
                int loop = t <= p + 1;
                for (unsigned i = 0; i < hops && !loop; i++)
                    loop = t >= run_lo[i] && t <= run_hi[i];
                DFAIL(d, p, loop ? DNS_E_PTR_LOOP : DNS_E_PTR_FORWARD);
            }
            if (t < DNS_HEADER_LEN)
                DFAIL(d, p, DNS_E_PTR_HEADER);
            if (hops == DNS_PTR_HOPS_MAX)
                DFAIL(d, p, DNS_E_PTR_HOPS);
            if (hops == 0)
                after = p + 2;
            run_lo[hops] = (uint16_t)run;
            run_hi[hops] = (uint16_t)(p + 1);
            hops++;
            run = p = t;
            lim = d->len;
            break;
        }
        }
    }
}

#define NEED(n) do { if (end - p < (size_t)(n)) DFAIL(d, p, DNS_E_RDATA_SHORT); } while (0)

/* Reads the typed fields of rr from RDATA at buf[p, end). */
static int get_rdata(struct dec *d, size_t p, size_t end, dns_rr_t *rr)
{
    const uint8_t *buf = d->buf;
    int rc = 0;
    switch (rr->type) {
    case DNS_T_A:
        NEED(4);
        memcpy(rr->a, buf + p, 4);
        p += 4;
        break;
    case DNS_T_AAAA:
        NEED(16);
        memcpy(rr->aaaa, buf + p, 16);
        p += 16;
        break;
    case DNS_T_NS:
    case DNS_T_CNAME:
    case DNS_T_PTR:
        rc = get_name(d, &p, end, DNS_E_RDATA_SHORT, &rr->target);
        break;
    case DNS_T_SOA:
        if ((rc = get_name(d, &p, end, DNS_E_RDATA_SHORT, &rr->soa.mname)) < 0 ||
            (rc = get_name(d, &p, end, DNS_E_RDATA_SHORT, &rr->soa.rname)) < 0)
            return rc;
        NEED(20);
        rr->soa.serial = get32(buf + p);
        rr->soa.refresh = get32(buf + p + 4);
        rr->soa.retry = get32(buf + p + 8);
        rr->soa.expire = get32(buf + p + 12);
        rr->soa.minimum = get32(buf + p + 16);
        p += 20;
        break;
    case DNS_T_MX:
        NEED(2);
        rr->mx.preference = get16(buf + p);
        p += 2;
        rc = get_name(d, &p, end, DNS_E_RDATA_SHORT, &rr->mx.exchange);
        break;
    case DNS_T_TXT:
        rr->txt.data = slice_make((const char *)buf + p, end - p);
        if ((rc = txt_count(rr->txt.data, &rr->txt.count)) < 0)
            DFAIL(d, p, rc);
        p = end;
        break;
    case DNS_T_SRV:
        NEED(6);
        rr->srv.priority = get16(buf + p);
        rr->srv.weight = get16(buf + p + 2);
        rr->srv.port = get16(buf + p + 4);
        p += 6;
        /* RFC 2782 forbids compressing the target, but RFC 3597 §4 asks
         * receivers to accept it. */
        rc = get_name(d, &p, end, DNS_E_RDATA_SHORT, &rr->srv.target);
        break;
    case DNS_T_CAA: {
        NEED(2);
        rr->caa.flags = buf[p];
        size_t tl = buf[p + 1];
        p += 2;
        NEED(tl);
        rr->caa.tag = slice_make((const char *)buf + p, tl);
        if (!caa_tag_ok(rr->caa.tag))
            DFAIL(d, p, DNS_E_CAA_TAG);
        p += tl;
        rr->caa.value = slice_make((const char *)buf + p, end - p);
        p = end;
        break;
    }
    }
    if (rc < 0)
        return rc;
    if (p != end)
        DFAIL(d, p, DNS_E_RDATA_EXTRA);
    return 0;
}

/* Reads the record at *pos into *rr and moves *pos past it. */
static int get_rr(struct dec *d, size_t *pos, dns_rr_t *rr)
{
    const uint8_t *buf = d->buf;
    size_t p = *pos;
    int rc = get_name(d, &p, d->len, DNS_E_TRUNC_NAME, &rr->name);
    if (rc < 0)
        return rc;
    if (d->len - p < 10)
        DFAIL(d, p, DNS_E_TRUNC_RR);
    rr->type = get16(buf + p);
    rr->rclass = get16(buf + p + 2);
    rr->ttl = get32(buf + p + 4);
    size_t rdlen = get16(buf + p + 8);
    p += 10;
    if (rdlen > d->len - p)
        DFAIL(d, p - 2, DNS_E_RDLEN);
    rr->rdata = slice_make((const char *)buf + p, rdlen);
    if (dns_rr_is_typed(rr->type, rr->rclass) && (rc = get_rdata(d, p, p + rdlen, rr)) < 0)
        return rc;
    *pos = p + rdlen;
    return 0;
}

/* Takes the OPT record rr, which started at `at`, into m->edns. */
static int take_opt(struct dec *d, size_t at, int sec, const dns_rr_t *rr, dns_msg_t *m)
{
    if (sec != DNS_SEC_AR)
        DFAIL(d, at, DNS_E_OPT_SECTION);
    if (rr->name.len != 1)
        DFAIL(d, at, DNS_E_OPT_NAME);
    if (m->edns.present)
        DFAIL(d, at, DNS_E_OPT_DUP);
    if (!options_ok((const uint8_t *)rr->rdata.p, rr->rdata.len))
        DFAIL(d, (size_t)((const uint8_t *)rr->rdata.p - d->buf), DNS_E_OPT_OPTIONS);
    m->edns.present = 1;
    m->edns.udp_size = rr->rclass;
    m->edns.ext_rcode = (uint8_t)(rr->ttl >> 24);
    m->edns.version = (uint8_t)(rr->ttl >> 16);
    m->edns.flags = (uint16_t)rr->ttl;
    m->edns.options = rr->rdata;
    return 0;
}

int dns_msg_decode(const uint8_t *buf, size_t len, dns_msg_t *m)
{
    struct dec d = { buf, len, 0 };
    int rc;

    m->nqd = m->qd_skipped = 0;
    for (int s = 0; s < 3; s++)
        m->sec[s].n = m->sec[s].skipped = 0;
    memset(&m->edns, 0, sizeof m->edns);
    m->rcode = 0;
    m->err_off = 0;
    if ((rc = dns_header_decode(buf, len, &m->h)) < 0)
        return rc;
    if (len > DNS_MSG_MAX)
        return DNS_E_MSG_LONG;

    /* The smallest question is 5 bytes, the smallest record 11: refusing
     * counts that cannot fit up front bounds the work on junk. */
    const uint16_t counts[3] = { m->h.ancount, m->h.nscount, m->h.arcount };
    size_t need = (size_t)m->h.qdcount * 5 + ((size_t)counts[0] + counts[1] + counts[2]) * 11;
    if (need > len - DNS_HEADER_LEN) {
        m->err_off = 4;
        return DNS_E_COUNTS;
    }

    size_t pos = DNS_HEADER_LEN;
    for (size_t i = 0; i < m->h.qdcount; i++) {
        dns_question_t spare;
        dns_question_t *q = m->nqd < m->qd_cap ? &m->qd[m->nqd] : &spare;
        if (pos == len) {
            m->err_off = pos;
            return DNS_E_COUNTS;
        }
        if ((rc = get_name(&d, &pos, len, DNS_E_TRUNC_NAME, &q->name)) < 0)
            goto fail;
        if (len - pos < 4) {
            d.err_off = pos;
            rc = DNS_E_TRUNC_Q;
            goto fail;
        }
        q->qtype = get16(buf + pos);
        q->qclass = get16(buf + pos + 2);
        pos += 4;
        if (q == &spare)
            m->qd_skipped++;
        else
            m->nqd++;
    }

    for (int s = 0; s < 3; s++) {
        dns_rrs_t *sec = &m->sec[s];
        for (size_t i = 0; i < counts[s]; i++) {
            dns_rr_t spare;
            dns_rr_t *rr = sec->n < sec->cap ? &sec->rr[sec->n] : &spare;
            size_t at = pos;
            if (pos == len) {
                m->err_off = pos;
                return DNS_E_COUNTS;
            }
            if ((rc = get_rr(&d, &pos, rr)) < 0)
                goto fail;
            if (rr->type == DNS_T_OPT) {
                if ((rc = take_opt(&d, at, s, rr, m)) < 0)
                    goto fail;
            } else if (rr == &spare) {
                sec->skipped++;
            } else {
                sec->n++;
            }
        }
    }
    if (pos != len) {
        m->err_off = pos;
        return DNS_E_TRAILING;
    }
    m->rcode = DNS_F_RCODE(m->h.flags) | (unsigned)m->edns.ext_rcode << 4;
    return 0;

fail:
    m->err_off = d.err_off;
    return rc;
}

/* ----------------------------------------------------------- builder */

static int put(dns_builder_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n)
        return DNS_E_NOSPACE;
    if (n)
        memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

static int put16(dns_builder_t *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    return put(b, x, 2);
}

static int put32(dns_builder_t *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return put(b, x, 4);
}

static void set16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int dns_builder_init(dns_builder_t *b, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags)
{
    memset(b, 0, sizeof *b);
    b->buf = buf;
    b->cap = cap < DNS_MSG_MAX ? cap : DNS_MSG_MAX;
    if (b->cap < DNS_HEADER_LEN)
        return DNS_E_NOSPACE;
    memset(buf, 0, DNS_HEADER_LEN);
    set16(buf, id);
    set16(buf + 2, flags);
    b->len = DNS_HEADER_LEN;
    return 0;
}

void dns_builder_set_flags(dns_builder_t *b, uint16_t flags)
{
    set16(b->buf + 2, flags);
}

/* FNV-1a over p[0, n), continuing from h. */
static uint32_t fnv1a(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* 1 if the name written at buf[off] (following our own pointers) is the
 * wire name w[0, wlen), byte for byte. */
static int suffix_eq(const dns_builder_t *b, size_t off, const uint8_t *w, size_t wlen)
{
    size_t i = 0;
    unsigned hops = 0;
    for (;;) {
        uint8_t c = b->buf[off];
        if ((c & 0xC0) == 0xC0) {
            if (++hops > DNS_PTR_HOPS_MAX)
                return 0;
            off = (size_t)(c & 0x3F) << 8 | b->buf[off + 1];
            continue;
        }
        if (i >= wlen || w[i] != c)
            return 0;
        if (c == 0)
            return i + 1 == wlen;
        if (wlen - i < 1u + c || memcmp(b->buf + off + 1, w + i + 1, c) != 0)
            return 0;
        i += 1u + c;
        off += 1u + c;
    }
}

/* Writes name n. With `compress`, its longest suffix already written is
 * replaced by a pointer, and the suffixes written here are remembered. */
static int put_name(dns_builder_t *b, const dns_name_t *n, int compress)
{
    size_t offs[DNS_NAME_MAX / 2], k = 0;
    uint32_t hash[DNS_NAME_MAX / 2];
    size_t i = 0;
    if (!name_ok(n))
        return DNS_E_ARG;
    while (n->wire[i] != 0) {
        offs[k++] = i;
        i += 1u + n->wire[i];
    }
    size_t match = k, target = 0;
    if (compress) {
        /* Suffix hashes from the root up, each label hashed onto the hash
         * of what follows it: linear in the name, not quadratic. */
        uint32_t h = 2166136261u;
        for (size_t j = k; j-- > 0;)
            hash[j] = h = fnv1a(h, n->wire + offs[j], 1u + n->wire[offs[j]]);
    }
    for (size_t j = 0; compress && j < k && match == k; j++) {
        size_t sl = n->len - offs[j];
        for (size_t e = 0; e < b->ncomp; e++) {
            const struct dns_comp *c = &b->comp[e];
            if (c->len == sl && c->hash == hash[j] && suffix_eq(b, c->off, n->wire + offs[j], sl)) {
                match = j;
                target = c->off;
                break;
            }
        }
    }
    size_t head = match < k ? offs[match] : n->len;
    size_t base = b->len;
    if (b->cap - b->len < head + (match < k ? 2 : 0))
        return DNS_E_NOSPACE;
    put(b, n->wire, head);
    if (match < k)
        put16(b, (uint16_t)(0xC000 | target));
    for (size_t j = 0; compress && j < match && b->ncomp < DNS_COMP_MAX; j++) {
        if (base + offs[j] >= DNS_PTR_REACH)
            break;
        b->comp[b->ncomp++] = (struct dns_comp){
            (uint16_t)(base + offs[j]), (uint8_t)(n->len - offs[j]), hash[j] };
    }
    return 0;
}

/* The typed fields of rr as RDATA. */
static int put_rdata(dns_builder_t *b, const dns_rr_t *rr)
{
    int rc = 0;
    switch (rr->type) {
    case DNS_T_A:
        return put(b, rr->a, 4);
    case DNS_T_AAAA:
        return put(b, rr->aaaa, 16);
    case DNS_T_NS:
    case DNS_T_CNAME:
    case DNS_T_PTR:
        return put_name(b, &rr->target, 1);
    case DNS_T_SOA:
        if ((rc = put_name(b, &rr->soa.mname, 1)) < 0 || (rc = put_name(b, &rr->soa.rname, 1)) < 0 ||
            (rc = put32(b, rr->soa.serial)) < 0 || (rc = put32(b, rr->soa.refresh)) < 0 ||
            (rc = put32(b, rr->soa.retry)) < 0 || (rc = put32(b, rr->soa.expire)) < 0)
            return rc;
        return put32(b, rr->soa.minimum);
    case DNS_T_MX:
        if ((rc = put16(b, rr->mx.preference)) < 0)
            return rc;
        return put_name(b, &rr->mx.exchange, 1);
    case DNS_T_TXT: {
        size_t count;
        if ((rc = txt_count(rr->txt.data, &count)) < 0)
            return rc;
        return put(b, rr->txt.data.p, rr->txt.data.len);
    }
    case DNS_T_SRV:
        if ((rc = put16(b, rr->srv.priority)) < 0 || (rc = put16(b, rr->srv.weight)) < 0 ||
            (rc = put16(b, rr->srv.port)) < 0)
            return rc;
        return put_name(b, &rr->srv.target, 0);
    case DNS_T_CAA: {
        if (!caa_tag_ok(rr->caa.tag))
            return DNS_E_CAA_TAG;
        uint8_t fl[2] = { rr->caa.flags, (uint8_t)rr->caa.tag.len };
        if ((rc = put(b, fl, 2)) < 0 || (rc = put(b, rr->caa.tag.p, rr->caa.tag.len)) < 0)
            return rc;
        return put(b, rr->caa.value.p, rr->caa.value.len);
    }
    }
    return DNS_E_ARG;
}

/* Bumps the count of section `stage` (1..3 records, 0 questions) in the
 * header. Counts cannot overflow: a message of 65535 bytes holds fewer
 * than 65535 records. */
static void count_one(dns_builder_t *b, int stage)
{
    b->count[stage]++;
    set16(b->buf + 4 + 2 * stage, b->count[stage]);
}

int dns_builder_question(dns_builder_t *b, const dns_name_t *name, uint16_t qtype,
                         uint16_t qclass)
{
    size_t len = b->len, ncomp = b->ncomp;
    int rc;
    if (b->stage != 0)
        return DNS_E_ORDER;
    if ((rc = put_name(b, name, 1)) < 0 || (rc = put16(b, qtype)) < 0 ||
        (rc = put16(b, qclass)) < 0) {
        b->len = len;
        b->ncomp = ncomp;
        return rc;
    }
    count_one(b, 0);
    return 0;
}

/* The record's owner, type, class, TTL, then RDATA from `rdata` (the
 * OPT options) or from rr itself, with RDLENGTH patched in after. */
static int put_rr(dns_builder_t *b, const dns_rr_t *rr, const slice_t *rdata)
{
    int rc;
    if ((rc = put_name(b, &rr->name, 1)) < 0 || (rc = put16(b, rr->type)) < 0 ||
        (rc = put16(b, rr->rclass)) < 0 || (rc = put32(b, rr->ttl)) < 0 ||
        (rc = put16(b, 0)) < 0)
        return rc;
    size_t start = b->len;
    if (rdata == NULL && dns_rr_is_typed(rr->type, rr->rclass))
        rc = put_rdata(b, rr);
    else
        rc = put(b, rdata ? rdata->p : rr->rdata.p, rdata ? rdata->len : rr->rdata.len);
    if (rc < 0)
        return rc;
    set16(b->buf + start - 2, b->len - start);
    return 0;
}

int dns_builder_rr(dns_builder_t *b, enum dns_section sec, const dns_rr_t *rr)
{
    size_t len = b->len, ncomp = b->ncomp;
    int stage = 1 + (int)sec, rc;
    if (sec != DNS_SEC_AN && sec != DNS_SEC_NS && sec != DNS_SEC_AR)
        return DNS_E_ARG;
    if (stage < b->stage)
        return DNS_E_ORDER;
    if (rr->type == DNS_T_OPT)
        return DNS_E_ARG;
    if ((rc = put_rr(b, rr, NULL)) < 0) {
        b->len = len;
        b->ncomp = ncomp;
        return rc;
    }
    b->stage = stage;
    count_one(b, stage);
    return 0;
}

int dns_builder_edns(dns_builder_t *b, const dns_edns_t *e)
{
    size_t len = b->len, ncomp = b->ncomp;
    int rc;
    if (b->has_opt)
        return DNS_E_OPT_DUP;
    if (!options_ok((const uint8_t *)e->options.p, e->options.len))
        return DNS_E_OPT_OPTIONS;
    dns_rr_t opt;
    opt.name = dns_name_root;
    opt.type = DNS_T_OPT;
    opt.rclass = e->udp_size;
    opt.ttl = (uint32_t)e->ext_rcode << 24 | (uint32_t)e->version << 16 | e->flags;
    if ((rc = put_rr(b, &opt, &e->options)) < 0) {
        b->len = len;
        b->ncomp = ncomp;
        return rc;
    }
    b->has_opt = 1;
    b->stage = 1 + DNS_SEC_AR;
    count_one(b, 1 + DNS_SEC_AR);
    return 0;
}
