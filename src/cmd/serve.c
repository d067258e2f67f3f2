/* serve.c - `portico serve`: flags and config file -> the HTTP engine with
 * the static file handler.
 *
 * Every option has one name, used both as a long flag (--max-body 1m) and
 * as a config key (max-body = 1m); flags given on the command line win over
 * the config file. */
#include "cmd/cmd.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/workers.h"
#include "core/tpool.h"
#include "server/auth.h"
#include "server/filecache.h"
#include "server/limits.h"
#include "server/mime.h"
#include "server/resumable.h"
#include "server/server.h"
#include "server/static.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef PORTICO_DEFAULT_SITE
#define PORTICO_DEFAULT_SITE "examples/site"
#endif
#define SERVE_DEFAULT_LISTEN "127.0.0.1:8080"

struct serve_opts {
    struct hs_config hs;
    const char *dir;
    int list;
    char *strings[32];       /* copies of config values we keep pointers to */
    int nstrings;
    const char *log_file;
    int log_level;
    const char *listen_specs[HS_MAX_LISTEN];
    int nlisten_specs;
    int listen_from_flags;   /* flags replace the config's listen list */
    int quiet;
    int writable;
    int no_trace;
    int multiple_choices;
    const char *auth_file;
    unsigned max_uploads;         /* resumable uploads at once; 0: not offered */
    uint32_t upload_expiry_ms;
};

enum opt_kind { K_SIZE, K_SECS, K_COUNT, K_BOOL, K_STR, K_LISTEN, K_WORKERS, K_LEVEL };

struct opt_desc {
    const char *name;
    enum opt_kind kind;
    const char *help;
};

static const struct opt_desc opt_table[] = {
    { "listen", K_LISTEN, "ADDR:PORT to listen on (repeatable; default " SERVE_DEFAULT_LISTEN ")" },
    { "workers", K_WORKERS, "worker threads (default: number of CPUs)" },
    { "list", K_BOOL, "HTML listing for directories without index.html" },
    { "access-log", K_STR, "FILE, - for stdout, or off (default off)" },
    { "log-level", K_LEVEL, "error, warn, info or debug (default warn)" },
    { "log-file", K_STR, "error log file instead of stderr" },
    { "dir", K_STR, "directory to serve (config file only; the DIR argument)" },
    { "max-target", K_SIZE, "longest request-target (414 beyond; default 8k)" },
    { "max-head", K_SIZE, "largest header section (431 beyond; default 16k)" },
    { "max-fields", K_COUNT, "most header fields (431 beyond; default 100)" },
    { "max-body", K_SIZE, "largest request body (413 beyond; default 1m)" },
    { "header-timeout", K_SECS, "seconds for a request head to arrive (408; default 10)" },
    { "idle-timeout", K_SECS, "seconds a kept-alive connection may idle (default 60)" },
    { "send-timeout", K_SECS, "seconds a client may stall reading (default 60)" },
    { "shutdown-timeout", K_SECS, "seconds open responses get on SIGTERM (default 5)" },
    { "linger-timeout", K_SECS, "seconds to drain a client after an error answer (default 2)" },
    { "max-discard", K_SIZE, "unwanted request body read to keep the connection (default 64k)" },
    { "max-requests", K_COUNT, "requests per connection, 0 = unlimited (default 10000)" },
    { "max-connections", K_COUNT, "open connections (default 100000)" },
    { "tcp-congestion", K_STR, "NAME of a kernel TCP congestion control, or auto (default)" },
    { "quiet", K_BOOL, "do not print the listening addresses" },
    { "writable", K_BOOL, "accept PUT, DELETE and POST (uploads)" },
    { "auth-file", K_STR, "htpasswd-style FILE: writes need Basic auth (required off loopback)" },
    { "no-trace", K_BOOL, "answer TRACE with 405" },
    { "multiple-choices", K_BOOL, "300 with the list when a request does not choose between variants" },
    { "max-uploads", K_COUNT, "unfinished resumable uploads kept, 0 = none (default 64)" },
    { "upload-expiry", K_SECS, "seconds an idle resumable upload is kept (default 3600)" },
};
#define NOPTS (sizeof opt_table / sizeof opt_table[0])

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: portico serve [DIR] [OPTIONS]\n"
            "\n"
            "Serves the files below DIR (default: the demo site %s) over HTTP/1.1.\n"
            "\n"
            "options (each also a key of the --config file, as 'name = value'):\n",
            PORTICO_DEFAULT_SITE);
    for (size_t i = 0; i < NOPTS; i++) {
        if (strcmp(opt_table[i].name, "dir") == 0)
            continue;
        const char *arg = opt_table[i].kind == K_BOOL ? "" : opt_table[i].kind == K_SIZE ? " BYTES"
                          : opt_table[i].kind == K_SECS ? " SECS" : " VALUE";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opt_table[i].name, arg);
        fprintf(out, "  %-26s %s\n", left, opt_table[i].help);
    }
    fprintf(out,
            "  %-26s %s\n"
            "  %-26s %s\n"
            "\n"
            "BYTES take a k, m or g suffix. SIGTERM/SIGINT stop gracefully, SIGHUP reopens\n"
            "the logs. exit status: 0 stopped, 1 could not start, 2 bad usage\n",
            "--config FILE", "read options from an INI file ([serve] section or none)",
            "-h, --help", "this text");
}

static int parse_bool(const char *s, int *b)
{
    if (!strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on")) {
        *b = 1;
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off")) {
        *b = 0;
        return 0;
    }
    return -1;
}

static const char *keep(struct serve_opts *o, const char *v)
{
    if (o->nstrings >= (int)(sizeof o->strings / sizeof o->strings[0]))
        return NULL;
    char *c = strdup(v);
    if (c != NULL)
        o->strings[o->nstrings++] = c;
    return c;
}

/* Applies one option. Returns 0 or -1 with a message in err. */
static int apply(struct serve_opts *o, const struct opt_desc *d, const char *v, int from_flag,
                 char *err, size_t errlen)
{
    struct http_limits *l = &o->hs.lim;
    uint64_t n;
    uint32_t ms;
    int b;
    const char *name = d->name;

    switch (d->kind) {
    case K_LISTEN: {
        if (from_flag && !o->listen_from_flags) {
            o->nlisten_specs = 0; /* flags replace what the config listed */
            o->listen_from_flags = 1;
        }
        if (o->nlisten_specs >= HS_MAX_LISTEN) {
            snprintf(err, errlen, "too many listen addresses (at most %d)", HS_MAX_LISTEN);
            return -1;
        }
        const char *k = keep(o, v);
        if (k == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        o->listen_specs[o->nlisten_specs++] = k;
        return 0;
    }
    case K_WORKERS: {
        char *end;
        long w = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || w < 1 || w > WORKERS_MAX) {
            snprintf(err, errlen, "invalid workers '%s': expected 1-%d", v, WORKERS_MAX);
            return -1;
        }
        o->hs.workers = (int)w;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(v, &b) < 0) {
            snprintf(err, errlen, "invalid %s '%s': expected yes or no", name, v);
            return -1;
        }
        if (!strcmp(name, "list"))
            o->list = b;
        else if (!strcmp(name, "writable"))
            o->writable = b;
        else if (!strcmp(name, "no-trace"))
            o->no_trace = b;
        else if (!strcmp(name, "multiple-choices"))
            o->multiple_choices = b;
        else
            o->quiet = b;
        return 0;
    case K_LEVEL: {
        int lv = log_level_parse(v);
        if (lv < 0) {
            snprintf(err, errlen, "invalid log-level '%s': expected error, warn, info or debug", v);
            return -1;
        }
        o->log_level = lv;
        return 0;
    }
    case K_STR: {
        const char *k = keep(o, v);
        if (k == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (!strcmp(name, "access-log"))
            o->hs.access_log = strcmp(v, "off") == 0 ? NULL : k;
        else if (!strcmp(name, "log-file"))
            o->log_file = k;
        else if (!strcmp(name, "auth-file"))
            o->auth_file = k;
        else if (!strcmp(name, "tcp-congestion")) {
            if (cmd_check_congestion(v, err, errlen) < 0)
                return -1;
            o->hs.tcp_congestion = strcmp(v, "auto") == 0 ? NULL : k;
        } else
            o->dir = k;
        return 0;
    }
    case K_SIZE:
        if (cmd_parse_size(v, &n) < 0) {
            snprintf(err, errlen, "invalid %s '%s': expected bytes, as in 16k", name, v);
            return -1;
        }
        if (!strcmp(name, "max-target")) {
            if (n < 16 || n > HTTP_CEIL_MAX_HEAD) {
                snprintf(err, errlen, "invalid max-target '%s': expected 16 to 1m", v);
                return -1;
            }
            l->max_target = (size_t)n;
        } else if (!strcmp(name, "max-head")) {
            if (n < 256 || n > HTTP_CEIL_MAX_HEAD) {
                snprintf(err, errlen, "invalid max-head '%s': expected 256 to 1m", v);
                return -1;
            }
            l->max_head = (size_t)n;
        } else if (!strcmp(name, "max-discard")) {
            l->discard_body = n;
        } else {
            l->max_body = n;
        }
        return 0;
    case K_SECS:
        if (cmd_parse_secs(v, &ms) < 0) {
            snprintf(err, errlen, "invalid %s '%s': expected seconds > 0", name, v);
            return -1;
        }
        if (!strcmp(name, "header-timeout"))
            l->header_timeout_ms = ms;
        else if (!strcmp(name, "idle-timeout"))
            l->idle_timeout_ms = ms;
        else if (!strcmp(name, "send-timeout"))
            l->send_timeout_ms = ms;
        else if (!strcmp(name, "linger-timeout"))
            l->linger_ms = ms;
        else if (!strcmp(name, "upload-expiry"))
            o->upload_expiry_ms = ms;
        else
            o->hs.shutdown_ms = ms;
        return 0;
    case K_COUNT: {
        char *end;
        unsigned long long c = strtoull(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || c > 100000000ull) {
            snprintf(err, errlen, "invalid %s '%s': expected a number", name, v);
            return -1;
        }
        if (!strcmp(name, "max-fields")) {
            if (c < 1 || c > HTTP_CEIL_MAX_FIELDS) {
                snprintf(err, errlen, "invalid max-fields '%s': expected 1-%u", v, HTTP_CEIL_MAX_FIELDS);
                return -1;
            }
            l->max_fields = (size_t)c;
        } else if (!strcmp(name, "max-requests")) {
            l->max_requests = (uint32_t)c;
        } else if (!strcmp(name, "max-uploads")) {
            if (c > UPLOADS_CEIL_MAX) {
                snprintf(err, errlen, "invalid max-uploads '%s': expected 0-%u", v, UPLOADS_CEIL_MAX);
                return -1;
            }
            o->max_uploads = (unsigned)c;
        } else {
            if (c < 1) {
                snprintf(err, errlen, "invalid max-connections '%s': expected at least 1", v);
                return -1;
            }
            l->max_conns = (uint32_t)c;
        }
        return 0;
    }
    }
    return -1;
}

static const struct opt_desc *find_opt(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opt_table[i].name, name) == 0)
            return &opt_table[i];
    return NULL;
}

struct ini_ctx {
    struct serve_opts *o;
    const char *path;
    char err[256];
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *c = user;
    if (section[0] != '\0' && strcmp(section, "serve") != 0)
        return 1; /* other tools' sections */
    const struct opt_desc *d = find_opt(name);
    if (d == NULL) {
        snprintf(c->err, sizeof c->err, "unknown option '%s'", name);
        return 0;
    }
    char e[200];
    if (apply(c->o, d, value, 0, e, sizeof e) < 0) {
        snprintf(c->err, sizeof c->err, "%s", e);
        return 0;
    }
    return 1;
}

static int load_config(struct serve_opts *o, const char *path)
{
    struct ini_ctx c = { .o = o, .path = path };
    int rc = ini_parse(path, on_ini, &c);
    if (rc == -1) {
        cmd_error("serve", "cannot read config '%s': %s", path, strerror(errno));
        return -1;
    }
    if (rc != 0) {
        cmd_error("serve", "%s, line %d: %s", path, rc, c.err[0] ? c.err : "syntax error");
        return -1;
    }
    return 0;
}

static void opts_free(struct serve_opts *o)
{
    for (int i = 0; i < o->nstrings; i++)
        free(o->strings[i]);
    o->nstrings = 0;
}

/* Returns 0 to run, 1 when done (--help), -1 on a usage error. */
static int parse_args(struct serve_opts *o, int argc, char **argv)
{
    struct option longopts[NOPTS + 3];
    for (size_t i = 0; i < NOPTS; i++) {
        longopts[i].name = opt_table[i].name;
        longopts[i].has_arg = opt_table[i].kind == K_BOOL ? no_argument : required_argument;
        longopts[i].flag = NULL;
        longopts[i].val = 1000 + (int)i;
    }
    longopts[NOPTS] = (struct option){ "config", required_argument, NULL, 'c' };
    longopts[NOPTS + 1] = (struct option){ "help", no_argument, NULL, 'h' };
    longopts[NOPTS + 2] = (struct option){ NULL, 0, NULL, 0 };

    /* First pass: --help and --config, so that flags override the file. */
    opterr = 0;
    optind = 0; /* 0, not 1: glibc then fully resets its scan state */
    int c;
    const char *config = NULL;
    while ((c = getopt_long(argc, argv, ":hc:", longopts, NULL)) != -1) {
        if (c == 'h') {
            serve_usage(stdout);
            return 1;
        }
        if (c == 'c')
            config = optarg;
        if (c == '?') {
            if (strncmp(argv[optind - 1], "--", 2) != 0 && optopt && optopt < 256)
                cmd_error("serve", "unknown option '-%c' (see portico serve --help)", optopt);
            else
                cmd_error("serve", "unknown option '%s' (see portico serve --help)", argv[optind - 1]);
            return -1;
        }
        if (c == ':') {
            cmd_error("serve", "option '%s' needs a value (see portico serve --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (config != NULL && load_config(o, config) < 0)
        return -1;

    optind = 0; /* 0, not 1: glibc then fully resets its scan state */
    while ((c = getopt_long(argc, argv, ":hc:", longopts, NULL)) != -1) {
        if (c < 1000)
            continue;
        const struct opt_desc *d = &opt_table[c - 1000];
        if (strcmp(d->name, "dir") == 0) {
            cmd_error("serve", "give the directory as the DIR argument, not --dir");
            return -1;
        }
        char err[256];
        if (apply(o, d, d->kind == K_BOOL ? "yes" : optarg, 1, err, sizeof err) < 0) {
            cmd_error("serve", "%s", err);
            return -1;
        }
    }
    if (argc - optind > 1) {
        cmd_error("serve", "too many arguments: one DIR at most (see portico serve --help)");
        return -1;
    }
    if (argc - optind == 1)
        o->dir = argv[optind];
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o;
    memset(&o, 0, sizeof o);
    http_limits_default(&o.hs.lim);
    o.max_uploads = UPLOADS_DEFAULT_MAX;
    o.upload_expiry_ms = UPLOADS_DEFAULT_EXPIRY_S * 1000u;
    o.hs.shutdown_ms = SHUTDOWN_TIMEOUT_MS;
    o.log_level = LOG_WARN;
    o.dir = PORTICO_DEFAULT_SITE;

    int rc = parse_args(&o, argc, argv);
    if (rc != 0) {
        opts_free(&o);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    if (o.hs.workers == 0)
        o.hs.workers = workers_default_count();
    if (o.nlisten_specs == 0)
        o.listen_specs[o.nlisten_specs++] = SERVE_DEFAULT_LISTEN;

    /* Resolve every listen address; "localhost:8080" may give several. */
    int lrc = cmd_listen_addrs("serve", (const char *const *)o.listen_specs, o.nlisten_specs,
                               o.hs.listen, &o.hs.nlisten, HS_MAX_LISTEN);
    if (lrc != 0) {
        opts_free(&o);
        return lrc;
    }

    int lr = log_open(o.log_file, (enum log_level)o.log_level);
    if (lr < 0) {
        cmd_error("serve", "cannot open log file '%s': %s", o.log_file, strerror(-lr));
        opts_free(&o);
        return 1;
    }
    /* A server wants many fds: take the hard limit, and let the open-file
     * caches use at most a quarter of it. */
    struct rlimit rl;
    size_t fds = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        fds = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX / 2 : (size_t)rl.rlim_cur;
    }
    size_t per_worker = fds / 4 / (size_t)o.hs.workers;
    struct static_config sc = {
        .list = o.list,
        .max_target = o.hs.lim.max_target,
        .file_cache = per_worker < FC_MAX_ENTRIES ? per_worker : FC_MAX_ENTRIES,
    };
    char err[512];
    if (static_check_root(o.dir, &sc.rootfd, err, sizeof err) < 0) {
        cmd_error("serve", "%s", err);
        log_close();
        opts_free(&o);
        return 1;
    }
    if (mime_load(NULL) < 0) {
        cmd_error("serve", "out of memory loading media types");
        close(sc.rootfd);
        log_close();
        opts_free(&o);
        return 1;
    }
    o.hs.verbose = !o.quiet;
    sc.writable = o.writable;
    sc.trace = !o.no_trace;
    sc.multiple_choices = o.multiple_choices;
    sc.write.rootfd = sc.rootfd;
    sc.write.trace = sc.trace;
    /* Before any thread exists, so that all of them inherit the mask. */
    loop_block_signals();
    auth_db_t *auth = NULL;
    tpool_t *pool = NULL;
    if (o.writable) {
        if (o.auth_file != NULL) {
            auth = auth_load(o.auth_file, err, sizeof err);
            if (auth == NULL) {
                cmd_error("serve", "%s", err);
                rc = 1;
                goto out;
            }
        } else {
            for (int i = 0; i < o.hs.nlisten; i++) {
                if (!addr_is_loopback(&o.hs.listen[i])) {
                    char a[ADDR_STRLEN];
                    cmd_error("serve", "--writable on %s (not loopback) needs --auth-file",
                              addr_format(&o.hs.listen[i], a, sizeof a));
                    rc = EXIT_USAGE;
                    goto out;
                }
            }
        }
    }
    /* Disk work (fsync, rename) and gzip compression run on these. */
    pool = tpool_new(2);
    if (pool == NULL) {
        cmd_error("serve", "cannot start the disk threads: %s", strerror(errno));
        rc = 1;
        goto out;
    }
    sc.write.pool = pool;
    sc.write.auth = auth;
    if (o.writable && o.max_uploads > 0) {
        uint32_t secs = o.upload_expiry_ms < 1000 ? 1 : o.upload_expiry_ms / 1000;
        sc.write.uploads = rup_registry_new(o.max_uploads, secs, o.hs.lim.max_body);
        if (sc.write.uploads == NULL) {
            cmd_error("serve", "out of memory");
            rc = 1;
            goto out;
        }
    }

    loop_block_signals();
    static const struct hs_handler handler = {
        static_worker_init, static_worker_free, static_on_request, static_on_refused,
    };
    rc = hs_run(&o.hs, &handler, &sc);
out:
    tpool_free(pool);
    rup_registry_free(sc.write.uploads);
    auth_free(auth);
    mime_free();
    close(sc.rootfd);
    log_close();
    opts_free(&o);
    return rc;
}
