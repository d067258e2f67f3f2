/* server.h - the HTTP/1.1 connection engine (server side).
 *
 * One state machine per connection: read and parse a request head, hand
 * it to the handler, write the response (header block, then a file with
 * sendfile() or bytes from memory), then keep the connection alive or
 * close it. Shared by `serve` and `proxy`: they differ only in the handler
 * they plug in.
 *
 * Threads: cfg->workers loops, each with its own SO_REUSEPORT listener per
 * address; a connection lives on one worker. The handler runs on the
 * worker's thread and answers from on_request, or from on_end of the body
 * it asked for, or later from another callback on the same worker after
 * hs_hold() (a disk job, an upstream response). */
#ifndef PORTICO_SERVER_SERVER_H
#define PORTICO_SERVER_SERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/sock.h"
#include "http/limits.h"
#include "http/chunked.h"
#include "http/parse.h"

#define HS_MAX_LISTEN 16

struct hs_config {
    const char *name;            /* the command, for messages: NULL is "serve" */
    struct http_limits lim;
    int workers;
    uint32_t shutdown_ms;
    const char *access_log;      /* NULL: off; "-": stdout; else a file */
    addr_t listen[HS_MAX_LISTEN];
    int nlisten;
    int verbose;                 /* print "listening on" lines on stderr */
    int any_method;              /* hand unknown methods to the handler (else 501) */
    /* TCP congestion control of the listeners (their connections inherit
     * it): a kernel name, or NULL for auto, which moves listeners on
     * loopback addresses off a pacing controller (BBR) to CUBIC. */
    const char *tcp_congestion;
    /* Optional: the shutdown timeout passed with requests still held (a
     * proxy waiting on upstreams): called with the worker's handler
     * context to answer or drop them now, so that the worker can end. */
    void (*on_stop)(void *wctx);
};

typedef struct hs_req hs_req_t;

struct hs_handler {
    /* In each worker's thread before it serves: returns the worker's
     * handler context (NULL is allowed). */
    void *(*worker_init)(int idx, void *arg);
    void (*worker_free)(void *wctx);
    /* A request head arrived (method known, limits passed). Must answer
     * with exactly one hs_resp_* call chain before returning. */
    void (*on_request)(hs_req_t *r, void *wctx);
    /* The engine refuses a head before on_request sees it (413: a
     * Content-Length past max_body). May be NULL. The handler may answer
     * with that same status itself, to add fields of its own (r->close is
     * set; the body is never read); otherwise the engine answers. */
    void (*on_refused)(hs_req_t *r, void *wctx, int status);
};

struct hs_body_ops;

/* One piece of a multi-part file response: bytes from memory, then a range
 * of the file. */
struct hs_part {
    const char *mem;
    size_t memlen;
    uint64_t off, len;
};

struct hs_req {
    /* The request head. Its slices point into the connection's read buffer
     * and are valid only during on_request; its numbers stay valid. */
    http_request_t req;
    struct hs_conn *conn;     /* NULL once the connection is gone */
    struct hs_worker *w;
    int status;
    int responded;
    int head_only;        /* HEAD: headers as for GET, no body */
    int close;            /* the response closes the connection */
    int held;             /* the handler answers later: see hs_hold() */
    uint64_t body_len;    /* body bytes promised, for the access log */
    buf_t *hdr;           /* the header block being built */

    /* Reading the request body (hs_read_body). */
    const struct hs_body_ops *body_ops;
    void *body_ctx;
    int body_taken;       /* hs_read_body() was called */
    int body_paused;      /* on_data said HS_BODY_PAUSE: hs_body_resume() is owed */
    uint64_t body_left;   /* Content-Length bytes still to come */
    uint64_t body_seen;   /* bytes handed to on_data so far */
    http_chunked_t dec;
    struct hs_part *parts;    /* hs_resp_file_parts: owned, freed with r */
    size_t nparts, part;      /* count; next to load */
    char *alog;           /* the access log's request fields, copied */
    /* A streamed response (hs_resp_stream) or a tunnel (hs_resp_tunnel). */
    const struct hs_stream_ops *stream_ops;
    void *stream_ctx;
    uint8_t streaming;    /* the body comes through hs_stream_write */
    uint8_t stream_chunked;
    uint8_t stream_ended; /* hs_stream_end or hs_stream_abort was called */
    uint8_t stream_paused;/* a write said 1: on_drain is owed */
    void (*tunnel_cb)(void *ctx, int fd, char *early, size_t n);
    void *tunnel_ctx;
    int alog_tried;       /* alog was made (the head may be gone since) */
    struct hs_req *next_free;
};

/* Returned by hs_body_ops.on_data: the bytes were taken, but read no more
 * of the body until hs_body_resume(r) (the handler's sink is full: a proxy
 * whose upstream socket is). No body timeout runs meanwhile. */
#define HS_BODY_PAUSE 1

/* Streaming a request body to the handler. */
struct hs_body_ops {
    /* A piece of the body (never empty). Returns 0 to go on,
     * HS_BODY_PAUSE, or a status (>= 400) to refuse the rest: on_end
     * follows with that status. */
    int (*on_data)(hs_req_t *r, void *ctx, const char *p, size_t n);
    /* The body is over. status 0: it is complete and the handler must
     * answer now (or hs_hold() and answer later). status >= 400: it was
     * refused (the handler's status, 400 bad chunking, 408 too slow, 413
     * too large) and the engine answers it after on_end returns, unless
     * on_end answered with that same status itself (to add fields; r->close
     * is set). status -1: the client went away; nobody can be answered. */
    void (*on_end)(hs_req_t *r, void *ctx, int status);
};

/* From on_request (or later, on a held request just before hs_resume):
 * read the body instead of answering now. Sends `100 Continue` first when
 * the client waits for it. Slices of r->req must be copied before this if
 * the handler needs them later. */
void hs_read_body(hs_req_t *r, const struct hs_body_ops *ops, void *ctx);

/* After on_data said HS_BODY_PAUSE: read the body again (from the next
 * loop turn, never from inside this call). */
void hs_body_resume(hs_req_t *r);

/* While the body is being read (before on_end): the handler stops reading
 * it to answer now (a proxy whose upstream answered early, or failed). r
 * becomes held as by hs_hold(): answer it, then hs_resume(r). on_end is not
 * called. The rest of the body is never read: the answer closes the
 * connection, lingering so that the client sees it. */
void hs_body_stop(hs_req_t *r);

/* From on_request or on_end: the handler will answer later, from another
 * callback on the same worker thread (a finished disk job). r stays valid
 * until hs_resume(r), which the handler calls once it has answered with the
 * hs_resp_* calls. If the client left meanwhile, r->conn is NULL, the
 * answer is dropped, and hs_resume() still frees r. */
void hs_hold(hs_req_t *r);
void hs_resume(hs_req_t *r);

/* The handler context its worker_init returned for r's worker. */
void *hs_handler_ctx(hs_req_t *r);

/* The loop of the worker that serves r (for tpool_submit). */
struct loop;
struct loop *hs_loop(hs_req_t *r);

/* Runs the server until SIGINT/SIGTERM. Returns 0, or 1 after printing why
 * it could not start. */
int hs_run(const struct hs_config *cfg, const struct hs_handler *h, void *arg);

/* Response building. Start with hs_resp_start(), add fields, end with one
 * of hs_resp_file / hs_resp_body / hs_resp_dynamic / hs_resp_empty. The
 * engine adds Date, Server, Content-Length or Transfer-Encoding, and
 * Connection. */
void hs_resp_start(hs_req_t *r, int status);
void hs_resp_field(hs_req_t *r, const char *name, const char *value, size_t vlen);
void hs_resp_field_str(hs_req_t *r, const char *name, const char *value);

/* Sends len bytes of fd from off with sendfile(); takes ownership of fd. */
void hs_resp_file(hs_req_t *r, int fd, uint64_t off, uint64_t len);
/* The same for an fd the engine does not own: instead of closing it, the
 * engine calls release(ref) once it no longer needs fd (the response was
 * sent, or the connection closed; at once for HEAD). */
void hs_resp_file_ref(hs_req_t *r, int fd, uint64_t off, uint64_t len,
                      void (*release)(void *), void *ref);
/* hs_resp_file_ref() for a file whose bytes [0, off + len) are also mapped
 * at `map` (read-only, for as long as ref is held): the head and the bytes
 * leave in one sendmsg() instead of a send() and a sendfile(). The process
 * never touches the mapped bytes itself (only the kernel's copy does, which
 * gives EFAULT, not SIGBUS, past the mapped pages); only that first
 * sendmsg() reads the mapping, what the socket leaves goes with sendfile(),
 * so a shrunk file closes the connection as with sendfile() alone. */
void hs_resp_file_mapped(hs_req_t *r, int fd, const char *map, uint64_t off, uint64_t len,
                         void (*release)(void *), void *ref);

/* Sends a body made of parts (multipart/byteranges): each part's memory
 * bytes, then its range of fd. content_length is the sum of all. The engine
 * owns `parts` afterwards (one allocation holding the mem bytes too, freed
 * with free()) and treats fd as hs_resp_file_ref does. */
void hs_resp_file_parts(hs_req_t *r, int fd, struct hs_part *parts, size_t n,
                        uint64_t content_length, void (*release)(void *), void *ref);
/* Sends len bytes at p that the engine does not copy: they must stay
 * valid until release(ref) (called once the response was sent, the
 * connection closed, or at once for HEAD and empty bodies). For large
 * bodies held elsewhere (a proxy's cache object). */
void hs_resp_mem_ref(hs_req_t *r, const char *p, size_t len, void (*release)(void *), void *ref);

/* Sends body bytes whose length is known (copied). */
void hs_resp_body(hs_req_t *r, const char *p, size_t len);
/* Sends generated bytes as a body of unknown length: chunked to HTTP/1.1
 * clients, delimited by closing the connection to HTTP/1.0 clients. */
void hs_resp_dynamic(hs_req_t *r, const char *p, size_t len);
/* No body and no Content-Length (1xx, 204, 304). */
void hs_resp_empty(hs_req_t *r);

/* Sends an interim response (1xx, such as 104 Upload Resumption
 * Supported) before the final one: the status line, `fields` (complete
 * "Name: value\r\n" lines, len bytes, copied) and the blank line. Only to
 * HTTP/1.1 clients and before the answer has begun; ignored otherwise. May
 * be called more than once. Interim bytes the socket does not take at once
 * stay queued ahead of the answer. */
void hs_resp_interim(hs_req_t *r, int status, const char *fields, size_t len);
/* Streaming a response body that arrives piece by piece (from an upstream
 * server), with backpressure. The engine calls these from its loop. */
struct hs_stream_ops {
    /* The queue fell below the low-water mark after a write returned 1:
     * write more. */
    void (*on_drain)(hs_req_t *r, void *ctx);
    /* The client went away before hs_stream_end: r is gone after this
     * returns; the handler must not use it again. */
    void (*on_abort)(hs_req_t *r, void *ctx);
};

/* Ends the head of a response whose body follows in pieces: len >= 0 sends
 * Content-Length: len, len < 0 a chunked body (HTTP/1.1 clients) or one
 * delimited by closing (HTTP/1.0). For HEAD or a status without a body the
 * stream is ended at once and writes are ignored. Call on a held request,
 * then hs_resume(r); later hs_stream_write() / hs_stream_end(). */
void hs_resp_stream(hs_req_t *r, int64_t len, const struct hs_stream_ops *ops, void *ctx);

/* Queues n body bytes (copied; framed as a chunk when chunked). Returns 0,
 * 1 when the queue is above its high-water mark (the bytes were taken;
 * stop until on_drain), or -EPIPE when the client is gone (r->conn NULL),
 * -ENOBUFS past the engine's cap. Sending happens at the end of the loop
 * iteration, so many small writes make one send. */
int hs_stream_write(hs_req_t *r, const char *p, size_t n);

/* The body is complete (the last chunk is sent when chunked). */
void hs_stream_end(hs_req_t *r);

/* The body cannot be completed (the upstream failed): what is queued is
 * sent, then the connection is closed, so the client sees a truncation. */
void hs_stream_abort(hs_req_t *r);

/* CONNECT: ends the head (a 2xx without body), and once it is sent, hands
 * the connection's socket to cb with the bytes the client already sent
 * after its request (early, malloc'd, the callee frees it; NULL when n is
 * 0). The engine forgets the connection: the callee owns fd. If the client
 * leaves first, cb is called with fd -1. Call on a held request, then
 * hs_resume(r). */
void hs_resp_tunnel(hs_req_t *r, void (*cb)(void *ctx, int fd, char *early, size_t n), void *ctx);

/* hs_resp_start without the engine's Server and Date fields: for a
 * response relayed from elsewhere (a proxy), which keeps the origin's. */
void hs_resp_start_relay(hs_req_t *r, int status);

/* The client's address (for firewall rules). Returns 0 or -errno. */
int hs_peer(hs_req_t *r, addr_t *a);
/* The address the client connected to (loop detection). */
int hs_local(hs_req_t *r, addr_t *a);

/* A complete error response with a small HTML page (dynamic). */
void hs_resp_error(hs_req_t *r, int status);
/* Ends a response started with hs_resp_start() (and fields such as Allow)
 * with the error page of its status. */
void hs_resp_page(hs_req_t *r);

/* Makes the response close the connection (Connection: close). */
void hs_resp_close(hs_req_t *r);

/* The worker's buffer for a generated body (a listing), emptied. Its
 * bytes are copied by hs_resp_dynamic(), so it may be reused after. */
buf_t *hs_scratch(hs_req_t *r);

#endif
