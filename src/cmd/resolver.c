/* resolver.c - `portico resolver`: flags -> a caching recursive DNS server
 * (dns/server.h), iterative from the root hints or forwarding to
 * upstream servers. No protocol logic here. */
#include "cmd/cmd.h"
#include "core/limits.h"
#include "core/loop.h"
#include "core/workers.h"
#include "dns/answer.h"
#include "dns/cache.h"
#include "dns/conf.h"
#include "dns/iter.h"
#include "dns/server.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOLVER_DEFAULT_LISTEN "127.0.0.1:53"
#define RESOLVER_TIMEOUT_MAX_MS 60000u
#define RESOLVER_IDLE_MAX_S     3600u

static void resolver_usage(FILE *out)
{
    fprintf(out,
            "usage: portico resolver [OPTIONS]\n"
            "\n"
            "A caching recursive DNS server on UDP and TCP. It resolves from the root\n"
            "servers down (built-in IANA root hints, or --root-hints FILE), or asks\n"
            "the --forward servers instead; answers are cached (RFC 2308 negative\n"
            "answers too) in one cache shared by the workers. Only clients in --allow\n"
            "get answers (REFUSED otherwise): never an open resolver.\n"
            "\n"
            "options:\n"
            "      --listen ADDR:PORT   where to answer (default " RESOLVER_DEFAULT_LISTEN
            "; port 0:\n"
            "                           any free one, printed on stderr)\n"
            "      --root-hints FILE    root servers in named.root format\n"
            "      --forward IP[:PORT]  forward to this server instead of iterating\n"
            "                           (repeatable, up to %u)\n"
            "      --allow CIDR         clients allowed (repeatable; default 127.0.0.0/8\n"
            "                           and ::1)\n"
            "      --workers N          worker threads (default: number of CPUs)\n"
            "      --cache-size BYTES   cache cap, k/m/g suffixes (default 64m)\n"
            "      --max-inflight N     resolutions at once per worker; SERVFAIL beyond\n"
            "                           (default %u)\n"
            "      --max-queries N      queries one iterative resolution may send\n"
            "                           (1-%u, default %u)\n"
            "      --timeout MS         wait for one upstream server's reply (default %u)\n"
            "      --max-tcp N          TCP connections per worker (default %u)\n"
            "      --tcp-idle SECS      close idle TCP connections (default %u)\n"
            "      --quiet              do not print the listening address\n"
            "  -h, --help               this text\n",
            DNS_CONF_NS_MAX, DNS_SERVER_INFLIGHT_DEF, DNS_ITER_QUERIES_MAX, DNS_ITER_QUERIES_MAX,
            DNS_ITER_TIMEOUT_MS, DNS_SERVER_TCP_DEF, DNS_SERVER_TCP_IDLE_MS / 1000u);
}

static int parse_num(const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out, int suffixes)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    if (suffixes && *end != '\0' && end[1] == '\0') {
        unsigned shift = *end == 'k' || *end == 'K' ? 10 : *end == 'm' || *end == 'M' ? 20
                       : *end == 'g' || *end == 'G' ? 30 : 0;
        if (shift == 0 || v > (hi >> shift))
            return -EINVAL;
        v <<= shift;
        end++;
    }
    if (*end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

struct resolver_opts {
    dns_server_conf_t sc;
    const char *root_hints;
    dns_conf_t fwd;
    unsigned long long cache_size;
    unsigned long long max_queries, timeout_ms;
};

static int bad(const char *what, const char *val, const char *expect)
{
    cmd_error("resolver", "invalid %s '%s': expected %s", what, val, expect);
    return -1;
}

static int parse_args(struct resolver_opts *o, int argc, char **argv, int *done)
{
    enum { O_LISTEN = 256, O_HINTS, O_FORWARD, O_ALLOW, O_WORKERS, O_CACHE, O_INFLIGHT,
           O_QUERIES, O_TIMEOUT, O_MAXTCP, O_IDLE, O_QUIET };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "root-hints", required_argument, NULL, O_HINTS },
        { "forward", required_argument, NULL, O_FORWARD },
        { "allow", required_argument, NULL, O_ALLOW },
        { "workers", required_argument, NULL, O_WORKERS },
        { "cache-size", required_argument, NULL, O_CACHE },
        { "max-inflight", required_argument, NULL, O_INFLIGHT },
        { "max-queries", required_argument, NULL, O_QUERIES },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "max-tcp", required_argument, NULL, O_MAXTCP },
        { "tcp-idle", required_argument, NULL, O_IDLE },
        { "quiet", no_argument, NULL, O_QUIET },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    dns_server_conf_t *sc = &o->sc;
    unsigned long long v;
    int have_listen = 0, c;
    *done = 0;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (dns_addr_parse(optarg, 53, 1, &sc->listen) < 0)
                return bad("listen address", optarg, "IP:PORT (127.0.0.1:53, [::1]:5353)");
            have_listen = 1;
            break;
        case O_HINTS: o->root_hints = optarg; break;
        case O_FORWARD: {
            addr_t a;
            if (dns_addr_parse(optarg, 53, 0, &a) < 0)
                return bad("forward server", optarg, "IP or IP:PORT");
            if (o->fwd.nns == DNS_CONF_NS_MAX) {
                cmd_error("resolver", "at most %u --forward servers", DNS_CONF_NS_MAX);
                return -1;
            }
            dns_conf_add_ns(&o->fwd, &a);
            break;
        }
        case O_ALLOW: {
            int rc = dns_acl_add(&sc->acl, optarg);
            if (rc == -ENOSPC) {
                cmd_error("resolver", "at most %u --allow ranges", DNS_ACL_MAX);
                return -1;
            }
            if (rc < 0)
                return bad("--allow range", optarg, "ADDR/BITS (10.0.0.0/8, ::1/128) or ADDR");
            break;
        }
        case O_WORKERS:
            if (parse_num(optarg, 1, WORKERS_MAX, &v, 0) < 0)
                return bad("workers", optarg, "1-" "256");
            sc->workers = (int)v;
            break;
        case O_CACHE:
            if (parse_num(optarg, 64 * 1024, 1ull << 40, &o->cache_size, 1) < 0)
                return bad("cache size", optarg, "bytes with k/m/g, at least 64k");
            break;
        case O_INFLIGHT:
            if (parse_num(optarg, 1, DNS_SERVER_INFLIGHT_MAX, &v, 0) < 0)
                return bad("max-inflight", optarg, "1-65536");
            sc->max_inflight = (unsigned)v;
            break;
        case O_QUERIES:
            if (parse_num(optarg, 1, DNS_ITER_QUERIES_MAX, &o->max_queries, 0) < 0)
                return bad("max-queries", optarg, "1-64");
            break;
        case O_TIMEOUT:
            if (parse_num(optarg, 10, RESOLVER_TIMEOUT_MAX_MS, &o->timeout_ms, 0) < 0)
                return bad("timeout", optarg, "milliseconds 10-60000");
            break;
        case O_MAXTCP:
            if (parse_num(optarg, 1, DNS_SERVER_TCP_MAX, &v, 0) < 0)
                return bad("max-tcp", optarg, "1-65536");
            sc->max_tcp = (unsigned)v;
            break;
        case O_IDLE:
            if (parse_num(optarg, 1, RESOLVER_IDLE_MAX_S, &v, 0) < 0)
                return bad("tcp-idle", optarg, "seconds 1-3600");
            sc->tcp_idle_ms = v * 1000u;
            break;
        case O_QUIET: sc->quiet = 1; break;
        case 'h':
            resolver_usage(stdout);
            *done = 1;
            return 0;
        case ':':
            cmd_error("resolver", "option '%s' needs a value (see portico resolver --help)",
                      argv[optind - 1]);
            return -1;
        default:
            cmd_error("resolver", "unknown option '%s' (see portico resolver --help)",
                      argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        cmd_error("resolver", "unexpected argument '%s' (see portico resolver --help)",
                  argv[optind]);
        return -1;
    }
    if (o->root_hints != NULL && o->fwd.nns > 0) {
        cmd_error("resolver", "--root-hints and --forward exclude each other");
        return -1;
    }
    if (!have_listen)
        dns_addr_parse("127.0.0.1", 53, 0, &sc->listen);
    if (sc->acl.n == 0) {
        dns_acl_add(&sc->acl, "127.0.0.0/8");
        dns_acl_add(&sc->acl, "::1");
    }
    return 0;
}

int cmd_resolver(int argc, char **argv)
{
    struct resolver_opts *o = calloc(1, sizeof *o);
    dns_hints_t *hints = malloc(sizeof *hints);
    dns_iter_conf_t ic;
    dns_cache_t *cache = NULL;
    int done, code = EXIT_USAGE;
    if (o == NULL || hints == NULL) {
        cmd_error("resolver", "out of memory");
        free(o);
        free(hints);
        return 1;
    }
    dns_conf_init(&o->fwd);
    o->sc.workers = workers_default_count();
    o->sc.max_inflight = DNS_SERVER_INFLIGHT_DEF;
    o->sc.max_tcp = DNS_SERVER_TCP_DEF;
    o->sc.tcp_idle_ms = DNS_SERVER_TCP_IDLE_MS;
    o->cache_size = DNS_SERVER_CACHE_DEF;
    o->max_queries = DNS_ITER_QUERIES_MAX;
    o->timeout_ms = DNS_ITER_TIMEOUT_MS;
    if (parse_args(o, argc, argv, &done) < 0)
        goto out;
    code = 0;
    if (done)
        goto out;
    code = 1;

    if (o->root_hints == NULL) {
        dns_hints_builtin(hints);
    } else {
        size_t line = 0;
        const char *why = NULL;
        int rc = dns_hints_load(hints, o->root_hints, &line, &why);
        if (rc == -EINVAL && line > 0)
            cmd_error("resolver", "%s:%zu: %s", o->root_hints, line, why);
        else if (rc == -EINVAL)
            cmd_error("resolver", "%s: %s", o->root_hints, why);
        else if (rc < 0)
            cmd_error("resolver", "cannot read '%s': %s", o->root_hints, strerror(-rc));
        if (rc < 0)
            goto out;
    }
    cache = dns_cache_new((size_t)o->cache_size);
    if (cache == NULL) {
        cmd_error("resolver", "cannot allocate the cache");
        goto out;
    }
    o->sc.cache = cache;
    if (o->fwd.nns > 0) {
        /* Forwarding: the stub with these servers, names asked as given. */
        o->fwd.edns0 = 1;
        o->fwd.ndots = 1;
        o->fwd.timeout = (unsigned)((o->timeout_ms + 999) / 1000);
        o->sc.forward = &o->fwd;
    } else {
        dns_iter_conf_init(&ic, hints);
        ic.cache = cache;
        ic.timeout_ms = o->timeout_ms;
        ic.max_queries = (unsigned)o->max_queries;
        o->sc.iter = &ic;
    }
    char err[256];
    loop_block_signals();
    if (dns_server_run(&o->sc, err, sizeof err) < 0) {
        cmd_error("resolver", "%s", err);
        goto out;
    }
    code = 0;
out:
    dns_cache_free(cache);
    dns_conf_dispose(&o->fwd);
    free(hints);
    free(o);
    return code;
}
