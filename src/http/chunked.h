/* chunked.h - the chunked transfer coding (RFC 9112 §7.1), sans-I/O.
 *
 * The decoder is a byte-at-a-time state machine over whatever the caller
 * has received, so any split of the input gives the same body bytes and the
 * same verdict. Chunk data is handed out as slices of the caller's input:
 * nothing is copied. Extensions are checked and skipped; trailer fields are
 * checked (field syntax) and skipped. */
#ifndef PORTICO_HTTP_CHUNKED_H
#define PORTICO_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

#define HTTP_CHUNK_MORE 0   /* all input used; need more */
#define HTTP_CHUNK_DATA 1   /* *data holds body bytes */
#define HTTP_CHUNK_DONE 2   /* last chunk and trailers read */

#define HTTP_CHUNK_MAX_EXT     4096u   /* extension bytes on one size line */
#define HTTP_CHUNK_MAX_TRAILER 16384u  /* bytes of the trailer section */

typedef struct http_chunked {
    int state;
    int ndigits;
    uint64_t remaining;    /* data bytes left in the current chunk */
    size_t ext_len;
    size_t trailer_len;
    int last;              /* the size line was 0 */
} http_chunked_t;

void http_chunked_init(http_chunked_t *d);

/* Decodes from in[0, len). Sets *consumed to the input bytes used.
 * Returns HTTP_CHUNK_DATA with *data (a slice of in), HTTP_CHUNK_MORE,
 * HTTP_CHUNK_DONE (bytes after the message stay unconsumed), or -400 with
 * *why set (a bad size: non-hex, empty or over 2^60; a missing CRLF; bad
 * extension or trailer syntax; over-long extensions or trailers). Call
 * again with the rest of the input after DATA. */
int http_chunked_decode(http_chunked_t *d, const char *in, size_t len, size_t *consumed,
                        slice_t *data, const char **why);

/* Writes the size line of a chunk of n bytes ("1a2b\r\n") into out (at least
 * 20 bytes). n must be > 0. Returns its length. */
size_t http_chunk_head(char *out, uint64_t n);

/* The last chunk with no trailers. */
#define HTTP_CHUNK_LAST "0\r\n\r\n"

#endif
