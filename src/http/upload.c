/* upload.c - Structured Field Items of the resumable-upload fields
 * (RFC 9651 §4.2 parsing, restricted to what these fields need). */
#include "http/upload.h"

#include <string.h>
#include <strings.h>

static int lcalpha(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static int digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int isalnum_ascii(unsigned char c)
{
    return lcalpha(c) || (c >= 'A' && c <= 'Z') || digit(c);
}

/* sf-integer at s[*i]: ["-"] 1*15DIGIT. Returns 0 and moves *i, or -1. */
static int sf_integer(const char *s, size_t n, size_t *i, int64_t *v)
{
    size_t k = *i;
    int neg = 0;
    if (k < n && s[k] == '-') {
        neg = 1;
        k++;
    }
    size_t start = k;
    int64_t x = 0;
    while (k < n && digit((unsigned char)s[k])) {
        if (k - start == 15)
            return -1;
        x = x * 10 + (s[k] - '0');
        k++;
    }
    if (k == start)
        return -1;
    if (k < n && s[k] == '.')
        return -1; /* a Decimal: another type */
    *v = neg ? -x : x;
    *i = k;
    return 0;
}

/* Any bare item at s[*i] (the value of a parameter): Integer or Decimal,
 * String, Token, Byte Sequence, Boolean. Returns 0 and moves *i, or -1. */
static int sf_bare_item(const char *s, size_t n, size_t *i)
{
    size_t k = *i;
    if (k >= n)
        return -1;
    unsigned char c = (unsigned char)s[k];
    if (c == '-' || digit(c)) {
        if (c == '-')
            k++;
        size_t start = k, dot = 0;
        while (k < n && (digit((unsigned char)s[k]) || (s[k] == '.' && !dot))) {
            if (s[k] == '.')
                dot = k;
            k++;
        }
        if (k == start || k - start > (dot ? 16u : 15u) || (dot && (dot == k - 1 || dot - start > 12 || k - dot - 1 > 3)))
            return -1;
    } else if (c == '"') {
        for (k++;; k++) {
            if (k >= n)
                return -1;
            unsigned char d = (unsigned char)s[k];
            if (d == '"')
                break;
            if (d == '\\') {
                if (++k >= n || (s[k] != '"' && s[k] != '\\'))
                    return -1;
            } else if (d < 0x20 || d > 0x7e) {
                return -1;
            }
        }
        k++;
    } else if (c == '?') {
        if (k + 1 >= n || (s[k + 1] != '0' && s[k + 1] != '1'))
            return -1;
        k += 2;
    } else if (c == ':') {
        for (k++; k < n && s[k] != ':'; k++)
            if (!(isalnum_ascii((unsigned char)s[k]) || s[k] == '+' || s[k] == '/' || s[k] == '='))
                return -1;
        if (k >= n)
            return -1;
        k++;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*') {
        for (k++; k < n && (http_tchar[(unsigned char)s[k]] || s[k] == ':' || s[k] == '/'); k++)
            ;
    } else {
        return -1;
    }
    *i = k;
    return 0;
}

/* parameters = *( ";" *SP key [ "=" bare-item ] ) up to the end of the
 * value. Returns 0 if s[i, n) is exactly that, else -1. */
static int sf_params_to_end(const char *s, size_t n, size_t i)
{
    while (i < n) {
        if (s[i] != ';')
            return -1;
        i++;
        while (i < n && s[i] == ' ')
            i++;
        if (i >= n || !(lcalpha((unsigned char)s[i]) || s[i] == '*'))
            return -1;
        while (i < n && (lcalpha((unsigned char)s[i]) || digit((unsigned char)s[i]) ||
                         s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == '*'))
            i++;
        if (i < n && s[i] == '=') {
            i++;
            if (sf_bare_item(s, n, &i) < 0)
                return -1;
        }
    }
    return 0;
}

int http_sf_bool(slice_t v, int *out)
{
    if (v.len < 2 || v.p[0] != '?' || (v.p[1] != '0' && v.p[1] != '1'))
        return -1;
    if (sf_params_to_end(v.p, v.len, 2) < 0)
        return -1;
    *out = v.p[1] == '1';
    return 0;
}

int http_sf_uint(slice_t v, int64_t *out)
{
    size_t i = 0;
    int64_t x;
    if (sf_integer(v.p, v.len, &i, &x) < 0 || x < 0 || sf_params_to_end(v.p, v.len, i) < 0)
        return -1;
    *out = x;
    return 0;
}

/* The value of the field `name` if it is on exactly one line, else an
 * empty slice with p NULL. */
static slice_t single_field(const http_request_t *q, const char *name)
{
    slice_t v = { NULL, 0 };
    int seen = 0;
    for (size_t i = 0; i < q->nfields; i++) {
        if (http_slice_ieq(q->fields[i].name, name)) {
            if (seen++)
                return (slice_t){ NULL, 0 };
            v = q->fields[i].value;
        }
    }
    return v;
}

void http_upload_fields(const http_request_t *q, struct http_upload_fields *u)
{
    int b;
    int64_t x;
    slice_t v;
    u->complete = -1;
    u->offset = -1;
    u->length = -1;
    if ((v = single_field(q, "upload-complete")).p != NULL && http_sf_bool(v, &b) == 0)
        u->complete = b;
    if ((v = single_field(q, "upload-offset")).p != NULL && http_sf_uint(v, &x) == 0)
        u->offset = x;
    if ((v = single_field(q, "upload-length")).p != NULL && http_sf_uint(v, &x) == 0)
        u->length = x;
}

int http_is_partial_upload(slice_t ct)
{
    static const char t[] = "application/partial-upload";
    size_t n = sizeof t - 1;
    if (ct.len < n || strncasecmp(ct.p, t, n) != 0)
        return 0;
    return ct.len == n || ct.p[n] == ';' || ct.p[n] == ' ' || ct.p[n] == '\t';
}
