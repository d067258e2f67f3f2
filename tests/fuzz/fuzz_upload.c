/* fuzz_upload.c - libFuzzer target for the resumable-upload fields
 * (src/http/upload.c).
 *
 * The input is read as one field value, and also split at LF into the
 * values of Upload-Complete, Upload-Offset and Upload-Length of a request.
 * Checked against what the bytes say, with no parser:
 *  - a Boolean accepted starts with "?0" or "?1" and has that value; an
 *    Integer accepted is the (optionally "-0"-signed) decimal digits it
 *    starts with, at most 15 of them;
 *  - the parameters after an Item are read by one routine: "?1" + X is a
 *    Boolean exactly when "5" + X is an Integer, for any X;
 *  - http_upload_fields reports exactly what the single-value parsers say.
 * Each value is a heap copy of exactly its length, so AddressSanitizer sees
 * any read past it. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/upload.h"

static char *copy(const uint8_t *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c == NULL)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

static void check_value(const uint8_t *data, size_t size)
{
    char *v = copy(data, size);
    int b = -1;
    if (http_sf_bool(slice_make(v, size), &b) == 0) {
        if (size < 2 || v[0] != '?' || (v[1] != '0' && v[1] != '1') || b != (v[1] == '1'))
            abort();
    }
    int64_t x = -1;
    if (http_sf_uint(slice_make(v, size), &x) == 0) {
        size_t i = 0, digits = 0;
        int64_t y = 0;
        if (i < size && v[i] == '-')
            i++;
        for (; i < size && v[i] >= '0' && v[i] <= '9'; i++, digits++)
            y = y * 10 + (v[i] - '0');
        if (digits == 0 || digits > 15 || x != y || x < 0 || (v[0] == '-' && x != 0))
            abort();
        if (i < size && v[i] != ';')
            abort();
    }
    (void)http_is_partial_upload(slice_make(v, size));
    free(v);

    /* the same parameters after either bare item */
    char *pb = malloc(size + 2), *pi = malloc(size + 1);
    if (pb == NULL || pi == NULL)
        abort();
    memcpy(pb, "?1", 2);
    memcpy(pb + 2, data, size);
    pi[0] = '5';
    memcpy(pi + 1, data, size);
    int okb = http_sf_bool(slice_make(pb, size + 2), &b) == 0;
    int oki = http_sf_uint(slice_make(pi, size + 1), &x) == 0;
    /* "5" followed by digits is another number, "?1" followed by digits is not a Boolean */
    if (size == 0 || data[0] == ';')
        if (okb != oki)
            abort();
    free(pb);
    free(pi);
}

static void check_fields(const uint8_t *data, size_t size)
{
    static const char *const names[3] = { "Upload-Complete", "Upload-Offset", "Upload-Length" };
    http_field_t f[3];
    char *vals[3] = { NULL, NULL, NULL };
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < 3; i++) {
        if (i == size || data[i] == '\n') {
            vals[n] = copy(data + start, i - start);
            f[n].name = slice_cstr(names[n]);
            f[n].value = slice_make(vals[n], i - start);
            n++;
            start = i + 1;
        }
    }
    http_request_t q;
    memset(&q, 0, sizeof q);
    q.fields = f;
    q.nfields = n;
    struct http_upload_fields u;
    http_upload_fields(&q, &u);
    int b;
    int64_t x;
    int want_c = n > 0 && http_sf_bool(f[0].value, &b) == 0 ? b : -1;
    int64_t want_o = n > 1 && http_sf_uint(f[1].value, &x) == 0 ? x : -1;
    int64_t want_l = n > 2 && http_sf_uint(f[2].value, &x) == 0 ? x : -1;
    if (u.complete != want_c || u.offset != want_o || u.length != want_l)
        abort();
    for (size_t i = 0; i < n; i++)
        free(vals[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_value(data, size);
    check_fields(data, size);
    return 0;
}
