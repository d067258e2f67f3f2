/* guard.h - test buffers that end right before a PROT_NONE page, so that
 * any read or write past the end of an input or output faults at once
 * (the picohttpparser trick). For the unit tests only; uses cmocka's
 * assertions, so include it after <cmocka.h>. */
#ifndef PORTICO_TESTS_GUARD_H
#define PORTICO_TESTS_GUARD_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct guard {
    char *base;
    char *end;      /* first byte of the PROT_NONE page */
    size_t maplen;
} guard_t;

/* Maps at least `cap` usable bytes followed by an inaccessible page. */
static inline void guard_init(guard_t *g, size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t acc = (cap + page - 1) / page * page;
    char *p = mmap(NULL, acc + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(mprotect(p + acc, page, PROT_NONE), 0);
    g->base = p;
    g->end = p + acc;
    g->maplen = acc + page;
}

static inline void guard_dispose(guard_t *g)
{
    if (g->base != NULL)
        munmap(g->base, g->maplen);
    g->base = g->end = NULL;
}

/* Copies n bytes so that they end exactly at the guard page. */
static inline char *guard_put(guard_t *g, const char *src, size_t n)
{
    assert_true(n <= (size_t)(g->end - g->base));
    char *p = g->end - n;
    if (n > 0)
        memcpy(p, src, n);
    return p;
}

#endif
