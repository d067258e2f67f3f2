/* upload.h - the header fields of resumable uploads, sans-I/O.
 *
 * draft-ietf-httpbis-resumable-upload (read at -12 to -15): Upload-Complete
 * (a Structured Field Boolean Item), Upload-Offset and Upload-Length
 * (non-negative Integer Items), Upload-Limit (a Dictionary the server
 * sends), and the application/partial-upload media type of an append.
 * A value that is not of its type makes the whole field count as absent,
 * as the draft says; so does a field sent on more than one line (combined,
 * it is a list, not an Item). Item parameters (";key=value") are allowed
 * and ignored. */
#ifndef PORTICO_HTTP_UPLOAD_H
#define PORTICO_HTTP_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "http/parse.h"

/* Largest Structured Field Integer (RFC 9651 §3.3.1: 15 digits). */
#define HTTP_SF_INT_MAX 999999999999999LL

/* What a request says about its upload; -1 where a field is absent or
 * invalid. */
struct http_upload_fields {
    int complete;           /* Upload-Complete: 1 ?1, 0 ?0 */
    int64_t offset;         /* Upload-Offset */
    int64_t length;         /* Upload-Length */
};

/* Parses an Item whose bare item is a Boolean ("?0" / "?1"). Returns 0
 * with *out set, or -1. */
int http_sf_bool(slice_t v, int *out);

/* Parses an Item whose bare item is a non-negative Integer. Returns 0 with
 * *out set, or -1 (negative, a decimal, more than 15 digits, ...). */
int http_sf_uint(slice_t v, int64_t *out);

/* Reads the three fields of q. */
void http_upload_fields(const http_request_t *q, struct http_upload_fields *u);

/* Whether a Content-Type value is application/partial-upload (any case,
 * parameters allowed). */
int http_is_partial_upload(slice_t content_type);

#endif
