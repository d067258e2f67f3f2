/* get.c - `portico get URL...`: an HTTP/1.1 client for the shell, with the
 * options curl users reach for, on the client engine (client/client.h).
 *
 * URLs are fetched one after another on one loop and one connection pool,
 * so several URLs of one origin share one kept-alive connection. A
 * download to a file (-o, -O) goes to a temporary file in the same
 * directory and is renamed over the name only once the body ended as its
 * framing says; anything else (a closed connection, a lying
 * Content-Length, a bad chunk) removes it and exits non-zero.
 *
 * --cache DIR keeps a private RFC 9111 cache (client/pcache.h). Exit
 * statuses follow curl's where curl has one (3 bad URL, 6 resolve, 7
 * connect, 8 bad reply, 18 partial, 22 -f, 23 write, 28 timeout, 33 range,
 * 47 redirects, 52 empty reply, 56 receive: a reset, or a bad chunk); 2 is
 * a usage error. */
#include "cmd/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "client/pcache.h"
#include "client/store.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/loop.h"
#include "dns/conf.h"
#include "http/date.h"
#include "http/response.h"
#include "http/url.h"

#define GET_VERSION         "portico/0.1.0"
#define GET_MAX_URLS        1024
#define GET_MAX_HEADERS     64
#define GET_MAX_FIELDS      (GET_MAX_HEADERS + 16)
#define GET_DEFAULT_REDIRS  50
#define GET_PROXY_PORT      1080       /* a proxy URL without a port, as curl */
#define GET_PROGRESS_MS     250        /* progress bar redraws at most this often */
#define GET_STDIN_CHUNK     (64 * 1024) /* -T -: bytes read from stdin at once */

enum {
    EX_OK = 0, EX_FAIL = 1, EX_URL = 3, EX_RESOLVE = 6, EX_CONNECT = 7, EX_REPLY = 8,
    EX_PARTIAL = 18, EX_HTTP = 22, EX_WRITE = 23, EX_READ = 26, EX_TIMEOUT = 28,
    EX_RANGE = 33, EX_REDIRS = 47, EX_NOTHING = 52, EX_RECV = 56,
};

struct get_opts {
    const char *method;
    http_field_t headers[GET_MAX_HEADERS];
    size_t nheaders;
    char *data;                /* -d / --data-binary, joined */
    size_t data_len;
    int has_data, data_binary_only;
    const char *upload;        /* -T FILE */
    const char *outputs[GET_MAX_URLS];   /* NULL: stdout; "" : -O */
    size_t noutputs;
    int head_only, include, verbose, follow, fail, silent, show_error;
    long max_redirs;
    uint32_t max_time, connect_timeout, header_timeout, read_timeout; /* ms; 0: none/default */
    const char *proxy;         /* NULL: from the environment */
    const char *noproxy;
    int resume;
    const char *cache_dir;
    int no_splice;             /* --no-splice: bodies always through on_data */
    const char *urls[GET_MAX_URLS];
    size_t nurls;
};

/* One URL's transfer, across its redirects. */
struct xfer {
    const struct get_opts *o;
    loop_t *loop;
    client_pool_t *pool;
    client_req_t *req;
    ptimer_t deadline;
    int exit_code;
    int done;

    char url[HTTP_URL_MAX + 1];
    http_url_t u;
    char first_host[CLIENT_HOST_MAX + 1];   /* credentials go only there */
    uint16_t first_port;                      /* (host and port, as curl) */
    long redirects;
    const char *method;        /* current method (a 303 makes it GET) */
    int send_body;
    int stdin_body;            /* -T -: the body streams from stdin, chunked */
    int stdin_eof;
    size_t sbuf_len, sbuf_off;  /* a read of stdin the engine has not taken yet */
    char sbuf[GET_STDIN_CHUNK];
    const void *body;
    int64_t body_len;
    void *upload_map;
    size_t upload_len;

    char fbuf[8192];           /* request field storage */
    size_t fbuf_len;
    http_field_t fields[GET_MAX_FIELDS];
    size_t nfields;

    /* The response being handled. */
    int in_body;               /* its final head arrived */
    int status;
    int redirect_to;           /* this response is a redirect we follow */
    char location[HTTP_URL_MAX + 1];
    int discard;               /* body not written (redirect, -f) */
    int64_t expect_len;
    uint64_t got;
    uint64_t spliced;          /* body bytes moved by splice(2) */
    uint64_t resume_from;

    /* Output. */
    const char *out_name;      /* NULL: stdout */
    char out_final[STORE_PATH_MAX];
    char out_tmp[STORE_PATH_MAX];
    int out_fd;
    int out_is_tmp;

    /* Cache. */
    int use_cache;
    pcache_lookup_t pl;
    int revalidating;
    store_writer_t sw;
    int storing;
    time_t request_time;

    /* Progress. */
    int progress;
    uint64_t prog_last_ms, prog_start_ms;
};

/* ------------------------------------------------------------- usage */

static void get_usage(FILE *out)
{
    fprintf(out,
            "usage: portico get [OPTIONS] URL...\n"
            "\n"
            "Fetches URLs over HTTP/1.1 and writes the bodies to stdout (or files).\n"
            "URLs of one origin share one kept-alive connection.\n"
            "\n"
            "options:\n"
            "  -X, --request METHOD    method (default GET; POST with -d, PUT with -T)\n"
            "  -H, --header 'N: v'     add a header field ('N:' removes a default one)\n"
            "  -d, --data DATA         POST DATA (@FILE: the file, CR and LF removed);\n"
            "                          several -d are joined with '&'\n"
            "      --data-binary DATA  the same, bytes as they are (@FILE)\n"
            "  -T, --upload-file FILE  upload FILE with PUT (- : stdin, sent chunked)\n"
            "  -o, --output FILE       write the body to FILE (one per URL, in order)\n"
            "  -O, --remote-name       write the body to the URL's last path segment\n"
            "  -I, --head              HEAD: show the response head only\n"
            "  -i, --include           write the response head before the body\n"
            "  -v, --verbose           request and response heads, connections, cache on stderr\n"
            "  -L, --location          follow redirects (3xx with Location)\n"
            "      --max-redirs N      at most N redirects (default %d)\n"
            "  -f, --fail              no body on 4xx/5xx, exit status 22\n"
            "  -s, --silent            no progress bar, no error messages (see -S)\n"
            "  -S, --show-error        error messages even with -s\n"
            "  -m, --max-time SECS     give up a transfer after SECS\n"
            "      --connect-timeout SECS   name lookup and TCP connect (default %u)\n"
            "      --header-timeout SECS    request sent -> response head (default %u)\n"
            "      --read-timeout SECS      longest stall inside a body (default %u)\n"
            "  -x, --proxy URL         use this HTTP proxy (default: $http_proxy, $ALL_PROXY)\n"
            "      --noproxy LIST      hosts not to reach through the proxy ($no_proxy)\n"
            "  -C, --continue-at -     resume a download to -o/-O with Range\n"
            "      --cache DIR         private HTTP cache in DIR (RFC 9111)\n"
            "      --no-splice         copy sized bodies through memory, not splice(2)\n"
            "  -h, --help              this text\n"
            "\n"
            "Exit status as curl's: 3 bad URL, 6 resolve, 7 connect, 8 bad reply, 18 partial,\n"
            "22 HTTP error with -f, 23 write error, 28 timeout, 33 range, 47 redirects,\n"
            "52 empty reply, 56 connection failed (reset) or a bad chunk.\n",
            GET_DEFAULT_REDIRS, CLIENT_DEFAULT_CONNECT_TIMEOUT_MS / 1000,
            CLIENT_DEFAULT_HEADER_TIMEOUT_MS / 1000, CLIENT_DEFAULT_READ_TIMEOUT_MS / 1000);
}

static void gerr(const struct xfer *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void gerr(const struct xfer *x, const char *fmt, ...)
{
    if (x->o->silent && !x->o->show_error)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (x->progress)
        fputc('\n', stderr);
    cmd_error("get", "%s", line);
}

static void vlog(const struct xfer *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vlog(const struct xfer *x, const char *fmt, ...)
{
    if (!x->o->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("* ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------ output */

/* Opens the output for a body: stdout, or a temporary file beside the
 * name (with the partial file's bytes first when resuming). */
static int out_open(struct xfer *x)
{
    if (x->out_fd >= 0)
        return 0;
    if (x->out_name == NULL) {
        x->out_fd = STDOUT_FILENO;
        return 0;
    }
    snprintf(x->out_final, sizeof x->out_final, "%s", x->out_name);
    struct stat st;
    if (stat(x->out_final, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* /dev/null, a FIFO, a terminal: written in place, nothing to rename. */
        int fd = open(x->out_final, O_WRONLY | O_CLOEXEC);
        if (fd == -1) {
            gerr(x, "cannot open %s: %s", x->out_final, strerror(errno));
            return -1;
        }
        x->out_fd = fd;
        return 0;
    }
    /* The mode curl's open(O_CREAT|O_TRUNC, 0666) gives: the replaced
     * file's, or 0666 less the umask (mkostemp's 0600 is neither). */
    mode_t mode;
    if (stat(x->out_final, &st) == 0) {
        mode = st.st_mode & 07777;
    } else {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    const char *slash = strrchr(x->out_final, '/');
    int dirlen = slash ? (int)(slash - x->out_final + 1) : 0;
    if (snprintf(x->out_tmp, sizeof x->out_tmp, "%.*s.%s.portico-XXXXXX", dirlen,
                 x->out_final, x->out_final + dirlen) >= (int)sizeof x->out_tmp) {
        gerr(x, "output name too long: %s", x->out_final);
        return -1;
    }
    int fd = mkostemp(x->out_tmp, O_CLOEXEC);
    if (fd == -1) {
        gerr(x, "cannot create a file beside %s: %s", x->out_final, strerror(errno));
        return -1;
    }
    x->out_fd = fd;
    x->out_is_tmp = 1;
    fchmod(fd, mode);
    if (x->resume_from > 0) {
        int in = open(x->out_final, O_RDONLY | O_CLOEXEC);
        if (in == -1) {
            gerr(x, "cannot read %s to resume: %s", x->out_final, strerror(errno));
            return -1;
        }
        uint64_t left = x->resume_from;
        while (left > 0) {
            ssize_t n = copy_file_range(in, NULL, fd, NULL, left, 0);
            if (n <= 0) {
                close(in);
                gerr(x, "cannot copy %s to resume: %s", x->out_final,
                     n == 0 ? "file shrank" : strerror(errno));
                return -1;
            }
            left -= (uint64_t)n;
        }
        close(in);
    }
    return 0;
}

static void out_abort(struct xfer *x)
{
    if (x->out_is_tmp && x->out_fd >= 0) {
        close(x->out_fd);
        unlink(x->out_tmp);
    } else if (x->out_fd > STDERR_FILENO) {
        close(x->out_fd);
    }
    x->out_fd = -1;
    x->out_is_tmp = 0;
}

static int out_commit(struct xfer *x)
{
    if (x->out_fd < 0 && x->out_name != NULL) {
        /* An empty body still makes the file. */
        if (out_open(x) != 0)
            return -1;
    }
    if (!x->out_is_tmp) {
        if (x->out_fd > STDERR_FILENO)
            close(x->out_fd);
        x->out_fd = -1;
        return 0;
    }
    int rc = 0;
    if (fsync(x->out_fd) != 0 || rename(x->out_tmp, x->out_final) != 0) {
        gerr(x, "cannot write %s: %s", x->out_final, strerror(errno));
        unlink(x->out_tmp);
        rc = -1;
    }
    close(x->out_fd);
    x->out_fd = -1;
    x->out_is_tmp = 0;
    return rc;
}

static int out_write(struct xfer *x, const void *p, size_t n)
{
    if (out_open(x) != 0)
        return -1;
    int rc = fs_write_all(x->out_fd, p, n);
    if (rc != 0) {
        gerr(x, "write error on %s: %s", x->out_name ? x->out_final : "stdout", strerror(-rc));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------- progress */

static void human(char *out, size_t n, double v)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void progress_draw(struct xfer *x, int final)
{
    uint64_t now = loop_now(x->loop);
    if (!final && now - x->prog_last_ms < GET_PROGRESS_MS)
        return;
    x->prog_last_ms = now;
    double secs = (double)(now - x->prog_start_ms) / 1000.0;
    double rate = secs > 0 ? (double)x->got / secs : 0;
    char got[32], rt[32], eta[32] = "--:--";
    human(got, sizeof got, (double)x->got);
    human(rt, sizeof rt, rate);
    char bar[33];
    int pct = -1;
    if (x->expect_len > 0) {
        pct = (int)((double)x->got * 100.0 / (double)x->expect_len);
        if (pct > 100)
            pct = 100;
        int fill = pct * 30 / 100;
        memset(bar, '=', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(30 - fill));
        bar[30] = '\0';
        if (rate > 0) {
            double left = ((double)x->expect_len - (double)x->got) / rate;
            snprintf(eta, sizeof eta, "%d:%02d", (int)left / 60, (int)left % 60);
        }
        fprintf(stderr, "\r%3d%% [%s] %10s %10s/s ETA %s ", pct, bar, got, rt, eta);
    } else {
        fprintf(stderr, "\r%10s %10s/s ", got, rt);
    }
    if (final)
        fputc('\n', stderr);
}

/* ------------------------------------------------------------ fields */

/* Copies s into the transfer's field storage. */
static slice_t fstore(struct xfer *x, const char *s, size_t n)
{
    if (x->fbuf_len + n > sizeof x->fbuf)
        return slice_make("", 0);
    memcpy(x->fbuf + x->fbuf_len, s, n);
    slice_t r = slice_make(x->fbuf + x->fbuf_len, n);
    x->fbuf_len += n;
    return r;
}

static int user_has(const struct get_opts *o, const char *name)
{
    for (size_t i = 0; i < o->nheaders; i++)
        if (http_slice_ieq(o->headers[i].name, name))
            return 1;
    return 0;
}

static void add_field(struct xfer *x, const char *name, slice_t value)
{
    if (x->nfields >= GET_MAX_FIELDS)
        return;
    x->fields[x->nfields].name = slice_cstr(name);
    x->fields[x->nfields].value = value;
    x->nfields++;
}

static int pct_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Adds `field`: Basic credentials from a URL's userinfo (percent-decoded,
 * "user" alone meaning an empty password). */
static void basic_auth(struct xfer *x, slice_t ui, const char *field)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char plain[512], enc[720] = "Basic ";
    size_t n = 0;
    for (size_t i = 0; i < ui.len && n < sizeof plain; i++) {
        if (ui.p[i] == '%' && i + 2 < ui.len) {
            plain[n++] = (char)(pct_val(ui.p[i + 1]) * 16 + pct_val(ui.p[i + 2]));
            i += 2;
        } else {
            plain[n++] = ui.p[i];
        }
    }
    if (memchr(plain, ':', n) == NULL && n < sizeof plain)
        plain[n++] = ':';
    size_t k = 6;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)plain[i] << 16;
        if (i + 1 < n) v |= (unsigned char)plain[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)plain[i + 2];
        enc[k++] = b64[(v >> 18) & 63];
        enc[k++] = b64[(v >> 12) & 63];
        enc[k++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        enc[k++] = i + 2 < n ? b64[v & 63] : '=';
    }
    add_field(x, field, fstore(x, enc, k));
}

/* Builds the request's fields: Host, defaults, the user's -H fields, and
 * what the transfer needs (body length, Range, cache validators). */
static void build_fields(struct xfer *x, int same_origin)
{
    const struct get_opts *o = x->o;
    char tmp[512];
    x->nfields = 0;
    x->fbuf_len = 0;
    if (!user_has(o, "host")) {
        int n = http_url_authority(&x->u, tmp, sizeof tmp);
        add_field(x, "Host", fstore(x, tmp, n > 0 ? (size_t)n : 0));
    }
    if (!user_has(o, "user-agent"))
        add_field(x, "User-Agent", SLICE_LIT(GET_VERSION));
    if (!user_has(o, "accept"))
        add_field(x, "Accept", SLICE_LIT("*/*"));
    if (x->u.has_userinfo && !user_has(o, "authorization"))
        basic_auth(x, x->u.userinfo, "Authorization");
    for (size_t i = 0; i < o->nheaders; i++) {
        const http_field_t *f = &o->headers[i];
        if (f->value.len == 0 && f->value.p == NULL)
            continue; /* "Name:" removes a default */
        if (!same_origin && (http_slice_ieq(f->name, "authorization") ||
                             http_slice_ieq(f->name, "cookie")))
            continue;
        if (x->nfields < GET_MAX_FIELDS)
            x->fields[x->nfields++] = *f;
    }
    if (x->send_body) {
        if (o->has_data && !o->upload && !user_has(o, "content-type"))
            add_field(x, "Content-Type", SLICE_LIT("application/x-www-form-urlencoded"));
        if (x->stdin_body) {
            if (!user_has(o, "transfer-encoding"))
                add_field(x, "Transfer-Encoding", SLICE_LIT("chunked"));
        } else if (!user_has(o, "content-length")) {
            int n = snprintf(tmp, sizeof tmp, "%lld", (long long)x->body_len);
            add_field(x, "Content-Length", fstore(x, tmp, (size_t)n));
        }
    }
    if (x->resume_from > 0) {
        int n = snprintf(tmp, sizeof tmp, "bytes=%llu-", (unsigned long long)x->resume_from);
        add_field(x, "Range", fstore(x, tmp, (size_t)n));
    }
    if (x->revalidating && !user_has(o, "if-none-match") && !user_has(o, "if-modified-since"))
        add_field(x, x->pl.validator_name, x->pl.validator);
}

/* ------------------------------------------------------------- proxy */

/* Does `host` match an entry of a no_proxy list (curl's rules: "*" is
 * every host; an entry matches the host itself and its subdomains, a
 * leading dot ignored)? */
static int noproxy_match(const char *list, slice_t host)
{
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        if (n == 1 && *p == '*')
            return 1;
        if (n > 0 && *p == '.') {
            p++;
            n--;
        }
        if (n > 0 && n <= host.len && strncasecmp(host.p + host.len - n, p, n) == 0 &&
            (n == host.len || host.p[host.len - n - 1] == '.'))
            return 1;
        p = e;
    }
    return 0;
}

/* The proxy for this URL, or NULL: --proxy, else http_proxy (curl reads
 * only the lower-case name for http), else ALL_PROXY / all_proxy; none
 * when --noproxy / no_proxy / NO_PROXY matches the host. */
static const char *proxy_for(const struct get_opts *o, const http_url_t *u)
{
    const char *np = o->noproxy;
    if (np == NULL)
        np = getenv("no_proxy");
    if (np == NULL)
        np = getenv("NO_PROXY");
    if (np != NULL && noproxy_match(np, u->host))
        return NULL;
    const char *p = o->proxy;
    if (p == NULL)
        p = getenv("http_proxy");
    if (p == NULL || *p == '\0')
        p = getenv("all_proxy");
    if (p == NULL || *p == '\0')
        p = getenv("ALL_PROXY");
    return p != NULL && *p != '\0' ? p : NULL;
}

/* --------------------------------------------------------- responses */

static void print_head(FILE *f, const char *prefix, const http_response_t *res)
{
    fprintf(f, "%sHTTP/1.%d %d %.*s\r\n", prefix, res->version == 11 ? 1 : 0, res->status,
            (int)res->reason.len, res->reason.p);
    for (size_t i = 0; i < res->nfields; i++)
        fprintf(f, "%s%.*s: %.*s\r\n", prefix, (int)res->fields[i].name.len,
                res->fields[i].name.p, (int)res->fields[i].value.len, res->fields[i].value.p);
    fprintf(f, "%s\r\n", prefix);
}

static void xfer_finish(struct xfer *x, int code)
{
    if (x->done)
        return;
    x->done = 1;
    x->exit_code = code;
    loop_timer_cancel(x->loop, &x->deadline);
    if (x->storing) {
        store_abort(&x->sw);
        x->storing = 0;
    }
    if (code != 0)
        out_abort(x);
    if (x->progress && x->got > 0)
        progress_draw(x, 1);
    loop_break(x->loop);
}

/* Starts storing a response that may be stored. */
static void cache_begin(struct xfer *x, const http_response_t *res)
{
    const char *why;
    if (pcache_store_begin(&x->sw, x->o->cache_dir, slice_cstr(x->url), x->fields, x->nfields,
                           res, x->request_time, time(NULL), &why))
        x->storing = 1;
    else
        vlog(x, "cache: not stored (%s)", why);
}

/* Writes the stored body to the output. */
static int cache_serve_body(struct xfer *x)
{
    char buf[65536];
    uint64_t left = x->pl.entry.body_len;
    off_t off = (off_t)x->pl.entry.body_off;
    while (left > 0) {
        size_t n = left > sizeof buf ? sizeof buf : (size_t)left;
        ssize_t r = pread(x->pl.entry.fd, buf, n, off);
        if (r <= 0) {
            gerr(x, "cannot read the cache entry");
            return EX_READ;
        }
        if (out_write(x, buf, (size_t)r) != 0)
            return EX_WRITE;
        off += r;
        left -= (uint64_t)r;
        x->got += (uint64_t)r;
    }
    return out_commit(x) == 0 ? EX_OK : EX_WRITE;
}

/* Answers from the stored entry: -i head, then the body. */
static int serve_entry(struct xfer *x)
{
    const http_response_t *res = &x->pl.res;
    x->status = res->status;
    if (x->o->verbose)
        print_head(stderr, "< ", res);
    if (x->o->fail && res->status >= 400) {
        gerr(x, "The requested URL returned error: %d", res->status);
        return EX_HTTP;
    }
    if (x->o->include || x->o->head_only) {
        buf_t b;
        buf_init(&b, STORE_META_MAX);
        pcache_head_text(&b, res->status, res->reason, res->fields, res->nfields);
        int rc = out_write(x, buf_head(&b), b.len);
        buf_dispose(&b);
        if (rc != 0)
            return EX_WRITE;
    }
    if (x->o->head_only)
        return out_commit(x) == 0 ? EX_OK : EX_WRITE;
    return cache_serve_body(x);
}

static void on_info(client_req_t *r, const http_response_t *res, void *arg)
{
    (void)r;
    struct xfer *x = arg;
    if (x->o->verbose)
        print_head(stderr, "< ", res);
}

static void sink_try(struct xfer *x, client_req_t *r, const http_response_t *res);

static int is_redirect(int s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

static void on_head(client_req_t *r, const http_response_t *res, void *arg)
{
    struct xfer *x = arg;
    client_conn_info_t ci;
    client_req_info(r, &ci);
    if (x->o->verbose) {
        char a[ADDR_STRLEN];
        vlog(x, "%s connection #%llu to %s%s", ci.reused ? "Re-used" : "Connected:",
             (unsigned long long)ci.conn_id, addr_format(&ci.peer, a, sizeof a),
             ci.retried ? " (retried after the server closed a kept-alive connection)" : "");
        print_head(stderr, "< ", res);
    }
    x->in_body = 1;
    x->status = res->status;
    x->got = 0;
    x->spliced = 0;
    x->expect_len = res->content_length;
    x->discard = 0;
    x->redirect_to = 0;

    if (x->revalidating && res->status == 304) {
        int rc = pcache_update(&x->pl, x->o->cache_dir, slice_cstr(x->url), res,
                               x->request_time, time(NULL));
        if (rc != 0)
            vlog(x, "cache: could not update the entry (%s): serving the old one",
                 strerror(-rc));
        vlog(x, "cache: REVALIDATED");
        x->discard = 1;
        x->status = -304; /* served from the entry at the end */
        return;
    }
    if (x->o->follow && is_redirect(res->status)) {
        const http_field_t *loc = http_response_field(res, "location");
        if (loc != NULL) {
            const char *why;
            int n = http_url_resolve(slice_cstr(x->url), loc->value, x->location,
                                     sizeof x->location, &why);
            if (n < 0) {
                gerr(x, "bad Location in the redirect: %s", why);
                xfer_finish(x, EX_URL);
                client_req_cancel(r);
                return;
            }
            x->redirect_to = 1;
            x->discard = 1;
            if (x->o->include) {
                buf_t b;
                buf_init(&b, SIZE_MAX);
                pcache_head_text(&b, res->status, res->reason, res->fields, res->nfields);
                out_write(x, buf_head(&b), b.len);
                buf_dispose(&b);
            }
            return;
        }
    }
    if (x->o->fail && res->status >= 400) {
        gerr(x, "The requested URL returned error: %d", res->status);
        xfer_finish(x, EX_HTTP);
        client_req_cancel(r);
        return;
    }
    if (x->resume_from > 0) {
        if (res->status == 416) {
            const http_field_t *cr = http_response_field(res, "content-range");
            char want[48];
            snprintf(want, sizeof want, "bytes */%llu", (unsigned long long)x->resume_from);
            if (cr != NULL && http_slice_ieq(cr->value, want)) {
                vlog(x, "the file is already complete");
                x->discard = 1;
                x->status = -416;
                return;
            }
        }
        if (res->status != 206) {
            gerr(x, "HTTP server does not seem to support byte ranges: cannot resume");
            xfer_finish(x, EX_RANGE);
            client_req_cancel(r);
            return;
        }
        const http_field_t *cr = http_response_field(res, "content-range");
        char want[48];
        int n = snprintf(want, sizeof want, "bytes %llu-", (unsigned long long)x->resume_from);
        if (cr == NULL || cr->value.len < (size_t)n ||
            strncasecmp(cr->value.p, want, (size_t)n) != 0) {
            gerr(x, "the server sent another range than the one asked for");
            xfer_finish(x, EX_RANGE);
            client_req_cancel(r);
            return;
        }
        if (x->expect_len >= 0)
            x->expect_len += (int64_t)x->resume_from;
        x->got = x->resume_from;
    }
    if (x->use_cache && strcmp(x->method, "GET") == 0 && x->resume_from == 0) {
        if (x->revalidating)
            vlog(x, "cache: MISS (the origin sent a new response)");
        cache_begin(x, res);
    }
    if (x->o->include || x->o->head_only) {
        buf_t b;
        buf_init(&b, SIZE_MAX);
        pcache_head_text(&b, res->status, res->reason, res->fields, res->nfields);
        int rc = out_write(x, buf_head(&b), b.len);
        buf_dispose(&b);
        if (rc != 0) {
            xfer_finish(x, EX_WRITE);
            client_req_cancel(r);
            return;
        }
    }
    if (x->o->head_only)
        x->discard = 1;
    x->prog_start_ms = loop_now(x->loop);
    sink_try(x, r, res);
}

/* A sized body that only goes to the output (no cache copy) moves from
 * the socket to it by splice(2); a terminal gets writes (splice to a tty
 * is refused, and -i heads are written before anyway). The engine keeps
 * the length check exact and falls back to on_data when the output cannot
 * take a splice. */
static void sink_try(struct xfer *x, client_req_t *r, const http_response_t *res)
{
    if (x->o->no_splice || x->discard || x->storing || res->content_length <= 0)
        return;
    if (out_open(x) != 0) {
        xfer_finish(x, EX_WRITE);
        client_req_cancel(r);
        return;
    }
    if (!isatty(x->out_fd))
        (void)client_req_sink(r, x->out_fd); /* refused: on_data as before */
}

static void on_sunk(client_req_t *r, size_t n, void *arg)
{
    (void)r;
    struct xfer *x = arg;
    x->got += n;
    x->spliced += n;
    if (x->progress)
        progress_draw(x, 0);
}

static void sink_report(const struct xfer *x)
{
    if (x->spliced > 0)
        vlog(x, "%llu body bytes spliced from the socket to the output",
             (unsigned long long)x->spliced);
}

static int on_data(client_req_t *r, slice_t d, void *arg)
{
    struct xfer *x = arg;
    if (x->discard)
        return 0;
    if (out_write(x, d.p, d.len) != 0) {
        xfer_finish(x, EX_WRITE);
        client_req_cancel(r);
        return 0;
    }
    if (x->storing && store_write(&x->sw, d.p, d.len) != 0) {
        vlog(x, "cache: write failed, entry dropped");
        store_abort(&x->sw);
        x->storing = 0;
    }
    x->got += d.len;
    if (x->progress)
        progress_draw(x, 0);
    return 0;
}

static void xfer_request(struct xfer *x);

static void on_end(client_req_t *r, void *arg)
{
    (void)r;
    struct xfer *x = arg;
    x->req = NULL;
    sink_report(x);
    if (x->redirect_to) {
        if (++x->redirects > x->o->max_redirs) {
            gerr(x, "Maximum (%ld) redirects followed", x->o->max_redirs);
            xfer_finish(x, EX_REDIRS);
            return;
        }
        http_url_t nu;
        const char *why;
        if (http_url_parse(x->location, strlen(x->location), &nu, &why) != 0 ||
            nu.scheme != HTTP_URL_HTTP) {
            gerr(x, "cannot follow the redirect to %s: %s", x->location,
                 nu.scheme == HTTP_URL_HTTPS ? "https is not supported" : why);
            xfer_finish(x, nu.scheme == HTTP_URL_HTTPS ? 1 : EX_URL);
            return;
        }
        vlog(x, "following the redirect to %s", x->location);
        if (x->revalidating) {
            /* The validator belongs to the first URL's entry, not the new one. */
            x->revalidating = 0;
            pcache_lookup_dispose(&x->pl);
        }
        if (x->status == 303 || ((x->status == 301 || x->status == 302) &&
                                 strcmp(x->method, "POST") == 0)) {
            if (strcmp(x->method, "HEAD") != 0)
                x->method = "GET";
            x->send_body = 0;
        }
        if (x->send_body && x->stdin_body) {
            gerr(x, "cannot follow the redirect to %s: the body read from stdin is gone",
                 x->location);
            xfer_finish(x, EX_FAIL);
            return;
        }
        memcpy(x->url, x->location, strlen(x->location) + 1);
        xfer_request(x);
        return;
    }
    if (x->status == -304) {
        xfer_finish(x, serve_entry(x));
        return;
    }
    if (x->storing) {
        if (store_commit(&x->sw) != 0)
            vlog(x, "cache: could not write the entry");
        else
            vlog(x, "cache: stored");
        x->storing = 0;
    }
    if (x->status == -416) {
        xfer_finish(x, EX_OK);
        return;
    }
    if (!x->discard || x->o->head_only) {
        if (out_commit(x) != 0) {
            xfer_finish(x, EX_WRITE);
            return;
        }
    }
    xfer_finish(x, EX_OK);
}

static void on_error(client_req_t *r, enum client_err e, const char *msg, void *arg)
{
    (void)r;
    struct xfer *x = arg;
    x->req = NULL;
    sink_report(x);
    int code;
    switch (e) {
    case CLIENT_E_RESOLVE: code = EX_RESOLVE; break;
    case CLIENT_E_CONNECT: code = EX_CONNECT; break;
    case CLIENT_E_CONNECT_TIMEOUT: code = EX_TIMEOUT; break;
    case CLIENT_E_HEADER_TIMEOUT: code = EX_TIMEOUT; break;
    case CLIENT_E_READ_TIMEOUT: code = EX_TIMEOUT; break;
    /* A bad head is a weird reply (8); a bad chunk, as curl, a receive error. */
    case CLIENT_E_PROTOCOL: code = x->in_body ? EX_RECV : EX_REPLY; break;
    case CLIENT_E_TRUNCATED: code = EX_PARTIAL; break;
    case CLIENT_E_RECV: code = EX_RECV; break;
    case CLIENT_E_EMPTY: code = EX_NOTHING; break;
    case CLIENT_E_SEND: code = EX_RECV; break;
    case CLIENT_E_SINK: code = EX_WRITE; break;
    default: code = EX_FAIL; break;
    }
    gerr(x, "%s: %s", x->url, msg);
    if (x->in_body && x->out_name != NULL)
        gerr(x, "%s was not written: the transfer is incomplete (%llu bytes received)",
             x->out_name, (unsigned long long)x->got);
    xfer_finish(x, code);
}

static void on_deadline(ptimer_t *t, void *arg)
{
    (void)t;
    struct xfer *x = arg;
    if (x->req != NULL)
        client_req_cancel(x->req);
    x->req = NULL;
    gerr(x, "%s: operation timed out after %u ms", x->url, (unsigned)x->o->max_time);
    xfer_finish(x, EX_TIMEOUT);
}

/* -T -: hands stdin to the engine until it is full (on_drain asks again)
 * or stdin ends. Blocking reads: the command has nothing else to do. */
static void feed_stdin(struct xfer *x)
{
    while (x->req != NULL && !x->stdin_eof) {
        if (x->sbuf_off == x->sbuf_len) {
            ssize_t n = read(STDIN_FILENO, x->sbuf, sizeof x->sbuf);
            if (n == -1 && errno == EINTR)
                continue;
            if (n == -1) {
                gerr(x, "cannot read stdin: %s", strerror(errno));
                client_req_cancel(x->req);
                x->req = NULL;
                xfer_finish(x, EX_READ);
                return;
            }
            if (n == 0) {
                x->stdin_eof = 1;
                client_req_finish(x->req);
                return;
            }
            x->sbuf_len = (size_t)n;
            x->sbuf_off = 0;
        }
        client_req_t *r = x->req;
        int rc = client_req_write(r, x->sbuf + x->sbuf_off, x->sbuf_len - x->sbuf_off);
        if (rc == -ENOBUFS)
            return; /* on_drain comes back */
        if (rc != 0)
            return; /* the request failed: on_error says why */
        x->sbuf_off = x->sbuf_len;
    }
}

static void on_drain(client_req_t *r, void *arg)
{
    (void)r;
    feed_stdin(arg);
}

/* Sends the request for x->url (the first, or after a redirect). */
static void xfer_request(struct xfer *x)
{
    const struct get_opts *o = x->o;
    const char *why;
    if (http_url_parse(x->url, strlen(x->url), &x->u, &why) != 0) {
        gerr(x, "bad URL '%s': %s", x->url, why);
        xfer_finish(x, EX_URL);
        return;
    }
    if (x->u.scheme != HTTP_URL_HTTP) {
        gerr(x, "%s: https is not supported (portico get speaks plain HTTP/1.1)", x->url);
        xfer_finish(x, 1);
        return;
    }
    int same_origin = strlen(x->first_host) == x->u.host.len &&
                      strncasecmp(x->first_host, x->u.host.p, x->u.host.len) == 0 &&
                      x->first_port == x->u.port;
    build_fields(x, same_origin);
    x->in_body = 0;

    client_req_opts_t ro = { 0 };
    char target[HTTP_URL_MAX + 16];
    const char *proxy = proxy_for(o, &x->u);
    http_url_t pu;
    char pbuf[HTTP_URL_MAX + 16];
    if (proxy != NULL) {
        if (strstr(proxy, "://") == NULL) {
            snprintf(pbuf, sizeof pbuf, "http://%s", proxy);
            proxy = pbuf;
        } else {
            snprintf(pbuf, sizeof pbuf, "%s", proxy);
            proxy = pbuf;
        }
        if (http_url_parse(proxy, strlen(proxy), &pu, &why) != 0 || pu.scheme != HTTP_URL_HTTP) {
            gerr(x, "bad proxy URL '%s': %s", proxy, pu.scheme != HTTP_URL_HTTP ? "not http" : why);
            xfer_finish(x, 5);
            return;
        }
        if (!pu.has_port)
            pu.port = GET_PROXY_PORT;
        if (pu.has_userinfo && !user_has(o, "proxy-authorization"))
            basic_auth(x, pu.userinfo, "Proxy-Authorization");
        char auth[CLIENT_HOST_MAX + 16];
        http_url_authority(&x->u, auth, sizeof auth);
        snprintf(target, sizeof target, "http://%s%s%.*s", auth, x->u.path.len ? "" : "/",
                 (int)x->u.target.len, x->u.target.p);
        ro.host = pu.host;
        ro.port = pu.port;
        vlog(x, "via proxy %.*s port %u", (int)pu.host.len, pu.host.p, (unsigned)pu.port);
    } else {
        /* An empty path is "/" (RFC 9112 §3.2.1), also before a query. */
        snprintf(target, sizeof target, "%s%.*s", x->u.path.len ? "" : "/",
                 (int)x->u.target.len, x->u.target.p);
        ro.host = x->u.host;
        ro.port = x->u.port;
    }
    ro.method = slice_cstr(x->method);
    ro.target = slice_cstr(target);
    ro.fields = x->fields;
    ro.nfields = x->nfields;
    if (x->send_body && x->stdin_body) {
        ro.body = CLIENT_BODY_STREAM;
        ro.body_len = -1;
    } else if (x->send_body) {
        ro.body = CLIENT_BODY_DATA;
        ro.body_data = x->body;
        ro.body_len = x->body_len;
    }
    if (o->verbose) {
        fprintf(stderr, "> %s %s HTTP/1.1\r\n", x->method, target);
        for (size_t i = 0; i < x->nfields; i++)
            fprintf(stderr, "> %.*s: %.*s\r\n", (int)x->fields[i].name.len, x->fields[i].name.p,
                    (int)x->fields[i].value.len, x->fields[i].value.p);
        fprintf(stderr, ">\r\n");
    }
    static const client_cbs_t cbs = {
        .on_info = on_info, .on_head = on_head, .on_data = on_data,
        .on_end = on_end, .on_error = on_error, .on_drain = on_drain,
        .on_sunk = on_sunk,
    };
    x->request_time = time(NULL);
    int rc = client_request(x->pool, &ro, &cbs, x, &x->req);
    if (rc != 0) {
        gerr(x, "%s: cannot send the request: %s", x->url,
             rc == -EINVAL ? "invalid method, target or header field" : strerror(-rc));
        xfer_finish(x, rc == -EINVAL ? EX_URL : EX_FAIL);
        return;
    }
    if (ro.body == CLIENT_BODY_STREAM)
        feed_stdin(x);
}

/* Tries the cache before the network. Returns 1 when answered. */
static int cache_first(struct xfer *x)
{
    build_fields(x, 1); /* the request we would send: for Vary and its directives */
    pcache_lookup(x->o->cache_dir, slice_cstr(x->url), x->fields, x->nfields, time(NULL),
                  &x->pl);
    switch (x->pl.verdict) {
    case PCACHE_HIT:
        vlog(x, "cache: HIT (age %lld s, fresh for %lld s%s)", (long long)x->pl.age,
             (long long)x->pl.freshness,
             x->pl.stale_ok ? ", stale as allowed by max-stale" : "");
        xfer_finish(x, serve_entry(x));
        return 1;
    case PCACHE_REVALIDATE:
        vlog(x, "cache: stale or must be revalidated (age %lld s, fresh for %lld s): asking "
             "with %s", (long long)x->pl.age, (long long)x->pl.freshness,
             x->pl.validator_name);
        x->revalidating = 1;
        return 0;
    case PCACHE_MISS:
        if (x->pl.dropped)
            vlog(x, "cache: dropped a bad entry (%s)", x->pl.why);
        vlog(x, "cache: MISS (%s)", x->pl.why);
        return 0;
    }
    return 0;
}

/* Runs the transfer of one URL; returns its exit status. */
static int xfer_run(struct xfer *x, const char *url, const char *out_name)
{
    const struct get_opts *o = x->o;
    const char *why;
    int un = strstr(url, "://") == NULL ? snprintf(x->url, sizeof x->url, "http://%s", url)
                                        : snprintf(x->url, sizeof x->url, "%s", url);
    if (un >= (int)sizeof x->url || http_url_parse(x->url, strlen(x->url), &x->u, &why) != 0) {
        gerr(x, "bad URL '%s': %s", url, strlen(url) > HTTP_URL_MAX ? "URL too long" : why);
        return EX_URL;
    }
    snprintf(x->first_host, sizeof x->first_host, "%.*s", (int)x->u.host.len, x->u.host.p);
    x->first_port = x->u.port;
    x->out_name = NULL;
    if (out_name != NULL && strcmp(out_name, "-") != 0) {
        if (out_name[0] == '\0') {
            /* -O: the last segment of the path. */
            http_url_t u;
            http_url_parse(x->url, strlen(x->url), &u, &why);
            const char *s = u.path.p;
            size_t n = u.path.len;
            const char *slash = n ? memrchr(s, '/', n) : NULL;
            if (slash != NULL) {
                n -= (size_t)(slash + 1 - s);
                s = slash + 1;
            }
            static char name[256];
            if (n == 0 || n >= sizeof name || (n == 1 && s[0] == '.') ||
                (n == 2 && s[0] == '.' && s[1] == '.')) {
                gerr(x, "%s: the URL has no file name for -O", x->url);
                return EX_WRITE;
            }
            memcpy(name, s, n);
            name[n] = '\0';
            x->out_name = name;
        } else {
            x->out_name = out_name;
        }
    }
    x->resume_from = 0;
    if (o->resume) {
        struct stat st;
        if (x->out_name == NULL) {
            gerr(x, "-C - needs -o FILE or -O");
            return EXIT_USAGE;
        }
        if (stat(x->out_name, &st) == 0 && S_ISREG(st.st_mode))
            x->resume_from = (uint64_t)st.st_size;
    }
    x->progress = !o->silent && !o->verbose && isatty(STDERR_FILENO) &&
                  (x->out_name != NULL || !isatty(STDOUT_FILENO));
    x->use_cache = o->cache_dir != NULL && strcmp(x->method, "GET") == 0 && !o->resume &&
                   !x->send_body && !user_has(o, "range");
    if (x->use_cache && cache_first(x)) {
        pcache_lookup_dispose(&x->pl);
        return x->exit_code;
    }
    if (o->max_time > 0)
        loop_timer_set(x->loop, &x->deadline, o->max_time);
    xfer_request(x);
    if (!x->done)
        loop_run(x->loop);
    pcache_lookup_dispose(&x->pl);
    return x->exit_code;
}

/* SIGINT, SIGTERM, SIGHUP: the transfer in progress stops (its temporary
 * file removed), no later URL starts, and the exit status is 128 + signo,
 * as a shell reports a process killed by it. */
struct run {
    struct xfer *x;
    int signo;
};

static void on_signal(loop_t *l, int signo, void *arg)
{
    (void)l;
    struct run *run = arg;
    struct xfer *x = run->x;
    run->signo = signo;
    if (x->done)
        return;
    if (x->req != NULL)
        client_req_cancel(x->req);
    x->req = NULL;
    gerr(x, "%s: interrupted", x->url);
    xfer_finish(x, 128 + signo);
}

/* ------------------------------------------------------------ options */

static int read_file(const char *path, char **out, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    buf_t b;
    buf_init(&b, SIZE_MAX);
    for (;;) {
        if (buf_reserve(&b, 65536) != 0) {
            buf_dispose(&b);
            return -ENOMEM;
        }
        ssize_t n = read(fd, buf_tail(&b), buf_room(&b));
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            int e = errno;
            buf_dispose(&b);
            return -e;
        }
        if (n == 0)
            break;
        buf_commit(&b, (size_t)n);
    }
    if (fd != STDIN_FILENO)
        close(fd);
    *out = b.data ? buf_head(&b) : NULL;
    *len = b.len;
    if (b.data && b.off) {
        memmove(b.data, buf_head(&b), b.len);
        *out = b.data;
    }
    return 0;
}

static int add_data(struct get_opts *o, const char *arg, int binary)
{
    char *d = NULL;
    size_t n = 0;
    int owned = 0;
    if (arg[0] == '@') {
        int rc = read_file(arg + 1, &d, &n);
        if (rc != 0) {
            cmd_error("get", "cannot read %s: %s", arg + 1, strerror(-rc));
            return -1;
        }
        owned = 1;
        if (!binary) {
            size_t w = 0;
            for (size_t i = 0; i < n; i++)
                if (d[i] != '\r' && d[i] != '\n')
                    d[w++] = d[i];
            n = w;
        }
    } else {
        d = (char *)arg;
        n = strlen(arg);
    }
    char *nd = realloc(o->data, o->data_len + n + 2);
    if (nd == NULL) {
        if (owned)
            free(d);
        return -1;
    }
    o->data = nd;
    if (o->has_data)
        o->data[o->data_len++] = '&';
    if (n)
        memcpy(o->data + o->data_len, d, n);
    o->data_len += n;
    o->has_data = 1;
    if (owned)
        free(d);
    return 0;
}

/* "0", "0.0": a zero that turns a limit off. */
static int is_zero(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return end != s && *end == '\0' && v == 0.0 && s[0] != '-';
}

static int parse_header(struct get_opts *o, const char *arg)
{
    if (o->nheaders >= GET_MAX_HEADERS) {
        cmd_error("get", "too many -H (at most %d)", GET_MAX_HEADERS);
        return -1;
    }
    const char *colon = strchr(arg, ':');
    const char *semi = strchr(arg, ';');
    http_field_t *f = &o->headers[o->nheaders];
    if (colon == NULL && semi != NULL && semi[1] == '\0') {
        /* "Name;" sends the field with an empty value, as curl. */
        f->name = slice_make(arg, (size_t)(semi - arg));
        f->value = slice_make("", 0);
    } else if (colon == NULL) {
        cmd_error("get", "bad header '%s' (expected 'Name: value')", arg);
        return -1;
    } else {
        f->name = slice_make(arg, (size_t)(colon - arg));
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        f->value = n ? slice_make(v, n) : slice_make(NULL, 0);
    }
    for (size_t i = 0; i < f->name.len; i++)
        if (!http_tchar[(unsigned char)f->name.p[i]]) {
            cmd_error("get", "bad header name in '%s'", arg);
            return -1;
        }
    if (f->name.len == 0) {
        cmd_error("get", "bad header '%s' (empty name)", arg);
        return -1;
    }
    if (f->value.p != NULL &&
        (memchr(f->value.p, '\r', f->value.len) || memchr(f->value.p, '\n', f->value.len))) {
        cmd_error("get", "bad header '%s' (CR or LF in the value)", arg);
        return -1;
    }
    o->nheaders++;
    return 0;
}

enum {
    OPT_DATA_BINARY = 256, OPT_MAX_REDIRS, OPT_CONNECT_TIMEOUT, OPT_NOPROXY, OPT_CACHE,
    OPT_HEADER_TIMEOUT, OPT_READ_TIMEOUT,
    OPT_NO_SPLICE,
};

static int parse_opts(int argc, char **argv, struct get_opts *o)
{
    static const struct option lopts[] = {
        { "request", required_argument, NULL, 'X' },
        { "header", required_argument, NULL, 'H' },
        { "data", required_argument, NULL, 'd' },
        { "data-binary", required_argument, NULL, OPT_DATA_BINARY },
        { "upload-file", required_argument, NULL, 'T' },
        { "output", required_argument, NULL, 'o' },
        { "remote-name", no_argument, NULL, 'O' },
        { "head", no_argument, NULL, 'I' },
        { "include", no_argument, NULL, 'i' },
        { "verbose", no_argument, NULL, 'v' },
        { "location", no_argument, NULL, 'L' },
        { "max-redirs", required_argument, NULL, OPT_MAX_REDIRS },
        { "fail", no_argument, NULL, 'f' },
        { "silent", no_argument, NULL, 's' },
        { "show-error", no_argument, NULL, 'S' },
        { "max-time", required_argument, NULL, 'm' },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT },
        { "read-timeout", required_argument, NULL, OPT_READ_TIMEOUT },
        { "proxy", required_argument, NULL, 'x' },
        { "noproxy", required_argument, NULL, OPT_NOPROXY },
        { "continue-at", required_argument, NULL, 'C' },
        { "cache", required_argument, NULL, OPT_CACHE },
        { "no-splice", no_argument, NULL, OPT_NO_SPLICE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(o, 0, sizeof *o);
    o->max_redirs = GET_DEFAULT_REDIRS;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":X:H:d:T:o:OIivLfsSm:x:C:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'X': o->method = optarg; break;
        case 'H': if (parse_header(o, optarg) != 0) return -1; break;
        case 'd': if (add_data(o, optarg, 0) != 0) return -1; break;
        case OPT_DATA_BINARY: if (add_data(o, optarg, 1) != 0) return -1; break;
        case 'T': o->upload = optarg; break;
        case 'o':
        case 'O':
            if (o->noutputs >= GET_MAX_URLS) {
                cmd_error("get", "too many -o/-O");
                return -1;
            }
            o->outputs[o->noutputs++] = c == 'o' ? optarg : "";
            break;
        case 'I': o->head_only = 1; break;
        case 'i': o->include = 1; break;
        case 'v': o->verbose = 1; break;
        case 'L': o->follow = 1; break;
        case OPT_MAX_REDIRS: {
            char *end;
            o->max_redirs = strtol(optarg, &end, 10);
            if (*end || end == optarg || o->max_redirs < 0) {
                cmd_error("get", "bad --max-redirs '%s'", optarg);
                return -1;
            }
            break;
        }
        case 'f': o->fail = 1; break;
        case 's': o->silent = 1; break;
        case 'S': o->show_error = 1; break;
        case 'm':
            if (is_zero(optarg))
                o->max_time = 0; /* no limit, as for curl */
            else if (cmd_parse_secs(optarg, &o->max_time) != 0) {
                cmd_error("get", "bad --max-time '%s' (seconds)", optarg);
                return -1;
            }
            break;
        case OPT_CONNECT_TIMEOUT:
        case OPT_HEADER_TIMEOUT:
        case OPT_READ_TIMEOUT: {
            uint32_t *d = c == OPT_CONNECT_TIMEOUT ? &o->connect_timeout
                        : c == OPT_HEADER_TIMEOUT ? &o->header_timeout : &o->read_timeout;
            if (cmd_parse_secs(optarg, d) != 0) {
                cmd_error("get", "bad --%s '%s' (seconds)",
                          c == OPT_CONNECT_TIMEOUT ? "connect-timeout"
                          : c == OPT_HEADER_TIMEOUT ? "header-timeout" : "read-timeout", optarg);
                return -1;
            }
            break;
        }
        case 'x': o->proxy = optarg; break;
        case OPT_NOPROXY: o->noproxy = optarg; break;
        case 'C':
            if (strcmp(optarg, "-") != 0) {
                cmd_error("get", "-C takes '-' (resume where the file ends)");
                return -1;
            }
            o->resume = 1;
            break;
        case OPT_CACHE: o->cache_dir = optarg; break;
        case OPT_NO_SPLICE: o->no_splice = 1; break;
        case 'h': get_usage(stdout); return 1;
        case ':':
            cmd_error("get", "option '%s' needs a value", argv[optind - 1]);
            return -1;
        default:
            cmd_error("get", "unknown option '%s' (see 'portico get --help')", argv[optind - 1]);
            return -1;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (o->nurls >= GET_MAX_URLS) {
            cmd_error("get", "too many URLs (at most %d)", GET_MAX_URLS);
            return -1;
        }
        o->urls[o->nurls++] = argv[i];
    }
    if (o->nurls == 0) {
        cmd_error("get", "no URL (see 'portico get --help')");
        return -1;
    }
    if (o->upload && o->has_data) {
        cmd_error("get", "-T and -d cannot be used together");
        return -1;
    }
    if (o->cache_dir != NULL) {
        struct stat st;
        if (stat(o->cache_dir, &st) != 0 && mkdir(o->cache_dir, 0700) != 0) {
            cmd_error("get", "cannot create the cache directory %s: %s", o->cache_dir,
                      strerror(errno));
            return -1;
        }
    }
    return 0;
}

int cmd_get(int argc, char **argv)
{
    struct get_opts *o = calloc(1, sizeof *o);
    if (o == NULL)
        return EX_FAIL;
    int rc = parse_opts(argc, argv, o);
    if (rc != 0) {
        free(o->data);
        free(o);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    loop_block_signals();
    dns_conf_t dns;
    dns_conf_init(&dns);
    dns_conf_load(&dns, NULL, NULL);
    loop_t *loop = loop_new();
    client_opts_t co;
    client_opts_default(&co);
    co.dns = &dns;
    if (o->connect_timeout > 0)
        co.connect_timeout_ms = o->connect_timeout;
    if (o->header_timeout > 0)
        co.header_timeout_ms = o->header_timeout;
    if (o->read_timeout > 0)
        co.read_timeout_ms = o->read_timeout;
    client_pool_t *pool = loop ? client_pool_new(loop, &co) : NULL;
    if (pool == NULL) {
        cmd_error("get", "out of memory");
        return EX_FAIL;
    }

    struct xfer *x = calloc(1, sizeof *x);
    struct run run = { x, 0 };
    if (x == NULL || loop_signals(loop, on_signal, &run) != 0) {
        cmd_error("get", "cannot set up the loop");
        free(x);
        client_pool_free(pool);
        loop_free(loop);
        dns_conf_dispose(&dns);
        free(o->data);
        free(o);
        return EX_FAIL;
    }
    void *map = NULL;
    size_t map_len = 0;
    int code = EX_OK;
    int from_stdin = o->upload != NULL && strcmp(o->upload, "-") == 0;
    if (o->upload && !from_stdin) {
        int fd = open(o->upload, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd == -1 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            cmd_error("get", "cannot read %s: %s", o->upload,
                      fd == -1 ? strerror(errno) : "not a regular file");
            if (fd != -1)
                close(fd);
            code = EX_READ;
            goto out;
        }
        map_len = (size_t)st.st_size;
        if (map_len > 0) {
            map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
            if (map == MAP_FAILED) {
                cmd_error("get", "cannot map %s: %s", o->upload, strerror(errno));
                close(fd);
                map = NULL;
                code = EX_READ;
                goto out;
            }
        }
        close(fd);
    }
    for (size_t i = 0; i < o->nurls && run.signo == 0; i++) {
        memset(x, 0, sizeof *x);
        x->o = o;
        x->loop = loop;
        x->pool = pool;
        x->out_fd = -1;
        timer_init(&x->deadline, on_deadline, x);
        x->method = o->method ? o->method : o->head_only ? "HEAD" : o->upload ? "PUT"
                  : o->has_data ? "POST" : "GET";
        if (from_stdin) {
            x->send_body = 1;
            x->stdin_body = 1;
        } else if (o->upload) {
            x->send_body = 1;
            x->body = map ? map : "";
            x->body_len = (int64_t)map_len;
        } else if (o->has_data) {
            x->send_body = 1;
            x->body = o->data;
            x->body_len = (int64_t)o->data_len;
        }
        char url[HTTP_URL_MAX + 256];
        const char *u = o->urls[i];
        if (o->upload && !from_stdin && u[0] && u[strlen(u) - 1] == '/') {
            const char *base = strrchr(o->upload, '/');
            snprintf(url, sizeof url, "%s%s", u, base ? base + 1 : o->upload);
            u = url;
        }
        int rc2 = xfer_run(x, u, i < o->noutputs ? o->outputs[i] : NULL);
        fflush(stdout);
        if (rc2 != 0)
            code = rc2; /* the last failure decides, as with curl */
    }
    if (run.signo != 0)
        code = 128 + run.signo;
out:
    if (map)
        munmap(map, map_len);
    free(x);
    client_pool_free(pool);
    loop_free(loop);
    dns_conf_dispose(&dns);
    free(o->data);
    free(o);
    return code;
}
