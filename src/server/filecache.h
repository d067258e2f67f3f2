/* filecache.h - a per-worker cache of open files, so that a hot file costs
 * no system call per request instead of openat2() + fstat() + close().
 *
 * Changes are seen through inotify (fc_watch): each cached file is watched
 * for writes, truncation, attribute changes (chmod, touch, and link count,
 * so unlink and rename-over), and being moved or deleted; the event evicts
 * its entries. The kernel queues the event inside the changing system call,
 * so the inotify fd is ready before any request sent after the change can
 * arrive, and the loop handles ready fds in that order. Without inotify
 * (never started, out of watches) a hit is checked with fstat(): the same
 * inode, size, mtime and ctime. Either way entries older than
 * FC_REVALIDATE_SEC are dropped and the path resolved again, which bounds
 * how long a change inotify does not report (a parent directory renamed,
 * a write through a shared mapping) can go unseen. Entries are
 * reference-counted: one evicted while a response still sends from it is
 * closed when that response ends. Not thread-safe: one cache per worker. */
#ifndef PORTICO_SERVER_FILECACHE_H
#define PORTICO_SERVER_FILECACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/loop.h"

#define FC_REVALIDATE_SEC 1
#define FC_MAX_ENTRIES    1024
/* Cached files up to this size are also mapped read-only, so that a
 * response sends head and bytes with one sendmsg() (see
 * hs_resp_file_mapped); larger ones leave with sendfile(). */
#define FC_MAP_MAX        4096u

struct fc_entry {
    char *key;
    size_t klen;
    uint64_t hash;
    int fd;
    const char *map;            /* the whole file, or NULL; see FC_MAP_MAX */
    size_t maplen;
    struct stat st;
    time_t opened;              /* monotonic seconds */
    unsigned refs;              /* responses in flight, +1 while cached */
    int cached;
    struct fc_entry *hnext;
    struct fc_entry *prev, *next;   /* LRU, most recent first */
    int wd;                     /* inotify watch, or -1: checked with fstat() */
    struct fc_entry *wnext;     /* entries of the same wd bucket */
    /* Derived once per entry for the response head. */
    char etag[64];
    size_t etag_len;
    char lastmod[32];
    const char *mime;
    int compressible;           /* a text-like type worth gzip */
    /* The gzip form, made once on the pool when a client first asks. */
    char *gz;
    size_t gzlen;
    int gz_busy;
    char gz_etag[72];
    size_t gz_etag_len;
};

typedef struct filecache {
    struct fc_entry **buckets;
    size_t nbuckets;
    size_t count, max;
    struct fc_entry *head, *tail;
    struct fc_entry **wbuckets; /* by inotify wd; nbuckets of them */
    int ifd;                    /* inotify, or -1 */
    int watch_tried;
    io_t wio;
} filecache_t;

/* max == 0 makes a cache that never keeps anything. Returns 0 or -ENOMEM. */
int fc_init(filecache_t *fc, size_t max);
void fc_dispose(filecache_t *fc);

/* Starts watching cached files with inotify, its fd on loop l (the
 * worker's). Once per cache; later calls return at once. Returns 0, or
 * -errno when inotify is not available (hits are then checked with
 * fstat()). */
int fc_watch(filecache_t *fc, loop_t *l);

/* Returns a valid entry for key with one reference taken for the caller, or
 * NULL (not cached, stale or changed; a stale entry is evicted). */
struct fc_entry *fc_get(filecache_t *fc, const char *key, size_t klen, time_t now);

/* Wraps an open regular file in an entry (cached when the cache has room
 * for it) and returns it with one reference for the caller. Takes fd.
 * Returns NULL when out of memory (fd is then closed). */
struct fc_entry *fc_put(filecache_t *fc, const char *key, size_t klen, int fd,
                        const struct stat *st, time_t now);

/* Drops a reference; the last one closes the fd and frees the entry. */
void fc_release(void *entry);

#endif
