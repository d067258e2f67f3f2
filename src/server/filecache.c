#include "server/filecache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>

/* What makes a cached file stale: its bytes, its metadata (mtime from
 * touch, mode, and the link count that unlink and rename-over lower), or
 * the file itself moved or gone. */
#define FC_WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

int fc_init(filecache_t *fc, size_t max)
{
    memset(fc, 0, sizeof *fc);
    fc->ifd = -1;
    fc->max = max;
    if (max == 0)
        return 0;
    fc->nbuckets = 1;
    while (fc->nbuckets < max * 2)
        fc->nbuckets <<= 1;
    fc->buckets = calloc(fc->nbuckets, sizeof *fc->buckets);
    fc->wbuckets = calloc(fc->nbuckets, sizeof *fc->wbuckets);
    if (fc->buckets == NULL || fc->wbuckets == NULL) {
        free(fc->buckets);
        free(fc->wbuckets);
        fc->buckets = fc->wbuckets = NULL;
        return -ENOMEM;
    }
    return 0;
}

static struct fc_entry **wd_bucket(filecache_t *fc, int wd)
{
    return &fc->wbuckets[(unsigned)wd & (fc->nbuckets - 1)];
}

/* Takes e off its watch; the watch goes when no other entry (the same
 * file under another key) needs it. */
static void wd_unlink(filecache_t *fc, struct fc_entry *e)
{
    struct fc_entry **pp = wd_bucket(fc, e->wd);
    while (*pp != e)
        pp = &(*pp)->wnext;
    *pp = e->wnext;
    int shared = 0;
    for (struct fc_entry *o = *wd_bucket(fc, e->wd); o != NULL && !shared; o = o->wnext)
        shared = o->wd == e->wd;
    if (!shared)
        inotify_rm_watch(fc->ifd, e->wd); /* EINVAL if the kernel dropped it already */
    e->wd = -1;
}

static void entry_free(struct fc_entry *e)
{
    if (e->map != NULL)
        munmap((void *)e->map, e->maplen);
    close(e->fd);
    free(e->gz);
    free(e->key);
    free(e);
}

void fc_release(void *arg)
{
    struct fc_entry *e = arg;
    if (--e->refs == 0)
        entry_free(e);
}

static void evict(filecache_t *fc, struct fc_entry *e)
{
    struct fc_entry **pp = &fc->buckets[e->hash & (fc->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        fc->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        fc->tail = e->prev;
    if (e->wd >= 0)
        wd_unlink(fc, e);
    e->cached = 0;
    fc->count--;
    fc_release(e);
}

void fc_dispose(filecache_t *fc)
{
    while (fc->head)
        evict(fc, fc->head);
    if (fc->ifd >= 0)
        loop_io_close(&fc->wio);
    fc->ifd = -1;
    free(fc->buckets);
    free(fc->wbuckets);
    fc->buckets = fc->wbuckets = NULL;
}

static void on_inotify(io_t *io, uint32_t events)
{
    filecache_t *fc = io->arg;
    (void)events;
    char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fc->ifd, b, sizeof b);
        if (n <= 0)
            return; /* EAGAIN: all read */
        for (ssize_t off = 0; off < n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(b + off);
            off += (ssize_t)(sizeof *ev + ev->len);
            if (ev->mask & IN_Q_OVERFLOW) {
                /* Events were lost: nothing cached can be trusted. */
                while (fc->head)
                    evict(fc, fc->head);
                continue;
            }
            struct fc_entry *e = *wd_bucket(fc, ev->wd);
            while (e != NULL) {
                struct fc_entry *next = e->wnext;
                if (e->wd == ev->wd) {
                    evict(fc, e);
                    next = *wd_bucket(fc, ev->wd); /* the chain changed */
                }
                e = next;
            }
        }
    }
}

int fc_watch(filecache_t *fc, loop_t *l)
{
    if (fc->watch_tried || fc->max == 0)
        return fc->ifd >= 0 ? 0 : -ENOSYS;
    fc->watch_tried = 1;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = loop_io_add(l, &fc->wio, fd, EPOLLIN, on_inotify, fc);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    loop_io_first(l, &fc->wio);
    fc->ifd = fd;
    return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           b->st_nlink > 0;
}

struct fc_entry *fc_get(filecache_t *fc, const char *key, size_t klen, time_t now)
{
    if (fc->max == 0)
        return NULL;
    uint64_t h = hash_key(key, klen);
    struct fc_entry *e = fc->buckets[h & (fc->nbuckets - 1)];
    while (e && !(e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0))
        e = e->hnext;
    if (e == NULL)
        return NULL;
    struct stat st;
    if (now - e->opened >= FC_REVALIDATE_SEC ||
        (e->wd < 0 && (fstat(e->fd, &st) == -1 || !same_file(&e->st, &st)))) {
        evict(fc, e);
        return NULL;
    }
    if (e != fc->head) {
        /* move to the front of the LRU list */
        e->prev->next = e->next;
        if (e->next)
            e->next->prev = e->prev;
        else
            fc->tail = e->prev;
        e->prev = NULL;
        e->next = fc->head;
        fc->head->prev = e;
        fc->head = e;
    }
    e->refs++;
    return e;
}

struct fc_entry *fc_put(filecache_t *fc, const char *key, size_t klen, int fd,
                        const struct stat *st, time_t now)
{
    struct fc_entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        close(fd);
        return NULL;
    }
    e->fd = fd;
    e->wd = -1;
    e->st = *st;
    e->opened = now;
    e->refs = 1;
    if (fc->max == 0)
        return e;
    e->key = malloc(klen);
    if (e->key == NULL)
        return e; /* served uncached */
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = hash_key(key, klen);
    if (fc->count >= fc->max)
        evict(fc, fc->tail);
    struct fc_entry **b = &fc->buckets[e->hash & (fc->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    e->next = fc->head;
    if (fc->head)
        fc->head->prev = e;
    fc->head = e;
    if (fc->tail == NULL)
        fc->tail = e;
    e->cached = 1;
    e->refs++;
    fc->count++;
    if (fc->ifd >= 0) {
        /* The watch goes on the open file itself (through its /proc
         * link), not on whatever the path names by now. */
        char self[40];
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        int wd = inotify_add_watch(fc->ifd, self, FC_WATCH_MASK);
        if (wd >= 0) {
            e->wd = wd;
            struct fc_entry **wb = wd_bucket(fc, wd);
            e->wnext = *wb;
            *wb = e;
            /* A change between the caller's fstat() and the watch was
             * reported to nobody: look once more, and if the file moved
             * on, leave this entry to the fstat() check of each hit. */
            struct stat now_st;
            if (fstat(fd, &now_st) == -1 || !same_file(st, &now_st))
                wd_unlink(fc, e);
        }
    }
    if (st->st_size > 0 && (uint64_t)st->st_size <= FC_MAP_MAX) {
        void *m = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            e->map = m;
            e->maplen = (size_t)st->st_size;
        }
    }
    return e;
}
