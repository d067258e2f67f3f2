/* limits.h - HTTP limits and timeouts: every default in one place.
 *
 * Each is also a field of struct http_limits, so a config file or flag can
 * change it at start-up; the parser and engine read only the struct. */
#ifndef PORTICO_HTTP_LIMITS_H
#define PORTICO_HTTP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_DEFAULT_MAX_TARGET        (8u * 1024u)    /* 414 beyond */
#define HTTP_DEFAULT_MAX_HEAD          (16u * 1024u)   /* 431 beyond (whole header section) */
#define HTTP_DEFAULT_MAX_FIELDS        100u            /* 431 beyond */
#define HTTP_DEFAULT_MAX_BODY          (1024u * 1024u) /* 413 beyond */
#define HTTP_DEFAULT_HEADER_TIMEOUT_MS 10000u          /* 408 when the head is slower */
#define HTTP_DEFAULT_IDLE_TIMEOUT_MS   60000u          /* keep-alive connection with no request */
#define HTTP_DEFAULT_SEND_TIMEOUT_MS   60000u          /* peer not reading the response */
#define HTTP_DEFAULT_MAX_REQUESTS      10000u          /* per connection, 0 = unlimited */
#define HTTP_DEFAULT_MAX_CONNS         100000u         /* per process */
#define HTTP_DEFAULT_LINGER_MS         2000u           /* reading after an error response */
#define HTTP_DEFAULT_DISCARD_BODY      (64u * 1024u)   /* unwanted body read to keep the connection */

/* Hard ceilings for what a config may set. */
#define HTTP_CEIL_MAX_HEAD             (1024u * 1024u)
#define HTTP_CEIL_MAX_FIELDS           10000u

/* Fields the parser stores per request (the array in http_request_t). */
#define HTTP_FIELDS_CAP                HTTP_CEIL_MAX_FIELDS

struct http_limits {
    size_t max_target;
    size_t max_head;
    size_t max_fields;
    uint64_t max_body;
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t send_timeout_ms;
    uint32_t max_requests;
    uint32_t max_conns;
    uint32_t linger_ms;
    uint64_t discard_body;
};

void http_limits_default(struct http_limits *l);

#endif
