#include "dns/stub.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct dns_stub {
    const dns_conf_t *conf;
    uint16_t qtype;
    dns_name_t given;                        /* the name as given */
    dns_name_t names[DNS_STUB_NAMES_MAX];    /* in the order they are asked */
    size_t nnames, iname;
    uint8_t random[DNS_STUB_RANDOM_LEN];
    int started, done;
    uint64_t t0;

    /* The name being asked. */
    uint16_t id;
    uint8_t query[DNS_STUB_QUERY_MAX];
    size_t qlen;
    unsigned round;          /* 0 .. attempts-1 */
    size_t step;             /* 0 .. nns-1 within the round */
    size_t first;            /* server of step 0 (rotate) */
    size_t cur;              /* server waited for */
    int cur_tcp;             /* ... over TCP */
    uint32_t asked;          /* servers this query went to over UDP, a bit each */
    uint64_t deadline;
    int name_err;            /* status of the last error RCODE for this name, or -1 */
    int name_timeouts;       /* a wait for this name ran out */

    int failed;              /* status of a name that failed with an error RCODE, or -1 */

    int tx_pending;
    dns_stub_tx_t tx;

    dns_stub_result_t res;
    dns_stub_stats_t stats;
};

const char *dns_stub_status_name(enum dns_stub_status s)
{
    switch (s) {
    case DNS_STUB_OK:       return "OK";
    case DNS_STUB_NXDOMAIN: return "NXDOMAIN";
    case DNS_STUB_NODATA:   return "NODATA";
    case DNS_STUB_SERVFAIL: return "SERVFAIL";
    case DNS_STUB_TIMEOUT:  return "TIMEOUT";
    case DNS_STUB_REFUSED:  return "REFUSED";
    case DNS_STUB_ERROR:    return "ERROR";
    }
    return "?";
}

/* ------------------------------------------------------------ names */

static size_t label_count(const dns_name_t *n)
{
    size_t c = 0;
    for (size_t i = 0; n->wire[i] != 0; i += 1u + n->wire[i])
        c++;
    return c;
}

static void add_name(dns_stub_t *st, const dns_name_t *n)
{
    for (size_t i = 0; i < st->nnames; i++)
        if (dns_name_eq(&st->names[i], n))
            return;
    if (st->nnames < DNS_STUB_NAMES_MAX)
        st->names[st->nnames++] = *n;
}

/* name + domain; 0 if the result is over 255 bytes. */
static int concat(dns_name_t *out, const dns_name_t *name, const dns_name_t *domain)
{
    size_t head = name->len - 1u; /* without the root byte */
    if (head + domain->len > DNS_NAME_MAX)
        return 0;
    memcpy(out->wire, name->wire, head);
    memcpy(out->wire + head, domain->wire, domain->len);
    out->len = (uint8_t)(head + domain->len);
    return 1;
}

/* A trailing '.' that no backslash escapes. */
static int is_absolute(slice_t s)
{
    if (s.len == 0 || s.p[s.len - 1] != '.')
        return 0;
    size_t bs = 0;
    while (bs + 1 < s.len && s.p[s.len - 2 - bs] == '\\')
        bs++;
    return bs % 2 == 0;
}

static void build_names(dns_stub_t *st, int absolute)
{
    const dns_conf_t *c = st->conf;
    if (absolute) {
        add_name(st, &st->given);
        return;
    }
    size_t dots = label_count(&st->given);
    dots = dots > 0 ? dots - 1 : 0;
    int as_is_first = dots >= c->ndots;
    if (as_is_first)
        add_name(st, &st->given);
    for (size_t i = 0; i < c->nsearch; i++) {
        dns_name_t n;
        if (concat(&n, &st->given, &c->search[i]))
            add_name(st, &n);
    }
    if (!as_is_first && !(c->no_tld_query && dots == 0 && c->nsearch > 0))
        add_name(st, &st->given);
}

int dns_stub_new(dns_stub_t **out, const dns_conf_t *conf, slice_t name, uint16_t qtype)
{
    dns_name_t n;
    int rc = dns_name_parse(&n, name);
    if (rc < 0)
        return rc;
    dns_stub_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return DNS_E_NOSPACE;
    st->conf = conf;
    st->qtype = qtype;
    st->given = n;
    st->deadline = UINT64_MAX;
    st->name_err = st->failed = -1;
    st->res.qtype = qtype;
    build_names(st, is_absolute(name) || n.len == 1);
    *out = st;
    return 0;
}

static void clear_reply(dns_stub_result_t *r)
{
    free((void *)r->reply);
    free(r->msg.qd);
    for (int s = 0; s < 3; s++)
        free(r->msg.sec[s].rr);
    free(r->rr);
    r->reply = NULL;
    r->reply_len = 0;
    memset(&r->msg, 0, sizeof r->msg);
    r->rr = NULL;
    r->nrr = 0;
    r->nchain = 0;
    r->rcode = 0;
    r->via_tcp = 0;
    r->server_idx = 0;
    memset(&r->server, 0, sizeof r->server);
}

void dns_stub_free(dns_stub_t *st)
{
    if (st == NULL)
        return;
    clear_reply(&st->res);
    free(st);
}

/* --------------------------------------------------------- sending */

static void finish(dns_stub_t *st, uint64_t now, enum dns_stub_status status)
{
    st->done = 1;
    st->tx_pending = 0;
    st->deadline = UINT64_MAX;
    st->res.status = status;
    st->res.elapsed_ms = now - st->t0;
    if (status == DNS_STUB_TIMEOUT || (status == DNS_STUB_ERROR && st->res.reply == NULL))
        clear_reply(&st->res);
    if (st->res.nchain == 0) {
        st->res.chain[0] = st->res.qname;
        st->res.nchain = 1;
    }
}

/* The wait of one send in the current round, in ms (glibc's res_send). */
static uint64_t wait_ms(const dns_stub_t *st)
{
    unsigned s = st->conf->timeout << st->round;
    if (st->round > 0)
        s /= (unsigned)st->conf->nns;
    if (s == 0)
        s = 1;
    return (uint64_t)s * 1000u;
}

static void send_to(dns_stub_t *st, uint64_t now, size_t server, int tcp)
{
    st->cur = server;
    st->cur_tcp = tcp || st->conf->use_vc;
    if (!st->cur_tcp)
        st->asked |= 1u << server;
    st->deadline = now + wait_ms(st);
    st->tx = (dns_stub_tx_t){ st->query, st->qlen, &st->conf->ns[server], st->cur_tcp, server };
    st->tx_pending = 1;
    st->res.sent++;
}

static void start_name(dns_stub_t *st, uint64_t now);

/* The next name of the list, or the end of the lookup. */
static void next_name(dns_stub_t *st, uint64_t now)
{
    if (++st->iname < st->nnames) {
        start_name(st, now);
        return;
    }
    finish(st, now, st->failed >= 0 ? (enum dns_stub_status)st->failed : DNS_STUB_NXDOMAIN);
}

/* Every server of every round is over for this name. */
static void name_exhausted(dns_stub_t *st, uint64_t now)
{
    if (st->name_err >= 0) {
        st->failed = st->name_err;
        next_name(st, now);
    } else {
        finish(st, now, st->name_timeouts ? DNS_STUB_TIMEOUT : DNS_STUB_ERROR);
    }
}

/* The current send is over without an answer: the next server, round,
 * or name. */
static void next_slot(dns_stub_t *st, uint64_t now)
{
    if (++st->step == st->conf->nns) {
        st->step = 0;
        st->round++;
    }
    if (st->round >= st->conf->attempts) {
        name_exhausted(st, now);
        return;
    }
    send_to(st, now, (st->first + st->step) % st->conf->nns, 0);
}

static void start_name(dns_stub_t *st, uint64_t now)
{
    const uint8_t *r = st->random + 2 * st->iname;
    dns_builder_t b;
    st->id = (uint16_t)(r[0] << 8 | r[1]);
    st->res.qname = st->names[st->iname];
    int rc = dns_builder_init(&b, st->query, sizeof st->query, st->id, DNS_F_RD);
    if (rc == 0)
        rc = dns_builder_question(&b, &st->names[st->iname], st->qtype, DNS_C_IN);
    if (rc == 0 && st->conf->edns0) {
        dns_edns_t e;
        dns_edns_default(&e);
        rc = dns_builder_edns(&b, &e);
    }
    if (rc < 0) { /* cannot happen: the buffer fits any question */
        finish(st, now, DNS_STUB_ERROR);
        return;
    }
    st->qlen = b.len;
    st->round = 0;
    st->step = 0;
    st->asked = 0;
    st->name_err = -1;
    st->name_timeouts = 0;
    send_to(st, now, st->first, 0);
}

static int hosts_answer(dns_stub_t *st, uint64_t now)
{
    const dns_hosts_t *h = &st->conf->hosts;
    size_t n = dns_hosts_lookup(h, &st->given, st->qtype, NULL, 0);
    if (n == 0)
        return 0;
    st->res.rr = calloc(n, sizeof *st->res.rr);
    if (st->res.rr == NULL) {
        finish(st, now, DNS_STUB_ERROR);
        return 1;
    }
    st->res.nrr = dns_hosts_lookup(h, &st->given, st->qtype, st->res.rr, n);
    st->res.from_hosts = 1;
    st->res.qname = st->given;
    finish(st, now, DNS_STUB_OK);
    return 1;
}

void dns_stub_start(dns_stub_t *st, uint64_t now, const uint8_t *random)
{
    if (st->started)
        return;
    st->started = 1;
    st->t0 = now;
    memcpy(st->random, random, DNS_STUB_RANDOM_LEN);
    st->res.qname = st->given;
    if (hosts_answer(st, now))
        return;
    if (st->conf->nns == 0 || st->conf->attempts == 0 || st->nnames == 0) {
        finish(st, now, DNS_STUB_ERROR);
        return;
    }
    if (st->conf->rotate)
        st->first = st->random[2 * DNS_STUB_NAMES_MAX] % st->conf->nns;
    st->iname = 0;
    start_name(st, now);
}

int dns_stub_next_tx(dns_stub_t *st, dns_stub_tx_t *tx)
{
    if (!st->tx_pending)
        return 0;
    st->tx_pending = 0;
    *tx = st->tx;
    return 1;
}

void dns_stub_timeout(dns_stub_t *st, uint64_t now)
{
    if (!st->started || st->done || now < st->deadline)
        return;
    st->name_timeouts = 1;
    next_slot(st, now);
}

void dns_stub_fail(dns_stub_t *st, uint64_t now)
{
    if (!st->started || st->done)
        return;
    next_slot(st, now);
}

uint64_t dns_stub_deadline(const dns_stub_t *st) { return st->deadline; }
int dns_stub_done(const dns_stub_t *st) { return st->done; }
const dns_stub_result_t *dns_stub_result(const dns_stub_t *st) { return st->done ? &st->res : NULL; }
const dns_stub_stats_t *dns_stub_stats(const dns_stub_t *st) { return &st->stats; }

/* ------------------------------------------------------------ replies */

/* Same address and port; an IPv4-mapped IPv6 address is its IPv4 one. */
static int addr_key(const addr_t *a, uint8_t ip[16], uint16_t *port, uint32_t *scope)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(ip, 0, 16);
    *scope = 0;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        memcpy(ip + 12, &s4->sin_addr, 4);
        memcpy(ip, mapped, 12);
        *port = s4->sin_port;
        return 1;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        memcpy(ip, &s6->sin6_addr, 16);
        *port = s6->sin6_port;
        if (memcmp(ip, mapped, 12) != 0)
            *scope = s6->sin6_scope_id;
        return 1;
    }
    return 0;
}

static int addr_same(const addr_t *a, const addr_t *b)
{
    uint8_t ia[16], ib[16];
    uint16_t pa, pb;
    uint32_t sa, sb;
    if (!addr_key(a, ia, &pa, &sa) || !addr_key(b, ib, &pb, &sb))
        return 0;
    /* A scope is only compared when both sides name one: recvfrom() fills
     * it in for link-local sources, a resolv.conf line may leave it out. */
    return pa == pb && memcmp(ia, ib, 16) == 0 && (sa == 0 || sb == 0 || sa == sb);
}

static int ignore(dns_stub_t *st, size_t *counter)
{
    (*counter)++;
    st->stats.ignored++;
    return 0;
}

static enum dns_stub_status rcode_status(unsigned rcode)
{
    switch (rcode) {
    case DNS_R_SERVFAIL: return DNS_STUB_SERVFAIL;
    case DNS_R_REFUSED:  return DNS_STUB_REFUSED;
    default:             return DNS_STUB_ERROR;
    }
}

/* Decodes the question of a TC reply that was cut inside a record, as old
 * servers do: the same bytes with no records announced, which then fail
 * only with DNS_E_TRAILING after the question. */
static int truncated_question(const uint8_t *msg, size_t len, dns_question_t *q, size_t *nq)
{
    uint8_t head[DNS_HEADER_LEN + DNS_NAME_MAX + 4];
    size_t n = len < sizeof head ? len : sizeof head;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    memcpy(head, msg, n);
    memset(head + 6, 0, 6);
    m.qd = q;
    m.qd_cap = 1;
    int rc = dns_msg_decode(head, n, &m);
    if (rc != 0 && rc != DNS_E_TRAILING)
        return rc;
    *nq = m.nqd;
    return 0;
}

/* Keeps a copy of the reply, decoded, as the result's. Returns 0 or -1
 * when memory runs out. */
static int keep_reply(dns_stub_t *st, size_t srv, int via_tcp, const uint8_t *msg, size_t len,
                      const dns_header_t *h)
{
    dns_stub_result_t *r = &st->res;
    clear_reply(r);
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return -1;
    memcpy(copy, msg, len);
    r->reply = copy;
    r->reply_len = len;
    const uint16_t counts[3] = { h->ancount, h->nscount, h->arcount };
    r->msg.qd = calloc(1, sizeof *r->msg.qd);
    if (r->msg.qd == NULL)
        return -1;
    r->msg.qd_cap = 1;
    for (int s = 0; s < 3; s++) {
        size_t cap = counts[s] < DNS_STUB_SECTION_MAX ? counts[s] : DNS_STUB_SECTION_MAX;
        if (cap == 0)
            continue;
        r->msg.sec[s].rr = calloc(cap, sizeof(dns_rr_t));
        if (r->msg.sec[s].rr == NULL)
            return -1;
        r->msg.sec[s].cap = cap;
    }
    /* It decoded before; only a TC reply cut short may fail here, and its
     * records are not looked at. */
    if (dns_msg_decode(copy, len, &r->msg) < 0)
        for (int s = 0; s < 3; s++)
            r->msg.sec[s].n = 0;
    r->rcode = r->msg.rcode;
    r->server = st->conf->ns[srv];
    r->server_idx = srv;
    r->via_tcp = via_tcp;
    return 0;
}

/* Follows the CNAME chain from qname in the answer section and collects
 * the records of qtype at its end. Returns the status of the name. */
static enum dns_stub_status take_answer(dns_stub_t *st)
{
    dns_stub_result_t *r = &st->res;
    const dns_rrs_t *an = &r->msg.sec[DNS_SEC_AN];
    r->chain[0] = st->names[st->iname];
    r->nchain = 1;
    if (st->qtype != DNS_T_CNAME && st->qtype != DNS_T_ANY) {
        for (;;) {
            const dns_name_t *end = &r->chain[r->nchain - 1];
            const dns_rr_t *cn = NULL;
            for (size_t i = 0; i < an->n && cn == NULL; i++)
                if (an->rr[i].type == DNS_T_CNAME && an->rr[i].rclass == DNS_C_IN &&
                    dns_name_eq(&an->rr[i].name, end))
                    cn = &an->rr[i];
            if (cn == NULL)
                break;
            for (size_t k = 0; k < r->nchain; k++)
                if (dns_name_eq(&r->chain[k], &cn->target))
                    return DNS_STUB_ERROR; /* a loop */
            if (r->nchain == DNS_STUB_CHAIN_MAX + 1)
                return DNS_STUB_ERROR;
            r->chain[r->nchain++] = cn->target;
        }
    }
    const dns_name_t *end = &r->chain[r->nchain - 1];
    size_t n = 0;
    for (size_t i = 0; i < an->n; i++)
        n += (an->rr[i].type == st->qtype || st->qtype == DNS_T_ANY) &&
             an->rr[i].rclass == DNS_C_IN && dns_name_eq(&an->rr[i].name, end);
    if (r->msg.rcode == DNS_R_NXDOMAIN)
        return DNS_STUB_NXDOMAIN;
    if (n == 0)
        return DNS_STUB_NODATA;
    r->rr = malloc(n * sizeof *r->rr);
    if (r->rr == NULL)
        return DNS_STUB_ERROR;
    for (size_t i = 0; i < an->n; i++)
        if ((an->rr[i].type == st->qtype || st->qtype == DNS_T_ANY) &&
            an->rr[i].rclass == DNS_C_IN && dns_name_eq(&an->rr[i].name, end))
            r->rr[r->nrr++] = an->rr[i];
    return DNS_STUB_OK;
}

int dns_stub_input(dns_stub_t *st, uint64_t now, const addr_t *from, const uint8_t *msg,
                   size_t len, int via_tcp)
{
    if (!st->started || st->done)
        return ignore(st, &st->stats.late);

    size_t srv = st->conf->nns;
    if (via_tcp) {
        if (st->cur_tcp && addr_same(from, &st->conf->ns[st->cur]))
            srv = st->cur;
    } else {
        for (size_t i = 0; i < st->conf->nns && srv == st->conf->nns; i++)
            if ((st->asked >> i & 1u) && addr_same(from, &st->conf->ns[i]))
                srv = i;
    }
    if (srv == st->conf->nns)
        return ignore(st, &st->stats.bad_source);

    dns_header_t h;
    if (dns_header_decode(msg, len, &h) < 0)
        return ignore(st, &st->stats.malformed);
    if (h.id != st->id)
        return ignore(st, &st->stats.bad_id);
    if (!(h.flags & DNS_F_QR) || DNS_F_OPCODE(h.flags) != 0)
        return ignore(st, &st->stats.bad_question);

    int tc = (h.flags & DNS_F_TC) && !via_tcp;
    dns_question_t q;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    int rc = dns_msg_decode(msg, len, &m);
    size_t nq = m.nqd;
    unsigned rcode = m.rcode;
    if (rc < 0) {
        if (!tc || truncated_question(msg, len, &q, &nq) < 0)
            return ignore(st, &st->stats.malformed);
        rcode = DNS_F_RCODE(h.flags);
    }
    int answer = rcode == DNS_R_NOERROR || rcode == DNS_R_NXDOMAIN;
    if (h.qdcount == 1 && nq == 1) {
        if (!dns_name_eq(&q.name, &st->names[st->iname]) || q.qtype != st->qtype ||
            q.qclass != DNS_C_IN)
            return ignore(st, &st->stats.bad_question);
    } else if (!(h.qdcount == 0 && !answer)) {
        return ignore(st, &st->stats.bad_question);
    }

    /* Accepted. */
    if (tc && answer) {
        if (!(st->cur_tcp && st->cur == srv))
            send_to(st, now, srv, 1);
        return 1;
    }
    if (!answer) {
        /* A later NXDOMAIN does not replace the reply that explains a failure. */
        if (keep_reply(st, srv, via_tcp, msg, len, &h) < 0) {
            finish(st, now, DNS_STUB_ERROR);
            return 1;
        }
        st->name_err = (int)rcode_status(rcode);
        if (srv == st->cur)
            next_slot(st, now);
        return 1;
    }
    if (st->failed >= 0 && rcode == DNS_R_NXDOMAIN) {
        /* Keep the failure's reply: it is what the final status will be. */
        next_name(st, now);
        return 1;
    }
    if (keep_reply(st, srv, via_tcp, msg, len, &h) < 0) {
        finish(st, now, DNS_STUB_ERROR);
        return 1;
    }
    enum dns_stub_status s = take_answer(st);
    if (s == DNS_STUB_NXDOMAIN)
        next_name(st, now);
    else
        finish(st, now, s);
    return 1;
}
