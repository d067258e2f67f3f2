/* limits.h - DNS sizes and caps: the protocol's hard limits and portico's
 * own, in one place. */
#ifndef PORTICO_DNS_LIMITS_H
#define PORTICO_DNS_LIMITS_H

/* RFC 1035 §2.3.4. */
#define DNS_LABEL_MAX       63u     /* bytes of one label */
#define DNS_NAME_MAX        255u    /* wire bytes of a name, length bytes and root included */
#define DNS_UDP_MAX         512u    /* UDP payload without EDNS0 */

/* RFC 1035 §4.1.1: a message starts with a 12-byte header. Messages are at
 * most 65535 bytes (the TCP length prefix), and a compression pointer
 * reaches only the first 16384 of them. */
#define DNS_HEADER_LEN      12u
#define DNS_MSG_MAX         65535u
#define DNS_PTR_REACH       0x4000u

/* Compression pointers followed while decoding one name. A 255-byte name
 * has at most 127 labels, so more pointers than that can only be a trick. */
#define DNS_PTR_HOPS_MAX    127u

/* The EDNS0 UDP payload size we offer and answer with (DNS Flag Day 2020:
 * fits a 1280-byte IPv6 MTU without fragmentation). */
#define DNS_EDNS_PAYLOAD    1232u

/* Name suffixes the builder remembers for compression. Names written after
 * the table is full are still compressed against it, just not added. */
#define DNS_COMP_MAX        64u

/* Longest presentation form of a name, NUL included: 250 label bytes all
 * written as \DDD, 4 dots (DNS_NAME_MAX forces at least 4 labels for 250
 * bytes), the NUL. */
#define DNS_NAME_STR_MAX    1005u

/* --- resolv.conf and hosts (conf.h) --- */
/* glibc's MAXNS, MAXDNSRCH, RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY. */
#define DNS_CONF_NS_MAX         3u
#define DNS_CONF_SEARCH_MAX     6u
#define DNS_CONF_NDOTS_MAX      15u
#define DNS_CONF_TIMEOUT_MAX    30u
#define DNS_CONF_ATTEMPTS_MAX   5u
/* glibc's RES_TIMEOUT, RES_DFLRETRY and ndots default. */
#define DNS_CONF_TIMEOUT_DEF    5u
#define DNS_CONF_ATTEMPTS_DEF   2u
#define DNS_CONF_NDOTS_DEF      1u
/* Largest file dns_conf_load() reads: resolv.conf and hosts. Ad-blocking
 * hosts files run to a few MiB. */
#define DNS_CONF_RESOLV_FILE_MAX (64u * 1024u)
#define DNS_CONF_HOSTS_FILE_MAX  (64u * 1024u * 1024u)

/* --- the stub resolver (stub.h) --- */
/* Names asked at most: as is, and each search domain. */
#define DNS_STUB_NAMES_MAX      (DNS_CONF_SEARCH_MAX + 1u)
/* Random bytes dns_stub_start() takes: 2 per name's query ID, 1 for
 * `rotate`, the rest kept for later use. */
#define DNS_STUB_RANDOM_LEN     32u
/* CNAMEs followed in one answer section. */
#define DNS_STUB_CHAIN_MAX      16u
/* Records of each section kept in the result; more are counted in the
 * section's `skipped`. */
#define DNS_STUB_SECTION_MAX    512u
/* Largest query: header, question, OPT. */
#define DNS_STUB_QUERY_MAX      (DNS_HEADER_LEN + DNS_NAME_MAX + 4u + 11u)

/* --- the stub on the loop (resolve.h) --- */
/* Largest UDP reply read; longer datagrams are dropped (counted in
 * dns_resolve_dropped). Servers send at most our EDNS0 payload, 1232. */
#define DNS_RESOLVE_UDP_RX      4096u

/* --- cache (cache.h) --- */
/* Shards of dns_cache_new(), each with its own lock; the byte cap is split
 * evenly among them. dns_cache_new_shards() takes 1..DNS_CACHE_SHARDS_MAX,
 * a power of two. */
#define DNS_CACHE_SHARDS        16u
#define DNS_CACHE_SHARDS_MAX    256u
/* RFC 2181 §8: a TTL with the top bit set is read as 0. */
#define DNS_TTL_SANE_MAX        0x7fffffffu
/* Longest a positive entry is kept: one day (unbound's cache-max-ttl). */
#define DNS_CACHE_TTL_MAX       86400u
/* Longest a negative entry is kept: RFC 2308 §5 finds one to three hours
 * work well; three. */
#define DNS_CACHE_NEG_TTL_MAX   10800u
/* Hash buckets a shard starts with; doubled when entries outnumber them. */
#define DNS_CACHE_BUCKETS_MIN   16u
/* CNAMEs followed from the question when checking a reply's answers. */
#define DNS_CACHE_CHAIN_MAX     16u

/* --- the iterative resolver (iter.h) --- */
/* Messages sent for one resolution, sub-resolutions included. */
#define DNS_ITER_QUERIES_MAX    64u
/* Sub-resolutions of nameserver addresses nested in one another. */
#define DNS_ITER_DEPTH_MAX      4u
/* Referrals followed for one name. */
#define DNS_ITER_REFERRALS_MAX  16u
/* CNAMEs followed in one resolution. */
#define DNS_ITER_CNAME_MAX      8u
/* Nameservers kept for a zone, and addresses kept per nameserver. */
#define DNS_ITER_NS_MAX         16u
#define DNS_ITER_ADDR_MAX       4u
/* Wait for one server's reply (unbound starts at 376 ms and adapts). */
#define DNS_ITER_TIMEOUT_MS     1500u
/* Records of each section of a reply looked at. */
#define DNS_ITER_RR_MAX         256u
/* Random bytes dns_iter_start() takes: 2 per query ID, then one per
 * choice of a first server. */
#define DNS_ITER_RANDOM_LEN     (2u * DNS_ITER_QUERIES_MAX + 32u)
/* Root hints: addresses kept, and the largest file read. */
#define DNS_HINTS_MAX           64u
#define DNS_HINTS_FILE_MAX      (1024u * 1024u)

/* --- the recursive server (answer.h, server.h) --- */
/* Ranges of an address list (--allow). */
#define DNS_ACL_MAX             64u
/* Largest error reply: header, question, OPT. */
#define DNS_ANSWER_ERROR_MAX    (DNS_HEADER_LEN + DNS_NAME_MAX + 4u + 11u)
/* Resolutions in flight per worker (--max-inflight). */
#define DNS_SERVER_INFLIGHT_DEF 1024u
#define DNS_SERVER_INFLIGHT_MAX 65536u
/* Clients waiting for one resolution of the same question; more get
 * SERVFAIL. They count against the in-flight cap too. */
#define DNS_SERVER_WAITERS_MAX  64u
/* TCP connections per worker (--max-tcp), and their idle time
 * (--tcp-idle, RFC 7766 §6.2.3 suggests seconds, unbound uses 30). */
#define DNS_SERVER_TCP_DEF      256u
#define DNS_SERVER_TCP_MAX      65536u
#define DNS_SERVER_TCP_IDLE_MS  10000u
/* Answers a TCP client may leave unread before it is dropped. */
#define DNS_SERVER_TCP_OUT_MAX  (256u * 1024u)
/* Datagrams read in one go (recvmmsg) and answered in one go (sendmmsg)
 * before the loop looks at other sockets. */
#define DNS_SERVER_UDP_BATCH    64u
/* Longest request read over UDP; longer ones are cut (and get FORMERR). */
#define DNS_SERVER_UDP_RX       4096u
/* The cache's byte cap (--cache-size). */
#define DNS_SERVER_CACHE_DEF    (64u * 1024u * 1024u)
/* Tries at finding a port free for both UDP and TCP when asked for port 0. */
#define DNS_SERVER_BIND_TRIES   16u

#endif
