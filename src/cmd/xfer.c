/* xfer.c - `portico xfer`: file transfer over the rudp transport.
 *
 *   xfer send [OPTIONS] FILE... HOST:PORT
 *   xfer recv [--listen ADDR:PORT] [--dir DIR] [--once]
 *   xfer plot FILE.csv -o FILE.svg
 *
 * One UDP socket on the core loop. Packets are read until EAGAIN and fed to
 * their connection (by connection id; the stateless listener answers the
 * rest); after every batch each connection's output is drained with
 * sendto, and one timer is armed for the earliest engine deadline. The
 * messages on the stream are in src/rudp/xfermsg.h. A received file is
 * written to NAME.part and hashed as it is written (SHA-256 over exactly the
 * bytes in NAME.part, in order; with --resume the prefix already there is
 * hashed first, from disk); once the digest matches, a pool thread fsyncs
 * and renames it to NAME while the loop keeps acknowledging. A mismatch
 * removes NAME.part and no NAME appears. */
#include "cmd/cmd.h"
#include "core/loop.h"
#include <sodium.h>
#include "core/sock.h"
#include "core/tpool.h"
#include "dns/hostaddr.h"
#include "rudp/conn.h"
#include "rudp/limits.h"
#include "rudp/xfermsg.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XFER_DEFAULT_PORT 7070
#define XFER_MAX_CONNS    64
#define XFER_CHUNK        (256u * 1024u)
/* The sender reads and hashes the file only this far ahead of what has been
 * sent: filling the whole send buffer (8 MiB, ~20 ms of SHA-256) before the
 * first packet would delay the start by as much. */
#define XFER_AHEAD        (512u * 1024u)
/* ...in pieces of this size, at most XFER_PUMP_BUDGET per pass of the loop:
 * the packets the engine may send now never wait behind more than ~0.3 ms
 * of reading and hashing (the first flight, behind the ECHO, included). */
#define XFER_PIECE        (64u * 1024u)
#define XFER_PUMP_BUDGET  (128u * 1024u)
#define XFER_SOCKBUF      (8 << 20)
#define XFER_PROGRESS_US  200000u
#define XFER_STATS_US     10000u
#define XFER_COMMIT_THREADS 1
/* Send batching: consecutive packets of one size leave in one sendmsg with
 * UDP_SEGMENT (the kernel cuts them apart, late or in the NIC), at most
 * this many and this many bytes per call. */
#define XFER_GSO_SEGS     32u
#define XFER_GSO_BYTES    (60u * 1024u)
/* Datagrams taken per recvmmsg call. */
#define XFER_RECV_BATCH   32u

enum { EXIT_LOCAL = 1, EXIT_CONNECT = 3, EXIT_LOST = 4, EXIT_REJECTED = 5 };

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* ------------------------------------------------------ shared plumbing */

struct peer {
    rudp_conn_t *conn;
    addr_t addr;
    /* receiver session */
    int state;               /* RS_HDR, RS_DATA, RS_DIGEST, RS_VERIFY */
    uint8_t buf[XFER_HDR_MAX];
    size_t have;
    xfer_hdr_t hdr;
    int fd;
    uint64_t left;
    int failed;
    crypto_hash_sha256_state md;   /* over the bytes in NAME.part so far */
};

struct xfer {
    loop_t *loop;
    io_t io;
    ptimer_t timer;
    int fd;
    int listening;
    uint8_t secret[RUDP_SECRET_LEN];
    rudp_cfg_t cfg;
    struct peer peers[XFER_MAX_CONNS];
    int npeers;
    int dirfd;
    int once, served;
    int exit_code;
    tpool_t *pool;          /* receiver: fsync and rename off the loop */
    int verifying;          /* jobs in the pool */
    int draining;           /* the loop ended: run it until verifying == 0 */
    /* sender */
    struct send_state *snd;
    int no_gso;             /* the kernel refused UDP_SEGMENT once: plain sends */
};

static void xfer_flush(struct xfer *x);

static void send_pkt(struct xfer *x, const addr_t *to, const uint8_t *buf, size_t n)
{
    ssize_t r = to ? sendto(x->fd, buf, n, 0, (const struct sockaddr *)&to->ss, to->len)
                   : send(x->fd, buf, n, 0);
    (void)r;  /* a full socket buffer is a loss the engine repairs */
}

/* Sends `n` bytes holding packets of `seg` bytes each (the last may be
 * shorter) in one call with UDP_SEGMENT; one sendto per packet when the
 * kernel cannot (then never tries again). */
static void send_batch(struct xfer *x, const addr_t *to, const uint8_t *buf, size_t n, size_t seg)
{
    if (n > seg && !x->no_gso) {
        struct iovec iov = { (void *)buf, n };
        union { char b[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctl;
        struct msghdr m;
        memset(&m, 0, sizeof m);
        memset(&ctl, 0, sizeof ctl);
        if (to) {
            m.msg_name = (void *)&to->ss;
            m.msg_namelen = to->len;
        }
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.b;
        m.msg_controllen = sizeof ctl.b;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t gso = (uint16_t)seg;
        memcpy(CMSG_DATA(cm), &gso, sizeof gso);
        if (sendmsg(x->fd, &m, 0) >= 0)
            return;
        if (errno != EINVAL && errno != EOPNOTSUPP && errno != ENOPROTOOPT &&
            errno != EIO && errno != EMSGSIZE)
            return;   /* a full buffer is a loss the engine repairs; refusals show on receive */
        x->no_gso = 1;
    }
    for (size_t off = 0; off < n; off += seg)
        send_pkt(x, to, buf + off, n - off < seg ? n - off : seg);
}

static void on_timer(ptimer_t *t, void *arg)
{
    (void)t;
    xfer_flush(arg);
}

/* ------------------------------------------------------------- receiver */

enum { RS_HDR, RS_DATA, RS_DIGEST, RS_VERIFY };

static void reply(struct peer *p, uint8_t status, uint64_t off)
{
    uint8_t r[XFER_REPLY_LEN];
    xfer_reply_encode(status, off, r);
    rudp_conn_write(p->conn, r, sizeof r);
}

static void part_name(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s.part", name);
}

/* Feeds [0, len) of fd, as stored on disk, into md: the prefix a resumed
 * transfer keeps is verified like the bytes that arrive (receiver), and is
 * part of the digest sent (sender). */
static int hash_stored(int fd, uint64_t len, crypto_hash_sha256_state *md)
{
    static uint8_t buf[XFER_CHUNK];
    uint64_t at = 0;
    while (at < len) {
        size_t want = len - at < sizeof buf ? (size_t)(len - at) : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)at);
        if (n <= 0)
            return -1;
        crypto_hash_sha256_update(md, (const unsigned char *)buf, (size_t)n);
        at += (uint64_t)n;
    }
    return 0;
}

static void recv_header(struct xfer *x, struct peer *p)
{
    char part[XFER_NAME_MAX + 8];
    part_name(p->hdr.name, part, sizeof part);
    int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
    if (!(p->hdr.flags & XFER_F_RESUME))
        flags |= O_TRUNC;
    p->fd = openat(x->dirfd, part, flags, 0644);
    if (p->fd < 0) {
        cmd_error("xfer", "%s: %s", part, strerror(errno));
        reply(p, XFER_IO_ERROR, 0);
        p->failed = 1;
        return;
    }
    struct stat st;
    uint64_t off = 0;
    if (fstat(p->fd, &st) == 0 && (uint64_t)st.st_size <= p->hdr.size)
        off = (uint64_t)st.st_size;
    if (off && ftruncate(p->fd, (off_t)off) < 0)
        off = 0;
    crypto_hash_sha256_init(&p->md);
    if (off && hash_stored(p->fd, off, &p->md) < 0) {
        cmd_error("xfer", "%s: %s", part, strerror(errno));
        reply(p, XFER_IO_ERROR, 0);
        p->failed = 1;
        return;
    }
    if (lseek(p->fd, (off_t)off, SEEK_SET) < 0)
        off = 0;
    p->left = p->hdr.size - off;
    reply(p, XFER_OK, off);
    p->state = p->left ? RS_DATA : RS_DIGEST;
    p->have = 0;
}

/* The verdict: printed, sent, and the session ready for the next header. */
static void verdict(struct peer *p, int status, const uint8_t got[XFER_DIGEST_LEN])
{
    char hx[2 * XFER_DIGEST_LEN + 1];
    if (status == XFER_OK) {
        hex(got, XFER_DIGEST_LEN, hx);
        printf("%s %" PRIu64 " sha256:%s\n", p->hdr.name, p->hdr.size, hx);
        fflush(stdout);
    } else {
        cmd_error("xfer", "%s: %s", p->hdr.name, xfer_status_str(status));
    }
    reply(p, (uint8_t)status, 0);
    p->state = RS_HDR;
    p->have = 0;
}

/* A verified file on its way to its name: fsync and rename on a pool
 * thread. The job owns fd; the session waits in RS_VERIFY. */
struct commit_job {
    struct xfer *x;
    rudp_conn_t *conn;       /* to find the session again (the array moves) */
    int fd, status;
    char part[XFER_NAME_MAX + 8], name[XFER_NAME_MAX + 1];
    uint8_t got[XFER_DIGEST_LEN];
};

static void commit_work(void *arg)
{
    struct commit_job *j = arg;
    if (fsync(j->fd) < 0 || renameat(j->x->dirfd, j->part, j->x->dirfd, j->name) < 0)
        j->status = XFER_IO_ERROR;
    close(j->fd);
}

static void commit_done(loop_t *l, void *arg)
{
    struct commit_job *j = arg;
    struct xfer *x = j->x;
    x->verifying--;
    for (int i = 0; i < x->npeers; i++)
        if (x->peers[i].conn == j->conn && x->peers[i].state == RS_VERIFY)
            verdict(&x->peers[i], j->status, j->got);
    free(j);
    if (x->draining && !x->verifying)
        loop_break(l);
    else if (!x->draining)
        xfer_flush(x);
}

static void recv_digest(struct xfer *x, struct peer *p)
{
    uint8_t got[XFER_DIGEST_LEN];
    char part[XFER_NAME_MAX + 8];
    part_name(p->hdr.name, part, sizeof part);
    crypto_hash_sha256_final(&p->md, got);
    if (memcmp(got, p->buf, XFER_DIGEST_LEN) != 0) {
        unlinkat(x->dirfd, part, 0);
        close(p->fd);
        p->fd = -1;
        verdict(p, XFER_BAD_DIGEST, got);
        return;
    }
    struct commit_job *j = calloc(1, sizeof *j);
    if (j) {
        j->x = x;
        j->conn = p->conn;
        j->fd = p->fd;
        j->status = XFER_OK;
        memcpy(j->part, part, sizeof j->part);
        snprintf(j->name, sizeof j->name, "%s", p->hdr.name);
        memcpy(j->got, got, sizeof got);
        if (x->pool && tpool_submit(x->pool, x->loop, commit_work, commit_done, j) == 0) {
            p->fd = -1;
            p->state = RS_VERIFY;
            x->verifying++;
            return;
        }
        free(j);
    }
    /* No pool thread to take it: do it here. */
    int status = XFER_OK;
    if (fsync(p->fd) < 0 || renameat(x->dirfd, part, x->dirfd, p->hdr.name) < 0)
        status = XFER_IO_ERROR;
    close(p->fd);
    p->fd = -1;
    verdict(p, status, got);
}

/* Consumes what the connection has for this session. */
static void recv_pump(struct xfer *x, struct peer *p)
{
    static uint8_t buf[XFER_CHUNK];
    while (!p->failed && p->state != RS_VERIFY) {
        size_t want;
        uint8_t *dst;
        if (p->state == RS_DATA) {
            want = p->left < sizeof buf ? (size_t)p->left : sizeof buf;
            dst = buf;
        } else if (p->state == RS_DIGEST) {
            want = XFER_DIGEST_LEN - p->have;
            dst = p->buf + p->have;
        } else {
            want = 1;  /* header: byte by byte is cheap enough and never over-reads */
            dst = p->buf + p->have;
        }
        size_t n = rudp_conn_read(p->conn, dst, want);
        if (n == 0)
            return;
        if (p->state == RS_DATA) {
            if (write(p->fd, buf, n) != (ssize_t)n) {
                cmd_error("xfer", "%s.part: %s", p->hdr.name, strerror(errno));
                reply(p, XFER_IO_ERROR, 0);
                p->failed = 1;
                return;
            }
            crypto_hash_sha256_update(&p->md, (const unsigned char *)buf, n);
            p->left -= n;
            if (!p->left) {
                p->state = RS_DIGEST;
                p->have = 0;
            }
        } else if (p->state == RS_DIGEST) {
            p->have += n;
            if (p->have == XFER_DIGEST_LEN)
                recv_digest(x, p);
        } else {
            p->have += n;
            int r = xfer_hdr_decode(p->buf, p->have, &p->hdr);
            if (r < 0) {
                cmd_error("xfer", "a sender offered a bad name or header; refused");
                reply(p, XFER_BAD_NAME, 0);
                p->failed = 1;
                return;
            }
            if (r > 0)
                recv_header(x, p);
        }
    }
}

static void peer_drop(struct xfer *x, int i)
{
    struct peer *p = &x->peers[i];
    if (p->fd >= 0)
        close(p->fd);   /* the .part stays for --resume */
    rudp_conn_free(p->conn);
    x->peers[i] = x->peers[--x->npeers];
    x->served++;
    if (x->once)
        loop_break(x->loop);
}

static void recv_events(struct xfer *x, int i)
{
    struct peer *p = &x->peers[i];
    rudp_conn_events(p->conn);
    recv_pump(x, p);
    if (p->failed && rudp_conn_unacked(p->conn) == 0)
        rudp_conn_abort(p->conn);
    if (rudp_conn_eof(p->conn) && rudp_conn_writable(p->conn) && p->state != RS_VERIFY)
        rudp_conn_shutdown(p->conn);   /* after the verdict, which a commit job may owe */
}

/* --------------------------------------------------------------- sender */

struct send_state {
    char **files;
    int nfiles, cur;
    int stage;            /* SS_HDR_SENT, SS_DATA, SS_VERDICT, SS_FIN */
    int fd;
    uint64_t size, off, total_bytes, done_bytes;
    crypto_hash_sha256_state md;
    uint8_t rbuf[XFER_REPLY_LEN];
    size_t rhave;
    int resume;
    int await_start;      /* data went out before the receiver's first reply */
    uint64_t start_us, next_progress, next_stats, closed_at;
    FILE *stats;
    int tty;
    const char *name;
};

enum { SS_START, SS_HDR_SENT, SS_DATA, SS_DIGEST, SS_VERDICT, SS_FIN };

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int send_begin_file(struct xfer *x, struct send_state *s)
{
    const char *path = s->files[s->cur];
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cmd_error("xfer", "%s: %s", path, s->fd < 0 ? strerror(errno) : "not a regular file");
        x->exit_code = EXIT_LOCAL;
        return -1;
    }
    xfer_hdr_t h;
    memset(&h, 0, sizeof h);
    snprintf(h.name, sizeof h.name, "%s", base_name(path));
    h.size = s->size = (uint64_t)st.st_size;
    h.flags = s->resume ? XFER_F_RESUME : 0;
    uint8_t buf[XFER_HDR_MAX];
    size_t n = xfer_hdr_encode(&h, buf);
    if (!n) {
        cmd_error("xfer", "%s: the name cannot be sent (empty, too long, or ends in .part)", path);
        x->exit_code = EXIT_LOCAL;
        return -1;
    }
    s->name = base_name(path);
    rudp_conn_write(x->peers[0].conn, buf, n);
    s->rhave = 0;
    /* Without --resume the receiver starts at 0: the data follows the
     * header at once (one round trip less per file), and its first reply
     * is checked when it comes. */
    s->stage = s->resume ? SS_HDR_SENT : SS_DATA;
    s->await_start = !s->resume;
    s->off = 0;
    crypto_hash_sha256_init(&s->md);
    return 0;
}

static int read_reply(rudp_conn_t *c, struct send_state *s, uint8_t *status, uint64_t *off)
{
    s->rhave += rudp_conn_read(c, s->rbuf + s->rhave, XFER_REPLY_LEN - s->rhave);
    if (s->rhave < XFER_REPLY_LEN)
        return 0;
    s->rhave = 0;
    xfer_reply_decode(s->rbuf, status, off);
    return 1;
}

static void send_fail(struct xfer *x, int code)
{
    x->exit_code = code;
    rudp_conn_abort(x->peers[0].conn);
    loop_break(x->loop);
}

/* The receiver's first reply to a header sent without waiting for it.
 * Returns 1 once it came and says go, 0 while it has not come, -1 after a
 * refusal (the transfer is then failed). */
static int start_reply(struct xfer *x, struct send_state *s, rudp_conn_t *c)
{
    uint8_t status;
    uint64_t off;
    if (!read_reply(c, s, &status, &off))
        return 0;
    s->await_start = 0;
    if (status != XFER_OK || off != 0) {
        cmd_error("xfer", "%s: %s", s->name, status != XFER_OK ? xfer_status_str(status)
                                                              : "unexpected resume offset");
        send_fail(x, EXIT_REJECTED);
        return -1;
    }
    return 1;
}

static void send_pump(struct xfer *x)
{
    struct send_state *s = x->snd;
    rudp_conn_t *c = x->peers[0].conn;
    static uint8_t buf[XFER_PIECE];
    uint8_t status;
    uint64_t off;
    size_t budget = XFER_PUMP_BUDGET;
    for (;;) {
        switch (s->stage) {
        case SS_START:
            if (rudp_conn_state(c) == RUDP_SYN_SENT)
                return;   /* from the cookie on, data may follow the ECHO */
            if (s->cur == s->nfiles) {
                rudp_conn_shutdown(c);
                s->stage = SS_FIN;
                break;
            }
            if (send_begin_file(x, s) < 0) {
                send_fail(x, EXIT_LOCAL);
                return;
            }
            break;
        case SS_HDR_SENT:
            if (!read_reply(c, s, &status, &off))
                return;
            if (status != XFER_OK || off > s->size) {
                cmd_error("xfer", "%s: %s", s->name, xfer_status_str(status));
                send_fail(x, EXIT_REJECTED);
                return;
            }
            if (off && hash_stored(s->fd, off, &s->md) < 0) {   /* what the receiver holds */
                cmd_error("xfer", "%s: %s", s->files[s->cur], strerror(errno));
                send_fail(x, EXIT_LOCAL);
                return;
            }
            s->off = off;
            s->done_bytes += off;
            s->stage = SS_DATA;
            break;
        case SS_DATA: {
            if (s->await_start && start_reply(x, s, c) <= 0) {
                if (x->exit_code)
                    return;
            }
            if (s->off == s->size) {
                s->stage = SS_DIGEST;
                break;
            }
            size_t room = rudp_conn_writable(c);
            if (room == 0 || rudp_conn_unsent(c) >= XFER_AHEAD || budget == 0)
                return;
            size_t want = room < sizeof buf ? room : sizeof buf;
            if (s->size - s->off < want)
                want = (size_t)(s->size - s->off);
            ssize_t n = pread(s->fd, buf, want, (off_t)s->off);
            if (n <= 0) {
                cmd_error("xfer", "%s: %s", s->files[s->cur],
                          n < 0 ? strerror(errno) : "the file shrank while being sent");
                send_fail(x, EXIT_LOCAL);
                return;
            }
            crypto_hash_sha256_update(&s->md, (const unsigned char *)buf, (size_t)n);
            rudp_conn_write(c, buf, (size_t)n);
            budget = budget > (size_t)n ? budget - (size_t)n : 0;
            s->off += (uint64_t)n;
            s->done_bytes += (uint64_t)n;
            break;
        }
        case SS_DIGEST: {
            if (rudp_conn_writable(c) < XFER_DIGEST_LEN)
                return;
            uint8_t d[XFER_DIGEST_LEN];
            crypto_hash_sha256_final(&s->md, d);
            rudp_conn_write(c, d, XFER_DIGEST_LEN);
            /* The last file: our FIN rides with the digest, so the
             * receiver's verdict comes with its own FIN and the connection
             * closes as the verdict arrives, not one round trip later. */
            if (s->cur + 1 == s->nfiles)
                rudp_conn_shutdown(c);
            s->stage = SS_VERDICT;
            break;
        }
        case SS_VERDICT:
            if (s->await_start && start_reply(x, s, c) <= 0)
                return;
            if (!read_reply(c, s, &status, &off))
                return;
            close(s->fd);
            s->fd = -1;
            if (status != XFER_OK) {
                cmd_error("xfer", "%s: %s", s->name, xfer_status_str(status));
                send_fail(x, EXIT_REJECTED);
                return;
            }
            s->cur++;
            s->stage = SS_START;
            break;
        case SS_FIN:
            return;
        }
    }
}

static void human(double v, char *out, size_t len)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, len, "%.1f %s", v, u[i]);
}

static void send_progress(struct xfer *x, uint64_t now, int final)
{
    struct send_state *s = x->snd;
    const rudp_tcb_t *t = rudp_conn_tcb(x->peers[0].conn);
    if (s->stats && (final || now >= s->next_stats)) {
        fprintf(s->stats, "%.3f,%u,%u,%u,%" PRIu64 ",%u,%" PRIu64 ",%" PRIu64 "\n",
                (now - s->start_us) / 1000.0, t->snd_una - t->iss, t->snd_nxt - t->iss,
                t->snd_wnd, t->cc.cwnd, t->srtt_us, t->segs_retrans, t->inflight);
        s->next_stats = now + XFER_STATS_US;
    }
    if (!s->tty || (!final && now < s->next_progress))
        return;
    s->next_progress = now + XFER_PROGRESS_US;
    double secs = (now - s->start_us) / 1e6;
    double rate = secs > 0 ? s->done_bytes / secs : 0;
    char a[32], b[32], r[32];
    human((double)s->done_bytes, a, sizeof a);
    human((double)s->total_bytes, b, sizeof b);
    human(rate, r, sizeof r);
    double eta = rate > 0 ? (s->total_bytes - s->done_bytes) / rate : 0;
    int pct = s->total_bytes ? (int)(100.0 * s->done_bytes / s->total_bytes) : 100;
    fprintf(stderr, "\r%3d%% %s / %s  %s/s  ETA %.0f s  resent %" PRIu64 "   ", pct, a, b, r,
            eta, t->segs_retrans);
    if (final)
        fputc('\n', stderr);
}

/* --------------------------------------------------------------- engine */

/* Drains the connection's output. Packets of one size are gathered and sent
 * together (send_batch); a shorter one closes a batch, a longer one starts
 * the next. */
static void flush_peer(struct xfer *x, struct peer *p, uint64_t now)
{
    static uint8_t out[XFER_GSO_BYTES + RUDP_PKT_MAX];
    const addr_t *to = x->listening ? &p->addr : NULL;
    size_t used = 0, seg = 0, cnt = 0, n;
    while ((n = rudp_conn_output(p->conn, out + used, RUDP_PKT_MAX, now)) > 0) {
        if (cnt && n > seg) {                 /* cannot join: send what we have */
            send_batch(x, to, out, used, seg);
            memmove(out, out + used, n);
            used = cnt = 0;
        }
        if (!cnt)
            seg = n;
        used += n;
        cnt++;
        if (n < seg || cnt == XFER_GSO_SEGS || used + seg > XFER_GSO_BYTES) {
            send_batch(x, to, out, used, seg);
            used = cnt = 0;
        }
    }
    if (cnt)
        send_batch(x, to, out, used, seg);
}

static void sender_step(struct xfer *x, uint64_t now)
{
    struct peer *p = &x->peers[0];
    unsigned ev = rudp_conn_events(p->conn);
    (void)ev;
    if (rudp_conn_state(p->conn) == RUDP_CLOSED) {
        int err = rudp_conn_error(p->conn);
        if (x->exit_code)
            return;   /* the failure was already reported */
        if (err == 0)
            send_pump(x);   /* a verdict still buffered when the peer closed */
        if (err == 0 && x->snd->stage == SS_FIN) {
            /* Every verdict arrived before our FIN: nothing is left to
             * wait for (a receiver whose last FIN goes unanswered closes
             * after a few tries by itself). */
            x->snd->closed_at = now;
            send_progress(x, now, 1);
            loop_break(x->loop);
            return;
        }
        int connected = x->snd->stage != SS_START || x->snd->cur > 0;
        const char *why = err == -ECONNREFUSED ? "connection refused"
                        : err == -ETIMEDOUT ? (connected ? "timed out: the peer stopped answering"
                                                         : "timed out: no answer from the peer")
                        : err == -ECONNRESET ? "connection reset by the peer"
                        : "connection closed before the transfer finished";
        cmd_error("xfer", "%s", why);
        x->exit_code = connected ? EXIT_LOST : EXIT_CONNECT;
        loop_break(x->loop);
        return;
    }
    send_pump(x);
    send_progress(x, now, 0);
}

/* Drains output, runs session logic, re-arms the timer. */
static void xfer_flush(struct xfer *x)
{
    uint64_t now = now_us();
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < x->npeers; i++) {
            if (x->snd)
                sender_step(x, now);
            else
                recv_events(x, i);
            flush_peer(x, &x->peers[i], now);
        }
    }
    uint64_t next = UINT64_MAX;
    for (int i = x->npeers - 1; i >= 0; i--) {
        struct peer *p = &x->peers[i];
        if (!x->snd && rudp_conn_state(p->conn) == RUDP_CLOSED) {
            if (rudp_conn_error(p->conn) && rudp_conn_error(p->conn) != -ECONNABORTED)
                cmd_error("xfer", "a sender's connection ended: %s",
                          strerror(-rudp_conn_error(p->conn)));
            peer_drop(x, i);
            continue;
        }
        uint64_t d = rudp_conn_deadline(p->conn);
        if (d < next)
            next = d;
    }
    if (next != UINT64_MAX) {
        uint64_t delay = next > now ? (next - now + 999) / 1000 : 0;
        loop_timer_set(x->loop, &x->timer, delay);
    } else {
        loop_timer_cancel(x->loop, &x->timer);
    }
}

static struct peer *find_peer(struct xfer *x, uint32_t cid)
{
    for (int i = 0; i < x->npeers; i++)
        if (rudp_conn_local_cid(x->peers[i].conn) == cid)
            return &x->peers[i];
    return NULL;
}

/* One datagram from `from`: to its connection, or to the stateless
 * listener. */
static void on_datagram(struct xfer *x, const uint8_t *buf, ssize_t n, const addr_t *from,
                        uint64_t now)
{
    if (x->snd) {
        rudp_conn_input(x->peers[0].conn, buf, (size_t)n, now);
        return;
    }
    uint32_t cid = n >= 8 ? (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
                            (uint32_t)buf[6] << 8 | buf[7] : 0;
    struct peer *p = cid ? find_peer(x, cid) : NULL;
    if (p && from->len == p->addr.len && memcmp(&from->ss, &p->addr.ss, from->len) == 0) {
        rudp_conn_input(p->conn, buf, (size_t)n, now);
        return;
    }
    uint8_t rep[RUDP_PKT_MAX];
    size_t rlen;
    rudp_accept_t acc;
    int v = rudp_listen_input(x->secret, buf, (size_t)n, &from->ss, from->len, now, rep,
                              sizeof rep, &rlen, &acc);
    if (v == RUDP_L_REPLY) {
        send_pkt(x, from, rep, rlen);
    } else if (v == RUDP_L_ACCEPT && x->npeers < XFER_MAX_CONNS && !find_peer(x, acc.local_cid)) {
        rudp_conn_t *c = rudp_conn_accept(&x->cfg, &acc, now);
        if (!c)
            return;
        struct peer *np = &x->peers[x->npeers++];
        memset(np, 0, sizeof *np);
        np->conn = c;
        np->addr = *from;
        np->fd = -1;
    }
}

/* Reads datagrams until EAGAIN, XFER_RECV_BATCH per recvmmsg call. */
static void on_readable(io_t *io, uint32_t events)
{
    struct xfer *x = io->arg;
    static uint8_t bufs[XFER_RECV_BATCH][RUDP_PKT_MAX];
    static addr_t from[XFER_RECV_BATCH];
    struct mmsghdr mm[XFER_RECV_BATCH];
    struct iovec iov[XFER_RECV_BATCH];
    (void)events;
    for (;;) {
        memset(mm, 0, sizeof mm);
        for (unsigned i = 0; i < XFER_RECV_BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_name = &from[i].ss;
            mm[i].msg_hdr.msg_namelen = sizeof from[i].ss;
        }
        /* edge-triggered: read until EAGAIN (a short batch may end on a
         * pending error, reported by the next call) */
        int got = recvmmsg(x->fd, mm, XFER_RECV_BATCH, MSG_DONTWAIT, NULL);
        if (got == 0)
            break;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED && x->snd) {
                cmd_error("xfer", "connection refused: nothing listens at the peer's port");
                x->exit_code = EXIT_CONNECT;
                loop_break(x->loop);
            }
            break;
        }
        uint64_t now = now_us();
        for (int i = 0; i < got; i++) {
            from[i].len = mm[i].msg_hdr.msg_namelen;
            on_datagram(x, bufs[i], (ssize_t)mm[i].msg_len, &from[i], now);
        }
    }
    xfer_flush(x);
}

static void on_signal(loop_t *l, int signo, void *arg)
{
    struct xfer *x = arg;
    if (signo == SIGHUP)
        return;
    if (x->snd) {
        cmd_error("xfer", "interrupted");
        x->exit_code = EXIT_LOCAL;
    }
    loop_break(l);
}

static int xfer_run(struct xfer *x)
{
    x->loop = loop_new();
    if (!x->loop) {
        cmd_error("xfer", "cannot create the event loop: %s", strerror(errno));
        close(x->fd);
        return EXIT_LOCAL;
    }
    int sz = XFER_SOCKBUF;
    setsockopt(x->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(x->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    timer_init(&x->timer, on_timer, x);
    loop_io_add(x->loop, &x->io, x->fd, EPOLLIN | EPOLLET, on_readable, x);
    loop_signals(x->loop, on_signal, x);
    if (!x->snd)
        x->pool = tpool_new(XFER_COMMIT_THREADS);   /* NULL: commits run on the loop */
    xfer_flush(x);
    loop_run(x->loop);
    x->draining = 1;
    while (x->verifying)   /* a commit under way finishes and frees its job */
        loop_run(x->loop);
    tpool_free(x->pool);
    loop_io_close(&x->io);
    for (int i = 0; i < x->npeers; i++) {
        if (x->peers[i].fd >= 0)
            close(x->peers[i].fd);
        rudp_conn_free(x->peers[i].conn);
    }
    loop_free(x->loop);
    return x->exit_code;
}


/* ----------------------------------------------------------------- plot */

#define PLOT_W 960
#define PLOT_H 540
#define PLOT_M 70          /* margin for the axes' labels */
#define PLOT_MAX_ROWS 200000

struct plot_row { double ms, una, nxt, wnd, cwnd; };

/* `xfer plot FILE.csv -o FILE.svg`: the --stats trace as an SVG chart. The
 * band between SND.UNA and SND.UNA + min(SND.WND, cwnd) is the window the
 * sender may fill; it slides up as acknowledgements arrive. SND.NXT shows
 * how much of it is in use. */
static int xfer_plot(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!in && argv[i][0] != '-')
            in = argv[i];
        else {
            cmd_error("xfer", "plot: unexpected argument '%s'", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!in || !out) {
        cmd_error("xfer", "plot needs FILE.csv -o FILE.svg");
        return EXIT_USAGE;
    }
    FILE *f = fopen(in, "r");
    if (!f) {
        cmd_error("xfer", "%s: %s", in, strerror(errno));
        return EXIT_USAGE;
    }
    struct plot_row *r = malloc(PLOT_MAX_ROWS * sizeof *r);
    char line[512];
    size_t n = 0;
    double tmax = 0, ymax = 0;
    if (!r || !fgets(line, sizeof line, f) || strncmp(line, "ms,snd_una,snd_nxt,snd_wnd,cwnd", 31)) {
        cmd_error("xfer", "%s: not an xfer --stats trace", in);
        fclose(f);
        free(r);
        return EXIT_USAGE;
    }
    while (n < PLOT_MAX_ROWS && fgets(line, sizeof line, f)) {
        struct plot_row *p = &r[n];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf", &p->ms, &p->una, &p->nxt, &p->wnd, &p->cwnd) != 5)
            continue;
        double edge = p->una + (p->wnd < p->cwnd ? p->wnd : p->cwnd);
        tmax = p->ms > tmax ? p->ms : tmax;
        ymax = edge > ymax ? edge : ymax;
        n++;
    }
    fclose(f);
    FILE *o = fopen(out, "w");
    if (!o) {
        cmd_error("xfer", "%s: %s", out, strerror(errno));
        free(r);
        return EXIT_LOCAL;
    }
    if (tmax <= 0)
        tmax = 1;
    if (ymax <= 0)
        ymax = 1;
    double sx = (PLOT_W - 2.0 * PLOT_M) / tmax, sy = (PLOT_H - 2.0 * PLOT_M) / ymax;
#define PX(t) (PLOT_M + (t) * sx)
#define PY(v) (PLOT_H - PLOT_M - (v) * sy)
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
               "font-family='sans-serif' font-size='12'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n", PLOT_W, PLOT_H);
    fprintf(o, "<text x='%d' y='24' font-size='15'>", PLOT_M);
    for (const char *q = in; *q; q++)   /* the name as XML text */
        fputs(*q == '<' ? "&lt;" : *q == '>' ? "&gt;" : *q == '&' ? "&amp;" : (char[2]){ *q, 0 }, o);
    fprintf(o, ": the sliding window</text>\n");
    /* the window band */
    fprintf(o, "<polygon fill='#9ecae1' fill-opacity='0.6' stroke='none' points='");
    for (size_t i = 0; i < n; i++) {
        double w = r[i].wnd < r[i].cwnd ? r[i].wnd : r[i].cwnd;
        fprintf(o, "%.1f,%.1f ", PX(r[i].ms), PY(r[i].una + w));
    }
    for (size_t i = n; i-- > 0;)
        fprintf(o, "%.1f,%.1f ", PX(r[i].ms), PY(r[i].una));
    fprintf(o, "'/>\n");
    const char *color[2] = { "#08519c", "#e6550d" };
    for (int s = 0; s < 2; s++) {
        fprintf(o, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color[s]);
        for (size_t i = 0; i < n; i++)
            fprintf(o, "%.1f,%.1f ", PX(r[i].ms), PY(s ? r[i].nxt : r[i].una));
        fprintf(o, "'/>\n");
    }
    /* axes, ticks and legend */
    fprintf(o, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", PLOT_M,
            PLOT_H - PLOT_M, PLOT_W - PLOT_M, PLOT_H - PLOT_M);
    fprintf(o, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", PLOT_M, PLOT_M,
            PLOT_M, PLOT_H - PLOT_M);
    for (int k = 0; k <= 5; k++) {
        fprintf(o, "<text x='%.1f' y='%d' text-anchor='middle'>%.0f</text>\n",
                PX(tmax * k / 5), PLOT_H - PLOT_M + 18, tmax * k / 5);
        fprintf(o, "<text x='%d' y='%.1f' text-anchor='end'>%.1f</text>\n", PLOT_M - 6,
                PY(ymax * k / 5) + 4, ymax * k / 5 / 1048576.0);
    }
    fprintf(o, "<text x='%d' y='%d' text-anchor='middle'>time (ms)</text>\n", PLOT_W / 2,
            PLOT_H - 20);
    fprintf(o, "<text x='16' y='%d' transform='rotate(-90 16 %d)' text-anchor='middle'>"
               "sequence offset (MiB)</text>\n", PLOT_H / 2, PLOT_H / 2);
    fprintf(o, "<rect x='%d' y='40' width='14' height='10' fill='#9ecae1'/>"
               "<text x='%d' y='49'>window: SND.UNA .. SND.UNA + min(SND.WND, cwnd)</text>\n",
            PLOT_M + 10, PLOT_M + 30);
    fprintf(o, "<line x1='%d' y1='62' x2='%d' y2='62' stroke='%s' stroke-width='2'/>"
               "<text x='%d' y='66'>SND.UNA</text>\n", PLOT_M + 10, PLOT_M + 24, color[0],
            PLOT_M + 30);
    fprintf(o, "<line x1='%d' y1='78' x2='%d' y2='78' stroke='%s' stroke-width='2'/>"
               "<text x='%d' y='82'>SND.NXT</text>\n", PLOT_M + 10, PLOT_M + 24, color[1],
            PLOT_M + 30);
    fprintf(o, "</svg>\n");
#undef PX
#undef PY
    int bad = ferror(o);
    if (fclose(o) != 0 || bad) {
        cmd_error("xfer", "%s: write failed", out);
        free(r);
        return EXIT_LOCAL;
    }
    free(r);
    return 0;
}

/* -------------------------------------------------------------- options */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portico xfer send [OPTIONS] FILE... HOST:PORT\n"
            "       portico xfer recv [--listen ADDR:PORT] [--dir DIR] [--once]\n"
            "       portico xfer plot FILE.csv -o FILE.svg   (a --stats trace as a chart)\n"
            "\n"
            "Sends files over UDP on portico's sliding-window transport (SACK, pacing,\n"
            "a loss-tolerant rate-based congestion control). The receiver writes NAME.part,\n"
            "checks the SHA-256 the sender computed, and only then renames it to NAME.\n"
            "\n"
            "options:\n"
            "  --listen ADDR:PORT  recv: where to listen (default :%d)\n"
            "  --dir DIR           recv: where files go (default .); names cannot leave it\n"
            "  --once              recv: exit after one sender finished\n"
            "  --resume            send: continue from what NAME.part already holds\n"
            "  --cc NAME           congestion control: bbr (default) or newreno\n"
            "  --mss BYTES         payload bytes per packet (default %u)\n"
            "  --timeout SECS      give up after SECS without hearing the peer (default %u)\n"
            "  --stats FILE        send: CSV trace (ms,snd_una,snd_nxt,snd_wnd,cwnd,srtt_us,\n"
            "                      retransmitted segments,inflight) every %u ms\n"
            "  -h, --help          this text\n"
            "\n"
            "exit status: 0 done, 1 local error, 2 bad usage, 3 peer unreachable, refused or\n"
            "not answering, 4 connection lost during the transfer, 5 the receiver rejected a\n"
            "file (digest mismatch, bad name, write error)\n",
            XFER_DEFAULT_PORT, RUDP_MSS_DEFAULT, RUDP_IDLE_TIMEOUT_US / 1000000u,
            XFER_STATS_US / 1000u);
}

static int open_udp(const char *spec, int passive, addr_t *a, int *fd)
{
    char host[HOST_MAX], err[ERR_MAX], tmp[HOST_MAX + 16];
    uint16_t port;
    /* A listener may ask for port 0 (any free port, printed at start),
     * which addr_split refuses for everyone else. */
    size_t sl = strlen(spec);
    int any_port = passive && sl >= 2 && sl < sizeof tmp && !strcmp(spec + sl - 2, ":0");
    if (any_port) {
        memcpy(tmp, spec, sl - 1);
        strcpy(tmp + sl - 1, "1");
        spec = tmp;
    }
    if (addr_split(spec, host, sizeof host, &port, err, sizeof err) < 0) {
        cmd_error("xfer", "%s", err);
        return EXIT_USAGE;
    }
    if (any_port)
        port = 0;
    if (dns_hostaddr_sync(host, port, AF_UNSPEC, passive, a, 1, err, sizeof err) < 1) {
        cmd_error("xfer", "%s", err);
        return EXIT_CONNECT;
    }
    int s = passive ? sock_listen(a, SOCK_DGRAM, 0) : sock_connect(a, SOCK_DGRAM);
    if (s < 0) {
        char b[ADDR_STRLEN];
        cmd_error("xfer", "%s %s: %s", passive ? "listen on" : "connect to",
                  addr_format(a, b, sizeof b), strerror(-s));
        return passive ? EXIT_LOCAL : EXIT_CONNECT;
    }
    *fd = s;
    return 0;
}

int cmd_xfer(int argc, char **argv)
{
    enum { O_LISTEN = 256, O_DIR, O_ONCE, O_RESUME, O_CC, O_MSS, O_TIMEOUT, O_STATS };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "dir", required_argument, NULL, O_DIR },
        { "once", no_argument, NULL, O_ONCE },
        { "resume", no_argument, NULL, O_RESUME },
        { "cc", required_argument, NULL, O_CC },
        { "mss", required_argument, NULL, O_MSS },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "stats", required_argument, NULL, O_STATS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "plot"))
        return xfer_plot(argc, argv);
    int sending = !strcmp(argv[1], "send");
    if (!sending && strcmp(argv[1], "recv") != 0) {
        cmd_error("xfer", "unknown mode '%s': expected send, recv or plot", argv[1]);
        return EXIT_USAGE;
    }
    static struct xfer x;
    static struct send_state ss;
    memset(&x, 0, sizeof x);
    memset(&ss, 0, sizeof ss);
    rudp_cfg_default(&x.cfg);
    const char *listen = NULL, *dir = ".", *stats = NULL;
    char defl[16];
    snprintf(defl, sizeof defl, ":%d", XFER_DEFAULT_PORT);
    listen = defl;
    opterr = 0;
    optind = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc - 1, argv + 1, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN: listen = optarg; break;
        case O_DIR: dir = optarg; break;
        case O_ONCE: x.once = 1; break;
        case O_RESUME: ss.resume = 1; break;
        case O_STATS: stats = optarg; break;
        case O_CC:
            if (!(x.cfg.cc = rudp_cc_find(optarg))) {
                cmd_error("xfer", "unknown congestion control '%s': expected bbr or newreno", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_MSS: {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < RUDP_MSS_MIN || v > RUDP_MSS_MAX) {
                cmd_error("xfer", "invalid --mss '%s': expected %u to %u", optarg,
                          RUDP_MSS_MIN, RUDP_MSS_MAX);
                return EXIT_USAGE;
            }
            x.cfg.mss = (uint32_t)v;
            break;
        }
        case O_TIMEOUT: {
            double v = strtod(optarg, &end);
            if (*end || !(v > 0) || v > 86400) {
                cmd_error("xfer", "invalid --timeout '%s': expected seconds > 0", optarg);
                return EXIT_USAGE;
            }
            x.cfg.idle_timeout_us = (uint64_t)(v * 1e6);
            break;
        }
        case 'h': usage(stdout); return 0;
        default:
            cmd_error("xfer", "unknown or incomplete option '%s' (see 'portico xfer --help')",
                      argv[optind]);
            return EXIT_USAGE;
        }
    }
    int nargs = argc - 1 - optind;
    char **args = argv + 1 + optind;
    if (getrandom(x.secret, sizeof x.secret, 0) != sizeof x.secret ||
        getrandom(&x.cfg.local_cid, 4, 0) != 4 || getrandom(&x.cfg.isn, 4, 0) != 4) {
        cmd_error("xfer", "no randomness: %s", strerror(errno));
        return EXIT_LOCAL;
    }
    x.cfg.local_cid |= 1;
    loop_block_signals();
    addr_t a;
    int rc;
    if (!sending) {
        if (nargs) {
            cmd_error("xfer", "recv takes no arguments (got '%s')", args[0]);
            return EXIT_USAGE;
        }
        x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (x.dirfd < 0) {
            cmd_error("xfer", "--dir %s: %s", dir, strerror(errno));
            return EXIT_USAGE;
        }
        if ((rc = open_udp(listen, 1, &a, &x.fd)) != 0)
            return rc;
        x.listening = 1;
        sock_local(x.fd, &a);
        char b[ADDR_STRLEN];
        fprintf(stderr, "portico xfer: listening on %s\n", addr_format(&a, b, sizeof b));
        rc = xfer_run(&x);
        close(x.dirfd);
        return rc;
    }
    if (nargs < 2) {
        cmd_error("xfer", "send needs FILE... HOST:PORT");
        return EXIT_USAGE;
    }
    ss.files = args;
    ss.nfiles = nargs - 1;
    for (int i = 0; i < ss.nfiles; i++) {
        struct stat st;
        if (stat(ss.files[i], &st) < 0) {
            cmd_error("xfer", "%s: %s", ss.files[i], strerror(errno));
            return EXIT_USAGE;
        }
        if (!S_ISREG(st.st_mode)) {
            cmd_error("xfer", "%s: not a regular file", ss.files[i]);
            return EXIT_USAGE;
        }
        if (!xfer_name_ok(base_name(ss.files[i]), strlen(base_name(ss.files[i])))) {
            cmd_error("xfer", "%s: cannot be sent under this name (ends in .part?)", ss.files[i]);
            return EXIT_USAGE;
        }
        ss.total_bytes += (uint64_t)st.st_size;
    }
    if (stats && !(ss.stats = fopen(stats, "w"))) {
        cmd_error("xfer", "--stats %s: %s", stats, strerror(errno));
        return EXIT_USAGE;
    }
    if (ss.stats)
        fprintf(ss.stats, "ms,snd_una,snd_nxt,snd_wnd,cwnd,srtt_us,retrans_segs,inflight\n");
    if ((rc = open_udp(args[nargs - 1], 0, &a, &x.fd)) != 0)
        return rc;
    ss.fd = -1;
    ss.tty = isatty(2);
    ss.start_us = now_us();
    x.snd = &ss;
    x.peers[0].conn = rudp_conn_connect(&x.cfg, ss.start_us);
    x.peers[0].fd = -1;
    x.npeers = 1;
    if (!x.peers[0].conn) {
        cmd_error("xfer", "out of memory");
        return EXIT_LOCAL;
    }
    rc = xfer_run(&x);
    if (ss.fd >= 0)
        close(ss.fd);
    if (ss.stats)
        fclose(ss.stats);
    return rc;   /* x.fd was closed with its loop registration */
}
