/* pool.h - a per-thread pool of fixed-size blocks (POOL_BLOCK_SIZE unless
 * the pool was made with another size).
 *
 * Read buffers are taken from the pool when a connection has bytes to hold
 * and given back when it falls idle, so an idle connection costs only its
 * struct. A pool belongs to one thread and is not locked. */
#ifndef PORTICO_CORE_POOL_H
#define PORTICO_CORE_POOL_H

#include <stddef.h>

typedef struct pool {
    void *free_list;      /* singly linked through the first word */
    size_t nfree;         /* blocks on free_list */
    size_t max_free;      /* blocks kept before freeing to malloc */
    size_t outstanding;   /* blocks handed out and not yet returned */
    size_t block_size;
} pool_t;

/* A pool of POOL_BLOCK_SIZE blocks. */
void pool_init(pool_t *p, size_t max_free);

/* A pool of `block_size` blocks (at least sizeof(void *)). */
void pool_init_size(pool_t *p, size_t block_size, size_t max_free);

/* Frees every cached block. Blocks still handed out stay valid and may be
 * freed with free(). */
void pool_dispose(pool_t *p);

/* Returns a block of p->block_size bytes, or NULL when out of memory. */
void *pool_get(pool_t *p);

/* Gives a block back (NULL is ignored). */
void pool_put(pool_t *p, void *blk);

#endif
