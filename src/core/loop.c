#include "core/loop.h"
#include "core/limits.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct post {
    struct post *next;
    void (*fn)(loop_t *, void *);
    void *arg;
};

struct loop {
    int epfd;
    int running;
    uint64_t now;
    timer_heap_t timers;
    pool_t pool;
    loop_defer_t *deferred;       /* FIFO: run in the order queued */
    loop_defer_t **deferred_tail;

    io_t wake;                 /* eventfd: posts from other threads */
    pthread_mutex_t post_lock;
    struct post *posts, **posts_tail;

    io_t *first;               /* dispatched first in its batch (loop_io_first) */

    io_t sig;                  /* signalfd, when loop_signals() was called */
    void (*sig_cb)(loop_t *, int, void *);
    void *sig_arg;
};

static void run_deferred(loop_t *l);

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_wake(io_t *io, uint32_t events)
{
    (void)events;
    loop_t *l = io->arg;
    uint64_t v;
    while (read(io->fd, &v, sizeof v) == (ssize_t)sizeof v) {
    }
    pthread_mutex_lock(&l->post_lock);
    struct post *p = l->posts;
    l->posts = NULL;
    l->posts_tail = &l->posts;
    pthread_mutex_unlock(&l->post_lock);
    while (p != NULL) {
        struct post *next = p->next;
        p->fn(l, p->arg);
        free(p);
        p = next;
    }
}

loop_t *loop_new(void)
{
    loop_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd == -1)
        goto fail;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd == -1)
        goto fail_ep;
    timer_heap_init(&l->timers);
    pool_init(&l->pool, POOL_MAX_FREE);
    pthread_mutex_init(&l->post_lock, NULL);
    l->posts_tail = &l->posts;
    l->sig.fd = -1;
    l->now = clock_ms();
    if (loop_io_add(l, &l->wake, efd, EPOLLIN | EPOLLET, on_wake, l) < 0) {
        close(efd);
        pthread_mutex_destroy(&l->post_lock);
        goto fail_ep;
    }
    return l;
fail_ep:
    close(l->epfd);
fail:
    free(l);
    return NULL;
}

void loop_free(loop_t *l)
{
    if (l == NULL)
        return;
    run_deferred(l); /* frees queued by owners torn down after the loop stopped */
    /* Wait out a loop_post() still between its queueing and its wake-up. */
    pthread_mutex_lock(&l->post_lock);
    pthread_mutex_unlock(&l->post_lock);
    loop_io_close(&l->wake);
    if (l->sig.fd >= 0)
        loop_io_close(&l->sig);
    struct post *p = l->posts;
    while (p != NULL) {
        struct post *next = p->next;
        free(p);
        p = next;
    }
    pthread_mutex_destroy(&l->post_lock);
    timer_heap_dispose(&l->timers);
    pool_dispose(&l->pool);
    close(l->epfd);
    free(l);
}

uint64_t loop_now(const loop_t *l) { return l->now; }
pool_t *loop_pool(loop_t *l) { return &l->pool; }
void loop_break(loop_t *l) { l->running = 0; }

int loop_io_add(loop_t *l, io_t *io, int fd, uint32_t events, io_cb cb, void *arg)
{
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->arg = arg;
    io->loop = l;
    struct epoll_event ev = { .events = events, .data.ptr = io };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        io->fd = -1;
        return -errno;
    }
    return 0;
}

int loop_io_mod(io_t *io, uint32_t events)
{
    if (io->events == events)
        return 0;
    struct epoll_event ev = { .events = events, .data.ptr = io };
    if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
        return -errno;
    io->events = events;
    return 0;
}

void loop_io_first(loop_t *l, io_t *io)
{
    l->first = io;
}

void loop_io_del(io_t *io)
{
    if (io->fd < 0)
        return;
    if (io->loop->first == io)
        io->loop->first = NULL;
    epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->fd = -1;
}

void loop_io_close(io_t *io)
{
    int fd = io->fd;
    if (fd < 0)
        return;
    loop_io_del(io);
    close(fd);
}

void loop_io_close_sole(io_t *io)
{
    int fd = io->fd;
    if (fd < 0)
        return;
    if (io->loop->first == io)
        io->loop->first = NULL;
    io->fd = -1;
    close(fd);
}

int loop_timer_set(loop_t *l, ptimer_t *t, uint64_t delay_ms)
{
    return timer_heap_add(&l->timers, t, l->now + delay_ms);
}

void loop_timer_cancel(loop_t *l, ptimer_t *t)
{
    timer_heap_cancel(&l->timers, t);
}

void loop_defer(loop_t *l, loop_defer_t *d, void (*fn)(void *), void *arg)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->fn = fn;
    d->arg = arg;
    d->next = NULL;
    if (l->deferred == NULL)
        l->deferred_tail = &l->deferred;
    *l->deferred_tail = d;
    l->deferred_tail = &d->next;
}

static void run_deferred(loop_t *l)
{
    /* A deferred function may queue more; keep going until none is left. */
    while (l->deferred != NULL) {
        loop_defer_t *d = l->deferred;
        l->deferred = NULL;
        while (d != NULL) {
            loop_defer_t *next = d->next;
            d->queued = 0;
            d->fn(d->arg);
            d = next;
        }
    }
}

int loop_post(loop_t *l, void (*fn)(loop_t *, void *), void *arg)
{
    struct post *p = malloc(sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&l->post_lock);
    *l->posts_tail = p;
    l->posts_tail = &p->next;
    /* Under the lock: once the loop has run this post it may be freed, and
     * loop_free() takes the lock first, so the wake fd is still ours here.
     * EAGAIN means the counter is already non-zero: a wake-up is pending. */
    uint64_t one = 1;
    ssize_t w = write(l->wake.fd, &one, sizeof one);
    (void)w;
    pthread_mutex_unlock(&l->post_lock);
    return 0;
}

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

int loop_block_signals(void)
{
    sigset_t set;
    signal_set(&set);
    signal(SIGPIPE, SIG_IGN);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    return rc ? -rc : 0;
}

static void on_signal(io_t *io, uint32_t events)
{
    (void)events;
    loop_t *l = io->arg;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si)
        l->sig_cb(l, (int)si.ssi_signo, l->sig_arg);
}

int loop_signals(loop_t *l, void (*cb)(loop_t *, int, void *), void *arg)
{
    sigset_t set;
    signal_set(&set);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1)
        return -errno;
    l->sig_cb = cb;
    l->sig_arg = arg;
    int rc = loop_io_add(l, &l->sig, fd, EPOLLIN | EPOLLET, on_signal, l);
    if (rc < 0)
        close(fd);
    return rc;
}

int loop_run(loop_t *l)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    l->running = 1;
    l->now = clock_ms();
    while (l->running) {
        uint64_t next = timer_heap_next(&l->timers);
        int timeout;
        if (l->deferred != NULL || next <= l->now)
            timeout = 0;
        else if (next - l->now > LOOP_MAX_SLEEP_MS)
            timeout = LOOP_MAX_SLEEP_MS;
        else
            timeout = (int)(next - l->now);

        int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
        if (n == -1 && errno != EINTR)
            return -errno;
        l->now = clock_ms();
        if (l->first != NULL)
            for (int i = 1; i < n; i++)
                if (evs[i].data.ptr == l->first) {
                    struct epoll_event t = evs[0];
                    evs[0] = evs[i];
                    evs[i] = t;
                    break;
                }
        for (int i = 0; i < n; i++) {
            io_t *io = evs[i].data.ptr;
            if (io->fd < 0)
                continue; /* closed earlier in this batch */
            io->cb(io, evs[i].events);
        }
        run_deferred(l);
        timer_heap_run(&l->timers, l->now);
        run_deferred(l);
    }
    return 0;
}
