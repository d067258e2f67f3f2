/* hostaddr.c - host names to socket addresses through the stub resolver. */
#include "dns/hostaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/resolve.h"

enum { Q_AAAA, Q_A, NQ };

struct dns_hostaddr {
    loop_t *loop;
    dns_hostaddr_cb cb;
    void *arg;
    uint16_t port;
    char host[HOST_MAX];
    dns_resolve_t *q[NQ];        /* in flight */
    enum dns_stub_status st[NQ];
    int asked[NQ];
    addr_t got[NQ][DNS_HOSTADDR_MAX];
    int ngot[NQ];
    addr_t lit;                  /* a literal: answered from the defer */
    int nlit;
    char why[ERR_MAX];           /* a refused literal's reason, or "" */
    loop_defer_t later;          /* a literal's or the hosts file's answer */
};

/* Whether this host has a route to a: connect() on a UDP socket looks the
 * route up and sends nothing. */
static int reachable(const addr_t *a)
{
    int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0;
    close(fd);
    return ok;
}

/* RFC 6724 rule 1 (getaddrinfo() applies it): addresses with no route go
 * after the others, each group in its order. */
static void unreachable_last(addr_t *all, int n)
{
    addr_t late[DNS_HOSTADDR_MAX];
    int k = 0, nlate = 0;
    for (int i = 0; i < n; i++) {
        if (reachable(&all[i]))
            all[k++] = all[i];
        else
            late[nlate++] = all[i];
    }
    memcpy(all + k, late, (size_t)nlate * sizeof *late);
}

static void finish(dns_hostaddr_t *h)
{
    addr_t all[DNS_HOSTADDR_MAX];
    int n = 0;
    if (h->nlit)
        all[n++] = h->lit;
    for (int q = 0; q < NQ; q++)
        for (int i = 0; i < h->ngot[q] && n < DNS_HOSTADDR_MAX; i++) {
            int dup = 0;
            for (int j = 0; j < n; j++)
                dup |= all[j].len == h->got[q][i].len
                       && memcmp(&all[j].ss, &h->got[q][i].ss, all[j].len) == 0;
            if (!dup)
                all[n++] = h->got[q][i];
        }
    if (n > 1)
        unreachable_last(all, n);
    char err[ERR_MAX + HOST_MAX] = "";
    if (n == 0 && h->why[0] != '\0') {
        snprintf(err, sizeof err, "%s", h->why);
    } else if (n == 0) {
        /* The most telling failure: NXDOMAIN, then a server's refusal or
         * failure, then a timeout; both NODATA means no address. */
        static const enum dns_stub_status order[] = {
            DNS_STUB_NXDOMAIN, DNS_STUB_SERVFAIL, DNS_STUB_REFUSED,
            DNS_STUB_ERROR, DNS_STUB_TIMEOUT,
        };
        const char *why = NULL;
        for (size_t k = 0; why == NULL && k < sizeof order / sizeof order[0]; k++)
            for (int q = 0; q < NQ; q++)
                if (h->asked[q] && h->st[q] == order[k]) {
                    switch (order[k]) {
                    case DNS_STUB_NXDOMAIN: why = "no such host (NXDOMAIN)"; break;
                    case DNS_STUB_SERVFAIL: why = "the nameservers failed (SERVFAIL)"; break;
                    case DNS_STUB_REFUSED: why = "the nameservers refused (REFUSED)"; break;
                    case DNS_STUB_TIMEOUT: why = "no answer from the nameservers (timed out)"; break;
                    default: why = "the lookup failed"; break;
                    }
                    break;
                }
        if (why == NULL)
            why = !h->asked[Q_AAAA] ? "no IPv4 address for this name"
                  : !h->asked[Q_A]  ? "no IPv6 address for this name"
                                    : "no address for this name";
        snprintf(err, sizeof err, "cannot resolve '%s': %s", h->host, why);
    }
    if (h->cb != NULL)
        h->cb(h->arg, all, n, n ? NULL : err);
    free(h);
}

static void on_ready(void *arg)
{
    finish(arg);
}

/* Keeps the A (q == Q_A) or AAAA records of rr[0..n) as addresses. */
static void take_records(dns_hostaddr_t *h, int q, const dns_rr_t *rr, size_t n)
{
    for (size_t i = 0; i < n && h->ngot[q] < DNS_HOSTADDR_MAX; i++) {
        addr_t *a = &h->got[q][h->ngot[q]];
        memset(a, 0, sizeof *a);
        if (q == Q_A && rr[i].type == DNS_T_A) {
            struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
            in->sin_family = AF_INET;
            in->sin_port = htons(h->port);
            memcpy(&in->sin_addr, rr[i].a, 4);
            a->len = sizeof *in;
        } else if (q == Q_AAAA && rr[i].type == DNS_T_AAAA) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(h->port);
            memcpy(&in6->sin6_addr, rr[i].aaaa, 16);
            a->len = sizeof *in6;
        } else {
            continue;
        }
        h->ngot[q]++;
    }
}

static void on_answer(dns_resolve_t *r, const dns_stub_result_t *res, void *arg)
{
    dns_hostaddr_t *h = arg;
    int q = r == h->q[Q_A] ? Q_A : Q_AAAA;
    h->q[q] = NULL;
    h->st[q] = res->status;
    if (res->status == DNS_STUB_OK)
        take_records(h, q, res->rr, res->nrr);
    if (h->q[Q_A] == NULL && h->q[Q_AAAA] == NULL)
        finish(h);
}

static const uint16_t qtype[NQ] = { [Q_AAAA] = DNS_T_AAAA, [Q_A] = DNS_T_A };

/* A name the hosts file has, for any family asked, is answered from the
 * file alone, as glibc's `files` source answers before `dns` is tried: a
 * family the file lacks is not asked of the nameservers. Returns 1 when
 * the file had the name. */
static int from_hosts(dns_hostaddr_t *h, const dns_conf_t *conf, const dns_name_t *name)
{
    int any = 0;
    for (int q = 0; q < NQ; q++) {
        if (!h->asked[q])
            continue;
        dns_rr_t rr[DNS_HOSTADDR_MAX];
        size_t n = dns_hosts_lookup(&conf->hosts, name, qtype[q], rr, DNS_HOSTADDR_MAX);
        take_records(h, q, rr, n < DNS_HOSTADDR_MAX ? n : DNS_HOSTADDR_MAX);
        h->st[q] = n ? DNS_STUB_OK : DNS_STUB_NODATA;
        any |= n > 0;
    }
    return any;
}

int dns_hostaddr_start(loop_t *l, const dns_conf_t *conf, const char *host, uint16_t port,
                       int family, dns_hostaddr_cb cb, void *arg, dns_hostaddr_t **out)
{
    if (strlen(host) >= HOST_MAX)
        return -EINVAL;
    dns_hostaddr_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    h->loop = l;
    h->cb = cb;
    h->arg = arg;
    h->port = port;
    strcpy(h->host, host);
    h->asked[Q_A] = family != AF_INET6;
    h->asked[Q_AAAA] = family != AF_INET;
    int lit = addr_literal(host, port, AF_UNSPEC, 0, &h->lit, h->why, sizeof h->why);
    if (lit != 0) {
        /* A literal (one of the wrong family is reported as no address),
         * or an IPv6 literal with a bad zone (h->why says why). */
        if (lit > 0)
            h->why[0] = '\0';
        h->nlit = lit > 0 && (family == AF_UNSPEC || h->lit.ss.ss_family == family);
        h->st[Q_A] = h->st[Q_AAAA] = DNS_STUB_NODATA;
        loop_defer(l, &h->later, on_ready, h);
        if (out != NULL)
            *out = h;
        return 0;
    }
    dns_name_t name;
    if (dns_name_parse(&name, slice_cstr(host)) < 0) {
        free(h);
        return -EINVAL;
    }
    if (from_hosts(h, conf, &name)) {
        loop_defer(l, &h->later, on_ready, h);
        if (out != NULL)
            *out = h;
        return 0;
    }
    for (int q = 0; q < NQ; q++) {
        if (!h->asked[q])
            continue;
        int rc = dns_resolve_start(l, conf, slice_cstr(host), qtype[q], on_answer, h, &h->q[q]);
        if (rc < 0) {
            for (int k = 0; k < NQ; k++)
                if (h->q[k] != NULL)
                    dns_resolve_cancel(h->q[k]);
            free(h);
            return rc;
        }
    }
    if (out != NULL)
        *out = h;
    return 0;
}

void dns_hostaddr_cancel(dns_hostaddr_t *h)
{
    if (h->later.queued) {
        /* A literal's or the hosts file's answer is queued on the loop: it
         * frees h, silently. */
        h->cb = NULL;
        return;
    }
    for (int q = 0; q < NQ; q++)
        if (h->q[q] != NULL)
            dns_resolve_cancel(h->q[q]);
    free(h);
}

struct sync {
    addr_t *out;
    int max, n;
    char *err;
    size_t errlen;
    loop_t *loop;
};

static void on_sync(void *arg, const addr_t *addrs, int n, const char *err)
{
    struct sync *s = arg;
    s->n = n < s->max ? n : s->max;
    memcpy(s->out, addrs, (size_t)s->n * sizeof *addrs);
    if (n == 0) {
        snprintf(s->err, s->errlen, "%s", err);
        s->n = -1;
    }
    loop_break(s->loop);
}

int dns_hostaddr_sync(const char *host, uint16_t port, int family, int passive,
                      addr_t *out, int max, char *err, size_t errlen)
{
    int lit = addr_literal(host, port, family, passive, out, err, errlen);
    if (lit != 0)
        return lit;
    dns_conf_t conf;
    dns_conf_init(&conf);
    int rc = dns_conf_load(&conf, NULL, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "cannot resolve '%s': cannot read the resolver "
                 "configuration: %s", host, strerror(-rc));
        dns_conf_dispose(&conf);
        return -1;
    }
    struct sync s = { .out = out, .max = max, .n = -1, .err = err, .errlen = errlen };
    s.loop = loop_new();
    if (s.loop == NULL) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, strerror(errno));
        dns_conf_dispose(&conf);
        return -1;
    }
    rc = dns_hostaddr_start(s.loop, &conf, host, port, family, on_sync, &s, NULL);
    if (rc < 0)
        snprintf(err, errlen, "cannot resolve '%s': %s", host,
                 rc == -EINVAL ? "not a valid host name" : strerror(-rc));
    else if ((rc = loop_run(s.loop)) < 0)
        snprintf(err, errlen, "cannot resolve '%s': %s", host, strerror(-rc));
    loop_free(s.loop);
    dns_conf_dispose(&conf);
    return rc < 0 ? -1 : s.n;
}
