#include "dns/conf.h"
#include "dns/iter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dns_hosts_line {
    uint8_t family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint32_t canon;        /* offset in names of the line's first name */
};

struct dns_hosts_key {
    uint32_t name;         /* offset in names */
    uint32_t line;
};

/* ------------------------------------------------------------ text */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Cuts the next blank-separated token from *s (which ends at the line's
 * end). Returns 0 when none is left. */
static int next_token(slice_t *s, slice_t *tok)
{
    size_t i = 0;
    while (i < s->len && is_blank(s->p[i]))
        i++;
    size_t start = i;
    while (i < s->len && !is_blank(s->p[i]))
        i++;
    *tok = slice_make(s->p + start, i - start);
    *s = slice_make(s->p + i, s->len - i);
    return tok->len > 0;
}

/* Cuts the next line (without its '\n') from *text. */
static int next_line(slice_t *text, slice_t *line)
{
    if (text->len == 0)
        return 0;
    const char *nl = memchr(text->p, '\n', text->len);
    size_t n = nl != NULL ? (size_t)(nl - text->p) : text->len;
    *line = slice_make(text->p, n);
    size_t skip = nl != NULL ? n + 1 : n;
    *text = slice_make(text->p + skip, text->len - skip);
    return 1;
}

/* Copies a token into a NUL-terminated buffer; 0 if it does not fit. */
static int tok_cstr(slice_t t, char *out, size_t cap)
{
    if (t.len >= cap)
        return 0;
    memcpy(out, t.p, t.len);
    out[t.len] = '\0';
    return 1;
}

/* A decimal number of digits only, saturating at UINT32_MAX. */
static int parse_uint(slice_t t, unsigned *v)
{
    unsigned long n = 0;
    if (t.len == 0)
        return 0;
    for (size_t i = 0; i < t.len; i++) {
        if (t.p[i] < '0' || t.p[i] > '9')
            return 0;
        n = n * 10 + (unsigned long)(t.p[i] - '0');
        if (n > UINT32_MAX)
            n = UINT32_MAX;
    }
    *v = (unsigned)n;
    return 1;
}

static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c; }

/* Orders wire names without case: byte by byte, then shorter first. */
static int wire_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        uint8_t x = lower(a[i]), y = lower(b[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen;
}

/* -------------------------------------------------------- addresses */

/* Parses a nameserver or hosts address: IPv4 (inet_aton, as glibc) or IPv6
 * with an optional %scope (interface name or number). */
static int parse_ip(slice_t t, int family_only_numeric, int *family, uint8_t addr[16],
                    uint32_t *scope)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (!tok_cstr(t, buf, sizeof buf))
        return 0;
    struct in_addr a4;
    *scope = 0;
    if (strchr(buf, ':') == NULL) {
        /* inet_aton takes the short forms ("127.1") resolv.conf allows;
         * hosts files are read with the strict dotted quad, as glibc does. */
        int ok = family_only_numeric ? inet_pton(AF_INET, buf, &a4) == 1 : inet_aton(buf, &a4) != 0;
        if (!ok)
            return 0;
        *family = AF_INET;
        memcpy(addr, &a4, 4);
        return 1;
    }
    char *pct = strchr(buf, '%');
    if (pct != NULL) {
        *pct++ = '\0';
        unsigned v;
        if (*pct == '\0')
            return 0;
        if (parse_uint(slice_cstr(pct), &v))
            *scope = v;
        else
            *scope = if_nametoindex(pct); /* unknown interface: scope 0, as glibc */
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return 0;
    *family = AF_INET6;
    return 1;
}

static void make_addr(addr_t *a, int family, const uint8_t *ip, uint32_t scope, uint16_t port)
{
    memset(a, 0, sizeof *a);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, ip, 4);
        a->len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, ip, 16);
        s6->sin6_scope_id = scope;
        a->len = sizeof *s6;
    }
}

/* ------------------------------------------------------------- hosts */

void dns_hosts_init(dns_hosts_t *h)
{
    memset(h, 0, sizeof *h);
}

void dns_hosts_dispose(dns_hosts_t *h)
{
    free(h->names);
    free(h->lines);
    free(h->keys);
    dns_hosts_init(h);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int key_cmp(const void *a, const void *b, void *arg)
{
    const struct dns_hosts_key *x = a, *y = b;
    const uint8_t *names = arg;
    int c = wire_cmp(names + x->name + 1, names[x->name], names + y->name + 1, names[y->name]);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

int dns_hosts_parse(dns_hosts_t *h, slice_t text)
{
    size_t old_names = h->names_len, old_lines = h->nlines, old_keys = h->nkeys;
    int taken = 0;
    slice_t line;
    while (next_line(&text, &line)) {
        const char *hash = memchr(line.p, '#', line.len);
        if (hash != NULL)
            line.len = (size_t)(hash - line.p);
        slice_t tok;
        if (!next_token(&line, &tok))
            continue;
        int family;
        uint8_t ip[16];
        uint32_t scope;
        if (!parse_ip(tok, 1, &family, ip, &scope))
            continue;
        size_t first_key = h->nkeys;
        while (next_token(&line, &tok)) {
            dns_name_t n;
            if (dns_name_parse(&n, tok) != 0)
                continue;
            if (h->names_len + 1 + n.len > UINT32_MAX ||
                grow((void **)&h->names, &h->names_cap, h->names_len + 1 + n.len, 1) < 0 ||
                grow((void **)&h->keys, &h->keys_cap, h->nkeys + 1, sizeof *h->keys) < 0)
                goto nomem;
            h->keys[h->nkeys].name = (uint32_t)h->names_len;
            h->keys[h->nkeys].line = (uint32_t)h->nlines;
            h->nkeys++;
            h->names[h->names_len] = n.len;
            memcpy(h->names + h->names_len + 1, n.wire, n.len);
            h->names_len += 1u + n.len;
        }
        if (h->nkeys == first_key)
            continue; /* an address without a name */
        if (grow((void **)&h->lines, &h->lines_cap, h->nlines + 1, sizeof *h->lines) < 0)
            goto nomem;
        struct dns_hosts_line *l = &h->lines[h->nlines++];
        l->family = (uint8_t)family;
        memcpy(l->addr, ip, 16);
        l->canon = h->keys[first_key].name;
        taken++;
    }
    if (h->nkeys > 1)
        qsort_r(h->keys, h->nkeys, sizeof *h->keys, key_cmp, h->names);
    return taken;
nomem:
    h->names_len = old_names;
    h->nlines = old_lines;
    h->nkeys = old_keys;
    /* The keys kept are still in the sorted order of the previous call. */
    return DNS_E_NOSPACE;
}

/* Reads a reverse name (d.c.b.a.in-addr.arpa, or 32 nibbles under
 * ip6.arpa) into an address. Returns the family or 0. */
static int reverse_addr(const dns_name_t *n, uint8_t addr[16])
{
    slice_t labels[34];
    size_t nl = 0, i = 0;
    while (n->wire[i] != 0) {
        if (nl == 34)
            return 0;
        labels[nl++] = slice_make((const char *)n->wire + i + 1, n->wire[i]);
        i += 1u + n->wire[i];
    }
    if (nl < 2)
        return 0;
    const uint8_t arpa[] = { 'a', 'r', 'p', 'a' };
    if (wire_cmp((const uint8_t *)labels[nl - 1].p, labels[nl - 1].len, arpa, 4) != 0)
        return 0;
    slice_t zone = labels[nl - 2];
    if (nl == 6 && wire_cmp((const uint8_t *)zone.p, zone.len, (const uint8_t *)"in-addr", 7) == 0) {
        for (size_t k = 0; k < 4; k++) {
            unsigned v;
            if (labels[k].len > 3 || !parse_uint(labels[k], &v) || v > 255)
                return 0;
            addr[3 - k] = (uint8_t)v;
        }
        return AF_INET;
    }
    if (nl == 34 && wire_cmp((const uint8_t *)zone.p, zone.len, (const uint8_t *)"ip6", 3) == 0) {
        memset(addr, 0, 16);
        for (size_t k = 0; k < 32; k++) {
            if (labels[k].len != 1)
                return 0;
            uint8_t c = lower((uint8_t)labels[k].p[0]), v;
            if (c >= '0' && c <= '9')
                v = (uint8_t)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v = (uint8_t)(c - 'a' + 10);
            else
                return 0;
            size_t nib = 31 - k; /* the first label is the lowest nibble */
            addr[nib / 2] |= (uint8_t)(nib % 2 ? v : v << 4);
        }
        return AF_INET6;
    }
    return 0;
}

size_t dns_hosts_lookup(const dns_hosts_t *h, const dns_name_t *name, uint16_t qtype,
                        dns_rr_t *out, size_t cap)
{
    size_t found = 0;
    if (qtype == DNS_T_PTR) {
        uint8_t ip[16];
        int family = reverse_addr(name, ip);
        if (family == 0)
            return 0;
        size_t alen = family == AF_INET ? 4 : 16;
        for (size_t i = 0; i < h->nlines; i++) {
            const struct dns_hosts_line *l = &h->lines[i];
            if (l->family != family || memcmp(l->addr, ip, alen) != 0)
                continue;
            if (cap > 0) {
                memset(out, 0, sizeof *out);
                out->name = *name;
                out->type = DNS_T_PTR;
                out->rclass = DNS_C_IN;
                out->target.len = h->names[l->canon];
                memcpy(out->target.wire, h->names + l->canon + 1, out->target.len);
            }
            return 1;
        }
        return 0;
    }
    if (qtype != DNS_T_A && qtype != DNS_T_AAAA)
        return 0;
    int family = qtype == DNS_T_A ? AF_INET : AF_INET6;
    size_t alen = family == AF_INET ? 4 : 16;

    /* Lower bound of the name among the sorted keys. */
    size_t lo = 0, hi = h->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint8_t *k = h->names + h->keys[mid].name;
        if (wire_cmp(k + 1, k[0], name->wire, name->len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < h->nkeys; i++) {
        const uint8_t *k = h->names + h->keys[i].name;
        if (wire_cmp(k + 1, k[0], name->wire, name->len) != 0)
            break;
        const struct dns_hosts_line *l = &h->lines[h->keys[i].line];
        if (l->family != family)
            continue;
        /* The same address on two lines is given once. */
        int dup = 0;
        for (size_t j = lo; j < i && !dup; j++) {
            const struct dns_hosts_line *p = &h->lines[h->keys[j].line];
            dup = p->family == family && memcmp(p->addr, l->addr, alen) == 0;
        }
        if (dup)
            continue;
        if (found < cap) {
            dns_rr_t *rr = &out[found];
            memset(rr, 0, sizeof *rr);
            rr->name = *name;
            rr->type = qtype;
            rr->rclass = DNS_C_IN;
            memcpy(family == AF_INET ? rr->a : rr->aaaa, l->addr, alen);
        }
        found++;
    }
    return found;
}

/* -------------------------------------------------------- resolv.conf */

void dns_conf_init(dns_conf_t *c)
{
    memset(c, 0, sizeof *c);
    c->ndots = DNS_CONF_NDOTS_DEF;
    c->timeout = DNS_CONF_TIMEOUT_DEF;
    c->attempts = DNS_CONF_ATTEMPTS_DEF;
    dns_hosts_init(&c->hosts);
}

void dns_conf_dispose(dns_conf_t *c)
{
    dns_hosts_dispose(&c->hosts);
}

int dns_conf_add_ns(dns_conf_t *c, const addr_t *a)
{
    if (c->nns == DNS_CONF_NS_MAX)
        return -1;
    c->ns[c->nns++] = *a;
    return 0;
}

void dns_conf_set_search(dns_conf_t *c, slice_t text)
{
    slice_t tok;
    c->nsearch = 0;
    c->search_set = 1;
    while (c->nsearch < DNS_CONF_SEARCH_MAX && next_token(&text, &tok)) {
        if (dns_name_parse(&c->search[c->nsearch], tok) == 0)
            c->nsearch++;
    }
}

static int opt_num(slice_t tok, const char *key, unsigned *v)
{
    size_t kl = strlen(key);
    return tok.len > kl && memcmp(tok.p, key, kl) == 0 &&
           parse_uint(slice_make(tok.p + kl, tok.len - kl), v);
}

void dns_conf_parse_options(dns_conf_t *c, slice_t text)
{
    slice_t tok;
    unsigned v;
    while (next_token(&text, &tok)) {
        if (opt_num(tok, "ndots:", &v))
            c->ndots = v < DNS_CONF_NDOTS_MAX ? v : DNS_CONF_NDOTS_MAX;
        else if (opt_num(tok, "timeout:", &v))
            c->timeout = v < DNS_CONF_TIMEOUT_MAX ? v : DNS_CONF_TIMEOUT_MAX;
        else if (opt_num(tok, "attempts:", &v))
            c->attempts = v == 0 ? 1 : v < DNS_CONF_ATTEMPTS_MAX ? v : DNS_CONF_ATTEMPTS_MAX;
        else if (slice_eq(tok, SLICE_LIT("rotate")))
            c->rotate = 1;
        else if (slice_eq(tok, SLICE_LIT("edns0")))
            c->edns0 = 1;
        else if (slice_eq(tok, SLICE_LIT("use-vc")))
            c->use_vc = 1;
        else if (slice_eq(tok, SLICE_LIT("no-tld-query")))
            c->no_tld_query = 1;
    }
}

/* The keyword and the blank after it, as glibc's MATCH. */
static int keyword(slice_t line, const char *kw, slice_t *rest)
{
    size_t n = strlen(kw);
    if (line.len <= n || memcmp(line.p, kw, n) != 0 || (line.p[n] != ' ' && line.p[n] != '\t'))
        return 0;
    *rest = slice_make(line.p + n, line.len - n);
    return 1;
}

int dns_conf_parse_resolv(dns_conf_t *c, slice_t text)
{
    int bad = 0;
    slice_t line, rest, tok;
    while (next_line(&text, &line)) {
        if (line.len == 0 || line.p[0] == '#' || line.p[0] == ';')
            continue;
        if (keyword(line, "nameserver", &rest)) {
            int family;
            uint8_t ip[16];
            uint32_t scope;
            if (!next_token(&rest, &tok) || !parse_ip(tok, 0, &family, ip, &scope)) {
                bad++;
                continue;
            }
            addr_t a;
            make_addr(&a, family, ip, scope, 53);
            dns_conf_add_ns(c, &a);
        } else if (keyword(line, "domain", &rest)) {
            if (!next_token(&rest, &tok)) {
                bad++;
                continue;
            }
            dns_conf_set_search(c, tok);
        } else if (keyword(line, "search", &rest)) {
            dns_conf_set_search(c, rest);
        } else if (keyword(line, "options", &rest)) {
            dns_conf_parse_options(c, rest);
        }
    }
    return bad;
}

void dns_conf_finish(dns_conf_t *c)
{
    if (c->nns == 0) {
        const uint8_t lo[4] = { 127, 0, 0, 1 };
        addr_t a;
        make_addr(&a, AF_INET, lo, 0, 53);
        dns_conf_add_ns(c, &a);
    }
    if (c->attempts == 0)
        c->attempts = 1;
}

/* ------------------------------------------------------------ loading */

/* Reads a whole file of at most `cap` bytes into a malloc'd buffer.
 * Returns 0, -ENOENT, -EFBIG or another -errno. */
static int read_file(const char *path, size_t cap, char **out, size_t *outlen)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0, size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    for (;;) {
        if (len == size) {
            if (size == cap + 1) {
                rc = -EFBIG;
                goto out;
            }
            size_t nsize = size ? size * 2 : 4096;
            if (nsize > cap + 1)
                nsize = cap + 1;
            char *nb = realloc(buf, nsize);
            if (nb == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            size = nsize;
        }
        ssize_t n = read(fd, buf + len, size - len);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > cap)
        rc = -EFBIG;
out:
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

int dns_hints_load(dns_hints_t *h, const char *path, size_t *line, const char **why)
{
    char *text;
    size_t len;
    int rc = read_file(path, DNS_HINTS_FILE_MAX, &text, &len);
    if (rc < 0)
        return rc;
    rc = dns_hints_parse(h, (slice_t){ text, len }, line, why) < 0 ? -EINVAL : 0;
    free(text);
    return rc;
}

int dns_conf_load(dns_conf_t *c, const char *resolv_path, const char *hosts_path)
{
    int rc = 0, r;
    char *text = NULL;
    size_t len = 0;

    r = read_file(resolv_path ? resolv_path : "/etc/resolv.conf", DNS_CONF_RESOLV_FILE_MAX,
                  &text, &len);
    if (r == 0) {
        dns_conf_parse_resolv(c, slice_make(text, len));
        free(text);
        text = NULL;
    } else if (r != -ENOENT) {
        rc = r;
    }
    if (!c->search_set) {
        char host[HOST_MAX + 1];
        if (gethostname(host, sizeof host - 1) == 0) {
            host[HOST_MAX] = '\0';
            const char *dot = strchr(host, '.');
            if (dot != NULL && dot[1] != '\0')
                dns_conf_set_search(c, slice_cstr(dot + 1));
        }
    }
    const char *env = getenv("LOCALDOMAIN");
    if (env != NULL)
        dns_conf_set_search(c, slice_cstr(env));
    env = getenv("RES_OPTIONS");
    if (env != NULL)
        dns_conf_parse_options(c, slice_cstr(env));
    dns_conf_finish(c);

    r = read_file(hosts_path ? hosts_path : "/etc/hosts", DNS_CONF_HOSTS_FILE_MAX, &text, &len);
    if (r == 0) {
        if (dns_hosts_parse(&c->hosts, slice_make(text, len)) < 0 && rc == 0)
            rc = -ENOMEM;
        free(text);
    } else if (r != -ENOENT && rc == 0) {
        rc = r;
    }
    return rc;
}

/* Addresses: 1.2.3.4, 1.2.3.4:53, ::1, [::1], [::1]:53, fe80::1%eth0. Only
 * literal addresses: resolving a server name would need a resolver first. */
int dns_addr_parse(const char *s, uint16_t def_port, int zero_ok, addr_t *a)
{
    char host[HOST_MAX];
    const char *port = NULL;
    int family = AF_UNSPEC;
    size_t hl;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return -EINVAL;
        hl = (size_t)(end - s - 1);
        if (hl >= sizeof host)
            return -EINVAL;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
        family = AF_INET6;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hl = (size_t)(colon - s); /* one colon: IPv4 and a port */
            port = colon + 1;
            family = AF_INET;
        } else {
            hl = strlen(s);
        }
        if (hl >= sizeof host)
            return -EINVAL;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    uint16_t p = def_port;
    if (port != NULL && !(zero_ok && strcmp(port, "0") == 0) && port_parse(port, &p) < 0)
        return -EINVAL;
    if (port != NULL && zero_ok && strcmp(port, "0") == 0)
        p = 0;
    if (host[0] == '\0')
        return -EINVAL;
    char err[ERR_MAX];
    if (addr_literal(host, p, family, 0, a, err, sizeof err) != 1)
        return -EINVAL;
    return 0;
}
