/* test_filecache.c - the open-file cache: hits, and every kind of change
 * evicting the entry, both through inotify (fc_watch) and through the
 * fstat() check that stands in without it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/loop.h"
#include "server/filecache.h"

struct fx {
    char dir[64];
    char path[96];
    loop_t *l;
    filecache_t fc;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    snprintf(x->dir, sizeof x->dir, "/tmp/portico-fc-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->path, sizeof x->path, "%s/f", x->dir);
    write_file(x->path, "one");
    x->l = loop_new();
    assert_non_null(x->l);
    assert_int_equal(fc_init(&x->fc, 16), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    fc_dispose(&x->fc);
    loop_free(x->l);
    char p[128];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, i == 0 ? "%s/f" : i == 1 ? "%s/g" : "%s/h", x->dir);
        unlink(p);
    }
    rmdir(x->dir);
    free(x);
    return 0;
}

static void on_stop(ptimer_t *t, void *arg)
{
    (void)t;
    loop_break(arg);
}

/* One short turn of the loop: whatever inotify queued is handled. */
static void spin(struct fx *x)
{
    ptimer_t t;
    timer_init(&t, on_stop, x->l);
    assert_int_equal(loop_timer_set(x->l, &t, 20), 0);
    assert_int_equal(loop_run(x->l), 0);
}

/* Opens the file and caches it under key; drops the caller's reference. */
static void put(struct fx *x, const char *key, time_t now)
{
    int fd = open(x->path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    struct fc_entry *e = fc_put(&x->fc, key, strlen(key), fd, &st, now);
    assert_non_null(e);
    fc_release(e);
}

/* 1 when key is a valid hit now (the reference taken is dropped). */
static int hit(struct fx *x, const char *key, time_t now)
{
    struct fc_entry *e = fc_get(&x->fc, key, strlen(key), now);
    if (e == NULL)
        return 0;
    fc_release(e);
    return 1;
}

static void watched(void **state, void (*change)(struct fx *))
{
    struct fx *x = *state;
    assert_int_equal(fc_watch(&x->fc, x->l), 0);
    put(x, "/f", 0);
    spin(x);
    assert_true(hit(x, "/f", 0));
    assert_true(hit(x, "/f", 0));
    change(x);
    spin(x);
    assert_false(hit(x, "/f", 0));
}

static void rewrite_same_size(struct fx *x)
{
    struct stat st;
    assert_int_equal(stat(x->path, &st), 0);
    int fd = open(x->path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "two", 3, 0), 3);
    close(fd);
}

static void replace_by_rename(struct fx *x)
{
    char g[128];
    snprintf(g, sizeof g, "%s/g", x->dir);
    write_file(g, "new");
    assert_int_equal(rename(g, x->path), 0);
}

static void remove_file(struct fx *x)
{
    assert_int_equal(unlink(x->path), 0);
}

static void move_away(struct fx *x)
{
    char h[128];
    snprintf(h, sizeof h, "%s/h", x->dir);
    assert_int_equal(rename(x->path, h), 0);
}

static void touch_only(struct fx *x)
{
    struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, x->path, ts, 0), 0);
}

static void truncate_file(struct fx *x)
{
    assert_int_equal(truncate(x->path, 1), 0);
}

static void test_watch_rewrite(void **state) { watched(state, rewrite_same_size); }
static void test_watch_rename_over(void **state) { watched(state, replace_by_rename); }
static void test_watch_unlink(void **state) { watched(state, remove_file); }
static void test_watch_moved_away(void **state) { watched(state, move_away); }
static void test_watch_touch(void **state) { watched(state, touch_only); }
static void test_watch_truncate(void **state) { watched(state, truncate_file); }

/* The event arrives in the same batch as a request: it is handled first
 * (loop_io_first), whatever order epoll reports them in. */
struct reader {
    io_t io;
    struct fx *x;
    int hit_seen;
    int calls;
};

static void on_reader(io_t *io, uint32_t ev)
{
    (void)ev;
    struct reader *r = io->arg;
    char b[8];
    while (read(io->fd, b, sizeof b) > 0)
        ;
    r->calls++;
    r->hit_seen = hit(r->x, "/f", 0);
}

static void test_watch_event_before_request_in_batch(void **state)
{
    struct fx *x = *state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct reader r = { .x = x };
    /* The request's fd is registered first, so that epoll would report it
     * before the inotify fd. */
    assert_int_equal(loop_io_add(x->l, &r.io, p[0], EPOLLIN | EPOLLET, on_reader, &r), 0);
    assert_int_equal(fc_watch(&x->fc, x->l), 0);
    put(x, "/f", 0);
    assert_int_equal(write(p[1], "x", 1), 1); /* the "request" is ready first */
    rewrite_same_size(x);                     /* then the change */
    spin(x);
    assert_int_equal(r.calls, 1);
    assert_false(r.hit_seen);
    loop_io_close(&r.io);
    close(p[1]);
}

/* Two keys for one file share the inotify watch: dropping one key (its
 * time is up) must leave the watch for the other. */
static void test_shared_watch_survives_one_key(void **state)
{
    struct fx *x = *state;
    assert_int_equal(fc_watch(&x->fc, x->l), 0);
    put(x, "/", 0);
    put(x, "/index.html", 5);
    assert_false(hit(x, "/", 5));       /* older than FC_REVALIDATE_SEC: evicted */
    spin(x);                            /* a removed watch would say IN_IGNORED now */
    assert_true(hit(x, "/index.html", 5));
    rewrite_same_size(x);
    spin(x);
    assert_false(hit(x, "/index.html", 5));
}

/* Without inotify every hit is checked with fstat(). */
static void test_unwatched_checks_fstat(void **state)
{
    struct fx *x = *state;
    put(x, "/f", 0);
    assert_true(hit(x, "/f", 0));
    truncate_file(x);
    assert_false(hit(x, "/f", 0));
    put(x, "/f", 0);
    assert_true(hit(x, "/f", 0));
    replace_by_rename(x);
    assert_false(hit(x, "/f", 0));
}

static void test_expiry(void **state)
{
    struct fx *x = *state;
    assert_int_equal(fc_watch(&x->fc, x->l), 0);
    put(x, "/f", 10);
    assert_true(hit(x, "/f", 10 + FC_REVALIDATE_SEC - 1));
    assert_false(hit(x, "/f", 10 + FC_REVALIDATE_SEC));
}

/* An entry still sending when it is evicted keeps its fd until released. */
static void test_evicted_entry_lives_until_released(void **state)
{
    struct fx *x = *state;
    assert_int_equal(fc_watch(&x->fc, x->l), 0);
    put(x, "/f", 0);
    struct fc_entry *e = fc_get(&x->fc, "/f", 2, 0);
    assert_non_null(e);
    remove_file(x);
    spin(x);
    assert_false(hit(x, "/f", 0));
    char b[4];
    assert_int_equal(pread(e->fd, b, 3, 0), 3);
    assert_memory_equal(b, "one", 3);
    fc_release(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watch_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_rename_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_moved_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_event_before_request_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_watch_survives_one_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatched_checks_fstat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evicted_entry_lives_until_released, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
