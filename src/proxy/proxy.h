/* proxy.h - the proxy handler: plugs into the connection engine of
 * src/server (the one `serve` uses) and answers each request by
 * forwarding it, tunnelling it (CONNECT), or refusing it.
 *
 * Per request: the destination is taken from the target (authority-form
 * for CONNECT, absolute-form for a forward proxy) or is the --upstream
 * origin (reverse proxy, origin-form targets); the firewall (acl.h)
 * judges client, method, host and port: 403 with a readable body and a
 * log line when denied. Connections to the proxy's own listening
 * addresses are refused (403): a request naming the proxy would loop.
 * With an auth file, every allowed request needs Proxy-Authorization
 * Basic with a user of the file (407 with Proxy-Authenticate otherwise);
 * the password check runs on the disk pool, and good credentials are
 * remembered per worker. */
#ifndef PORTICO_PROXY_PROXY_H
#define PORTICO_PROXY_PROXY_H

#include <stdint.h>

#include "core/sock.h"
#include "dns/conf.h"
#include "proxy/acl.h"
#include "proxy/pstore.h"
#include "server/auth.h"
#include "server/server.h"

#define PROXY_MAX_SELF 64

struct proxy_config {
    const acl_t *acl;
    const dns_conf_t *dns;           /* NULL: IP literals only */
    int has_upstream;                /* reverse proxy */
    char up_host[HOST_MAX];
    size_t up_host_len;
    uint16_t up_port;
    char up_authority[HOST_MAX + 8]; /* Host field for the upstream */
    pstore_t *store;                  /* NULL: no cache */
    struct collapse *collapse;       /* request collapsing (with store) */
    const auth_db_t *auth;           /* NULL: no proxy authentication */
    struct tpool *pool;              /* crypt(3) runs there, with auth */
    struct http_limits lim;          /* the engine's, to parse copied heads */
    uint64_t max_object;
    uint64_t max_body;               /* request bodies are read whole: 413 beyond */
    uint32_t connect_timeout_ms;
    uint32_t upstream_timeout_ms;
    uint32_t tunnel_idle_ms;
    const char *via_name;
    int forwarded, x_forwarded_for;
    addr_t self[PROXY_MAX_SELF];     /* where the proxy listens */
    int nself;
};

/* The handler; hs_run(cfg, &proxy_handler, &proxy_config), with
 * cfg->on_stop = proxy_on_stop (ends forwards still waiting at the
 * shutdown timeout). */
extern const struct hs_handler proxy_handler;
void proxy_on_stop(void *wctx);

/* The destination of a request: 0 with host and port, or an HTTP status
 * (400: no usable target; 501: https:// in absolute form) with *why. */
int proxy_destination(const struct proxy_config *pc, const http_request_t *q, slice_t *host,
                      uint16_t *port, const char **why);

#endif
