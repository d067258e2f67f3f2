/* lookup.c - `portico lookup`: DNS lookups from the shell, like nslookup.
 *
 *   lookup NAME [TYPE] [SERVER[:PORT]]      stub lookup, nslookup's output
 *   lookup -x ADDR [SERVER[:PORT]]          reverse (PTR) lookup
 *   --json                                  one JSON object instead
 *
 * The stub resolver (dns/stub.h) runs on the core event loop through
 * dns/resolve.h: resolv.conf's nameservers, search list, ndots, timeout and
 * attempts; /etc/hosts first unless a SERVER is given. --iterative runs the
 * iterative resolver (dns/iter.h) from the root hints (built in, or
 * --root-hints FILE) instead; --trace prints each of its steps as it
 * happens. Nothing here knows the protocol beyond printing records. */
#include "cmd/cmd.h"
#include "core/loop.h"
#include "core/sock.h"
#include "dns/conf.h"
#include "dns/iter.h"
#include "dns/msg.h"
#include "dns/resolve.h"
#include "dns/stub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUP_TIMEOUT_MAX 3600u
#define LOOKUP_TRIES_MAX   10u
/* d.c.b.a.in-addr.arpa or 32 nibbles and ip6.arpa, with the NUL. */
#define REVERSE_NAME_MAX   74u

struct lookup_opts {
    int json;
    unsigned timeout;          /* 0: resolv.conf's */
    unsigned tries;            /* 0: resolv.conf's */
    const char *resolv_path;   /* NULL: /etc/resolv.conf */
    const char *hosts_path;    /* NULL: /etc/hosts */
    char name[DNS_NAME_STR_MAX + REVERSE_NAME_MAX]; /* what is asked */
    char shown[DNS_NAME_STR_MAX + REVERSE_NAME_MAX]; /* in messages: no trailing dot */
    uint16_t qtype;
    int have_server;
    addr_t server;
    int iterative, trace;
    const char *root_hints;    /* NULL: the built-in ones */
    unsigned max_queries;      /* 0: DNS_ITER_QUERIES_MAX */
};

struct lookup {
    struct lookup_opts *o;
    const dns_conf_t *conf;
    loop_t *loop;
    dns_resolve_t *r;          /* NULL once the callback ran or it was cancelled */
    int exit_code;
};

/* ---------------------------------------------------------------- usage */

static void lookup_usage(FILE *out)
{
    fprintf(out,
            "usage: portico lookup [OPTIONS] NAME [TYPE] [SERVER[:PORT]]\n"
            "       portico lookup [OPTIONS] -x ADDR [SERVER[:PORT]]\n"
            "\n"
            "Looks NAME up in the DNS and prints the answer as nslookup does. The\n"
            "stub resolver asks the nameservers of /etc/resolv.conf (its search list,\n"
            "ndots, timeout and attempts too), after /etc/hosts; a SERVER (an IPv4 or\n"
            "IPv6 address, 127.0.0.1:5353 or [::1]:5353 with a port) is asked instead,\n"
            "and /etc/hosts is then skipped. An address given as NAME is looked up in\n"
            "reverse, as with -x.\n"
            "\n"
            "TYPE: A (default), AAAA, MX, TXT, NS, SOA, CNAME, PTR, SRV, CAA, ANY, any\n"
            "other mnemonic, or TYPE123.\n"
            "\n"
            "options:\n"
            "  -x ADDR            reverse lookup: PTR of ADDR's in-addr.arpa or ip6.arpa name\n"
            "      --json         print one JSON object: name, type, server, status,\n"
            "                     authoritative, answers, cname_chain, elapsed_ms, via\n"
            "      --timeout SECS wait for a server's first reply (1-%u; default from\n"
            "                     resolv.conf, else %u)\n"
            "      --tries N      rounds over the servers (1-%u; default from resolv.conf,\n"
            "                     else %u)\n"
            "      --resolv-conf FILE  read FILE instead of /etc/resolv.conf\n"
            "      --hosts FILE   read FILE instead of /etc/hosts\n"
            "      --iterative    resolve from the root servers down the delegations,\n"
            "                     as a recursive server does (no resolv.conf, no hosts)\n"
            "      --root-hints FILE  start from the servers of FILE (named.root format)\n"
            "                     instead of the built-in IANA root servers; implies\n"
            "                     --iterative\n"
            "      --trace        print every step of the iterative walk: the server\n"
            "                     asked, the referral or answer, the time; implies\n"
            "                     --iterative (--timeout is then each server's wait)\n"
            "      --max-queries N  messages one iterative lookup may send, its\n"
            "                     sub-resolutions included (1-%u, default %u)\n"
            "  -h, --help         this text\n"
            "\n"
            "exit status: 0 answer found, 1 NXDOMAIN, no answer of the type (NODATA),\n"
            "SERVFAIL, REFUSED, timeout or another failure, 2 bad usage\n",
            LOOKUP_TIMEOUT_MAX, DNS_CONF_TIMEOUT_DEF, LOOKUP_TRIES_MAX, DNS_CONF_ATTEMPTS_DEF,
            DNS_ITER_QUERIES_MAX, DNS_ITER_QUERIES_MAX);
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* The reverse name of an address literal, with its trailing dot. Returns 0
 * or -EINVAL when s is not an address. */
static int reverse_name(const char *s, char *out, size_t cap)
{
    uint8_t ip[16];
    if (inet_pton(AF_INET, s, ip) == 1) {
        snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa.", ip[3], ip[2], ip[1], ip[0]);
        return 0;
    }
    if (inet_pton(AF_INET6, s, ip) == 1) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (int i = 15; i >= 0; i--) {
            out[o++] = hex[ip[i] & 0xf];
            out[o++] = '.';
            out[o++] = hex[ip[i] >> 4];
            out[o++] = '.';
        }
        snprintf(out + o, cap - o, "ip6.arpa.");
        return 0;
    }
    return -EINVAL;
}

/* A name as people read it in nslookup's messages: without the trailing
 * dot, except for the root. */
static void strip_dot(char *s)
{
    size_t n = strlen(s);
    /* A final dot escaped with a backslash is part of the label. */
    size_t bs = 0;
    while (bs + 1 < n && s[n - 2 - bs] == '\\')
        bs++;
    if (n > 1 && s[n - 1] == '.' && bs % 2 == 0)
        s[n - 1] = '\0';
}

static int parse_args(struct lookup_opts *o, int argc, char **argv, int *done)
{
    enum { OPT_JSON = 256, OPT_TIMEOUT, OPT_TRIES, OPT_ITERATIVE, OPT_TRACE, OPT_ROOT_HINTS,
           OPT_RESOLV, OPT_HOSTS, OPT_MAX_QUERIES };
    static const struct option longopts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "tries", required_argument, NULL, OPT_TRIES },
        { "iterative", no_argument, NULL, OPT_ITERATIVE },
        { "trace", no_argument, NULL, OPT_TRACE },
        { "root-hints", required_argument, NULL, OPT_ROOT_HINTS },
        { "max-queries", required_argument, NULL, OPT_MAX_QUERIES },
        { "resolv-conf", required_argument, NULL, OPT_RESOLV },
        { "hosts", required_argument, NULL, OPT_HOSTS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *rev = NULL;

    memset(o, 0, sizeof *o);
    *done = 0;
    opterr = 0;
    optind = 0; /* 0, not 1: glibc then fully resets its scan state */
    int c;
    while ((c = getopt_long(argc, argv, ":x:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'x': rev = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_TIMEOUT:
            if (parse_uint(optarg, 1, LOOKUP_TIMEOUT_MAX, &o->timeout) < 0) {
                cmd_error("lookup", "invalid timeout '%s': expected whole seconds 1-%u", optarg,
                          LOOKUP_TIMEOUT_MAX);
                return -1;
            }
            break;
        case OPT_TRIES:
            if (parse_uint(optarg, 1, LOOKUP_TRIES_MAX, &o->tries) < 0) {
                cmd_error("lookup", "invalid tries '%s': expected 1-%u", optarg, LOOKUP_TRIES_MAX);
                return -1;
            }
            break;
        case OPT_ITERATIVE: o->iterative = 1; break;
        case OPT_TRACE: o->trace = o->iterative = 1; break;
        case OPT_ROOT_HINTS:
            o->root_hints = optarg;
            o->iterative = 1;
            break;
        case OPT_MAX_QUERIES:
            if (parse_uint(optarg, 1, DNS_ITER_QUERIES_MAX, &o->max_queries) < 0) {
                cmd_error("lookup", "invalid max-queries '%s': expected 1-%u", optarg,
                          DNS_ITER_QUERIES_MAX);
                return -1;
            }
            o->iterative = 1;
            break;
        case OPT_RESOLV: o->resolv_path = optarg; break;
        case OPT_HOSTS: o->hosts_path = optarg; break;
        case 'h':
            lookup_usage(stdout);
            *done = 1;
            return 0;
        case ':':
            if (strncmp(argv[optind - 1], "--", 2) != 0 && optopt && optopt < 256)
                cmd_error("lookup", "option '-%c' needs a value (see portico lookup --help)", optopt);
            else
                cmd_error("lookup", "option '%s' needs a value (see portico lookup --help)",
                          argv[optind - 1]);
            return -1;
        default:
            if (strncmp(argv[optind - 1], "--", 2) != 0 && optopt && optopt < 256)
                cmd_error("lookup", "unknown option '-%c' (see portico lookup --help)", optopt);
            else
                cmd_error("lookup", "unknown option '%s' (see portico lookup --help)",
                          argv[optind - 1]);
            return -1;
        }
    }

    char **args = argv + optind;
    int nargs = argc - optind;
    const char *name = NULL, *type = NULL, *server = NULL;
    if (rev != NULL) {
        if (nargs > 1) {
            cmd_error("lookup", "-x takes ADDR [SERVER] (see portico lookup --help)");
            return -1;
        }
        server = nargs == 1 ? args[0] : NULL;
    } else {
        if (nargs == 0) {
            cmd_error("lookup", "missing NAME (see portico lookup --help)");
            return -1;
        }
        if (nargs > 3) {
            cmd_error("lookup", "too many arguments (see portico lookup --help)");
            return -1;
        }
        name = args[0];
        if (nargs == 3) {
            type = args[1];
            server = args[2];
        } else if (nargs == 2) {
            /* TYPE or SERVER: no type mnemonic holds a dot, a colon or a
             * bracket, every address does. */
            if (strpbrk(args[1], ".:[") != NULL)
                server = args[1];
            else
                type = args[1];
        }
    }

    o->qtype = DNS_T_A;
    if (type != NULL) {
        int t = dns_type_lookup(slice_cstr(type));
        if (t < 0) {
            cmd_error("lookup", "unknown type '%s' (A, AAAA, MX, TXT, NS, SOA, CNAME, PTR, SRV, "
                                "CAA, ANY or TYPE123)", type);
            return -1;
        }
        if (t == 0 || t == DNS_T_OPT || t == 251 || t == 252) {
            cmd_error("lookup", "type '%s' cannot be asked for (zone transfers and OPT are not "
                                "lookups)", type);
            return -1;
        }
        o->qtype = (uint16_t)t;
    }
    if (server != NULL && o->iterative) {
        cmd_error("lookup", "a SERVER cannot be given with --iterative, --trace or --root-hints: "
                            "the servers come from the root hints");
        return -1;
    }
    if (server != NULL) {
        if (dns_addr_parse(server, 53, 0, &o->server) < 0) {
            cmd_error("lookup", "invalid server '%s': expected an IPv4 or IPv6 address with an "
                                "optional port (127.0.0.1, 127.0.0.1:5353, [::1]:5353)", server);
            return -1;
        }
        o->have_server = 1;
    }
    if (rev != NULL) {
        if (reverse_name(rev, o->name, sizeof o->name) < 0) {
            cmd_error("lookup", "invalid address for -x: '%s' (expected IPv4 or IPv6)", rev);
            return -1;
        }
        o->qtype = DNS_T_PTR;
    } else if (reverse_name(name, o->name, sizeof o->name) == 0) {
        /* nslookup 192.0.2.1: the reverse lookup. */
        if (type == NULL)
            o->qtype = DNS_T_PTR;
    } else {
        dns_name_t n;
        int rc = dns_name_parse(&n, slice_cstr(name));
        if (rc < 0) {
            cmd_error("lookup", "invalid name '%s': %s", name, dns_strerror(rc));
            return -1;
        }
        snprintf(o->name, sizeof o->name, "%s", name);
    }
    snprintf(o->shown, sizeof o->shown, "%s", o->name);
    strip_dot(o->shown);
    return 0;
}

/* -------------------------------------------------------- presentation */

/* Writes a name with its trailing dot (as in RDATA), or without it (as
 * nslookup writes owners and SOA fields). */
static void put_name(FILE *f, const dns_name_t *n, int dot)
{
    char s[DNS_NAME_STR_MAX];
    if (dns_name_format(n, s, sizeof s) < 0) {
        fputs("?", f);
        return;
    }
    if (!dot)
        strip_dot(s);
    fputs(s, f);
}

/* A <character-string> in quotes, as zone files and bind write it. */
static void put_qstring(FILE *f, slice_t s)
{
    fputc('"', f);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            fprintf(f, "\\%03u", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* RDATA in presentation form: zone-file syntax, RFC 3597's \# for types
 * without typed fields. */
static void put_rdata(FILE *f, const dns_rr_t *rr)
{
    char ip[INET6_ADDRSTRLEN];
    if (!dns_rr_is_typed(rr->type, rr->rclass)) {
        fprintf(f, "\\# %zu", rr->rdata.len);
        if (rr->rdata.len > 0)
            fputc(' ', f);
        for (size_t i = 0; i < rr->rdata.len; i++)
            fprintf(f, "%02X", (unsigned char)rr->rdata.p[i]);
        return;
    }
    switch (rr->type) {
    case DNS_T_A:
        fputs(inet_ntop(AF_INET, rr->a, ip, sizeof ip), f);
        break;
    case DNS_T_AAAA:
        fputs(inet_ntop(AF_INET6, rr->aaaa, ip, sizeof ip), f);
        break;
    case DNS_T_NS:
    case DNS_T_CNAME:
    case DNS_T_PTR:
        put_name(f, &rr->target, 1);
        break;
    case DNS_T_SOA:
        put_name(f, &rr->soa.mname, 1);
        fputc(' ', f);
        put_name(f, &rr->soa.rname, 1);
        fprintf(f, " %u %u %u %u %u", rr->soa.serial, rr->soa.refresh, rr->soa.retry,
                rr->soa.expire, rr->soa.minimum);
        break;
    case DNS_T_MX:
        fprintf(f, "%u ", rr->mx.preference);
        put_name(f, &rr->mx.exchange, 1);
        break;
    case DNS_T_TXT: {
        size_t off = 0;
        slice_t s;
        int first = 1;
        while (dns_txt_next(rr->txt.data, &off, &s) == 1) {
            if (!first)
                fputc(' ', f);
            put_qstring(f, s);
            first = 0;
        }
        break;
    }
    case DNS_T_SRV:
        fprintf(f, "%u %u %u ", rr->srv.priority, rr->srv.weight, rr->srv.port);
        put_name(f, &rr->srv.target, 1);
        break;
    case DNS_T_CAA:
        fprintf(f, "%u %.*s ", rr->caa.flags, (int)rr->caa.tag.len, rr->caa.tag.p);
        put_qstring(f, rr->caa.value);
        break;
    default:
        fputs("?", f);
        break;
    }
}

static const char *type_text(uint16_t type, char *buf, size_t cap)
{
    const char *n = dns_type_name(type);
    if (n != NULL)
        return n;
    snprintf(buf, cap, "TYPE%u", type);
    return buf;
}

/* One record as nslookup's printsection() shows it: Name:/Address: for
 * addresses in the answer, a block for SOA, "owner<TAB>what = data" else. */
static void print_rr(FILE *f, const dns_rr_t *rr, int answer)
{
    const char *what = NULL;
    if (dns_rr_is_typed(rr->type, rr->rclass)) {
        switch (rr->type) {
        case DNS_T_A:
        case DNS_T_AAAA:
            if (answer) {
                fputs("Name:\t", f);
                put_name(f, &rr->name, 0);
                fputs("\nAddress: ", f);
                put_rdata(f, rr);
                fputc('\n', f);
                return;
            }
            what = rr->type == DNS_T_A ? "internet address = " : "has AAAA address ";
            break;
        case DNS_T_SOA:
            put_name(f, &rr->name, 0);
            fputs("\n\torigin = ", f);
            put_name(f, &rr->soa.mname, 0);
            fputs("\n\tmail addr = ", f);
            put_name(f, &rr->soa.rname, 0);
            fprintf(f, "\n\tserial = %u\n\trefresh = %u\n\tretry = %u\n\texpire = %u\n"
                       "\tminimum = %u\n",
                    rr->soa.serial, rr->soa.refresh, rr->soa.retry, rr->soa.expire,
                    rr->soa.minimum);
            return;
        case DNS_T_NS: what = "nameserver = "; break;
        case DNS_T_CNAME: what = "canonical name = "; break;
        case DNS_T_PTR: what = "name = "; break;
        case DNS_T_MX: what = "mail exchanger = "; break;
        case DNS_T_TXT: what = "text = "; break;
        case DNS_T_SRV: what = "service = "; break;
        default: break;
        }
    }
    put_name(f, &rr->name, 0);
    fputc('\t', f);
    if (what != NULL)
        fputs(what, f);
    else
        fprintf(f, "rdata_%u = ", rr->type);
    put_rdata(f, rr);
    fputc('\n', f);
}

static void print_section(FILE *f, const dns_rrs_t *s, int answer)
{
    for (size_t i = 0; i < s->n; i++)
        print_rr(f, &s->rr[i], answer);
}

static const char *numeric_host(const addr_t *a, char *host, size_t cap)
{
    if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host, (socklen_t)cap, NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(host, cap, "?");
    return host;
}

/* The server as nslookup shows it: the bare address, and addr#port. */
static void print_server(FILE *f, const addr_t *a)
{
    char host[NI_MAXHOST];
    numeric_host(a, host, sizeof host);
    fprintf(f, "Server:\t\t%s\nAddress:\t%s#%u\n\n", host, host, addr_port(a));
}

/* nslookup's output. Returns the exit status. */
static int print_text(const struct lookup *lk, const dns_stub_result_t *res)
{
    const struct lookup_opts *o = lk->o;
    FILE *f = stdout;
    if (res->from_hosts) {
        fprintf(f, "Server:\t\t%s\n\n", o->hosts_path ? o->hosts_path : "/etc/hosts");
        for (size_t i = 0; i < res->nrr; i++)
            print_rr(f, &res->rr[i], 1);
        fputc('\n', f);
        return 0;
    }
    if (res->reply == NULL) {
        if (res->status == DNS_STUB_TIMEOUT)
            fputs(";; connection timed out; no servers could be reached\n\n", f);
        else
            fputs(";; no servers could be reached\n\n", f);
        return 1;
    }
    /* nslookup's notes on the way to the answer; it prints one per SERVFAIL
     * reply, this one for the last. */
    if (o->iterative) {
        fprintf(f, "Server:\t\t(iterative from the root hints)\nQueries:\t%zu\n\n", res->sent);
    } else {
        if (res->via_tcp && !lk->conf->use_vc)
            fputs(";; Truncated, retrying in TCP mode.\n", f);
        if (res->rcode == DNS_R_SERVFAIL) {
            char host[NI_MAXHOST];
            fprintf(f, ";; Got SERVFAIL reply from %s\n",
                    numeric_host(&res->server, host, sizeof host));
        }
        print_server(f, &res->server);
    }
    if (res->rcode != DNS_R_NOERROR) {
        const char *rc = dns_rcode_name(res->rcode);
        if (rc != NULL)
            fprintf(f, "** server can't find %s: %s\n\n", o->shown, rc);
        else
            fprintf(f, "** server can't find %s: RCODE%u\n\n", o->shown, res->rcode);
        return 1;
    }
    int aa = (res->msg.h.flags & DNS_F_AA) != 0;
    if (!aa)
        fputs("Non-authoritative answer:\n", f);
    print_section(f, &res->msg.sec[DNS_SEC_AN], 1);
    if (res->status == DNS_STUB_NODATA)
        fprintf(f, "*** Can't find %s: No answer\n", o->shown);
    else if (res->status != DNS_STUB_OK)
        fprintf(f, "*** Can't find %s: the CNAME chain loops or is longer than %u\n", o->shown,
                DNS_STUB_CHAIN_MAX);
    if (!aa && o->qtype != DNS_T_A && o->qtype != DNS_T_AAAA) {
        fputs("\nAuthoritative answers can be found from:\n", f);
        print_section(f, &res->msg.sec[DNS_SEC_NS], 0);
        print_section(f, &res->msg.sec[DNS_SEC_AR], 0);
    }
    fputc('\n', f);
    return res->status == DNS_STUB_OK ? 0 : 1;
}

/* ----------------------------------------------------------------- JSON */

static const char *json_status(const dns_stub_result_t *res)
{
    switch (res->status) {
    case DNS_STUB_OK: return "NOERROR";
    case DNS_STUB_NXDOMAIN: return "NXDOMAIN";
    case DNS_STUB_NODATA: return "NODATA";
    case DNS_STUB_SERVFAIL: return "SERVFAIL";
    case DNS_STUB_TIMEOUT: return "TIMEOUT";
    case DNS_STUB_REFUSED: return "REFUSED";
    case DNS_STUB_ERROR: break;
    }
    /* FORMERR, NOTIMP and the like say more than ERROR. */
    if (res->reply != NULL && res->rcode != DNS_R_NOERROR && dns_rcode_name(res->rcode))
        return dns_rcode_name(res->rcode);
    return "ERROR";
}

/* A JSON string of what fn writes, or NULL when memory runs out. */
static json_t *json_text(void (*fn)(FILE *, const void *), const void *arg)
{
    char *p = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&p, &n);
    if (m == NULL)
        return NULL;
    fn(m, arg);
    json_t *s = fclose(m) == 0 ? json_stringn(p, n) : NULL;
    free(p);
    return s;
}

static void fn_name(FILE *f, const void *arg) { put_name(f, arg, 1); }
static void fn_rdata(FILE *f, const void *arg) { put_rdata(f, arg); }

/* json_object_set_new that remembers a failure (a NULL value included). */
static void set(json_t *obj, const char *key, json_t *v, int *bad)
{
    if (v == NULL || json_object_set_new(obj, key, v) < 0)
        *bad = 1;
}

static json_t *json_result(const struct lookup *lk, const dns_stub_result_t *res)
{
    const struct lookup_opts *o = lk->o;
    json_t *j = json_object();
    json_t *answers = json_array();
    json_t *chain = json_array();
    char tb[16];
    int bad = 0;
    if (j == NULL) {
        json_decref(answers);
        json_decref(chain);
        return NULL;
    }
    set(j, "answers", answers, &bad);
    set(j, "cname_chain", chain, &bad);
    if (bad) {
        json_decref(j);
        return NULL;
    }

    /* The name that was resolved: with its search domain when one gave the
     * answer; otherwise the name as asked. */
    dns_name_t asked;
    if (res->status == DNS_STUB_OK || res->status == DNS_STUB_NODATA)
        set(j, "name", json_text(fn_name, &res->qname), &bad);
    else if (dns_name_parse(&asked, slice_cstr(o->name)) == 0)
        set(j, "name", json_text(fn_name, &asked), &bad);
    else
        set(j, "name", json_string(o->name), &bad);
    set(j, "type", json_string(type_text(o->qtype, tb, sizeof tb)), &bad);
    if (o->iterative) {
        set(j, "server", json_string("iterative"), &bad);
    } else if (!res->from_hosts && res->reply != NULL) {
        char a[ADDR_STRLEN];
        set(j, "server", json_string(addr_format(&res->server, a, sizeof a)), &bad);
    } else {
        set(j, "server", json_null(), &bad);
    }
    set(j, "status", json_string(json_status(res)), &bad);
    set(j, "authoritative",
        json_boolean(res->reply != NULL && (res->msg.h.flags & DNS_F_AA) != 0), &bad);

    for (size_t i = 0; !bad && i < res->nrr; i++) {
        const dns_rr_t *rr = &res->rr[i];
        json_t *a = json_object();
        if (a == NULL || json_array_append_new(answers, a) < 0) {
            bad = 1;
            break;
        }
        set(a, "name", json_text(fn_name, &rr->name), &bad);
        set(a, "type", json_string(type_text(rr->type, tb, sizeof tb)), &bad);
        /* RFC 2181 §8: a TTL with the top bit set is read as 0. */
        set(a, "ttl", json_integer(rr->ttl > 0x7fffffffu ? 0 : (json_int_t)rr->ttl), &bad);
        set(a, "data", json_text(fn_rdata, rr), &bad);
    }
    /* The names from the one asked to the canonical one, when a CNAME was
     * followed. */
    for (size_t i = 0; !bad && res->nchain > 1 && i < res->nchain; i++) {
        json_t *s = json_text(fn_name, &res->chain[i]);
        if (s == NULL || json_array_append_new(chain, s) < 0)
            bad = 1;
    }
    set(j, "elapsed_ms", json_integer((json_int_t)res->elapsed_ms), &bad);
    if (o->iterative)
        set(j, "queries", json_integer((json_int_t)res->sent), &bad);
    const char *via = res->from_hosts ? "hosts"
                      : o->iterative ? "iterative"
                      : res->reply == NULL ? NULL
                      : res->via_tcp ? "tcp" : "udp";
    set(j, "via", via ? json_string(via) : json_null(), &bad);
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int print_json(const struct lookup *lk, const dns_stub_result_t *res)
{
    json_t *j = json_result(lk, res);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (s == NULL) {
        cmd_error("lookup", "out of memory");
        return 1;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return res->status == DNS_STUB_OK ? 0 : 1;
}

/* ------------------------------------------------------------- running */

static void on_result(dns_resolve_t *r, const dns_stub_result_t *res, void *arg)
{
    (void)r;
    struct lookup *lk = arg;
    lk->r = NULL;
    lk->exit_code = lk->o->json ? print_json(lk, res) : print_text(lk, res);
    loop_break(lk->loop);
}

static void on_signal(loop_t *l, int signo, void *arg)
{
    struct lookup *lk = arg;
    if (lk->r != NULL) {
        dns_resolve_cancel(lk->r);
        lk->r = NULL;
    }
    cmd_error("lookup", "interrupted by %s", signo == SIGINT ? "SIGINT"
                                             : signo == SIGTERM ? "SIGTERM" : "SIGHUP");
    lk->exit_code = 128 + signo;
    loop_break(l);
}

static int run(struct lookup_opts *o, dns_conf_t *conf)
{
    struct lookup lk = { .o = o, .conf = conf, .exit_code = 1 };
    lk.loop = loop_new();
    if (lk.loop == NULL) {
        cmd_error("lookup", "cannot create the event loop: %s", strerror(errno));
        return 1;
    }
    int rc = loop_signals(lk.loop, on_signal, &lk);
    if (rc < 0) {
        cmd_error("lookup", "cannot set up the event loop: %s", strerror(-rc));
        loop_free(lk.loop);
        return 1;
    }
    rc = dns_resolve_start(lk.loop, conf, slice_cstr(o->name), o->qtype, on_result, &lk, &lk.r);
    if (rc < 0) {
        cmd_error("lookup", "cannot start the lookup: %s", strerror(-rc));
        loop_free(lk.loop);
        return 1;
    }
    rc = loop_run(lk.loop);
    if (rc < 0) {
        cmd_error("lookup", "event loop failed: %s", strerror(-rc));
        if (lk.r != NULL)
            dns_resolve_cancel(lk.r);
        lk.exit_code = 1;
    }
    loop_free(lk.loop);
    return lk.exit_code;
}

/* ----------------------------------------------------------- iterative */

/* One record as a zone file line, as dig prints them. */
static void print_rr_line(FILE *f, const dns_rr_t *rr, int indent)
{
    char tb[16];
    fprintf(f, "%*s", indent, "");
    put_name(f, &rr->name, 1);
    fprintf(f, "\t%u\tIN\t%s\t", rr->ttl, type_text(rr->type, tb, sizeof tb));
    put_rdata(f, rr);
    fputc('\n', f);
}

static void print_section_lines(FILE *f, const dns_rrs_t *s, uint16_t only, int indent)
{
    for (size_t i = 0; i < s->n; i++)
        if (only == 0 || s->rr[i].type == only)
            print_rr_line(f, &s->rr[i], indent);
}

/* --trace: one step of the walk. */
static void on_trace(void *arg, const dns_iter_event_t *ev)
{
    (void)arg;
    FILE *f = stdout;
    int in = 2 * (int)ev->depth;
    char tb[16], host[NI_MAXHOST];
    fprintf(f, "%*s;; ", in, "");
    put_name(f, ev->qname, 1);
    fprintf(f, " %s", type_text(ev->qtype, tb, sizeof tb));
    if (ev->server != NULL) {
        fprintf(f, " @%s (", numeric_host(ev->server, host, sizeof host));
        put_name(f, ev->server_name, 1);
        fputs(", zone ", f);
        put_name(f, ev->zone, 1);
        fprintf(f, ") %s %" PRIu64 " ms: ", ev->tcp ? "tcp" : "udp", ev->rtt_ms);
    } else {
        fputs(": ", f);
    }
    switch (ev->kind) {
    case DNS_ITER_EV_REFERRAL:
        fputs("referral to ", f);
        put_name(f, ev->next, 1);
        fputc('\n', f);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_NS], DNS_T_NS, in + 3);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_AR], DNS_T_A, in + 3);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_AR], DNS_T_AAAA, in + 3);
        break;
    case DNS_ITER_EV_ANSWER:
    case DNS_ITER_EV_CACHE_HIT:
    case DNS_ITER_EV_CNAME:
        fputs(ev->kind == DNS_ITER_EV_ANSWER ? "answer\n"
              : ev->kind == DNS_ITER_EV_CNAME ? "CNAME out of the zone\n"
                                              : "from the cache\n", f);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_AN], 0, in + 3);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_NS], DNS_T_SOA, in + 3);
        break;
    case DNS_ITER_EV_NXDOMAIN:
    case DNS_ITER_EV_NODATA:
        fputs(ev->kind == DNS_ITER_EV_NXDOMAIN ? "NXDOMAIN\n" : "no records of the type (NODATA)\n", f);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_AN], 0, in + 3);
        print_section_lines(f, &ev->msg->sec[DNS_SEC_NS], DNS_T_SOA, in + 3);
        break;
    case DNS_ITER_EV_LAME:
        fputs("lame reply (no answer, referral or SOA of its zone), next server\n", f);
        break;
    case DNS_ITER_EV_RCODE: {
        const char *rc = dns_rcode_name(ev->rcode);
        fprintf(f, "%s, next server\n", rc ? rc : "error");
        break;
    }
    case DNS_ITER_EV_TC: fputs("truncated, again over TCP\n", f); break;
    case DNS_ITER_EV_TIMEOUT: fputs("no reply in time, next server\n", f); break;
    case DNS_ITER_EV_FAIL: fputs("cannot reach it, next server\n", f); break;
    case DNS_ITER_EV_CACHE_ZONE:
        fputs("starting at the cached delegation of ", f);
        put_name(f, ev->next, 1);
        fputc('\n', f);
        break;
    case DNS_ITER_EV_SUB:
        fputs("resolving this nameserver's address (no glue)\n", f);
        break;
    }
}

/* The iterative result in the stub's shape, so that one printer serves
 * both: the reply decoded, the chain from the name asked, the records of
 * the type at its end. Returns 0, or -1 when memory runs out. */
static int iter_as_stub(const dns_iter_result_t *ir, const dns_name_t *qname, uint16_t qtype,
                        dns_stub_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->status = ir->status;
    res->qtype = qtype;
    res->qname = *qname;
    res->chain[0] = *qname;
    res->nchain = 1;
    res->elapsed_ms = ir->elapsed_ms;
    res->sent = ir->queries;
    if (ir->msg == NULL)
        return 0;
    dns_header_t h;
    if (dns_header_decode(ir->msg, ir->len, &h) < 0)
        return -1;
    const uint16_t counts[3] = { h.ancount, h.nscount, h.arcount };
    res->msg.qd = calloc(1, sizeof *res->msg.qd);
    res->msg.qd_cap = 1;
    for (int i = 0; i < 3; i++) {
        res->msg.sec[i].rr = calloc(counts[i] + 1u, sizeof(dns_rr_t));
        res->msg.sec[i].cap = counts[i];
        if (res->msg.sec[i].rr == NULL)
            return -1;
    }
    res->rr = calloc(h.ancount + 1u, sizeof(dns_rr_t));
    if (res->msg.qd == NULL || res->rr == NULL || dns_msg_decode(ir->msg, ir->len, &res->msg) < 0)
        return -1;
    res->reply = ir->msg;
    res->reply_len = ir->len;
    res->rcode = res->msg.rcode;
    const dns_rrs_t *an = &res->msg.sec[DNS_SEC_AN];
    for (size_t i = 0; i < an->n && res->nchain <= DNS_STUB_CHAIN_MAX; i++)
        if (an->rr[i].type == DNS_T_CNAME && qtype != DNS_T_CNAME &&
            dns_name_eq(&an->rr[i].name, &res->chain[res->nchain - 1]))
            res->chain[res->nchain++] = an->rr[i].target;
    for (size_t i = 0; i < an->n; i++)
        if ((an->rr[i].type == qtype || qtype == DNS_T_ANY) &&
            dns_name_eq(&an->rr[i].name, &res->chain[res->nchain - 1]))
            res->rr[res->nrr++] = an->rr[i];
    return 0;
}

static void iter_result_free(dns_stub_result_t *res)
{
    free(res->msg.qd);
    for (int i = 0; i < 3; i++)
        free(res->msg.sec[i].rr);
    free(res->rr);
}

static void on_iter_result(dns_resolve_t *r, const dns_iter_result_t *ir, void *arg)
{
    (void)r;
    struct lookup *lk = arg;
    lk->r = NULL;
    dns_name_t q;
    dns_stub_result_t res;
    dns_name_parse(&q, slice_cstr(lk->o->name));
    if (iter_as_stub(ir, &q, lk->o->qtype, &res) < 0) {
        cmd_error("lookup", "out of memory");
        lk->exit_code = 1;
    } else {
        if (ir->reason != NULL && !lk->o->json)
            cmd_error("lookup", "%s: %s", lk->o->shown, ir->reason);
        lk->exit_code = lk->o->json ? print_json(lk, &res) : print_text(lk, &res);
    }
    iter_result_free(&res);
    loop_break(lk->loop);
}

static int run_iterative(struct lookup_opts *o, dns_conf_t *conf)
{
    dns_hints_t *hints = malloc(sizeof *hints);
    dns_iter_conf_t ic;
    struct lookup lk = { .o = o, .conf = conf, .exit_code = 1 };
    dns_name_t q;
    int rc;
    if (hints == NULL) {
        cmd_error("lookup", "out of memory");
        return 1;
    }
    if (o->root_hints == NULL) {
        dns_hints_builtin(hints);
    } else {
        size_t line = 0;
        const char *why = NULL;
        rc = dns_hints_load(hints, o->root_hints, &line, &why);
        if (rc == -EINVAL && line > 0)
            cmd_error("lookup", "%s:%zu: %s", o->root_hints, line, why);
        else if (rc == -EINVAL)
            cmd_error("lookup", "%s: %s", o->root_hints, why);
        else if (rc < 0)
            cmd_error("lookup", "cannot read '%s': %s", o->root_hints, strerror(-rc));
        if (rc < 0) {
            free(hints);
            return 1;
        }
    }
    dns_iter_conf_init(&ic, hints);
    if (o->timeout)
        ic.timeout_ms = (uint64_t)o->timeout * 1000u;
    if (o->trace)
        ic.trace = on_trace;
    if (o->max_queries)
        ic.max_queries = o->max_queries;
    /* Names are absolute here: there is no search list. */
    dns_name_parse(&q, slice_cstr(o->name));
    lk.loop = loop_new();
    if (lk.loop == NULL) {
        cmd_error("lookup", "cannot create the event loop: %s", strerror(errno));
        free(hints);
        return 1;
    }
    rc = loop_signals(lk.loop, on_signal, &lk);
    if (rc == 0)
        rc = dns_resolve_start_iter(lk.loop, &ic, &q, o->qtype, on_iter_result, &lk, &lk.r);
    if (rc == 0)
        rc = loop_run(lk.loop);
    if (rc < 0) {
        cmd_error("lookup", "cannot run the lookup: %s", strerror(-rc));
        if (lk.r != NULL)
            dns_resolve_cancel(lk.r);
        lk.exit_code = 1;
    }
    loop_free(lk.loop);
    free(hints);
    return lk.exit_code;
}

int cmd_lookup(int argc, char **argv)
{
    struct lookup_opts *o = malloc(sizeof *o);
    dns_conf_t *conf = malloc(sizeof *conf);
    int done = 0, code = EXIT_USAGE;
    if (o == NULL || conf == NULL) {
        cmd_error("lookup", "out of memory");
        free(o);
        free(conf);
        return 1;
    }
    dns_conf_init(conf);
    if (parse_args(o, argc, argv, &done) < 0)
        goto out;
    code = 0;
    if (done)
        goto out;
    if (o->iterative) {
        loop_block_signals();
        code = run_iterative(o, conf);
        goto flush;
    }

    /* Files named on the command line must be there; the system's may be
     * missing (defaults, no hosts). */
    const char *given[2] = { o->resolv_path, o->have_server ? NULL : o->hosts_path };
    for (int i = 0; i < 2; i++) {
        FILE *f = given[i] ? fopen(given[i], "r") : NULL;
        if (given[i] && f == NULL) {
            cmd_error("lookup", "cannot read '%s': %s", given[i], strerror(errno));
            code = 1;
            goto out;
        }
        if (f)
            fclose(f);
    }
    /* With a SERVER, like nslookup, the server is asked directly: the
     * hosts file is not read. */
    int rc = dns_conf_load(conf, o->resolv_path, o->have_server ? "/dev/null" : o->hosts_path);
    if (rc < 0)
        cmd_error("lookup", "warning: reading the resolver configuration: %s", strerror(-rc));
    if (o->have_server) {
        conf->nns = 0;
        dns_conf_add_ns(conf, &o->server);
    }
    if (o->timeout)
        conf->timeout = o->timeout;
    if (o->tries)
        conf->attempts = o->tries;

    loop_block_signals();
    code = run(o, conf);
flush:
    if (fflush(stdout) != 0 && errno != EPIPE) {
        cmd_error("lookup", "write to stdout: %s", strerror(errno));
        if (code == 0)
            code = 1;
    }
out:
    dns_conf_dispose(conf);
    free(conf);
    free(o);
    return code;
}
