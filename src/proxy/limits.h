/* limits.h - every cap and default timeout of the proxy, in one place.
 *
 * Each one that a user may want to change is also an option of
 * `portico proxy` (src/cmd/proxy.c); the modules read the values from
 * their config structs, these are the defaults and ceilings. */
#ifndef PORTICO_PROXY_LIMITS_H
#define PORTICO_PROXY_LIMITS_H

/* Firewall: most --allow/--deny rules; longest host pattern. */
#define PROXY_MAX_RULES            256u
#define PROXY_RULE_HOST_MAX        255u
/* Most ports in --connect-port lists. */
#define PROXY_MAX_CONNECT_PORTS    32u
/* The CONNECT port allowed when none is named. */
#define PROXY_DEFAULT_CONNECT_PORT 443u

/* Header rewriting: most field names one Connection field may list. */
#define PROXY_MAX_CONN_TOKENS      32u
/* Longest Via/Forwarded value we build or extend (a longer one is cut
 * to our own element). */
#define PROXY_MAX_CHAIN_FIELD      2048u
/* Longest cache key (method-independent target URI). */
#define PROXY_MAX_KEY              (8u * 1024u + 300u)
/* Most fields a Vary may name; longest secondary key. */
#define PROXY_MAX_VARY_FIELDS      16u
#define PROXY_MAX_SECONDARY_KEY    (8u * 1024u)

/* Cache store. */
#define PROXY_DEFAULT_CACHE_MEM    (64ull * 1024u * 1024u)   /* --cache-mem */
#define PROXY_MAX_OBJECT           (64ull * 1024u * 1024u)   /* --max-object */
#define PROXY_STORE_SHARDS         16u
#define PROXY_STORE_BUCKETS        4096u                     /* per shard */
/* Longest stored response head. */
#define PROXY_MAX_STORED_HEAD      (64u * 1024u)

/* A stored body up to this size is copied into the response; a larger
 * one is sent from the object (one writev with the head, no copy). */
#define PROXY_COPY_BODY_MAX        (4u * 1024u)
/* A larger stored body is sent with sendfile() from a memory file (memfd)
 * made at its first hit, so the kernel takes its pages instead of copying
 * them; at most this many such files are open at once in the process
 * (beyond: sent from the object's memory, one writev). */
#define PROXY_BODY_FILES_MAX       512u

/* A request body up to this size is read whole before the upstream
 * request starts (sent with Content-Length; can be sent again on a new
 * connection when a kept-alive one turns out closed); a longer one (or a
 * chunked one past it) is streamed upstream as it arrives. */
#define PROXY_BODY_BUFFER          (64u * 1024u)

/* A collapsed waiter streaming the leader's response copies at most this
 * much of it into its client's queue per lock of the fill. */
#define PROXY_FILL_SLICE           (64u * 1024u)

/* Tunnels: bytes buffered from one side before it stops reading the other. */
#define PROXY_TUNNEL_BUF           (64u * 1024u)
/* Upstream connect, including the DNS lookup (ms): 504 beyond. */
#define PROXY_DEFAULT_CONNECT_TIMEOUT_MS 10000u
/* A tunnel with no byte either way for this long is closed (ms). */
#define PROXY_DEFAULT_TUNNEL_IDLE_MS     300000u
/* Upstream response head and body pauses (ms): 504 / close beyond. */
#define PROXY_DEFAULT_UPSTREAM_TIMEOUT_MS 30000u
/* Most addresses tried for one upstream name. */
#define PROXY_MAX_UPSTREAM_ADDRS   8u
/* Idle keep-alive connections kept per upstream origin and worker: enough
 * for the concurrency a proxy sees, so misses do not reconnect. */
#define PROXY_UPSTREAM_MAX_IDLE    256u

/* Proxy-Authorization values found good, kept per worker so that crypt(3)
 * runs once per credential, not per request; longest value kept. */
#define PROXY_AUTH_CACHE           16u
#define PROXY_AUTH_VALUE_MAX       512u

#endif
