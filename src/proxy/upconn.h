/* upconn.h - opening a TCP connection to an upstream host on the loop:
 * the name through the DNS stub resolver (src/dns/resolve.h: A, then AAAA
 * when there is no A; an IP literal as is), then a non-blocking connect to
 * each address in turn, all under one deadline. Never blocks the loop.
 *
 * The callback runs once, at the end of a loop iteration (never from
 * inside upconn_start), unless the attempt was cancelled first: with a
 * connected socket (fd >= 0, the callee owns it) or fd -1 and the reason.
 * A `forbid` function, when given, is asked about every address before it
 * is tried (the proxy refuses its own listening addresses). */
#ifndef PORTICO_PROXY_UPCONN_H
#define PORTICO_PROXY_UPCONN_H

#include <stdint.h>

#include "core/loop.h"
#include "core/slice.h"
#include "core/sock.h"
#include "dns/conf.h"

enum upconn_err {
    UPCONN_OK = 0,
    UPCONN_E_RESOLVE,      /* the name has no address */
    UPCONN_E_CONNECT,      /* no address accepted the connection */
    UPCONN_E_TIMEOUT,      /* the deadline passed */
    UPCONN_E_FORBIDDEN,    /* every address was refused by forbid() */
    UPCONN_E_NOMEM,
};

typedef struct upconn upconn_t;

/* msg: one readable line, valid during the call. */
typedef void (*upconn_cb)(void *arg, int fd, enum upconn_err err, const char *msg);

/* Starts. host is a name or IP literal (no brackets). conf may be NULL
 * (IP literals only). Returns the handle, or NULL when out of memory. */
upconn_t *upconn_start(loop_t *l, const dns_conf_t *conf, slice_t host, uint16_t port,
                       uint32_t timeout_ms, int (*forbid)(void *farg, const addr_t *a),
                       void *farg, upconn_cb cb, void *arg);

/* Stops an attempt whose callback has not run: it will not run. */
void upconn_cancel(upconn_t *u);

#endif
