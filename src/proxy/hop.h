/* hop.h - rewriting messages that pass through the proxy, sans-I/O.
 *
 * Hop-by-hop fields (RFC 9110 §7.6.1) belong to one connection and are
 * never forwarded: Connection and every field it names, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authorization, Proxy-Authenticate. The proxy adds Via (§7.6.3),
 * Forwarded (RFC 7239) and X-Forwarded-For, and counts Max-Forwards down
 * for TRACE and OPTIONS (§7.6.2).
 *
 * The cache key is the target URI without the method (RFC 9111 §2):
 * "http://host[:port]/path?query", scheme and host in lower case, the
 * default port left out, so that every way of writing one URI gives one
 * key. Vary (RFC 9111 §4.1) gives a secondary key built from the request
 * fields the response names. */
#ifndef PORTICO_PROXY_HOP_H
#define PORTICO_PROXY_HOP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"
#include "core/sock.h"
#include "http/parse.h"
#include "proxy/limits.h"

/* The field names a message's Connection fields list. */
struct hop_conn {
    slice_t names[PROXY_MAX_CONN_TOKENS];
    size_t n;
    int overflow;         /* more than PROXY_MAX_CONN_TOKENS: see hop_is_hop */
};

/* Collects the Connection tokens of fields[0, n). */
void hop_conn_collect(const http_field_t *fields, size_t n, struct hop_conn *hc);

/* 1 when the field `name` must not be forwarded: a fixed hop-by-hop field
 * or one the Connection fields name. */
int hop_is_hop(slice_t name, const struct hop_conn *hc);

/* Splits an authority "host", "host:port", "[v6]" or "[v6]:port" into the
 * host (no brackets) and port (defport when absent). Returns 0, or -1 for
 * an empty host, a bad port or unbalanced brackets. */
int hop_authority_split(slice_t auth, slice_t *host, uint16_t *port, uint16_t defport);

/* What the proxy adds to a forwarded request. */
struct hop_req_opts {
    slice_t method;
    slice_t target;        /* origin-form: "/path?query" */
    slice_t host;          /* the Host field to send (the target's authority) */
    const addr_t *client;  /* for Forwarded and X-Forwarded-For; NULL: none */
    const char *via_name;  /* received-by pseudonym, e.g. "portico" */
    int forwarded;         /* add Forwarded: for=...;host=...;proto=http */
    int x_forwarded_for;   /* add X-Forwarded-For */
    int chunked;           /* the body is sent chunked: say so */
};

/* Max-Forwards of a TRACE or OPTIONS request: its value, or -1 when absent
 * or when the method is another one (the field then does not count).
 * A value that is not a decimal number counts as absent. */
long hop_max_forwards(const http_request_t *req);

/* Writes the head of the request to send upstream into out: request line
 * (HTTP/1.1), Host, every end-to-end field of req except Host and the
 * fields the proxy rewrites (Via, Forwarded, X-Forwarded-For,
 * Max-Forwards, which are extended or counted down), then the proxy's
 * own, framing, and the blank line. Returns 0, or -ENOBUFS when out's cap
 * is too small (out is then reset). */
int hop_write_request(buf_t *out, const http_request_t *req, const struct hop_req_opts *o);

/* The fields of the request to send upstream, into out[0, max): Host
 * first, every end-to-end field of req except Host and the fields the
 * proxy rewrites, then Max-Forwards (counted down), Via, Forwarded and
 * X-Forwarded-For as opts say (no framing fields: Content-Length passes
 * as it is, chunked is the sender's business). Slices point into req's
 * buffer, opts' slices, or scratch, whose bytes must not move while they
 * are used (the function reserves what it needs first). Returns the count,
 * or -ENOBUFS when max or scratch's cap is too small. */
int hop_request_fields(const http_request_t *req, const struct hop_req_opts *o, http_field_t *out,
                       size_t max, buf_t *scratch);

/* Appends the Via element of this hop ("1.1 NAME" or "1.0 NAME" by the
 * version of the message received) to an existing Via value (may be
 * empty) into out, NUL-terminated, at most outlen bytes. Returns the
 * length, or -1 when it does not fit. */
int hop_via(char *out, size_t outlen, slice_t existing, int version, const char *name);

/* The cache key of a request: "http://host[:port]/path[?query]" into out,
 * NUL-terminated. scheme_https selects https and port 443 as default.
 * Returns the length or -1 when it does not fit in outlen. */
int hop_cache_key(char *out, size_t outlen, int scheme_https, slice_t host, uint16_t port,
                  slice_t path, slice_t query, int has_query);

/* The secondary key of a request under a response's Vary value: for each
 * field name Vary lists (in order, lower-cased), "name:" then the
 * request's values of that field joined by ",", with runs of whitespace
 * made one space, then "\n". A field the request lacks gives "name\n",
 * so that absent and empty differ. Returns the length,
 * HOP_VARY_STAR for "Vary: *" (never matches), or -1 when it does not fit
 * or Vary names too many fields. */
#define HOP_VARY_STAR (-2)
int hop_vary_key(char *out, size_t outlen, slice_t vary, const http_field_t *fields, size_t nfields);

#endif
