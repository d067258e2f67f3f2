#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_ALLOC 256u

void buf_init(buf_t *b, size_t cap)
{
    b->data = NULL;
    b->off = b->len = b->size = 0;
    b->cap = cap;
}

void buf_dispose(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->size = 0;
}

int buf_reserve(buf_t *b, size_t n)
{
    if (n > b->cap || b->len > b->cap - n)
        return -ENOBUFS;
    if (buf_room(b) >= n)
        return 0;
    size_t need = b->len + n;
    if (b->size >= need) {
        /* Enough space in total: slide the unread bytes to the front. */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return 0;
    }
    size_t size = b->size ? b->size : BUF_MIN_ALLOC;
    while (size < need)
        size = size > b->cap / 2 ? b->cap : size * 2;
    if (size > b->cap)
        size = b->cap;
    char *p = malloc(size);
    if (p == NULL)
        return -ENOMEM;
    if (b->len)
        memcpy(p, b->data + b->off, b->len);
    free(b->data);
    b->data = p;
    b->off = 0;
    b->size = size;
    return 0;
}

void buf_commit(buf_t *b, size_t n)
{
    b->len += n;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(buf_tail(b), p, n);
    b->len += n;
    return 0;
}

void buf_consume(buf_t *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

void buf_reset(buf_t *b)
{
    b->off = b->len = 0;
}
