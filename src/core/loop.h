/* loop.h - the event loop: fds with callbacks, timers, deferred work,
 * cross-thread posts and signals. It knows no protocol.
 *
 * One loop per thread. Sockets are registered edge-triggered (EPOLLET) by
 * their owners, which then read and write until EAGAIN. The monotonic clock
 * is read once per iteration; loop_now() returns that reading in ms.
 *
 * Lifetime rule: an owner that closes an io during a callback must not free
 * the memory holding it until the end of the iteration, because the batch
 * returned by epoll_wait may still name it. loop_defer() runs a function at
 * that safe point; loop_io_close() marks the io dead so that stale events in
 * the batch are skipped. */
#ifndef PORTICO_CORE_LOOP_H
#define PORTICO_CORE_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#include "core/pool.h"
#include "core/timer.h"

typedef struct loop loop_t;
typedef struct io io_t;

/* Called with the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP,
 * EPOLLRDHUP). */
typedef void (*io_cb)(io_t *io, uint32_t events);

struct io {
    int fd;             /* -1 once closed or removed */
    uint32_t events;    /* registered mask */
    io_cb cb;
    void *arg;
    loop_t *loop;
};

typedef struct loop_defer {
    struct loop_defer *next;
    void (*fn)(void *arg);
    void *arg;
    int queued;
} loop_defer_t;

/* Creates a loop. Returns NULL with errno set on failure. */
loop_t *loop_new(void);

/* Runs what loop_defer() still holds, then frees the loop. Registered fds
 * are not closed; pending posts are dropped. */
void loop_free(loop_t *l);

/* Runs until loop_break(). Returns 0, or -errno when epoll_wait fails. */
int loop_run(loop_t *l);

/* Makes loop_run() return after the current iteration. Loop thread only. */
void loop_break(loop_t *l);

/* Milliseconds of CLOCK_MONOTONIC, read at the start of this iteration. */
uint64_t loop_now(const loop_t *l);

/* Per-thread block pool of this loop. */
pool_t *loop_pool(loop_t *l);

/* Registers `fd` with mask `events` (add EPOLLET for edge-triggered).
 * Returns 0 or -errno. */
int loop_io_add(loop_t *l, io_t *io, int fd, uint32_t events, io_cb cb, void *arg);

/* Makes io's events run before any other of the same epoll batch (one such
 * io per loop; a later call replaces it, NULL clears it). For an fd that
 * reports changes others must see first: an inotify fd whose events
 * invalidate what a request read in the same batch would be answered from.
 * loop_io_del/close of that io clears it. */
void loop_io_first(loop_t *l, io_t *io);

/* Changes the registered mask. Returns 0 or -errno. */
int loop_io_mod(io_t *io, uint32_t events);

/* Removes the fd from the loop without closing it; the io is dead after. */
void loop_io_del(io_t *io);

/* Removes and closes the fd; the io is dead after. */
void loop_io_close(io_t *io);

/* Closes an fd that no other descriptor, in this process or another, refers
 * to (a socket this loop accepted or created and never dup'ed or shared):
 * close() alone takes it out of the epoll set, so EPOLL_CTL_DEL is skipped.
 * Never for stdin/stdout or inherited descriptors. The io is dead after. */
void loop_io_close_sole(io_t *io);

/* Arms `t` to fire `delay_ms` from loop_now(). Returns 0 or -ENOMEM. */
int loop_timer_set(loop_t *l, ptimer_t *t, uint64_t delay_ms);
void loop_timer_cancel(loop_t *l, ptimer_t *t);

/* Runs fn(arg) at the end of the current iteration, after every event of the
 * batch was handled, in the order the calls were queued (so a "use" queued
 * before a "free" runs first); what they queue runs in the same pass. `d` is owned by the caller and must stay valid until fn
 * runs; queuing an already queued `d` is a no-op. */
void loop_defer(loop_t *l, loop_defer_t *d, void (*fn)(void *), void *arg);

/* Runs fn(l, arg) on the loop's thread soon. Safe from any thread.
 * Returns 0 or -ENOMEM. */
int loop_post(loop_t *l, void (*fn)(loop_t *, void *), void *arg);

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (threads created
 * afterwards inherit the mask) and ignores SIGPIPE. Call before creating
 * threads. Returns 0 or -errno. */
int loop_block_signals(void);

/* Delivers SIGINT, SIGTERM and SIGHUP to cb on this loop via signalfd.
 * Returns 0 or -errno. */
int loop_signals(loop_t *l, void (*cb)(loop_t *, int signo, void *), void *arg);

#endif
