/* slice.h - the one (pointer, length) view type used across portico.
 *
 * A slice never owns its bytes: it points into a buffer that someone else
 * keeps alive (a read buffer, a string literal, an arena). */
#ifndef PORTICO_CORE_SLICE_H
#define PORTICO_CORE_SLICE_H

#include <stddef.h>
#include <string.h>

typedef struct slice {
    const char *p;
    size_t len;
} slice_t;

#define SLICE_LIT(s) ((slice_t){ (s), sizeof(s) - 1 })

static inline slice_t slice_make(const char *p, size_t len)
{
    return (slice_t){ p, len };
}

static inline slice_t slice_cstr(const char *s)
{
    return (slice_t){ s, strlen(s) };
}

static inline int slice_eq(slice_t a, slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

#endif
