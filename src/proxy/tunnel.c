/* tunnel.c - CONNECT tunnels: two sockets, two bounded buffers. */
#include "proxy/tunnel.h"
#include "core/buf.h"
#include "proxy/limits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct side {
    io_t io;
    buf_t to;          /* bytes waiting to be sent to this side */
    int eof;           /* this side sent its EOF */
    int shut;          /* we shut this side's write half */
};

struct tunnel {
    loop_t *loop;
    struct side s[2];  /* 0 client, 1 upstream */
    ptimer_t idle;
    uint32_t idle_ms;
    int closed;
    loop_defer_t dfree;
};

static void tunnel_free(void *arg)
{
    struct tunnel *t = arg;
    buf_dispose(&t->s[0].to);
    buf_dispose(&t->s[1].to);
    free(t);
}

static void tunnel_close(struct tunnel *t)
{
    if (t->closed)
        return;
    t->closed = 1;
    loop_io_close(&t->s[0].io);
    loop_io_close(&t->s[1].io);
    loop_timer_cancel(t->loop, &t->idle);
    loop_defer(t->loop, &t->dfree, tunnel_free, t);
}

/* Moves what `from` has to send into dst->to and on to dst. Returns the
 * bytes moved (>= 0), or -1 on a socket error. */
static long pump(struct side *from, struct side *dst)
{
    long moved = 0;
    for (;;) {
        /* Send what is queued first: it makes room. */
        while (dst->to.len > 0) {
            ssize_t k = send(dst->io.fd, buf_head(&dst->to), dst->to.len, MSG_NOSIGNAL);
            if (k == -1) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN)
                    break;
                return -1;
            }
            buf_consume(&dst->to, (size_t)k);
            moved += k;
        }
        if (from->eof || dst->to.len >= PROXY_TUNNEL_BUF)
            break;
        if (dst->to.len == 0)
            buf_reset(&dst->to);
        size_t room = PROXY_TUNNEL_BUF - dst->to.len;
        if (buf_reserve(&dst->to, room) < 0)
            return -1;
        ssize_t n = recv(from->io.fd, buf_tail(&dst->to), room, 0);
        if (n > 0) {
            buf_commit(&dst->to, (size_t)n);
            moved += n;
            continue;
        }
        if (n == 0) {
            from->eof = 1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        return -1;
    }
    if (from->eof && dst->to.len == 0 && !dst->shut) {
        shutdown(dst->io.fd, SHUT_WR);
        dst->shut = 1;
    }
    return moved;
}

static void run(struct tunnel *t)
{
    long a = pump(&t->s[0], &t->s[1]);
    long b = a < 0 ? -1 : pump(&t->s[1], &t->s[0]);
    if (a < 0 || b < 0 || (t->s[0].shut && t->s[1].shut)) {
        tunnel_close(t);
        return;
    }
    if (a + b > 0)
        loop_timer_set(t->loop, &t->idle, t->idle_ms);
}

static void on_io(io_t *io, uint32_t ev)
{
    (void)ev;
    struct tunnel *t = io->arg;
    if (!t->closed)
        run(t);
}

static void on_idle(ptimer_t *tm, void *arg)
{
    (void)tm;
    tunnel_close(arg);
}

int tunnel_start(loop_t *l, int cfd, char *early, size_t n, int ufd, uint32_t idle_ms)
{
    struct tunnel *t = calloc(1, sizeof *t);
    int rc = -ENOMEM;
    if (t == NULL)
        goto fail;
    t->loop = l;
    t->idle_ms = idle_ms;
    timer_init(&t->idle, on_idle, t);
    buf_init(&t->s[0].to, PROXY_TUNNEL_BUF + (n > PROXY_TUNNEL_BUF ? n : 0));
    buf_init(&t->s[1].to, PROXY_TUNNEL_BUF + (n > PROXY_TUNNEL_BUF ? n : 0));
    if (n > 0 && buf_append(&t->s[1].to, early, n) < 0)
        goto fail;
    free(early);
    early = NULL;
    const uint32_t mask = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    if ((rc = loop_io_add(l, &t->s[0].io, cfd, mask, on_io, t)) < 0)
        goto fail;
    cfd = -1;
    if ((rc = loop_io_add(l, &t->s[1].io, ufd, mask, on_io, t)) < 0) {
        loop_io_close(&t->s[0].io);
        goto fail;
    }
    loop_timer_set(l, &t->idle, idle_ms);
    return 0;
fail:
    free(early);
    if (cfd >= 0)
        close(cfd);
    close(ufd);
    if (t != NULL) {
        buf_dispose(&t->s[0].to);
        buf_dispose(&t->s[1].to);
        free(t);
    }
    return rc;
}
