/* nc.c - `portico nc`: TCP and UDP sockets from the shell.
 *
 * Modes:
 *   nc HOST PORT              TCP client: stdin -> socket, socket -> stdout
 *   nc -l [HOST] PORT         TCP listener relaying stdio with one client
 *   nc -l --echo [HOST] PORT  TCP echo server, many clients at once, N workers
 *   -u                        the same over UDP (one datagram per stdin line)
 *
 * Everything runs on the core event loop. stdin is read only while the
 * bytes already read from it have room in the send buffer, so a slow peer
 * slows the reader instead of growing memory. */
#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/workers.h"
#include "dns/hostaddr.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NC_MAX_ADDRS 8
#define NC_READ_CHUNK (64u * 1024u)

struct nc_opts {
    int listen, keep, udp, echo, verbose;
    int family;
    uint32_t timeout_ms; /* -w: connect and idle timeout, 0 = none */
    int workers;
    uint32_t shutdown_ms;
    const char *host;    /* NULL: every address (listen only) */
    uint16_t port;
};

struct nc {
    struct nc_opts o;
    loop_t *loop;
    addr_t addrs[NC_MAX_ADDRS];
    int naddrs;
    int exit_code;
};

/* ---------------------------------------------------------------- usage */

static void nc_usage(FILE *out)
{
    fprintf(out,
            "usage: portico nc [OPTIONS] HOST PORT           connect\n"
            "       portico nc -l [OPTIONS] [HOST] PORT      listen\n"
            "\n"
            "Connects stdin and stdout to a TCP or UDP socket. On stdin EOF a TCP\n"
            "connection is half-closed and output goes on until the peer closes.\n"
            "\n"
            "options:\n"
            "  -l                 listen instead of connecting (HOST: address to bind;\n"
            "                     none means every address)\n"
            "  -k                 keep listening after a client leaves\n"
            "      --echo         with -l: send every byte back to its sender; many\n"
            "                     clients at once, on --workers threads\n"
            "  -u                 UDP: each stdin line is sent as one datagram\n"
            "  -4, -6             IPv4 or IPv6 only\n"
            "  -v                 print local and peer addresses on stderr\n"
            "  -w SECS            connect and idle timeout (with -u: how long to wait for\n"
            "                     replies after stdin ends; default %d s)\n"
            "      --workers N    echo server threads (default: number of CPUs)\n"
            "      --shutdown-timeout SECS\n"
            "                     on SIGTERM/SIGINT, how long open connections may take\n"
            "                     to finish (default %d s)\n"
            "      --log-level L  error, warn, info or debug (default warn)\n"
            "      --log-file F   log to F instead of stderr (reopened on SIGHUP)\n"
            "  -h, --help         this text\n"
            "\n"
            "exit status: 0 done, 1 network or system error, 2 bad usage\n",
            NC_UDP_LINGER_MS / 1000, SHUTDOWN_TIMEOUT_MS / 1000);
}


static int parse_args(struct nc_opts *o, int argc, char **argv, int *done)
{
    enum { OPT_ECHO = 256, OPT_WORKERS, OPT_SHUTDOWN, OPT_LOGLEVEL, OPT_LOGFILE };
    static const struct option longopts[] = {
        { "echo", no_argument, NULL, OPT_ECHO },
        { "workers", required_argument, NULL, OPT_WORKERS },
        { "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN },
        { "log-level", required_argument, NULL, OPT_LOGLEVEL },
        { "log-file", required_argument, NULL, OPT_LOGFILE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *log_file = NULL;
    int level = LOG_WARN;

    memset(o, 0, sizeof *o);
    o->family = AF_UNSPEC;
    o->shutdown_ms = SHUTDOWN_TIMEOUT_MS;
    *done = 0;
    opterr = 0;
    optind = 0; /* 0, not 1: glibc then fully resets its scan state */
    int c;
    while ((c = getopt_long(argc, argv, "+:lkuv46w:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = 1; break;
        case 'k': o->keep = 1; break;
        case 'u': o->udp = 1; break;
        case 'v': o->verbose = 1; break;
        case '4': o->family = AF_INET; break;
        case '6': o->family = AF_INET6; break;
        case OPT_ECHO: o->echo = 1; break;
        case 'w':
            if (cmd_parse_secs(optarg, &o->timeout_ms) < 0) {
                cmd_error("nc", "invalid timeout '%s': expected seconds > 0", optarg);
                return -1;
            }
            break;
        case OPT_SHUTDOWN:
            if (cmd_parse_secs(optarg, &o->shutdown_ms) < 0) {
                cmd_error("nc", "invalid shutdown timeout '%s': expected seconds > 0", optarg);
                return -1;
            }
            break;
        case OPT_WORKERS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n < 1 || n > WORKERS_MAX) {
                cmd_error("nc", "invalid worker count '%s': expected 1-%d", optarg, WORKERS_MAX);
                return -1;
            }
            o->workers = (int)n;
            break;
        }
        case OPT_LOGLEVEL:
            level = log_level_parse(optarg);
            if (level < 0) {
                cmd_error("nc", "invalid log level '%s': expected error, warn, info or debug", optarg);
                return -1;
            }
            break;
        case OPT_LOGFILE: log_file = optarg; break;
        case 'h':
            nc_usage(stdout);
            *done = 1;
            return 0;
        case ':':
            if (strncmp(argv[optind - 1], "--", 2) != 0 && optopt && optopt < 256)
                cmd_error("nc", "option '-%c' needs a value (see portico nc --help)", optopt);
            else
                cmd_error("nc", "option '%s' needs a value (see portico nc --help)", argv[optind - 1]);
            return -1;
        default:
            if (strncmp(argv[optind - 1], "--", 2) != 0 && optopt && optopt < 256)
                cmd_error("nc", "unknown option '-%c' (see portico nc --help)", optopt);
            else
                cmd_error("nc", "unknown option '%s' (see portico nc --help)", argv[optind - 1]);
            return -1;
        }
    }
    int nargs = argc - optind;
    const char *port_arg;
    if (o->listen) {
        if (nargs < 1 || nargs > 2) {
            cmd_error("nc", "-l takes [HOST] PORT (see portico nc --help)");
            return -1;
        }
        o->host = nargs == 2 ? argv[optind] : NULL;
        port_arg = argv[argc - 1];
    } else {
        if (nargs != 2) {
            cmd_error("nc", nargs == 0   ? "missing HOST and PORT (see portico nc --help)"
                            : nargs == 1 ? "missing PORT (see portico nc --help)"
                                         : "too many arguments (see portico nc --help)");
            return -1;
        }
        if (o->keep || o->echo) {
            cmd_error("nc", "%s needs -l", o->keep ? "-k" : "--echo");
            return -1;
        }
        o->host = argv[optind];
        port_arg = argv[optind + 1];
    }
    if (port_parse(port_arg, &o->port) < 0) {
        cmd_error("nc", "invalid port '%s': must be 1-65535", port_arg);
        return -1;
    }
    if (o->workers == 0)
        o->workers = workers_default_count();
    int rc = log_open(log_file, (enum log_level)level);
    if (rc < 0) {
        cmd_error("nc", "cannot open log file '%s': %s", log_file, strerror(-rc));
        return -1;
    }
    return 0;
}

static void verbose(const struct nc *nc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void verbose(const struct nc *nc, const char *fmt, ...)
{
    if (!nc->o.verbose)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "portico nc: %s\n", line);
}

/* Writes all of p to fd, waiting with poll() when fd is non-blocking.
 * Returns 0 or -errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                poll(&pfd, 1, -1);
                continue;
            }
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---------------------------------------------------------------- relay
 *
 * One socket connected to stdio: the TCP client, the TCP listener's one
 * client, and both UDP relay modes. */

struct relay {
    struct nc *nc;
    loop_t *loop;
    io_t net;
    io_t in;
    int in_file;      /* stdin cannot be polled (a file, /dev/null): read on a timer */
    int in_eof;
    int in_paused;
    int wr_shut;      /* SHUT_WR sent (TCP) */
    int active;       /* a peer is attached */
    buf_t out;        /* read from stdin, not yet sent */
    ptimer_t idle;
    ptimer_t in_kick;
    ptimer_t linger;
    char rbuf[UDP_MAX_PAYLOAD + 1];

    /* listening */
    io_t lis[NC_MAX_ADDRS];
    int nlis;
};

static void relay_finish(struct relay *r, int code)
{
    r->nc->exit_code = code;
    loop_break(r->loop);
}

static void relay_touch(struct relay *r)
{
    if (r->nc->o.timeout_ms && r->active)
        loop_timer_set(r->loop, &r->idle, (uint64_t)r->nc->o.timeout_ms);
}

static void relay_stdin_want(struct relay *r, int want);
static void relay_flush(struct relay *r);
static void relay_detach(struct relay *r);

static void relay_fail(struct relay *r, const char *what, int err)
{
    char a[ADDR_STRLEN];
    addr_t peer;
    if (r->net.fd >= 0 && sock_peer(r->net.fd, &peer) == 0)
        cmd_error("nc", "%s %s: %s", what, addr_format(&peer, a, sizeof a), strerror(err));
    else
        cmd_error("nc", "%s: %s", what, strerror(err));
    relay_finish(r, 1);
}

/* The peer closed (or, for -k, left): wait for the next one or end. */
static void relay_peer_gone(struct relay *r)
{
    verbose(r->nc, "connection closed by peer");
    if (r->nc->o.listen && r->nc->o.keep && !r->nc->o.udp) {
        relay_detach(r);
        for (int i = 0; i < r->nlis; i++)
            loop_io_mod(&r->lis[i], EPOLLIN | EPOLLET);
        return;
    }
    relay_finish(r, 0);
}

static void relay_read_net(struct relay *r)
{
    for (;;) {
        ssize_t n = recv(r->net.fd, r->rbuf, sizeof r->rbuf, 0);
        if (n > 0) {
            relay_touch(r);
            if (r->nc->o.udp && r->linger.cb != NULL && timer_armed(&r->linger))
                loop_timer_set(r->loop, &r->linger,
                               (uint64_t)(r->nc->o.timeout_ms ? r->nc->o.timeout_ms : NC_UDP_LINGER_MS));
            int rc = write_all(STDOUT_FILENO, r->rbuf, (size_t)n);
            if (rc < 0) {
                cmd_error("nc", "write to stdout: %s", strerror(-rc));
                relay_finish(r, 1);
                return;
            }
            continue;
        }
        if (n == 0 && !r->nc->o.udp) {
            relay_peer_gone(r);
            return;
        }
        if (n == 0)
            continue; /* an empty datagram */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return;
        if (errno == ECONNREFUSED)
            relay_fail(r, r->nc->o.udp ? "no listener at" : "connection refused by", ECONNREFUSED);
        else if (errno == ECONNRESET)
            relay_peer_gone(r);
        else
            relay_fail(r, "receive from", errno);
        return;
    }
}

static void on_relay_net(io_t *io, uint32_t ev)
{
    struct relay *r = io->arg;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        relay_read_net(r);
        if (r->net.fd < 0 || !r->active)
            return;
    }
    if (ev & (EPOLLOUT | EPOLLERR))
        relay_flush(r);
}

/* Sends what stdin gave: a byte stream over TCP, one datagram per line
 * over UDP (the last line may lack its newline once stdin has ended). */
static void relay_flush(struct relay *r)
{
    if (!r->active || r->net.fd < 0)
        return;
    while (r->out.len > 0) {
        size_t n = r->out.len;
        if (r->nc->o.udp) {
            char *nl = memchr(buf_head(&r->out), '\n', r->out.len);
            if (nl != NULL) {
                n = (size_t)(nl - buf_head(&r->out)) + 1;
            } else if (!r->in_eof) {
                if (r->out.len > UDP_MAX_PAYLOAD) {
                    cmd_error("nc", "a line longer than %u bytes does not fit in one datagram",
                              UDP_MAX_PAYLOAD);
                    relay_finish(r, 1);
                }
                break; /* wait for the rest of the line */
            }
            if (n > UDP_MAX_PAYLOAD) {
                cmd_error("nc", "a line longer than %u bytes does not fit in one datagram",
                          UDP_MAX_PAYLOAD);
                relay_finish(r, 1);
                return;
            }
        }
        ssize_t w = send(r->net.fd, buf_head(&r->out), n, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            if (errno == ECONNREFUSED)
                relay_fail(r, r->nc->o.udp ? "no listener at" : "connection refused by", errno);
            else if (errno == EPIPE || errno == ECONNRESET)
                relay_peer_gone(r);
            else
                relay_fail(r, "send to", errno);
            return;
        }
        relay_touch(r);
        buf_consume(&r->out, (size_t)w);
    }
    if (r->in_paused && r->out.len < r->out.cap)
        relay_stdin_want(r, 1);
    if (r->out.len == 0 && r->in_eof && !r->wr_shut) {
        r->wr_shut = 1;
        if (!r->nc->o.udp) {
            shutdown(r->net.fd, SHUT_WR);
        } else {
            loop_timer_set(r->loop, &r->linger,
                           (uint64_t)(r->nc->o.timeout_ms ? r->nc->o.timeout_ms : NC_UDP_LINGER_MS));
        }
    }
}

static void relay_read_stdin(struct relay *r)
{
    if (buf_reserve(&r->out, 1) < 0) {
        relay_stdin_want(r, 0);
        return;
    }
    size_t room = r->out.cap - r->out.len;
    if (room > NC_READ_CHUNK)
        room = NC_READ_CHUNK;
    if (buf_reserve(&r->out, room) < 0) {
        cmd_error("nc", "out of memory");
        relay_finish(r, 1);
        return;
    }
    ssize_t n = read(STDIN_FILENO, buf_tail(&r->out), room);
    if (n == -1) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        cmd_error("nc", "read from stdin: %s", strerror(errno));
        relay_finish(r, 1);
        return;
    }
    if (n == 0) {
        r->in_eof = 1;
        relay_stdin_want(r, 0);
        if (r->in.fd >= 0)
            loop_io_del(&r->in);
    } else {
        buf_commit(&r->out, (size_t)n);
        relay_touch(r);
    }
    if (r->out.len >= r->out.cap)
        relay_stdin_want(r, 0);
    relay_flush(r);
}

static void on_relay_stdin(io_t *io, uint32_t ev)
{
    (void)ev;
    relay_read_stdin(io->arg);
}

static void on_stdin_kick(ptimer_t *t, void *arg)
{
    (void)t;
    struct relay *r = arg;
    relay_read_stdin(r);
    if (!r->in_paused && !r->in_eof)
        loop_timer_set(r->loop, &r->in_kick, 0);
}

/* Starts or stops reading stdin. */
static void relay_stdin_want(struct relay *r, int want)
{
    if (r->in_eof)
        want = 0;
    r->in_paused = !want;
    if (r->in_file) {
        if (want)
            loop_timer_set(r->loop, &r->in_kick, 0);
        else
            loop_timer_cancel(r->loop, &r->in_kick);
    } else if (r->in.fd >= 0) {
        loop_io_mod(&r->in, want ? EPOLLIN : 0);
    }
}

static void on_relay_idle(ptimer_t *t, void *arg)
{
    (void)t;
    struct relay *r = arg;
    verbose(r->nc, "idle for %u ms: closing", (unsigned)r->nc->o.timeout_ms);
    relay_finish(r, 0);
}

static void on_relay_linger(ptimer_t *t, void *arg)
{
    (void)t;
    relay_finish(arg, 0);
}

static int relay_init(struct relay *r, struct nc *nc)
{
    memset(r, 0, sizeof *r);
    r->nc = nc;
    r->loop = nc->loop;
    r->net.fd = -1;
    r->in.fd = -1;
    buf_init(&r->out, NC_BUF_CAP);
    timer_init(&r->idle, on_relay_idle, r);
    timer_init(&r->in_kick, on_stdin_kick, r);
    timer_init(&r->linger, on_relay_linger, r);
    /* Level-triggered: stdin stays blocking (it may be shared with the
     * shell), and is read once per readiness report. */
    int rc = loop_io_add(r->loop, &r->in, STDIN_FILENO, 0, on_relay_stdin, r);
    if (rc == -EPERM)
        r->in_file = 1;
    else if (rc < 0)
        return rc;
    r->in_paused = 1;
    return 0;
}

static void relay_dispose(struct relay *r)
{
    loop_io_close(&r->net);
    if (r->in.fd >= 0)
        loop_io_del(&r->in);
    for (int i = 0; i < r->nlis; i++)
        loop_io_close(&r->lis[i]);
    loop_timer_cancel(r->loop, &r->idle);
    loop_timer_cancel(r->loop, &r->in_kick);
    loop_timer_cancel(r->loop, &r->linger);
    buf_dispose(&r->out);
}

/* Attaches a connected socket; registers it unless `registered`. */
static int relay_attach(struct relay *r, int fd)
{
    int rc = loop_io_add(r->loop, &r->net, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                         on_relay_net, r);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    r->active = 1;
    r->wr_shut = 0;
    relay_touch(r);
    relay_stdin_want(r, r->out.len < r->out.cap);
    relay_flush(r);
    return 0;
}

static void relay_detach(struct relay *r)
{
    loop_io_close(&r->net);
    r->active = 0;
    loop_timer_cancel(r->loop, &r->idle);
    relay_stdin_want(r, 0);
}

/* ----------------------------------------------------------- tcp client */

struct connector {
    struct relay *r;
    int next;          /* next address to try */
    int last_err;
    io_t io;
    ptimer_t timer;
};

static void connect_next(struct connector *c);

static void connect_done(struct connector *c, int fd)
{
    struct nc *nc = c->r->nc;
    loop_timer_cancel(nc->loop, &c->timer);
    if (nc->o.verbose) {
        addr_t local, peer;
        char la[ADDR_STRLEN], pa[ADDR_STRLEN];
        sock_local(fd, &local);
        sock_peer(fd, &peer);
        verbose(nc, "connected to %s from %s (%s)", addr_format(&peer, pa, sizeof pa),
                addr_format(&local, la, sizeof la), nc->o.udp ? "udp" : "tcp");
    }
    if (!nc->o.udp)
        sock_nodelay(fd);
    int rc = relay_attach(c->r, fd);
    if (rc < 0) {
        cmd_error("nc", "cannot watch the socket: %s", strerror(-rc));
        relay_finish(c->r, 1);
    }
}

static void connect_failed(struct connector *c, int err)
{
    char a[ADDR_STRLEN];
    c->last_err = err;
    log_debug("connect to %s: %s", addr_format(&c->r->nc->addrs[c->next - 1], a, sizeof a),
              strerror(err));
    connect_next(c);
}

static void on_connect_io(io_t *io, uint32_t ev)
{
    (void)ev;
    struct connector *c = io->arg;
    int fd = io->fd;
    int rc = sock_connect_result(fd);
    loop_io_del(io);
    if (rc == 0) {
        connect_done(c, fd);
        return;
    }
    close(fd);
    connect_failed(c, -rc);
}

static void on_connect_timeout(ptimer_t *t, void *arg)
{
    (void)t;
    struct connector *c = arg;
    loop_io_close(&c->io);
    connect_failed(c, ETIMEDOUT);
}

static void connect_next(struct connector *c)
{
    struct nc *nc = c->r->nc;
    while (c->next < nc->naddrs) {
        const addr_t *a = &nc->addrs[c->next++];
        int socktype = nc->o.udp ? SOCK_DGRAM : SOCK_STREAM;
        int fd = sock_connect(a, socktype);
        if (fd < 0) {
            c->last_err = -fd;
            continue;
        }
        if (nc->o.udp) {
            connect_done(c, fd);
            return;
        }
        int rc = loop_io_add(nc->loop, &c->io, fd, EPOLLOUT | EPOLLET, on_connect_io, c);
        if (rc < 0) {
            close(fd);
            c->last_err = -rc;
            continue;
        }
        if (nc->o.timeout_ms)
            loop_timer_set(nc->loop, &c->timer, (uint64_t)nc->o.timeout_ms);
        return;
    }
    char a[ADDR_STRLEN];
    const addr_t *last = &nc->addrs[nc->naddrs - 1];
    if (c->last_err == ETIMEDOUT)
        cmd_error("nc", "connect to %s: timed out after %g s", addr_format(last, a, sizeof a),
                  nc->o.timeout_ms / 1000.0);
    else
        cmd_error("nc", "connect to %s: %s", addr_format(last, a, sizeof a), strerror(c->last_err));
    relay_finish(c->r, 1);
}

/* ------------------------------------------------------- relay listener */

static void on_relay_accept(io_t *io, uint32_t ev)
{
    (void)ev;
    struct relay *r = io->arg;
    struct nc *nc = r->nc;
    if (r->active)
        return;
    addr_t peer;
    int fd;
    if (nc->o.udp) {
        /* The first datagram names the peer: connect to it and relay. */
        socklen_t len = sizeof peer.ss;
        ssize_t n = recvfrom(io->fd, r->rbuf, sizeof r->rbuf, 0, (struct sockaddr *)&peer.ss, &len);
        if (n == -1)
            return;
        peer.len = len;
        fd = io->fd;
        if (connect(fd, (struct sockaddr *)&peer.ss, peer.len) == -1) {
            relay_fail(r, "connect to", errno);
            return;
        }
        loop_io_del(io);
        char pa[ADDR_STRLEN];
        verbose(nc, "datagram from %s", addr_format(&peer, pa, sizeof pa));
        if (write_all(STDOUT_FILENO, r->rbuf, (size_t)n) < 0) {
            relay_finish(r, 1);
            close(fd);
            return;
        }
    } else {
        fd = sock_accept(io->fd, &peer);
        if (fd < 0) {
            if (fd != -EAGAIN && fd != -ECONNABORTED)
                log_warn("accept: %s", strerror(-fd));
            return;
        }
        sock_nodelay(fd);
        if (nc->o.verbose) {
            addr_t local;
            char la[ADDR_STRLEN], pa[ADDR_STRLEN];
            sock_local(fd, &local);
            verbose(nc, "connection from %s to %s", addr_format(&peer, pa, sizeof pa),
                    addr_format(&local, la, sizeof la));
        }
    }
    /* One client at a time: stop listening (for good without -k). */
    for (int i = 0; i < r->nlis; i++) {
        if (nc->o.keep && !nc->o.udp)
            loop_io_mod(&r->lis[i], 0);
        else
            loop_io_close(&r->lis[i]);
    }
    if (!(nc->o.keep && !nc->o.udp))
        r->nlis = 0;
    int rc = relay_attach(r, fd);
    if (rc < 0) {
        cmd_error("nc", "cannot watch the socket: %s", strerror(-rc));
        relay_finish(r, 1);
    }
}

static void on_relay_signal(loop_t *l, int signo, void *arg)
{
    struct relay *r = arg;
    (void)l;
    if (signo == SIGHUP) {
        log_reopen();
        return;
    }
    verbose(r->nc, "%s: stopping", signo == SIGINT ? "SIGINT" : "SIGTERM");
    relay_finish(r, 0);
}

static int run_relay(struct nc *nc)
{
    struct relay *r = malloc(sizeof *r);
    struct connector conn;
    int rc;

    nc->exit_code = 1;
    nc->loop = loop_new();
    if (nc->loop == NULL || r == NULL) {
        cmd_error("nc", "cannot create the event loop: %s", strerror(errno));
        free(r);
        loop_free(nc->loop);
        return 1;
    }
    rc = relay_init(r, nc);
    if (rc == 0)
        rc = loop_signals(nc->loop, on_relay_signal, r);
    if (rc < 0) {
        cmd_error("nc", "cannot set up the event loop: %s", strerror(-rc));
        goto out;
    }
    if (nc->o.listen) {
        int fds[NC_MAX_ADDRS];
        char err[ERR_MAX];
        int n = nc->naddrs;
        if (sock_listen_group(nc->addrs, n, nc->o.udp ? SOCK_DGRAM : SOCK_STREAM, 1, 0, fds, err,
                              sizeof err) < 0) {
            cmd_error("nc", "%s", err);
            goto out;
        }
        for (int i = 0; i < n; i++) {
            char a[ADDR_STRLEN];
            loop_io_add(nc->loop, &r->lis[i], fds[i], EPOLLIN | EPOLLET, on_relay_accept, r);
            r->nlis++;
            verbose(nc, "listening on %s (%s)", addr_format(&nc->addrs[i], a, sizeof a),
                    nc->o.udp ? "udp" : "tcp");
        }
    } else {
        memset(&conn, 0, sizeof conn);
        conn.r = r;
        conn.io.fd = -1;
        timer_init(&conn.timer, on_connect_timeout, &conn);
        connect_next(&conn);
    }
    rc = loop_run(nc->loop);
    if (rc < 0) {
        cmd_error("nc", "event loop failed: %s", strerror(-rc));
        nc->exit_code = 1;
    }
    if (!nc->o.listen) {
        loop_io_close(&conn.io);
        loop_timer_cancel(nc->loop, &conn.timer);
    }
out:
    relay_dispose(r);
    free(r);
    loop_free(nc->loop);
    return nc->exit_code;
}

/* ---------------------------------------------------------- echo server
 *
 * Each worker has its own SO_REUSEPORT socket per address. A connection
 * holds a pool block only while it has bytes to echo; when a read finds
 * nothing more, the block goes back to the pool. */

struct eworker;

struct econn {
    io_t io;
    struct eworker *w;
    struct econn *prev, *next;
    char *blk;           /* pool block, NULL while idle */
    uint32_t off, len;   /* bytes of blk still to send back */
    ptimer_t idle;
    loop_defer_t dfree;
};

struct eworker {
    struct nc *nc;
    loop_t *loop;
    int idx;
    int fds[NC_MAX_ADDRS];
    io_t lis[NC_MAX_ADDRS];
    int nlis;
    int stopping;
    struct econn *conns;
    size_t nconns;
    char *dgram;          /* UDP receive buffer */
    ptimer_t stop_timer;
    ptimer_t accept_pause;
};

struct echo {
    struct nc *nc;
    struct eworker *w;
};

static void econn_free(void *arg)
{
    free(arg);
}

static void eworker_maybe_done(struct eworker *w)
{
    if (w->stopping && w->nconns == 0)
        loop_break(w->loop);
}

static void eworker_close_listeners(struct eworker *w)
{
    for (int i = 0; i < w->nlis; i++)
        loop_io_close(&w->lis[i]);
    w->nlis = 0;
    loop_timer_cancel(w->loop, &w->accept_pause);
}

static void econn_close(struct econn *c)
{
    struct eworker *w = c->w;
    loop_io_close(&c->io);
    loop_timer_cancel(w->loop, &c->idle);
    pool_put(loop_pool(w->loop), c->blk);
    c->blk = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    loop_defer(w->loop, &c->dfree, econn_free, c);
    if (!w->nc->o.keep && !w->nc->o.udp) {
        /* Without -k the server ends once its first client has left. */
        w->stopping = 1;
        eworker_close_listeners(w);
    }
    eworker_maybe_done(w);
}

/* Echoes until the socket has nothing more to read or cannot take more. */
static void econn_run(struct econn *c)
{
    struct eworker *w = c->w;
    int fd = c->io.fd;
    if (w->nc->o.timeout_ms)
        loop_timer_set(w->loop, &c->idle, (uint64_t)w->nc->o.timeout_ms);
    for (;;) {
        if (c->len > 0) {
            ssize_t n = send(fd, c->blk + c->off, c->len, MSG_NOSIGNAL);
            if (n == -1) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN)
                    econn_close(c);
                return; /* EPOLLOUT will call again */
            }
            c->off += (uint32_t)n;
            c->len -= (uint32_t)n;
            if (c->len > 0)
                return;
        }
        if (c->blk == NULL) {
            c->blk = pool_get(loop_pool(w->loop));
            if (c->blk == NULL) {
                log_error("out of memory for a read buffer");
                econn_close(c);
                return;
            }
        }
        ssize_t n = recv(fd, c->blk, POOL_BLOCK_SIZE, 0);
        if (n > 0) {
            c->off = 0;
            c->len = (uint32_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno == EAGAIN) {
            pool_put(loop_pool(w->loop), c->blk);
            c->blk = NULL;
            return;
        }
        /* EOF (everything was echoed) or an error. */
        econn_close(c);
        return;
    }
}

static void on_econn(io_t *io, uint32_t ev)
{
    (void)ev;
    econn_run(io->arg);
}

static void on_econn_idle(ptimer_t *t, void *arg)
{
    (void)t;
    econn_close(arg);
}

static void on_accept_resume(ptimer_t *t, void *arg)
{
    (void)t;
    struct eworker *w = arg;
    for (int i = 0; i < w->nlis; i++) {
        /* Re-adding the interest makes epoll report a waiting connection. */
        loop_io_mod(&w->lis[i], 0);
        loop_io_mod(&w->lis[i], EPOLLIN | EPOLLET);
    }
}

static void on_eaccept(io_t *io, uint32_t ev)
{
    (void)ev;
    struct eworker *w = io->arg;
    for (;;) {
        addr_t peer;
        int fd = sock_accept(io->fd, w->nc->o.verbose ? &peer : NULL);
        if (fd < 0) {
            if (fd == -EINTR || fd == -ECONNABORTED)
                continue;
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                /* Out of fds: leave the queue alone for a while instead of
                 * spinning on it. */
                log_warn("accept: %s; pausing accepts for 100 ms", strerror(-fd));
                loop_timer_set(w->loop, &w->accept_pause, 100);
            }
            return;
        }
        struct econn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->w = w;
        timer_init(&c->idle, on_econn_idle, c);
        sock_nodelay(fd);
        if (loop_io_add(w->loop, &c->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_econn, c) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        if (w->nc->o.verbose) {
            addr_t local;
            char la[ADDR_STRLEN], pa[ADDR_STRLEN];
            sock_local(fd, &local);
            verbose(w->nc, "connection from %s to %s", addr_format(&peer, pa, sizeof pa),
                    addr_format(&local, la, sizeof la));
        }
    }
}

static void on_udp_echo(io_t *io, uint32_t ev)
{
    (void)ev;
    struct eworker *w = io->arg;
    for (;;) {
        addr_t peer;
        socklen_t len = sizeof peer.ss;
        ssize_t n = recvfrom(io->fd, w->dgram, 65536, MSG_TRUNC, (struct sockaddr *)&peer.ss, &len);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN, or an ICMP error from an earlier reply */
        }
        if (n > 65536)
            continue; /* cannot happen on IPv4/IPv6 without jumbograms */
        /* A full send buffer drops the reply, as a busy UDP peer would. */
        if (sendto(io->fd, w->dgram, (size_t)n, 0, (struct sockaddr *)&peer.ss, len) == -1)
            log_debug("sendto: %s", strerror(errno));
    }
}

static void on_stop_timeout(ptimer_t *t, void *arg)
{
    (void)t;
    struct eworker *w = arg;
    if (w->nconns)
        log_info("worker %d: closing %zu connections at the shutdown timeout", w->idx, w->nconns);
    while (w->conns)
        econn_close(w->conns);
    loop_break(w->loop);
}

static int echo_start(loop_t *l, int idx, void *arg)
{
    struct echo *e = arg;
    struct eworker *w = &e->w[idx];
    w->loop = l;
    timer_init(&w->stop_timer, on_stop_timeout, w);
    timer_init(&w->accept_pause, on_accept_resume, w);
    if (w->nc->o.udp) {
        w->dgram = malloc(65536);
        if (w->dgram == NULL)
            return -ENOMEM;
    }
    for (int i = 0; i < w->nlis; i++) {
        int rc = loop_io_add(l, &w->lis[i], w->fds[i], EPOLLIN | EPOLLET,
                             w->nc->o.udp ? on_udp_echo : on_eaccept, w);
        if (rc < 0)
            return rc;
        w->fds[i] = -1; /* owned by the io now */
    }
    return 0;
}

static void echo_stop(loop_t *l, int idx, int force, void *arg)
{
    struct echo *e = arg;
    struct eworker *w = &e->w[idx];
    (void)l;
    w->stopping = 1;
    eworker_close_listeners(w);
    if (force || w->nconns == 0) {
        on_stop_timeout(&w->stop_timer, w);
        return;
    }
    if (!timer_armed(&w->stop_timer))
        loop_timer_set(w->loop, &w->stop_timer, (uint64_t)w->nc->o.shutdown_ms);
}

static void echo_finish(loop_t *l, int idx, void *arg)
{
    struct echo *e = arg;
    struct eworker *w = &e->w[idx];
    (void)l;
    while (w->conns)
        econn_close(w->conns);
    eworker_close_listeners(w);
    loop_timer_cancel(w->loop, &w->stop_timer);
    /* The frees the closes above deferred run in loop_free(). */
    free(w->dgram);
    w->dgram = NULL;
}

static int run_echo(struct nc *nc)
{
    struct echo e = { .nc = nc };
    int n = nc->o.workers;
    if (!nc->o.keep && !nc->o.udp)
        n = 1; /* "ends when the first client leaves" is one worker's decision */
    e.w = calloc((size_t)n, sizeof *e.w);
    if (e.w == NULL) {
        cmd_error("nc", "out of memory");
        return 1;
    }
    int rc = 0;
    int opened = 0;
    char err[ERR_MAX];
    int *fds = calloc((size_t)n * (size_t)nc->naddrs, sizeof *fds);
    if (fds == NULL || sock_listen_group(nc->addrs, nc->naddrs, nc->o.udp ? SOCK_DGRAM : SOCK_STREAM,
                                         n, 1, fds, err, sizeof err) < 0) {
        cmd_error("nc", "%s", fds ? err : "out of memory");
        rc = -1;
    } else {
        opened = n;
        for (int i = 0; i < n; i++) {
            e.w[i].nc = nc;
            e.w[i].idx = i;
            e.w[i].nlis = nc->naddrs;
            memcpy(e.w[i].fds, fds + i * nc->naddrs, (size_t)nc->naddrs * sizeof *fds);
        }
    }
    free(fds);
    if (rc == 0) {
        char a[ADDR_STRLEN];
        for (int i = 0; i < nc->naddrs; i++)
            verbose(nc, "listening on %s (%s, %d workers)", addr_format(&nc->addrs[i], a, sizeof a),
                    nc->o.udp ? "udp" : "tcp", n);
        static const struct workers_ops ops = { echo_start, echo_stop, echo_finish, NULL };
        rc = workers_run(n, &ops, &e);
        if (rc < 0)
            cmd_error("nc", "cannot start the workers: %s", strerror(-rc));
    }
    for (int i = 0; i < opened; i++)
        for (int j = 0; j < e.w[i].nlis; j++)
            if (e.w[i].fds[j] >= 0)
                close(e.w[i].fds[j]);
    free(e.w);
    return rc == 0 ? 0 : 1;
}

/* ------------------------------------------------------------- command */

int cmd_nc(int argc, char **argv)
{
    struct nc nc;
    int done;
    char err[ERR_MAX];

    memset(&nc, 0, sizeof nc);
    if (parse_args(&nc.o, argc, argv, &done) < 0)
        return EXIT_USAGE;
    if (done)
        return 0;
    nc.naddrs = dns_hostaddr_sync(nc.o.host, nc.o.port, nc.o.family, nc.o.listen,
                                  nc.addrs, NC_MAX_ADDRS, err, sizeof err);
    if (nc.naddrs < 0) {
        cmd_error("nc", "%s", err);
        log_close();
        return 1;
    }
    loop_block_signals();
    int rc = nc.o.listen && nc.o.echo ? run_echo(&nc) : run_relay(&nc);
    log_close();
    return rc;
}
