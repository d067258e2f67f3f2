#include "http/chunked.h"
#include "http/parse.h"

enum {
    S_SIZE,        /* hex digits */
    S_EXT_BWS,     /* whitespace after the size: only ';' may follow */
    S_EXT,         /* extensions up to CR */
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TR_START,    /* start of a trailer line or the final CRLF */
    S_TR_NAME,
    S_TR_VALUE,
    S_TR_LF,
    S_END_LF,
    S_DONE,
};

void http_chunked_init(http_chunked_t *d)
{
    d->state = S_SIZE;
    d->ndigits = 0;
    d->remaining = 0;
    d->ext_len = 0;
    d->trailer_len = 0;
    d->last = 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A byte allowed in an extension or a field value: VCHAR, obs-text, SP, HTAB. */
static int value_byte(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
}

#define FAIL(reason) do { *why = (reason); *consumed = i; return -400; } while (0)

int http_chunked_decode(http_chunked_t *d, const char *in, size_t len, size_t *consumed,
                        slice_t *data, const char **why)
{
    size_t i = 0;
    *why = "";
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        switch (d->state) {
        case S_SIZE: {
            int v = hexval(c);
            if (v >= 0) {
                if (d->remaining >> 56)
                    FAIL("chunk size too large");
                d->remaining = (d->remaining << 4) | (uint64_t)v;
                d->ndigits++;
                i++;
                break;
            }
            if (d->ndigits == 0)
                FAIL("invalid chunk size");
            d->last = d->remaining == 0;
            d->ext_len = 0;
            if (c == '\r') {
                d->state = S_SIZE_LF;
                i++;
            } else if (c == ';' || c == ' ' || c == '\t') {
                d->state = c == ';' ? S_EXT : S_EXT_BWS;
            } else {
                FAIL("invalid chunk size");
            }
            break;
        }
        case S_EXT_BWS:
            /* chunk-ext = *( BWS ";" ... ): whitespace after the size must
             * lead to a ';'. "1 2" read as 0x12 by another parser is how
             * bodies get smuggled, so anything else is refused. */
            if (c == ';')
                d->state = S_EXT;
            else if (c != ' ' && c != '\t')
                FAIL("invalid chunk extension");
            if (++d->ext_len > HTTP_CHUNK_MAX_EXT)
                FAIL("chunk extensions too long");
            i++;
            break;
        case S_EXT:
            if (c == '\r') {
                d->state = S_SIZE_LF;
            } else if (!value_byte(c)) {
                FAIL("invalid chunk extension");
            } else if (++d->ext_len > HTTP_CHUNK_MAX_EXT) {
                FAIL("chunk extensions too long");
            }
            i++;
            break;
        case S_SIZE_LF:
            if (c != '\n')
                FAIL("chunk size line not ended by CRLF");
            i++;
            d->ndigits = 0;
            d->state = d->last ? S_TR_START : S_DATA;
            break;
        case S_DATA: {
            size_t n = len - i;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = S_DATA_CR;
            *data = slice_make(in + i, n);
            *consumed = i + n;
            return HTTP_CHUNK_DATA;
        }
        case S_DATA_CR:
            if (c != '\r')
                FAIL("chunk data not followed by CRLF");
            d->state = S_DATA_LF;
            i++;
            break;
        case S_DATA_LF:
            if (c != '\n')
                FAIL("chunk data not followed by CRLF");
            d->state = S_SIZE;
            d->remaining = 0;
            i++;
            break;
        case S_TR_START:
            if (c == '\r') {
                d->state = S_END_LF;
            } else if (http_tchar[c]) {
                d->state = S_TR_NAME;
            } else {
                FAIL("invalid trailer field");
            }
            if (++d->trailer_len > HTTP_CHUNK_MAX_TRAILER)
                FAIL("trailer section too large");
            i++;
            break;
        case S_TR_NAME:
            if (c == ':')
                d->state = S_TR_VALUE;
            else if (!http_tchar[c])
                FAIL("invalid trailer field name");
            if (++d->trailer_len > HTTP_CHUNK_MAX_TRAILER)
                FAIL("trailer section too large");
            i++;
            break;
        case S_TR_VALUE:
            if (c == '\r')
                d->state = S_TR_LF;
            else if (!value_byte(c))
                FAIL("invalid trailer field value");
            if (++d->trailer_len > HTTP_CHUNK_MAX_TRAILER)
                FAIL("trailer section too large");
            i++;
            break;
        case S_TR_LF:
            if (c != '\n')
                FAIL("trailer line not ended by CRLF");
            d->state = S_TR_START;
            i++;
            break;
        case S_END_LF:
            if (c != '\n')
                FAIL("chunked body not ended by CRLF");
            d->state = S_DONE;
            i++;
            *consumed = i;
            return HTTP_CHUNK_DONE;
        case S_DONE:
            *consumed = 0;
            return HTTP_CHUNK_DONE;
        }
    }
    *consumed = i;
    if (d->state == S_DONE)
        return HTTP_CHUNK_DONE;
    return HTTP_CHUNK_MORE;
}

size_t http_chunk_head(char *out, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    size_t len = 0;
    while (k)
        out[len++] = tmp[--k];
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}
