/* acl.c - the proxy's firewall rules: parsing and first-match judging. */
#include "proxy/acl.h"
#include "http/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void acl_init(acl_t *a)
{
    memset(a, 0, sizeof *a);
}

int acl_add_connect_port(acl_t *a, uint16_t port)
{
    if (a->nconnect_ports >= PROXY_MAX_CONNECT_PORTS)
        return -1;
    a->connect_ports[a->nconnect_ports++] = port;
    return 0;
}

/* ---------------------------------------------------------- parsing */

static int parse_cidr(struct acl_rule *r, const char *v, size_t n, char *err, size_t errlen)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        goto bad;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *slash = strchr(tmp, '/');
    long bits = -1;
    if (slash != NULL) {
        *slash = '\0';
        const char *d = slash + 1;
        if (*d == '\0' || strlen(d) > 3)
            goto bad;
        bits = 0;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                goto bad;
            bits = bits * 10 + (*d - '0');
        }
    }
    if (inet_pton(AF_INET, tmp, r->net) == 1) {
        r->family = AF_INET;
        if (bits > 32)
            goto bad;
        r->prefix = (uint8_t)(bits < 0 ? 32 : bits);
    } else if (inet_pton(AF_INET6, tmp, r->net) == 1) {
        r->family = AF_INET6;
        if (bits > 128)
            goto bad;
        r->prefix = (uint8_t)(bits < 0 ? 128 : bits);
    } else {
        goto bad;
    }
    r->has_src = 1;
    return 0;
bad:
    snprintf(err, errlen, "src=%.*s is not an address or CIDR block (10.0.0.0/8, ::1/128)",
             (int)(n > 64 ? 64 : n), v);
    return -1;
}

static int parse_u16(const char *v, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (unsigned long)(v[i] - '0');
    }
    if (x == 0 || x > 65535)
        return -1;
    *out = (uint16_t)x;
    return 0;
}

static int parse_port(struct acl_rule *r, const char *v, size_t n, char *err, size_t errlen)
{
    const char *dash = memchr(v, '-', n);
    size_t a = dash ? (size_t)(dash - v) : n;
    if (parse_u16(v, a, &r->port_lo) < 0)
        goto bad;
    r->port_hi = r->port_lo;
    if (dash && parse_u16(dash + 1, n - a - 1, &r->port_hi) < 0)
        goto bad;
    if (r->port_hi < r->port_lo)
        goto bad;
    r->has_port = 1;
    return 0;
bad:
    snprintf(err, errlen, "port=%.*s is not a port or range (443, 8000-8999)", (int)(n > 32 ? 32 : n), v);
    return -1;
}

static int parse_host(struct acl_rule *r, const char *v, size_t n, char *err, size_t errlen)
{
    if (n > 0 && v[0] == '.') {
        r->host_suffix = 1;
        v++;
        n--;
    }
    if (n == 0 || n > PROXY_RULE_HOST_MAX)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != ':' && c != '_')
            goto bad;
        r->host[i] = (char)tolower(c);
    }
    r->host[n] = '\0';
    r->has_host = 1;
    return 0;
bad:
    snprintf(err, errlen, "host=%.*s is not a host name, address or .domain suffix",
             (int)(n > 64 ? 64 : n), v);
    return -1;
}

static int parse_method(struct acl_rule *r, const char *v, size_t n, char *err, size_t errlen)
{
    if (n == 0 || n >= sizeof r->method)
        goto bad;
    for (size_t i = 0; i < n; i++)
        if (!http_tchar[(unsigned char)v[i]])
            goto bad;
    memcpy(r->method, v, n);
    r->method[n] = '\0';
    r->has_method = 1;
    return 0;
bad:
    snprintf(err, errlen, "method=%.*s is not a method name", (int)(n > 32 ? 32 : n), v);
    return -1;
}

int acl_add(acl_t *a, int allow, const char *spec, char *err, size_t errlen)
{
    if (a->nrules >= PROXY_MAX_RULES) {
        snprintf(err, errlen, "too many rules (at most %u)", PROXY_MAX_RULES);
        return -1;
    }
    struct acl_rule r;
    memset(&r, 0, sizeof r);
    r.allow = allow ? 1 : 0;
    const char *p = spec;
    if (strcmp(spec, "all") != 0) {
        for (;;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *eq = memchr(p, '=', len);
            if (eq == NULL) {
                snprintf(err, errlen, "'%.*s' is not key=value (src, host, port, method) or 'all'",
                         (int)(len > 64 ? 64 : len), p);
                return -1;
            }
            size_t kl = (size_t)(eq - p);
            const char *v = eq + 1;
            size_t vl = len - kl - 1;
            int rc;
            if (kl == 3 && memcmp(p, "src", 3) == 0 && !r.has_src)
                rc = parse_cidr(&r, v, vl, err, errlen);
            else if (kl == 4 && memcmp(p, "host", 4) == 0 && !r.has_host)
                rc = parse_host(&r, v, vl, err, errlen);
            else if (kl == 4 && memcmp(p, "port", 4) == 0 && !r.has_port)
                rc = parse_port(&r, v, vl, err, errlen);
            else if (kl == 6 && memcmp(p, "method", 6) == 0 && !r.has_method)
                rc = parse_method(&r, v, vl, err, errlen);
            else {
                snprintf(err, errlen, "'%.*s' is an unknown or repeated key (src, host, port, method)",
                         (int)(kl > 32 ? 32 : kl), p);
                return -1;
            }
            if (rc < 0)
                return -1;
            if (end == NULL)
                break;
            p = end + 1;
        }
    }
    a->rules[a->nrules++] = r;
    return 0;
}

/* ---------------------------------------------------------- judging */

/* The client's address as 4 or 16 bytes; an IPv4-mapped IPv6 one as IPv4. */
static int client_bytes(const addr_t *c, uint8_t out[16])
{
    if (c->ss.ss_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)&c->ss)->sin_addr, 4);
        return AF_INET;
    }
    if (c->ss.ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)&c->ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(x)) {
            memcpy(out, x->s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(out, x->s6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static int host_ieq(const char *lower, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)p[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

static int host_match(const struct acl_rule *r, slice_t h)
{
    /* A fully qualified name's trailing dot names the same host. */
    if (h.len > 0 && h.p[h.len - 1] == '.')
        h.len--;
    size_t rl = strlen(r->host);
    if (h.len == rl && host_ieq(r->host, h.p, rl))
        return 1;
    if (!r->host_suffix || h.len <= rl)
        return 0;
    return h.p[h.len - rl - 1] == '.' && host_ieq(r->host, h.p + h.len - rl, rl);
}

static int rule_match(const struct acl_rule *r, const struct acl_query *q, int fam, const uint8_t *ca)
{
    if (r->has_src && (fam != r->family || !prefix_match(ca, r->net, r->prefix)))
        return 0;
    if (r->has_host && !host_match(r, q->host))
        return 0;
    if (r->has_port && (q->port < r->port_lo || q->port > r->port_hi))
        return 0;
    if (r->has_method && !slice_eq(q->method, slice_cstr(r->method)))
        return 0;
    return 1;
}

static int connect_port_ok(const acl_t *a, uint16_t port)
{
    if (a->nconnect_ports == 0)
        return port == PROXY_DEFAULT_CONNECT_PORT;
    for (size_t i = 0; i < a->nconnect_ports; i++)
        if (a->connect_ports[i] == port)
            return 1;
    return 0;
}

struct acl_result acl_check(const acl_t *a, const struct acl_query *q)
{
    uint8_t ca[16] = { 0 };
    int fam = client_bytes(q->client, ca);
    struct acl_result res = { 0, -1, "" };
    size_t i;
    for (i = 0; i < a->nrules; i++)
        if (rule_match(&a->rules[i], q, fam, ca))
            break;
    if (i < a->nrules) {
        res.rule = (int)i;
        res.allowed = a->rules[i].allow;
        res.why = res.allowed ? "allowed by a rule" : "denied by a rule";
    } else if (addr_is_loopback(q->client)) {
        res.allowed = 1;
        res.why = "loopback client";
    } else {
        res.why = "only loopback clients are allowed by default";
        return res;
    }
    if (res.allowed && slice_eq(q->method, SLICE_LIT("CONNECT")) &&
        !(res.rule >= 0 && a->rules[res.rule].has_port) && !connect_port_ok(a, q->port)) {
        res.allowed = 0;
        res.why = "CONNECT to a port not in the CONNECT port list";
    }
    return res;
}
