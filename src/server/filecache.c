#include "server/filecache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    fc->max = max;
    if (max == 0)
        return 0;
    fc->nbuckets = 1;
    while (fc->nbuckets < max * 2)
        fc->nbuckets <<= 1;
    fc->buckets = calloc(fc->nbuckets, sizeof *fc->buckets);
    return fc->buckets ? 0 : -ENOMEM;
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
    e->cached = 0;
    fc->count--;
    fc_release(e);
}

void fc_dispose(filecache_t *fc)
{
    while (fc->head)
        evict(fc, fc->head);
    free(fc->buckets);
    fc->buckets = NULL;
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
    if (now - e->opened >= FC_REVALIDATE_SEC || fstat(e->fd, &st) == -1 || !same_file(&e->st, &st)) {
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
    if (st->st_size > 0 && (uint64_t)st->st_size <= FC_MAP_MAX) {
        void *m = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            e->map = m;
            e->maplen = (size_t)st->st_size;
        }
    }
    return e;
}
