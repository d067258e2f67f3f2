#include "core/pool.h"
#include "core/limits.h"

#include <stdlib.h>

void pool_init(pool_t *p, size_t max_free)
{
    pool_init_size(p, POOL_BLOCK_SIZE, max_free);
}

void pool_init_size(pool_t *p, size_t block_size, size_t max_free)
{
    p->block_size = block_size < sizeof(void *) ? sizeof(void *) : block_size;
    p->free_list = NULL;
    p->nfree = 0;
    p->max_free = max_free;
    p->outstanding = 0;
}

void pool_dispose(pool_t *p)
{
    while (p->free_list != NULL) {
        void *next = *(void **)p->free_list;
        free(p->free_list);
        p->free_list = next;
    }
    p->nfree = 0;
}

void *pool_get(pool_t *p)
{
    void *blk = p->free_list;
    if (blk != NULL) {
        p->free_list = *(void **)blk;
        p->nfree--;
    } else {
        blk = malloc(p->block_size);
        if (blk == NULL)
            return NULL;
    }
    p->outstanding++;
    return blk;
}

void pool_put(pool_t *p, void *blk)
{
    if (blk == NULL)
        return;
    p->outstanding--;
    if (p->nfree >= p->max_free) {
        free(blk);
        return;
    }
    *(void **)blk = p->free_list;
    p->free_list = blk;
    p->nfree++;
}
