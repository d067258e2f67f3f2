/* pworker.h - what the proxy's modules share per worker thread (private
 * to src/proxy). */
#ifndef PORTICO_PROXY_PWORKER_H
#define PORTICO_PROXY_PWORKER_H

#include "client/client.h"
#include "core/loop.h"
#include "proxy/limits.h"
#include "proxy/proxy.h"

struct pworker {
    const struct proxy_config *pc;
    loop_t *loop;              /* set at the first request */
    client_pool_t *pool;       /* upstream connections; made with loop */
    char *auth_ok[PROXY_AUTH_CACHE];   /* Proxy-Authorization values found good */
    unsigned auth_next;
    struct fwd *active;        /* forwards in progress (fwd.c) */
    int up_self;               /* --upstream is the proxy itself: 0 not asked yet, 1 no, 2 yes */
    int stopping;
};

/* The shutdown timeout passed: ends every forward in progress (fwd.c). */
void fwd_stop_all(struct pworker *pw);

/* Forwards an allowed, non-CONNECT request (fwd.c): cache, upstream,
 * streaming back. host and port are the destination. */
void fwd_request(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port);

/* A plain-text answer "portico proxy: STATUS REASON: why". */
void proxy_answer_text(hs_req_t *r, int status, const char *why);

/* 1 when host (an IP literal or localhost) and port are one of the
 * proxy's own listening addresses. Names are not resolved here. */
int proxy_is_self_host(const struct proxy_config *pc, slice_t host, uint16_t port);
/* 1 when a is one of the proxy's own listening addresses (pc: the
 * proxy_config; the client pool asks it about every resolved address). */
int proxy_is_self_addr(void *pc, const addr_t *a);

#endif
