/* store.h - the private cache's entries on disk (portico get --cache DIR).
 *
 * One file per URL in DIR, named by a 64-bit FNV-1a hash of the key (the
 * absolute URL) in hex. An entry is
 *     header (fixed size: magic, lengths, request and response times,
 *             checksum)
 *     key | request fields named by Vary | response head | body
 * and is written to a temporary file in DIR, fsync'ed, then renamed over
 * the name: a reader sees the old entry or the new one, never half of one.
 * A reader checks the magic, the file size against the lengths, the key
 * and the FNV-1a checksum of everything after the header before it uses a
 * byte, so a torn, truncated or corrupted entry (a crash of the disk under
 * a rename, a file edited by hand) is a miss and is removed.
 *
 * Blocking file I/O: for a command-line client that waits for its one
 * transfer anyway. The rules of what to store and for how long are in
 * http/cachectl.h; this is only bytes. */
#ifndef PORTICO_CLIENT_STORE_H
#define PORTICO_CLIENT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/slice.h"

#define STORE_PATH_MAX  4096
#define STORE_META_MAX  (256u * 1024u)   /* key + vary fields + head */

typedef struct store_entry {
    int fd;                  /* open on the entry, -1 when none */
    char *meta;              /* key, vary fields, head (owned) */
    slice_t key, vary, head;
    uint64_t body_off, body_len;
    time_t request_time, response_time;
} store_entry_t;

/* Looks the key up in dir. Returns 1 with *e filled (dispose it), 0 when
 * there is no entry (or it was for another key), -1 when an entry was torn
 * or corrupt (it is removed; *why says how). */
int store_lookup(const char *dir, slice_t key, store_entry_t *e, const char **why);

void store_entry_dispose(store_entry_t *e);

/* Removes the entry of key (no-store, or an invalid one). */
void store_remove(const char *dir, slice_t key);

typedef struct store_writer {
    int fd;
    char tmp[STORE_PATH_MAX];
    char final[STORE_PATH_MAX];
    uint64_t sum;
    uint64_t meta_len[3];
    uint64_t body_len;
    time_t request_time, response_time;
} store_writer_t;

/* Starts a new entry: a temporary file in dir with the key, vary fields
 * and head. Returns 0 or -errno. */
int store_begin(store_writer_t *w, const char *dir, slice_t key, slice_t vary, slice_t head,
                time_t request_time, time_t response_time);

/* Appends body bytes. Returns 0 or -errno. */
int store_write(store_writer_t *w, const void *p, size_t n);

/* Completes the entry: header, fsync, rename over the name. Returns 0 or
 * -errno (the temporary file is removed then). */
int store_commit(store_writer_t *w);

/* Drops an entry being written. */
void store_abort(store_writer_t *w);

/* Copies the body of e into w (for an entry updated by a 304). Returns 0
 * or -errno. */
int store_copy_body(store_writer_t *w, const store_entry_t *e);

#endif
