/* pstore.h - the proxy's cache storage: objects in memory under an LRU
 * byte limit, optionally persisted to a directory and reloaded at start.
 *
 * An object is a stored response: its primary key (hop.h's cache key),
 * the Vary value it was stored under and the request's secondary key for
 * it, status, the end-to-end header fields, body, and the request/response
 * times RFC 9111's age calculation needs. Objects are immutable once put:
 * a refresh (a 304 merge) puts a new object in place of the old one.
 * References are counted, so a reader keeps an object alive while it
 * sends it even if the store drops it meanwhile.
 *
 * Threads: every function may be called from any thread. The index is
 * split into PROXY_STORE_SHARDS shards by key hash, each under its own
 * mutex and with its own LRU list and share of the byte limit.
 *
 * Disk: each object is one file "<key hash>-<generation>.pce" in the dir,
 * written to a temporary name, fsync'd, then renamed over (atomic: a
 * reader never sees half a file under the final name). The file carries a
 * CRC-32 over all its bytes; at load, a file that is short, long, has a
 * bad header or a bad CRC is deleted and never served. Writing and
 * deleting files block: call pstore_persist() and pstore_remove() off the
 * event loop (a tpool job), pstore_open() at start-up. */
#ifndef PORTICO_PROXY_PSTORE_H
#define PORTICO_PROXY_PSTORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "http/cachectl.h"
#include "http/parse.h"

typedef struct pstore pstore_t;

typedef struct pstore_obj {
    atomic_int refs;
    char *key;              /* NUL-terminated */
    size_t key_len;
    char *vary;             /* the response's Vary value ("" when none) */
    char *vkey;             /* secondary key (hop_vary_key) under vary */
    int status;
    int64_t req_time;       /* seconds since the epoch: request sent */
    int64_t resp_time;      /* response received */
    char *head;             /* end-to-end fields "Name: value\r\n"... */
    size_t head_len;
    http_field_t *fields;   /* head parsed: slices of head */
    size_t nfields;
    /* Fixed once stored, so computed once (RFC 9111 shared-cache rules):
     * freshness lifetime, corrected initial age, Cache-Control. */
    int64_t fresh, init_age;
    http_cc_t cc;
    char *body;
    uint64_t body_len, body_cap;
    int in_index;           /* owned by the store (under its shard lock) */
    uint64_t bytes;         /* what it counts against the limit */
    struct pstore_obj *lru_prev, *lru_next, *hnext;
    uint64_t hash;
    uint64_t gen;           /* file generation */
    int on_disk;            /* its file was written */
    /* The body in a memory file for sendfile(): fd + 1 once made, -1
     * when making it failed, 0 before (pstore_obj_body_fd). */
    atomic_int body_fd;
} pstore_obj_t;

struct pstore_stats {
    uint64_t objects, bytes;
    uint64_t loaded, discarded;   /* at pstore_open: good files, bad ones deleted */
    uint64_t evicted;
};

/* Opens a store of at most mem_limit bytes. With dir (may be NULL) the
 * directory is created if missing and every good object file in it is
 * loaded (newest first, as long as they fit); bad and temporary files are
 * deleted. Returns NULL with one readable sentence in err. */
pstore_t *pstore_open(uint64_t mem_limit, const char *dir, char *err, size_t errlen);
void pstore_close(pstore_t *s);

/* A new object (refs 1, not in the store) with copies of the strings and
 * head, whose lines are parsed into fields (a line without ':' is
 * skipped). Returns NULL when out of memory. */
pstore_obj_t *pstore_obj_new(slice_t key, slice_t vary, slice_t vkey, int status, const char *head,
                           size_t head_len, int64_t req_time, int64_t resp_time);

/* Appends body bytes to an object not yet put. Returns 0, or -1 when out
 * of memory or past max (then nothing is appended). */
int pstore_obj_append(pstore_obj_t *o, const char *p, size_t n, uint64_t max);

void pstore_obj_ref(pstore_obj_t *o);

/* Makes room for a body of n bytes at once (a known Content-Length: no
 * growth by doubling, no slack counted). Returns 0 or -1. */
int pstore_obj_reserve(pstore_obj_t *o, uint64_t n);

/* A file holding o's body (a memfd made at the first call, closed with
 * o), for sending with sendfile(); -1 when it cannot be made. o must be
 * in its final state (put in the store). Any thread. With s, the file's
 * bytes are counted against s's limit as o's (it is a second copy of the
 * body): it is made only when o, counted twice, still fits in its shard's
 * share, evicting older objects as a put does; else -1 (send from
 * memory). */
int pstore_obj_body_fd(pstore_t *s, pstore_obj_t *o);
void pstore_obj_release(pstore_obj_t *o);

/* The largest object a put can take (a shard's share of the limit): a
 * response past it is not worth collecting. */
uint64_t pstore_max_body(const pstore_t *s);

/* Finds the freshest object for key whose secondary key matches the
 * request fields under its own Vary value. Returns it with a reference
 * (release it), or NULL. Marks it recently used. */
pstore_obj_t *pstore_lookup(pstore_t *s, slice_t key, const http_field_t *fields, size_t nfields);

/* Puts o (which the caller keeps its own reference to) in place of any
 * object with the same key and secondary key, and evicts the least
 * recently used objects of its shard beyond the limit. An object larger
 * than a shard's share is not stored: returns -1. Returns 0. */
int pstore_put(pstore_t *s, pstore_obj_t *o);

/* Drops every object of key from memory (their files are queued for
 * pstore_sweep). Returns how many. */
int pstore_remove(pstore_t *s, slice_t key);

/* Writes o to the directory (blocking: temp file, fsync, rename, fsync of
 * the directory), unless it already left the store. A no-op without a
 * directory. Returns 0 or -errno. */
int pstore_persist(pstore_t *s, pstore_obj_t *o);

/* Deletes the files queued for deletion (blocking). */
void pstore_sweep(pstore_t *s);

/* Queues o (a reference is taken) for pstore_persist on the store's own
 * writer thread, which sweeps after each job; o NULL queues a sweep only.
 * Never blocks: for the event loop. A no-op without a directory.
 * pstore_close() waits for the queue to drain. */
void pstore_persist_async(pstore_t *s, pstore_obj_t *o);

/* The file name an object has in the directory: "<16 hex>-<16 hex>.pce"
 * into out (PSTORE_NAME_LEN bytes). */
#define PSTORE_NAME_LEN 38
void pstore_file_name(const pstore_obj_t *o, char *out);

/* The directory, or NULL. */
const char *pstore_dir(const pstore_t *s);

int pstore_has_dir(const pstore_t *s);
void pstore_stats(pstore_t *s, struct pstore_stats *st);

#endif
