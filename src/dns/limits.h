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

#endif
