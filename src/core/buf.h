/* buf.h - growable byte buffer with a hard cap.
 *
 * Bytes live in data[off, off+len). Consuming from the front moves `off`;
 * space is reclaimed by compaction when the tail runs out. A buffer never
 * grows beyond `cap`: operations that would exceed it fail with -ENOBUFS
 * and leave the buffer unchanged. */
#ifndef PORTICO_CORE_BUF_H
#define PORTICO_CORE_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;
    size_t off;   /* first unread byte */
    size_t len;   /* bytes readable from data + off */
    size_t size;  /* bytes allocated */
    size_t cap;   /* most bytes the buffer may ever hold allocated */
} buf_t;

/* Initialises an empty buffer that may grow up to `cap` bytes. No memory is
 * allocated until the first write. */
void buf_init(buf_t *b, size_t cap);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_dispose(buf_t *b);

static inline char *buf_head(const buf_t *b) { return b->data + b->off; }
static inline char *buf_tail(const buf_t *b) { return b->data + b->off + b->len; }
/* Bytes writable at buf_tail() without a new reserve. */
static inline size_t buf_room(const buf_t *b) { return b->size - b->off - b->len; }

/* Makes at least `n` bytes writable at buf_tail(), compacting or growing
 * (doubling) as needed. Returns 0, -ENOBUFS when len + n would pass the cap,
 * or -ENOMEM. */
int buf_reserve(buf_t *b, size_t n);

/* Marks `n` bytes written at buf_tail() as readable (after a reserve). */
void buf_commit(buf_t *b, size_t n);

/* Appends `n` bytes. Returns 0, -ENOBUFS or -ENOMEM (buffer unchanged). */
int buf_append(buf_t *b, const void *p, size_t n);

/* Drops `n` readable bytes from the front (n <= len). */
void buf_consume(buf_t *b, size_t n);

/* Empties the buffer, keeping its storage. */
void buf_reset(buf_t *b);

#endif
