/* client.h - HTTP/1.1 client connections and a connection pool, on the
 * event loop (used by `portico get` and by the proxy's upstream side).
 *
 * One client_pool_t per loop. A request names the origin to connect to
 * (host and port: the proxy's when going through one), a method, a target
 * (origin-form "/p?q", or absolute-form for a forward proxy) and header
 * fields; the engine adds Host (from the origin) when the fields lack one,
 * and Content-Length or Transfer-Encoding: chunked for the body.
 *
 *     client_pool_new(loop, &opts)
 *     client_request(pool, &req, &cbs, arg, &r)    -- any number at once
 *         on_info  (1xx, optional)     on_head (final head)
 *         on_data* (body slices; return CLIENT_PAUSE to stop reading,
 *                   client_req_resume() to go on)
 *         on_end   or on_error         -- exactly one of them, last
 *     client_pool_free(pool)           -- after every request ended
 *
 * Connections: per origin (host without case, port), a list of idle
 * keep-alive connections, the most recently used taken first, at most
 * max_idle kept, each closed after idle_timeout_ms. An idle connection is
 * watched for EPOLLIN/EPOLLRDHUP: a server that closes it (or sends
 * anything unasked) gets it closed and dropped from the pool at once. A
 * request waits for no other: without an idle connection, a new one is
 * opened (no limit on connections per origin; callers that want one
 * connection send one request at a time).
 *
 * Names: an IP literal is used as is; other names go through
 * dns/hostaddr.h on the loop (/etc/hosts alone when it has the name, else
 * resolv.conf's servers asked for AAAA and A together; IPv6 first,
 * addresses with no route last), never a blocking call. Resolved
 * addresses are kept CLIENT_DNS_KEEP_MS per origin, whatever the records'
 * TTLs (hostaddr does not report them); connects go to each address in
 * turn until one answers.
 *
 * Retry: a request that fails on a reused connection before any byte of
 * its response arrived (the server had closed it: reset, EOF, EPIPE) is
 * sent once more on a new connection when its method is idempotent (GET,
 * HEAD, PUT, DELETE, OPTIONS, TRACE) and its body can be sent again (none,
 * or given whole in body_data). Nothing else is retried.
 *
 * Timeouts: connect_timeout_ms for resolving and connecting (each address
 * tried gets an even share of the time left, so an address that never
 * answers does not starve the next one), header_
 * timeout_ms from the end of the request's sending to its final head,
 * read_timeout_ms for any stall afterwards (no body byte, or a request
 * body that cannot be sent; not while the caller has paused the body),
 * idle_timeout_ms for pooled connections.
 *
 * Callbacks run on the loop, never from inside client_request(). During a
 * callback the request may be cancelled; after on_end or on_error it is
 * gone. Slices given to callbacks are valid during the call only. Loop
 * thread only. */
#ifndef PORTICO_CLIENT_CLIENT_H
#define PORTICO_CLIENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/limits.h"
#include "core/loop.h"
#include "core/slice.h"
#include "core/sock.h"
#include "dns/conf.h"
#include "http/parse.h"
#include "http/response.h"

typedef struct client_pool client_pool_t;
typedef struct client_req client_req_t;

typedef struct client_opts {
    uint32_t connect_timeout_ms;
    uint32_t header_timeout_ms;
    uint32_t read_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t max_idle;          /* idle connections kept per origin (0: none) */
    size_t max_head;
    size_t max_fields;
    uint32_t max_info;          /* 1xx heads accepted before the final one */
    const dns_conf_t *dns;      /* NULL: IP literals only; must outlive the pool */
    /* Asked about every address before connecting to it; 1 skips it (the
     * proxy refuses its own listening addresses). NULL: none skipped. A
     * name whose every address is skipped fails with CLIENT_E_FORBIDDEN. */
    int (*forbid)(void *arg, const addr_t *a);
    void *forbid_arg;
} client_opts_t;

/* The defaults of client/limits.h; dns NULL. */
void client_opts_default(client_opts_t *o);

enum client_body {
    CLIENT_BODY_NONE = 0,       /* no body, no Content-Length (unless the
                                   fields give one, as for POST of nothing) */
    CLIENT_BODY_DATA,           /* body_data[0, body_len) given whole; the
                                   caller keeps it valid until the end */
    CLIENT_BODY_STREAM,         /* client_req_write() / client_req_finish();
                                   Content-Length: body_len when >= 0, else
                                   chunked */
};

typedef struct client_req_opts {
    slice_t host;               /* to connect to: name or IP literal, no brackets */
    uint16_t port;
    slice_t method;             /* "GET" ... (token) */
    slice_t target;             /* request-target as sent */
    const http_field_t *fields; /* sent as given, in order */
    size_t nfields;
    enum client_body body;
    const void *body_data;
    int64_t body_len;
    int no_retry;               /* never retry, even when idempotent */
    int close;                  /* send Connection: close and do not pool */
} client_req_opts_t;

/* Returned by on_data to stop reading until client_req_resume(). */
#define CLIENT_PAUSE 1

enum client_err {
    CLIENT_E_RESOLVE = 1,       /* the name did not resolve */
    CLIENT_E_CONNECT,           /* no address accepted the connection */
    CLIENT_E_CONNECT_TIMEOUT,
    CLIENT_E_SEND,              /* the connection failed while sending */
    CLIENT_E_RECV,              /* the connection failed (a reset), or closed
                                   inside the head */
    CLIENT_E_HEADER_TIMEOUT,
    CLIENT_E_READ_TIMEOUT,
    CLIENT_E_PROTOCOL,          /* a bad response head or framing */
    CLIENT_E_TRUNCATED,         /* closed before the end of the body */
    CLIENT_E_NOMEM,
    CLIENT_E_EMPTY,             /* closed before any byte of the response */
    CLIENT_E_SINK,              /* client_req_sink(): the sink took no bytes */
    CLIENT_E_FORBIDDEN,         /* every address was refused by opts.forbid */
};

typedef struct client_cbs {
    /* A 1xx head (not 101). Optional. */
    void (*on_info)(client_req_t *r, const http_response_t *res, void *arg);
    /* The final head. res->fields are valid during the call. */
    void (*on_head)(client_req_t *r, const http_response_t *res, void *arg);
    /* Body bytes in order; CLIENT_PAUSE to stop reading. */
    int (*on_data)(client_req_t *r, slice_t data, void *arg);
    /* The body is complete; the connection went back to the pool or closed. */
    void (*on_end)(client_req_t *r, void *arg);
    /* The request failed; msg is one readable line (valid during the call).
     * May come after on_head (a truncated body, a timeout). */
    void (*on_error)(client_req_t *r, enum client_err err, const char *msg, void *arg);
    /* CLIENT_BODY_STREAM: room for more body (optional). */
    void (*on_drain)(client_req_t *r, void *arg);
    /* client_req_sink(): n body bytes went to the sink (optional). */
    void (*on_sunk)(client_req_t *r, size_t n, void *arg);
} client_cbs_t;

/* Creates a pool on loop l with a copy of *o. Returns NULL on ENOMEM. */
client_pool_t *client_pool_new(loop_t *l, const client_opts_t *o);

/* Closes the idle connections and frees the pool. Requests still running
 * are cancelled first (no callback). */
void client_pool_free(client_pool_t *p);

/* Starts a request. *out (may be NULL) gets its handle, valid until its
 * last callback returns. Returns 0, -EINVAL (empty host, port 0, a method
 * that is not a token, a target with CR, LF, space or NUL, a field with
 * CR or LF), or -ENOMEM. */
int client_request(client_pool_t *p, const client_req_opts_t *o, const client_cbs_t *cbs,
                   void *arg, client_req_t **out);

/* CLIENT_BODY_STREAM: queues n body bytes. on_error and on_drain may be
 * called from inside this call (and client_req_finish): a caller inside
 * another engine's callback defers what it does there. Returns 0, -ENOBUFS when more
 * than CLIENT_SEND_BUF_CAP would be queued (nothing was taken: wait for
 * on_drain), -EINVAL after client_req_finish() or past body_len, or
 * -EPIPE when the request already failed. */
int client_req_write(client_req_t *r, const void *p, size_t n);

/* CLIENT_BODY_STREAM: the body is complete. Returns 0, or -EINVAL when a
 * declared body_len was not reached. */
int client_req_finish(client_req_t *r);

/* From on_head (or later): the rest of a Content-Length body goes to fd
 * through splice(2) (socket -> a pipe made for the request -> fd) instead
 * of on_data: no copy through memory. Bytes already read still come
 * through on_data first; each move to fd is reported by on_sunk. The
 * length is kept exact: never more than Content-Length is taken from the
 * socket, and a close before it is CLIENT_E_TRUNCATED as on the ordinary
 * path. A sink that cannot take a splice (a file opened O_APPEND) is found
 * at its first move: the bytes go back to the ordinary path (on_data) and
 * the sink is dropped; so are they when no pipe can be made. A failed
 * write to fd is CLIENT_E_SINK. The pipe is made at the first splice, so
 * a body that came whole with the head costs nothing. Returns 0, or
 * -EINVAL when the body is not Content-Length framed, is empty, or is
 * paused. */
int client_req_sink(client_req_t *r, int fd);

/* Starts reading the response body again after on_data paused it. */
void client_req_resume(client_req_t *r);

/* Abandons a request: no more callbacks, its connection is closed. Safe
 * from inside its own callbacks. */
void client_req_cancel(client_req_t *r);

/* About the connection carrying a request. */
typedef struct client_conn_info {
    int reused;                 /* the connection served a request before */
    int retried;                /* this is the automatic second attempt */
    addr_t peer;                /* valid once connected (peer.len > 0) */
    uint64_t conn_id;           /* per pool, from 1 */
} client_conn_info_t;

void client_req_info(const client_req_t *r, client_conn_info_t *info);

typedef struct client_stats {
    uint64_t connects;          /* connections opened */
    uint64_t reuses;            /* requests sent on a pooled connection */
    uint64_t retries;
    uint64_t idle_closed;       /* pooled connections the server closed */
    size_t idle;                /* connections in the pool now */
} client_stats_t;

void client_pool_stats(const client_pool_t *p, client_stats_t *s);

/* "resolve", "connect", ... for people. */
const char *client_err_name(enum client_err e);

#endif
