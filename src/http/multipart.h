/* multipart.h - streaming multipart/form-data parser (RFC 7578, RFC 2046 §5.1), sans-I/O.
 *
 * The parser is a state machine over whatever part of the body the caller
 * has, so any split of the input gives the same events (MP_PART, MP_PART_END,
 * MP_DONE or the error, each at the same input offset) and the same data per
 * part. Part bodies are handed out as slices, never copied: slices of the
 * caller's input, or, for bytes that looked like the start of a delimiter
 * across a call boundary and turned out not to be, slices of the parser's
 * own copy of the delimiter (those bytes are, by construction, a prefix of
 * it). So at most strlen(delimiter) - 1 body bytes are held back at any time.
 *
 * One part's header lines are kept in the parser (MP_HEAD_MAX) and read when
 * each line is complete. Strictness (each a -400): lines must end in CRLF;
 * a NUL in a header line; no colon or a non-token name; Content-Disposition
 * missing, repeated, not form-data, with bad parameter syntax or a repeated
 * parameter; name= or filename= longer than MP_NAME_MAX - 1 bytes or a
 * Content-Type longer than 127 (refused rather than cut, since a cut name is
 * another name); anything after a boundary other than transport padding
 * (SP/HTAB) and CRLF, or "--". */
#ifndef PORTICO_HTTP_MULTIPART_H
#define PORTICO_HTTP_MULTIPART_H

#include <stddef.h>

#include "core/slice.h"

#define MP_BOUNDARY_MAX 70
#define MP_HEAD_MAX 8192             /* bytes of one part's header section */
#define MP_NAME_MAX 256              /* name= and filename= values kept */
#define MP_PREAMBLE_MAX (64u * 1024u) /* bytes before the first boundary */

enum mp_event { MP_MORE = 0, MP_PART, MP_DATA, MP_PART_END, MP_DONE };

typedef struct mp_part {
    /* name= and filename= as a browser meant them: the value between the
     * quotes with %22, %0D and %0A decoded (the only escapes of the HTML
     * form encoding; a backslash is a plain byte), "" if none. */
    char name[MP_NAME_MAX];          /* form field name */
    char filename[MP_NAME_MAX];
    int has_filename;
    char content_type[128];          /* the part's Content-Type, "" if none */
} mp_part_t;

typedef struct mp_parser {
    int state;
    const char *why;                 /* the error, once failed */
    size_t dlen;                     /* strlen(delim) */
    size_t match;                    /* bytes of delim matched (held back in a body) */
    size_t count;                    /* preamble bytes, or header section bytes */
    size_t line_len;
    int seen_cd, seen_ct;
    char delim[4 + MP_BOUNDARY_MAX]; /* CRLF "--" boundary; also the lookahead */
    mp_part_t part;                  /* the part whose headers are being read */
    char line[MP_HEAD_MAX];          /* the header line being read */
} mp_parser_t;

/* Extracts the boundary parameter from a Content-Type value such as
 * `multipart/form-data; boundary="abc"` (quoted or token; 1-70 chars of the
 * RFC 2046 bchars, not ending in a space). The media type must be
 * multipart/<subtype> (the caller checks the subtype); a repeated boundary
 * parameter or a quoted one with backslash escapes is refused. Returns 0
 * with *out pointing into ct (quotes excluded), or -1. */
int mp_boundary(slice_t content_type, slice_t *out);

/* Returns 0, or -1 if the boundary is empty or too long, or has a CR or LF
 * (then mp_feed fails). Copies it. */
int mp_init(mp_parser_t *p, slice_t boundary);

/* Feeds input. Sets *consumed and *why ("" unless -400). Returns:
 *  MP_PART     a part's headers are complete: *part filled (Content-Disposition:
 *              form-data with name/filename parsed; filename*= is ignored)
 *  MP_DATA     *data holds body bytes of the current part (never empty; a slice
 *              of the input OR of the parser's internal lookahead buffer -
 *              valid until the next call)
 *  MP_PART_END the current part ended (its delimiter consumed)
 *  MP_DONE     the close delimiter "--boundary--" was seen; consumed ends right
 *              after it. Once done, every call consumes all its input (the
 *              epilogue, ignored) and returns MP_MORE.
 *  MP_MORE     all input used, need more
 *  -400        malformed (*why set, *consumed = offset of the refused byte):
 *              no initial boundary (preamble over MP_PREAMBLE_MAX bytes without
 *              it), a header line without CRLF, a header section over
 *              MP_HEAD_MAX, a header without colon, a part without
 *              Content-Disposition: form-data, junk after a boundary (see the
 *              top of this file). Later calls return -400 again, consuming
 *              nothing.
 * Call again with the rest of the input after every non-MORE event. Any split
 * of the input across calls gives the same events and the same concatenated
 * data per part. The end of the input is told with mp_finish. */
int mp_feed(mp_parser_t *p, const char *in, size_t len, size_t *consumed, mp_part_t *part,
            slice_t *data, const char **why);

/* The body ended: returns 0 if MP_DONE was reached, -400 otherwise (truncated
 * or malformed). */
int mp_finish(const mp_parser_t *p);

#endif
