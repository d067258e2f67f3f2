/* hop.c - hop-by-hop removal, Via/Forwarded/Max-Forwards, cache keys and
 * Vary secondary keys. */
#include "proxy/hop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names with their lengths: a field of another length is passed over
 * without a strlen or a byte compared (these run for every field of every
 * forwarded request and response). */
#define NAME(s) { (s), sizeof(s) - 1 }
static const slice_t fixed_hop[] = {
    NAME("connection"), NAME("keep-alive"), NAME("proxy-connection"), NAME("te"), NAME("trailer"),
    NAME("transfer-encoding"), NAME("upgrade"), NAME("proxy-authorization"), NAME("proxy-authenticate"),
};
static const slice_t rewritten_names[] = {
    NAME("host"), NAME("via"), NAME("forwarded"), NAME("x-forwarded-for"), NAME("max-forwards"),
};
#undef NAME

static int conn_token(slice_t e, void *arg)
{
    struct hop_conn *hc = arg;
    if (hc->n >= PROXY_MAX_CONN_TOKENS) {
        hc->overflow = 1;
        return 0;
    }
    hc->names[hc->n++] = e;
    return 0;
}

void hop_conn_collect(const http_field_t *fields, size_t n, struct hop_conn *hc)
{
    hc->n = 0;
    hc->overflow = 0;
    for (size_t i = 0; i < n; i++)
        if (http_slice_ieq_n(fields[i].name, fixed_hop[0].p, fixed_hop[0].len)) /* connection */
            http_list_each(fields[i].value, conn_token, hc);
}

static int slice_ieq2(slice_t a, slice_t b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return 0;
    }
    return 1;
}

int hop_is_hop(slice_t name, const struct hop_conn *hc)
{
    for (size_t i = 0; i < sizeof fixed_hop / sizeof fixed_hop[0]; i++)
        if (http_slice_ieq_n(name, fixed_hop[i].p, fixed_hop[i].len))
            return 1;
    if (hc == NULL)
        return 0;
    for (size_t i = 0; i < hc->n; i++)
        if (slice_ieq2(name, hc->names[i]))
            return 1;
    /* Over the cap we cannot know which fields were named: forwarding one
     * would leak it, so only the fields every message needs pass. */
    if (hc->overflow)
        return !(http_slice_ieq(name, "content-length") || http_slice_ieq(name, "content-type") ||
                 http_slice_ieq(name, "host"));
    return 0;
}

int hop_authority_split(slice_t a, slice_t *host, uint16_t *port, uint16_t defport)
{
    size_t hend;
    const char *rest;
    if (a.len > 0 && a.p[0] == '[') {
        const char *rb = memchr(a.p, ']', a.len);
        if (rb == NULL || rb == a.p + 1)
            return -1;
        *host = slice_make(a.p + 1, (size_t)(rb - a.p - 1));
        rest = rb + 1;
        hend = (size_t)(rest - a.p);
    } else {
        const char *colon = memchr(a.p, ':', a.len);
        hend = colon ? (size_t)(colon - a.p) : a.len;
        if (hend == 0)
            return -1;
        *host = slice_make(a.p, hend);
        rest = a.p + hend;
    }
    size_t rl = a.len - hend;
    if (rl == 0) {
        *port = defport;
        return 0;
    }
    if (rest[0] != ':')
        return -1;
    if (rl == 1) { /* "host:" means the default port (RFC 3986 §3.2.3) */
        *port = defport;
        return 0;
    }
    unsigned long v = 0;
    for (size_t i = 1; i < rl; i++) {
        if (rest[i] < '0' || rest[i] > '9' || i > 5)
            return -1;
        v = v * 10 + (unsigned long)(rest[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

long hop_max_forwards(const http_request_t *req)
{
    if (req->method_id != HTTP_M_TRACE && req->method_id != HTTP_M_OPTIONS)
        return -1;
    const http_field_t *f = http_find_field(req, "max-forwards");
    if (f == NULL || f->value.len == 0 || f->value.len > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < f->value.len; i++) {
        char c = f->value.p[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    return v;
}

/* ------------------------------------------------------------ writing */

struct out {
    buf_t *b;
    int err;
    int chained;     /* the request has a field we extend (Via, Forwarded ...) */
};

static void w(struct out *o, const char *p, size_t n)
{
    if (!o->err && buf_append(o->b, p, n) < 0)
        o->err = 1;
}

static void ws(struct out *o, const char *s)
{
    w(o, s, strlen(s));
}

static void wsl(struct out *o, slice_t s)
{
    w(o, s.p, s.len);
}

/* Dotted quad of 4 bytes into ip (16 bytes): inet_ntop formats with
 * sprintf, and this runs for every forwarded request. */
static void ipv4_text(const unsigned char *b, char *ip)
{
    char *p = ip;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
}

/* The client address as Forwarded's node ("1.2.3.4" or "\"[v6]\"") or as
 * X-Forwarded-For's plain form. */
static void client_text(const addr_t *a, char *out, size_t len, int forwarded)
{
    char ip[INET6_ADDRSTRLEN] = "unknown";
    if (a->ss.ss_family == AF_INET) {
        ipv4_text((const unsigned char *)&((const struct sockaddr_in *)&a->ss)->sin_addr, ip);
    } else if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(x)) {
            ipv4_text(x->s6_addr + 12, ip);
        } else {
            inet_ntop(AF_INET6, x, ip, sizeof ip);
            if (forwarded) {
                snprintf(out, len, "\"[%s]\"", ip);
                return;
            }
        }
    }
    size_t n = strlen(ip);
    if (n >= len)
        n = len - 1;
    memcpy(out, ip, n);
    out[n] = '\0';
}

/* Forwarded's host= value must be a token or a quoted-string: quote it
 * unless every byte is a tchar. */
static void forwarded_host(struct out *o, slice_t h)
{
    int plain = h.len > 0;
    for (size_t i = 0; i < h.len; i++)
        if (!http_tchar[(unsigned char)h.p[i]])
            plain = 0;
    if (plain) {
        wsl(o, h);
        return;
    }
    ws(o, "\"");
    for (size_t i = 0; i < h.len; i++) {
        if (h.p[i] == '"' || h.p[i] == '\\')
            ws(o, "\\");
        w(o, h.p + i, 1);
    }
    ws(o, "\"");
}

/* Joins every field named `name` with ", " (RFC 9110 §5.3). */
static void join_fields(struct out *o, const http_request_t *req, slice_t name, int *any)
{
    for (size_t i = 0; i < req->nfields; i++) {
        if (!http_slice_ieq_n(req->fields[i].name, name.p, name.len))
            continue;
        if (*any)
            ws(o, ", ");
        wsl(o, req->fields[i].value);
        *any = 1;
    }
}

int hop_via(char *out, size_t outlen, slice_t existing, int version, const char *name)
{
    int n = snprintf(out, outlen, "%.*s%s%s %s", (int)existing.len, existing.p,
                     existing.len ? ", " : "", version == 10 ? "1.0" : "1.1", name);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* Via, Forwarded, X-Forwarded-For: the fields whose values we extend. */
static int chains(slice_t name)
{
    for (size_t i = 1; i <= 3; i++)
        if (http_slice_ieq_n(name, rewritten_names[i].p, rewritten_names[i].len))
            return 1;
    return 0;
}

static int rewritten(slice_t name)
{
    for (size_t i = 0; i < sizeof rewritten_names / sizeof rewritten_names[0]; i++)
        if (http_slice_ieq_n(name, rewritten_names[i].p, rewritten_names[i].len))
            return 1;
    return 0;
}

/* Appends every value of the fields named `name`, joined with ", ", then
 * `last` as one more element, as one field built in scratch. */
static slice_t chain_value(struct out *o, const http_request_t *req, slice_t name, slice_t last)
{
    size_t start = o->b->len;
    int any = 0;
    if (o->chained)
        join_fields(o, req, name, &any);
    if (any)
        ws(o, ", ");
    wsl(o, last);
    return slice_make(buf_head(o->b) + start, o->b->len - start);
}

int hop_request_fields(const http_request_t *req, const struct hop_req_opts *opt, http_field_t *out,
                       size_t max, buf_t *scratch)
{
    struct hop_conn hc;
    hop_conn_collect(req->fields, req->nfields, &hc);
    /* Room for every chained value at once, so that no append moves the
     * bytes earlier slices point to. */
    size_t need = 256 + 2 * (opt->host.len + strlen(opt->via_name) + INET6_ADDRSTRLEN);
    int chained = 0;
    for (size_t i = 0; i < req->nfields; i++) {
        if (rewritten(req->fields[i].name)) {
            need += req->fields[i].value.len + 2;
            chained |= chains(req->fields[i].name);
        }
    }
    buf_reset(scratch);
    if (buf_reserve(scratch, need) < 0)
        return -ENOBUFS;
    struct out o = { scratch, 0, chained };
    size_t n = 0;
#define ADD(nm, val) do { if (n >= max) return -ENOBUFS; out[n].name = (nm); out[n].value = (val); n++; } while (0)
    ADD(SLICE_LIT("Host"), opt->host);
    for (size_t i = 0; i < req->nfields; i++) {
        const http_field_t *f = &req->fields[i];
        if (!hop_is_hop(f->name, &hc) && !rewritten(f->name))
            ADD(f->name, f->value);
    }
    long mf = hop_max_forwards(req);
    if (mf > 0) {
        char num[24];
        snprintf(num, sizeof num, "%ld", mf - 1);
        size_t at = scratch->len;
        ws(&o, num);
        ADD(SLICE_LIT("Max-Forwards"), slice_make(buf_head(scratch) + at, strlen(num)));
    } else if (req->method_id != HTTP_M_TRACE && req->method_id != HTTP_M_OPTIONS) {
        /* For other methods Max-Forwards means nothing to us: pass it on. */
        const http_field_t *f = http_find_field(req, "max-forwards");
        if (f != NULL)
            ADD(f->name, f->value);
    }
    char me[96];
    size_t vl = strlen(opt->via_name);
    if (vl > sizeof me - 5)
        vl = sizeof me - 5;
    memcpy(me, req->version == 10 ? "1.0 " : "1.1 ", 4);
    memcpy(me + 4, opt->via_name, vl);
    ADD(SLICE_LIT("Via"), chain_value(&o, req, rewritten_names[1], slice_make(me, vl + 4)));
    if (opt->client != NULL) {
        char who[INET6_ADDRSTRLEN + 8];
        if (opt->forwarded) {
            size_t at = scratch->len;
            int any = 0;
            if (chained)
                join_fields(&o, req, rewritten_names[2], &any);
            ws(&o, any ? ", for=" : "for=");
            client_text(opt->client, who, sizeof who, 1);
            ws(&o, who);
            ws(&o, ";host=");
            forwarded_host(&o, opt->host);
            ws(&o, ";proto=http");
            ADD(SLICE_LIT("Forwarded"), slice_make(buf_head(scratch) + at, scratch->len - at));
        }
        if (opt->x_forwarded_for) {
            client_text(opt->client, who, sizeof who, 0);
            ADD(SLICE_LIT("X-Forwarded-For"), chain_value(&o, req, rewritten_names[3], slice_cstr(who)));
        }
    }
#undef ADD
    if (o.err)
        return -ENOBUFS;
    return (int)n;
}

int hop_write_request(buf_t *out, const http_request_t *req, const struct hop_req_opts *opt)
{
    size_t max = req->nfields + 8;
    http_field_t *f = malloc(max * sizeof *f);
    buf_t scratch;
    buf_init(&scratch, PROXY_MAX_CHAIN_FIELD * 4 + (size_t)req->head_len);
    int n = f ? hop_request_fields(req, opt, f, max, &scratch) : -ENOMEM;
    struct out o = { out, n < 0, 0 };
    wsl(&o, opt->method);
    ws(&o, " ");
    wsl(&o, opt->target);
    ws(&o, " HTTP/1.1\r\n");
    for (int i = 0; i < n; i++) {
        wsl(&o, f[i].name);
        ws(&o, ": ");
        wsl(&o, f[i].value);
        ws(&o, "\r\n");
    }
    if (opt->chunked)
        ws(&o, "Transfer-Encoding: chunked\r\n");
    ws(&o, "\r\n");
    buf_dispose(&scratch);
    free(f);
    if (o.err) {
        buf_reset(out);
        return -ENOBUFS;
    }
    return 0;
}

/* ------------------------------------------------------------ keys */

int hop_cache_key(char *out, size_t outlen, int https, slice_t host, uint16_t port, slice_t path,
                  slice_t query, int has_query)
{
    size_t need = 8 + host.len + 2 + 6 + path.len + 1 + query.len + 1;
    if (need > outlen)
        return -1;
    char *p = out;
    const char *scheme = https ? "https://" : "http://";
    size_t sl = strlen(scheme);
    memcpy(p, scheme, sl);
    p += sl;
    int v6 = memchr(host.p, ':', host.len) != NULL;
    if (v6)
        *p++ = '[';
    for (size_t i = 0; i < host.len; i++) {
        char c = host.p[i];
        *p++ = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    }
    if (v6)
        *p++ = ']';
    /* A trailing dot names the same host (an FQDN): one key for both. */
    if (!v6 && p[-1] == '.' && p - out > (ptrdiff_t)sl + 1)
        p--;
    if (port != (https ? 443 : 80)) {
        char d[6];
        int k = 0;
        for (unsigned v = port; v; v /= 10)
            d[k++] = (char)('0' + v % 10);
        *p++ = ':';
        while (k > 0)
            *p++ = d[--k];
    }
    if (path.len == 0) {
        *p++ = '/';
    } else {
        memcpy(p, path.p, path.len);
        p += path.len;
    }
    if (has_query) {
        *p++ = '?';
        memcpy(p, query.p, query.len);
        p += query.len;
    }
    *p = '\0';
    return (int)(p - out);
}

struct vary_ctx {
    char *out;
    size_t outlen, len;
    const http_field_t *fields;
    size_t nfields;
    int star, err, count;
};

static void vput(struct vary_ctx *v, const char *p, size_t n)
{
    if (v->err || v->len + n + 1 > v->outlen) {
        v->err = 1;
        return;
    }
    memcpy(v->out + v->len, p, n);
    v->len += n;
}

/* A value with runs of spaces and tabs made one space (RFC 9111 §4.1
 * allows this normalisation: the values mean the same). */
static void vput_value(struct vary_ctx *v, slice_t s)
{
    int space = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c == ' ' || c == '\t') {
            space = 1;
            continue;
        }
        if (space)
            vput(v, " ", 1);
        space = 0;
        vput(v, &c, 1);
    }
}

static int vary_elem(slice_t name, void *arg)
{
    struct vary_ctx *v = arg;
    if (name.len == 1 && name.p[0] == '*') {
        v->star = 1;
        return 1;
    }
    if (++v->count > (int)PROXY_MAX_VARY_FIELDS) {
        v->err = 1;
        return 1;
    }
    for (size_t i = 0; i < name.len; i++) {
        char c = name.p[i];
        c = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
        vput(v, &c, 1);
    }
    int any = 0;
    for (size_t i = 0; i < v->nfields; i++) {
        if (!slice_ieq2(v->fields[i].name, name))
            continue;
        vput(v, any ? "," : ":", 1);
        vput_value(v, v->fields[i].value);
        any = 1;
    }
    vput(v, "\n", 1);
    return 0;
}

int hop_vary_key(char *out, size_t outlen, slice_t vary, const http_field_t *fields, size_t nfields)
{
    struct vary_ctx v = { out, outlen, 0, fields, nfields, 0, 0, 0 };
    if (outlen == 0)
        return -1;
    http_list_each(vary, vary_elem, &v);
    if (v.star)
        return HOP_VARY_STAR;
    if (v.err)
        return -1;
    out[v.len] = '\0';
    return (int)v.len;
}
