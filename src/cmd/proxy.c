/* proxy.c - `portico proxy`: flags -> the proxy handler on the HTTP
 * connection engine, with the firewall rules, the DNS configuration and
 * the cache store. */
#include "cmd/cmd.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/tpool.h"
#include "core/workers.h"
#include "dns/conf.h"
#include "proxy/acl.h"
#include "proxy/collapse.h"
#include "proxy/hop.h"
#include "proxy/limits.h"
#include "proxy/proxy.h"
#include "proxy/pstore.h"
#include "server/server.h"

#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define PROXY_DEFAULT_LISTEN "127.0.0.1:3128"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portico proxy [OPTIONS]\n"
            "\n"
            "A caching HTTP proxy: forward (clients with http_proxy=), reverse (--upstream)\n"
            "and CONNECT tunnels, behind firewall rules.\n"
            "\n"
            "  --listen ADDR:PORT       where to listen (repeatable; default " PROXY_DEFAULT_LISTEN ")\n"
            "  --workers N              worker threads (default: number of CPUs)\n"
            "  --upstream http://H:P    reverse proxy: send origin-form requests to this origin\n"
            "  --allow RULE             allow requests matching RULE (repeatable, in order)\n"
            "  --deny RULE              deny requests matching RULE (repeatable, in order)\n"
            "                           RULE: all, or key=value[,key=value...] with keys\n"
            "                           src=CIDR host=NAME|.SUFFIX port=N[-M] method=NAME;\n"
            "                           the first matching rule wins; none: loopback only\n"
            "  --connect-port N         a port CONNECT may reach (repeatable; default 443)\n"
            "  --cache-mem BYTES        memory for cached responses (default 64m; 0: no cache)\n"
            "  --cache-dir DIR          keep cached responses in DIR across restarts\n"
            "  --max-object BYTES       largest response body cached (default 64m)\n"
            "  --connect-timeout SECS   resolving and connecting upstream (504; default 10)\n"
            "  --upstream-timeout SECS  upstream silence before 504 or a cut (default 30)\n"
"  --max-body BYTES         largest request body (413 beyond; default 1m); bodies\n"
            "                           over 64k stream upstream as they arrive\n"
            "  --header-timeout SECS    a request head, or a pause in its body (408; default 10)\n"
            "  --tunnel-idle SECS       a tunnel with no byte either way closes (default 300)\n"
            "  --via NAME               pseudonym in Via (default portico)\n"
            "  --no-forwarded           do not add Forwarded\n"
            "  --x-forwarded-for        add X-Forwarded-For too\n"
            "  --auth-file FILE         require Proxy-Authorization Basic (htpasswd-style FILE, as serve)\n"
            "  --access-log FILE        Combined Log Format, - for stdout (default off)\n"
            "  --log-level LEVEL        error, warn, info or debug (default warn)\n"
            "  --quiet                  do not print the listening addresses\n"
            "  -h, --help               this text\n"
            "\n"
            "BYTES take a k, m or g suffix. exit status: 0 stopped, 1 could not start, 2 bad usage\n");
}

/* "http://host[:port][/]" for --upstream. */
static int parse_upstream(struct proxy_config *pc, const char *url)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *a = url + 7;
    size_t n = strcspn(a, "/");
    if (a[n] == '/' && a[n + 1] != '\0')
        return -1; /* a path prefix is not supported */
    slice_t host;
    uint16_t port;
    if (hop_authority_split(slice_make(a, n), &host, &port, 80) < 0 || host.len >= sizeof pc->up_host)
        return -1;
    memcpy(pc->up_host, host.p, host.len);
    pc->up_host[host.len] = '\0';
    pc->up_host_len = host.len;
    pc->up_port = port;
    snprintf(pc->up_authority, sizeof pc->up_authority, "%.*s", (int)n, a);
    pc->has_upstream = 1;
    return 0;
}

/* The proxy's own endpoints: each listen address, and for a wildcard one
 * every local interface address with its port. */
static void collect_self(struct proxy_config *pc, const struct hs_config *hs)
{
    struct ifaddrs *ifs = NULL;
    getifaddrs(&ifs);
    for (int i = 0; i < hs->nlisten; i++) {
        const addr_t *l = &hs->listen[i];
        int wild = 0;
        if (l->ss.ss_family == AF_INET)
            wild = ((const struct sockaddr_in *)&l->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
        else
            wild = IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&l->ss)->sin6_addr);
        if (!wild) {
            if (pc->nself < PROXY_MAX_SELF)
                pc->self[pc->nself++] = *l;
            continue;
        }
        for (struct ifaddrs *f = ifs; f != NULL && pc->nself < PROXY_MAX_SELF; f = f->ifa_next) {
            if (f->ifa_addr == NULL)
                continue;
            int fam = f->ifa_addr->sa_family;
            if (fam != AF_INET && fam != AF_INET6)
                continue;
            if (l->ss.ss_family == AF_INET && fam != AF_INET)
                continue;
            addr_t *s = &pc->self[pc->nself++];
            memset(s, 0, sizeof *s);
            if (fam == AF_INET) {
                memcpy(&s->ss, f->ifa_addr, sizeof(struct sockaddr_in));
                ((struct sockaddr_in *)&s->ss)->sin_port = htons(addr_port(l));
                s->len = sizeof(struct sockaddr_in);
            } else {
                memcpy(&s->ss, f->ifa_addr, sizeof(struct sockaddr_in6));
                ((struct sockaddr_in6 *)&s->ss)->sin6_port = htons(addr_port(l));
                s->len = sizeof(struct sockaddr_in6);
            }
        }
    }
    if (ifs)
        freeifaddrs(ifs);
}

enum {
    O_LISTEN = 256, O_WORKERS, O_UPSTREAM, O_ALLOW, O_DENY, O_CONNECT_PORT, O_CACHE_MEM, O_CACHE_DIR,
    O_MAX_OBJECT, O_CONNECT_TIMEOUT, O_UPSTREAM_TIMEOUT, O_TUNNEL_IDLE, O_VIA, O_NO_FORWARDED,
    O_XFF, O_ACCESS_LOG, O_LOG_LEVEL, O_QUIET, O_AUTH_FILE,
    O_MAX_BODY, O_HEADER_TIMEOUT,
};

static const struct option long_opts[] = {
    { "listen", required_argument, NULL, O_LISTEN },
    { "workers", required_argument, NULL, O_WORKERS },
    { "upstream", required_argument, NULL, O_UPSTREAM },
    { "allow", required_argument, NULL, O_ALLOW },
    { "deny", required_argument, NULL, O_DENY },
    { "connect-port", required_argument, NULL, O_CONNECT_PORT },
    { "cache-mem", required_argument, NULL, O_CACHE_MEM },
    { "cache-dir", required_argument, NULL, O_CACHE_DIR },
    { "max-object", required_argument, NULL, O_MAX_OBJECT },
    { "connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT },
    { "upstream-timeout", required_argument, NULL, O_UPSTREAM_TIMEOUT },
    { "tunnel-idle", required_argument, NULL, O_TUNNEL_IDLE },
    { "via", required_argument, NULL, O_VIA },
    { "no-forwarded", no_argument, NULL, O_NO_FORWARDED },
    { "x-forwarded-for", no_argument, NULL, O_XFF },
    { "access-log", required_argument, NULL, O_ACCESS_LOG },
    { "log-level", required_argument, NULL, O_LOG_LEVEL },
    { "quiet", no_argument, NULL, O_QUIET },
    { "auth-file", required_argument, NULL, O_AUTH_FILE },
    { "max-body", required_argument, NULL, O_MAX_BODY },
    { "header-timeout", required_argument, NULL, O_HEADER_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

struct popts {
    struct hs_config hs;
    struct proxy_config pc;
    acl_t acl;
    const char *listen[HS_MAX_LISTEN];
    int nlisten;
    uint64_t cache_mem;
    const char *cache_dir;
    int log_level;
    int quiet;
    const char *auth_file;
};

/* Returns 0 to run, 1 after --help, -1 on a usage error (printed). */
static int parse_args(struct popts *o, int argc, char **argv)
{
    int c;
    char err[256];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        const char *v = optarg;
        uint64_t n;
        switch (c) {
        case 'h':
            usage(stdout);
            return 1;
        case O_LISTEN:
            if (o->nlisten >= HS_MAX_LISTEN) {
                cmd_error("proxy", "too many --listen addresses (at most %d)", HS_MAX_LISTEN);
                return -1;
            }
            o->listen[o->nlisten++] = v;
            break;
        case O_WORKERS:
            if (cmd_parse_size(v, &n) < 0 || n < 1 || n > WORKERS_MAX) {
                cmd_error("proxy", "--workers %s: give a count from 1 to %d", v, WORKERS_MAX);
                return -1;
            }
            o->hs.workers = (int)n;
            break;
        case O_UPSTREAM:
            if (parse_upstream(&o->pc, v) < 0) {
                cmd_error("proxy", "--upstream %s: give http://host[:port]", v);
                return -1;
            }
            break;
        case O_ALLOW:
        case O_DENY:
            if (acl_add(&o->acl, c == O_ALLOW, v, err, sizeof err) < 0) {
                cmd_error("proxy", "--%s %s: %s", c == O_ALLOW ? "allow" : "deny", v, err);
                return -1;
            }
            break;
        case O_CONNECT_PORT: {
            uint16_t p;
            if (port_parse(v, &p) < 0 || acl_add_connect_port(&o->acl, p) < 0) {
                cmd_error("proxy", "--connect-port %s: give a port 1-65535 (at most %u of them)", v,
                          PROXY_MAX_CONNECT_PORTS);
                return -1;
            }
            break;
        }
        case O_CACHE_MEM:
        case O_MAX_OBJECT:
            if (cmd_parse_size(v, &n) < 0) {
                cmd_error("proxy", "--%s %s: give bytes, with k, m or g", c == O_CACHE_MEM ? "cache-mem" : "max-object", v);
                return -1;
            }
            if (c == O_CACHE_MEM)
                o->cache_mem = n;
            else
                o->pc.max_object = n;
            break;
        case O_CACHE_DIR:
            o->cache_dir = v;
            break;
        case O_MAX_BODY:
            if (cmd_parse_size(v, &n) < 0) {
                cmd_error("proxy", "--max-body %s: give bytes, with k, m or g", v);
                return -1;
            }
            o->hs.lim.max_body = n;
            break;
        case O_HEADER_TIMEOUT:
            if (cmd_parse_secs(v, &o->hs.lim.header_timeout_ms) < 0) {
                cmd_error("proxy", "--header-timeout %s: give seconds (> 0)", v);
                return -1;
            }
            break;
        case O_CONNECT_TIMEOUT:
        case O_UPSTREAM_TIMEOUT:
        case O_TUNNEL_IDLE: {
            uint32_t *ms = c == O_CONNECT_TIMEOUT ? &o->pc.connect_timeout_ms
                         : c == O_UPSTREAM_TIMEOUT ? &o->pc.upstream_timeout_ms : &o->pc.tunnel_idle_ms;
            if (cmd_parse_secs(v, ms) < 0) {
                const char *name = c == O_CONNECT_TIMEOUT ? "connect-timeout"
                                 : c == O_UPSTREAM_TIMEOUT ? "upstream-timeout" : "tunnel-idle";
                cmd_error("proxy", "--%s %s: give seconds (> 0)", name, v);
                return -1;
            }
            break;
        }
        case O_VIA:
            if (*v == '\0' || strlen(v) > 64 || strpbrk(v, " \t\r\n,")) {
                cmd_error("proxy", "--via %s: give a short name without spaces or commas", v);
                return -1;
            }
            o->pc.via_name = v;
            break;
        case O_NO_FORWARDED:
            o->pc.forwarded = 0;
            break;
        case O_XFF:
            o->pc.x_forwarded_for = 1;
            break;
        case O_ACCESS_LOG:
            o->hs.access_log = strcmp(v, "off") == 0 ? NULL : v;
            break;
        case O_LOG_LEVEL:
            if ((o->log_level = log_level_parse(v)) < 0) {
                cmd_error("proxy", "--log-level %s: give error, warn, info or debug", v);
                return -1;
            }
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_AUTH_FILE:
            o->auth_file = v;
            break;
        case ':':
            cmd_error("proxy", "%s needs a value", argv[optind - 1]);
            return -1;
        default:
            cmd_error("proxy", "unknown option '%s' (see 'portico proxy --help')", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        cmd_error("proxy", "unexpected argument '%s' (see 'portico proxy --help')", argv[optind]);
        return -1;
    }
    return 0;
}

int cmd_proxy(int argc, char **argv)
{
    static struct popts o; /* large (the rule table): not on the stack */
    memset(&o, 0, sizeof o);
    http_limits_default(&o.hs.lim);
    o.hs.shutdown_ms = SHUTDOWN_TIMEOUT_MS;
    acl_init(&o.acl);
    o.pc.acl = &o.acl;
    o.pc.max_object = PROXY_MAX_OBJECT;
    o.pc.connect_timeout_ms = PROXY_DEFAULT_CONNECT_TIMEOUT_MS;
    o.pc.upstream_timeout_ms = PROXY_DEFAULT_UPSTREAM_TIMEOUT_MS;
    o.pc.tunnel_idle_ms = PROXY_DEFAULT_TUNNEL_IDLE_MS;
    o.pc.via_name = "portico";
    o.pc.forwarded = 1;
    o.cache_mem = PROXY_DEFAULT_CACHE_MEM;
    o.log_level = LOG_WARN;

    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : EXIT_USAGE;
    o.hs.name = "proxy";
    if (o.hs.workers == 0)
        o.hs.workers = workers_default_count();
    if (o.nlisten == 0)
        o.listen[o.nlisten++] = PROXY_DEFAULT_LISTEN;
    int lrc = cmd_listen_addrs("proxy", (const char *const *)o.listen, o.nlisten, o.hs.listen,
                               &o.hs.nlisten, HS_MAX_LISTEN);
    if (lrc != 0)
        return lrc;
    collect_self(&o.pc, &o.hs);

    int lr = log_open(NULL, (enum log_level)o.log_level);
    if (lr < 0) {
        cmd_error("proxy", "cannot open the log: %s", strerror(-lr));
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* The resolver's configuration is read once, here, blocking. */
    static dns_conf_t dns;
    dns_conf_init(&dns);
    int dr = dns_conf_load(&dns, NULL, NULL);
    if (dr < 0)
        cmd_error("proxy", "warning: reading the resolver configuration: %s", strerror(-dr));
    o.pc.dns = &dns;

    /* Before any thread (the store's writer) exists, so all inherit it. */
    loop_block_signals();
    pstore_t *store = NULL;
    if (o.cache_mem > 0) {
        char err[512];
        store = pstore_open(o.cache_mem, o.cache_dir, err, sizeof err);
        if (store == NULL) {
            cmd_error("proxy", "%s", err);
            dns_conf_dispose(&dns);
            log_close();
            return 1;
        }
        struct pstore_stats st;
        pstore_stats(store, &st);
        if (o.cache_dir != NULL && !o.quiet)
            fprintf(stderr, "portico proxy: cache %s: %llu objects loaded, %llu bad files removed\n",
                    o.cache_dir, (unsigned long long)st.loaded, (unsigned long long)st.discarded);
    } else if (o.cache_dir != NULL) {
        cmd_error("proxy", "--cache-dir needs a cache: --cache-mem must be > 0");
        dns_conf_dispose(&dns);
        log_close();
        return EXIT_USAGE;
    }
    o.pc.store = store;
    if (store != NULL) {
        o.pc.collapse = collapse_new();
        if (o.pc.collapse == NULL) {
            cmd_error("proxy", "out of memory");
            pstore_close(store);
            collapse_free(o.pc.collapse);
            dns_conf_dispose(&dns);
            log_close();
            return 1;
        }
    }
    o.pc.max_body = o.hs.lim.max_body;
    o.pc.lim = o.hs.lim;
    auth_db_t *auth = NULL;
    tpool_t *tp = NULL;
    if (o.auth_file != NULL) {
        char err[512];
        auth = auth_load(o.auth_file, err, sizeof err);
        tp = auth ? tpool_new(2) : NULL;
        if (auth == NULL || tp == NULL) {
            cmd_error("proxy", "%s", auth ? "cannot start the password threads" : err);
            auth_free(auth);
            collapse_free(o.pc.collapse);
            pstore_close(store);
            dns_conf_dispose(&dns);
            log_close();
            return 1;
        }
        o.pc.auth = auth;
        o.pc.pool = tp;
    }
    o.hs.any_method = 1; /* extension methods are forwarded; PURGE is ours */
    o.hs.on_stop = proxy_on_stop;

    o.hs.verbose = 0;
    if (!o.quiet) {
        for (int j = 0; j < o.hs.nlisten; j++) {
            char a[ADDR_STRLEN];
            fprintf(stderr, "portico proxy: listening on %s (%d workers)%s%s\n",
                    addr_format(&o.hs.listen[j], a, sizeof a), o.hs.workers,
                    o.pc.has_upstream ? ", reverse proxy for http://" : "",
                    o.pc.has_upstream ? o.pc.up_authority : "");
        }
    }
    loop_block_signals();
    rc = hs_run(&o.hs, &proxy_handler, &o.pc);
    if (store != NULL) {
        struct pstore_stats st;
        pstore_stats(store, &st);
        log_info("proxy: cache at exit: %llu objects, %llu bytes of %llu (--cache-mem), %llu evicted",
                 (unsigned long long)st.objects, (unsigned long long)st.bytes,
                 (unsigned long long)o.cache_mem, (unsigned long long)st.evicted);
    }
    tpool_free(tp);
    auth_free(auth);
    collapse_free(o.pc.collapse);
    pstore_close(store);
    dns_conf_dispose(&dns);
    log_close();
    return rc;
}
