/* test_dns_msg.c - the DNS message codec: real responses, round trips for
 * every type, the builder's compression and caps, name helpers, and a table
 * of malformed messages each with its exact error and offset.
 *
 * The resp_* fixtures are responses captured from NSD 4.6 serving a small
 * example.com zone on loopback (queries sent with dnspython, and one by
 * dig, relayed). Every decode runs on a heap copy of exactly the message's
 * length, so AddressSanitizer (make unit SAN=1) catches any read past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns/msg.h"

/* ---------------------------------------------------------- fixtures */

/* www.example.com A: two answers, NS in authority, glue in additional (133 bytes) */
static const uint8_t resp_a_www[] = {
    0x1a, 0x2b, 0x85, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x02,
    0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
    0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0x5d, 0xb8, 0xd8,
    0x22, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x04, 0x5d, 0xb8, 0xd8, 0x23, 0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0, 0x10, 0xc0,
    0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03,
    0x6e, 0x73, 0x32, 0xc0, 0x10, 0xc0, 0x4d, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x5f, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02,
    0x02,
};

/* alias.example.com A: alias -> alias2 -> www, then the A records (174 bytes) */
static const uint8_t resp_cname_chain[] = {
    0x2b, 0x3c, 0x85, 0x00, 0x00, 0x01, 0x00, 0x04, 0x00, 0x02, 0x00, 0x02,
    0x05, 0x61, 0x6c, 0x69, 0x61, 0x73, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x09, 0x06,
    0x61, 0x6c, 0x69, 0x61, 0x73, 0x32, 0xc0, 0x12, 0xc0, 0x2f, 0x00, 0x05,
    0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x77, 0x77, 0x77,
    0xc0, 0x12, 0xc0, 0x44, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10,
    0x00, 0x04, 0x5d, 0xb8, 0xd8, 0x22, 0xc0, 0x44, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0x5d, 0xb8, 0xd8, 0x23, 0xc0, 0x12,
    0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e,
    0x73, 0x31, 0xc0, 0x12, 0xc0, 0x12, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
    0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x32, 0xc0, 0x12, 0xc0, 0x76,
    0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00,
    0x02, 0x01, 0xc0, 0x88, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10,
    0x00, 0x04, 0xc0, 0x00, 0x02, 0x02,
};

/* nope.example.com A: NXDOMAIN, the zone SOA in authority (85 bytes) */
static const uint8_t resp_nxdomain[] = {
    0x3c, 0x4d, 0x85, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x04, 0x6e, 0x6f, 0x70, 0x65, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
    0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x11,
    0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x27, 0x03, 0x6e,
    0x73, 0x31, 0xc0, 0x11, 0x0a, 0x68, 0x6f, 0x73, 0x74, 0x6d, 0x61, 0x73,
    0x74, 0x65, 0x72, 0xc0, 0x11, 0x78, 0xa3, 0xf1, 0x75, 0x00, 0x00, 0x1c,
    0x20, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x12, 0x75, 0x00, 0x00, 0x00, 0x01,
    0x2c,
};

/* example.com MX: one exchange in the zone, one outside it (167 bytes) */
static const uint8_t resp_mx[] = {
    0x4d, 0x5e, 0x85, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x03,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d,
    0x00, 0x00, 0x0f, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x0f, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x09, 0x00, 0x0a, 0x04, 0x6d, 0x61, 0x69, 0x6c,
    0xc0, 0x0c, 0xc0, 0x0c, 0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10,
    0x00, 0x15, 0x00, 0x14, 0x05, 0x6d, 0x61, 0x69, 0x6c, 0x32, 0x07, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x6f, 0x72, 0x67, 0x00, 0xc0,
    0x0c, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03,
    0x6e, 0x73, 0x31, 0xc0, 0x0c, 0xc0, 0x0c, 0x00, 0x02, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x32, 0xc0, 0x0c, 0xc0,
    0x2b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0,
    0x00, 0x02, 0x19, 0xc0, 0x5f, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e,
    0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x71, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x02,
};

/* notes.example.com TXT: four strings, one of them empty (157 bytes) */
static const uint8_t resp_txt[] = {
    0x5e, 0x6f, 0x85, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02,
    0x05, 0x6e, 0x6f, 0x74, 0x65, 0x73, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x10, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x2a, 0x0c,
    0x66, 0x69, 0x72, 0x73, 0x74, 0x20, 0x73, 0x74, 0x72, 0x69, 0x6e, 0x67,
    0x15, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0x3b, 0x20, 0x77, 0x69, 0x74,
    0x68, 0x20, 0x22, 0x71, 0x75, 0x6f, 0x74, 0x65, 0x73, 0x22, 0x00, 0x05,
    0x74, 0x68, 0x69, 0x72, 0x64, 0xc0, 0x12, 0x00, 0x02, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0, 0x12, 0xc0,
    0x12, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03,
    0x6e, 0x73, 0x32, 0xc0, 0x12, 0xc0, 0x65, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x77, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02,
    0x02,
};

/* _sip._tcp.example.com SRV (174 bytes) */
static const uint8_t resp_srv[] = {
    0x6f, 0x70, 0x85, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03,
    0x04, 0x5f, 0x73, 0x69, 0x70, 0x04, 0x5f, 0x74, 0x63, 0x70, 0x07, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00,
    0x21, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x0e,
    0x10, 0x00, 0x1d, 0x00, 0x0a, 0x00, 0x3c, 0x13, 0xc4, 0x09, 0x73, 0x69,
    0x70, 0x73, 0x65, 0x72, 0x76, 0x65, 0x72, 0x07, 0x65, 0x78, 0x61, 0x6d,
    0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0xc0, 0x16, 0x00, 0x02,
    0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x31,
    0xc0, 0x16, 0xc0, 0x16, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10,
    0x00, 0x06, 0x03, 0x6e, 0x73, 0x32, 0xc0, 0x16, 0x09, 0x73, 0x69, 0x70,
    0x73, 0x65, 0x72, 0x76, 0x65, 0x72, 0xc0, 0x16, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x32, 0xc0, 0x5c,
    0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00,
    0x02, 0x01, 0xc0, 0x6e, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10,
    0x00, 0x04, 0xc0, 0x00, 0x02, 0x02,
};

/* example.com CAA: issue and a critical iodef (177 bytes) */
static const uint8_t resp_caa[] = {
    0x70, 0x81, 0x85, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x02,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d,
    0x00, 0x01, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x01, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x16, 0x00, 0x05, 0x69, 0x73, 0x73, 0x75, 0x65,
    0x6c, 0x65, 0x74, 0x73, 0x65, 0x6e, 0x63, 0x72, 0x79, 0x70, 0x74, 0x2e,
    0x6f, 0x72, 0x67, 0xc0, 0x0c, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e,
    0x10, 0x00, 0x22, 0x80, 0x05, 0x69, 0x6f, 0x64, 0x65, 0x66, 0x6d, 0x61,
    0x69, 0x6c, 0x74, 0x6f, 0x3a, 0x73, 0x65, 0x63, 0x75, 0x72, 0x69, 0x74,
    0x79, 0x40, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f,
    0x6d, 0xc0, 0x0c, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0, 0x0c, 0xc0, 0x0c, 0x00, 0x02, 0x00,
    0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x32, 0xc0,
    0x0c, 0xc0, 0x79, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x8b, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x02,
};

/* www.example.com AAAA (129 bytes) */
static const uint8_t resp_aaaa[] = {
    0x81, 0x92, 0x85, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02,
    0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
    0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x1c, 0x00, 0x01, 0xc0, 0x0c, 0x00,
    0x1c, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x10, 0x26, 0x06, 0x28,
    0x00, 0x02, 0x20, 0x00, 0x01, 0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19,
    0x46, 0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0, 0x10, 0xc0, 0x10, 0x00, 0x02, 0x00,
    0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x32, 0xc0,
    0x10, 0xc0, 0x49, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x5b, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x02,
};

/* www.example.com A asked by dig +dnssec: OPT with DO, payload 1232 (144 bytes) */
static const uint8_t resp_dig_edns[] = {
    0xfa, 0xf1, 0x85, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x03,
    0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
    0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0x5d, 0xb8, 0xd8,
    0x22, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x04, 0x5d, 0xb8, 0xd8, 0x23, 0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0, 0x10, 0xc0,
    0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06, 0x03,
    0x6e, 0x73, 0x32, 0xc0, 0x10, 0xc0, 0x4d, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x5f, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02,
    0x02, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
};

/* the query dig sent for resp_dig_edns: RD AD, EDNS DO, a client COOKIE (56 bytes) */
static const uint8_t query_dig[] = {
    0xfa, 0xf1, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
    0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x29,
    0x04, 0xd0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x08,
    0x4b, 0x68, 0xc2, 0xb8, 0xf5, 0xfc, 0x25, 0xc1,
};
#define FIX(a) { #a, a, sizeof a }
static const struct fixture {
    const char *name;
    const uint8_t *msg;
    size_t len;
} fixtures[] = {
    FIX(resp_a_www), FIX(resp_cname_chain), FIX(resp_nxdomain), FIX(resp_mx), FIX(resp_txt),
    FIX(resp_srv), FIX(resp_caa), FIX(resp_aaaa), FIX(resp_dig_edns), FIX(query_dig),
};
#define NFIX (sizeof fixtures / sizeof fixtures[0])

/* ----------------------------------------------------------- helpers */

/* Room for any message the tests decode. */
struct store {
    dns_question_t qd[4];
    dns_rr_t an[16], ns[16], ar[16];
    dns_msg_t m;
    uint8_t *copy;
};

static void store_init(struct store *s)
{
    memset(&s->m, 0, sizeof s->m);
    s->m.qd = s->qd;
    s->m.qd_cap = 4;
    s->m.sec[DNS_SEC_AN] = (dns_rrs_t){ s->an, 16, 0, 0 };
    s->m.sec[DNS_SEC_NS] = (dns_rrs_t){ s->ns, 16, 0, 0 };
    s->m.sec[DNS_SEC_AR] = (dns_rrs_t){ s->ar, 16, 0, 0 };
}

static struct store *store_new(void)
{
    struct store *s = calloc(1, sizeof *s);
    assert_non_null(s);
    store_init(s);
    return s;
}

static void store_free(struct store *s)
{
    free(s->copy);
    free(s);
}

/* Decodes a heap copy of exactly len bytes, kept while s lives. */
static int decode_into(struct store *s, const uint8_t *msg, size_t len)
{
    free(s->copy);
    s->copy = malloc(len ? len : 1);
    assert_non_null(s->copy);
    if (len)
        memcpy(s->copy, msg, len);
    int rc = dns_msg_decode(s->copy, len, &s->m);
    assert_true(rc <= 0);
    assert_non_null(dns_strerror(rc));
    return rc;
}

static dns_name_t N(const char *text)
{
    dns_name_t n;
    int rc = dns_name_parse(&n, slice_cstr(text));
    if (rc != 0)
        fail_msg("dns_name_parse(\"%s\") = %d", text, rc);
    return n;
}

static void name_is(const dns_name_t *n, const char *want)
{
    char out[DNS_NAME_STR_MAX];
    assert_true(dns_name_format(n, out, sizeof out) >= 0);
    assert_string_equal(out, want);
}

static void slice_is(slice_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void a_is(const dns_rr_t *rr, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    const uint8_t want[4] = { a, b, c, d };
    assert_int_equal(rr->type, DNS_T_A);
    assert_int_equal(rr->rclass, DNS_C_IN);
    assert_memory_equal(rr->a, want, 4);
}

static int name_same(const dns_name_t *a, const dns_name_t *b)
{
    return a->len == b->len && memcmp(a->wire, b->wire, a->len) == 0;
}

static int slice_same(slice_t a, slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Same record: names byte for byte, typed fields, or RDATA bytes when
 * untyped (typed RDATA bytes may differ by compression). */
static int rr_same(const dns_rr_t *a, const dns_rr_t *b)
{
    if (!name_same(&a->name, &b->name) || a->type != b->type || a->rclass != b->rclass ||
        a->ttl != b->ttl)
        return 0;
    if (!dns_rr_is_typed(a->type, a->rclass))
        return slice_same(a->rdata, b->rdata);
    switch (a->type) {
    case DNS_T_A:
        return memcmp(a->a, b->a, 4) == 0;
    case DNS_T_AAAA:
        return memcmp(a->aaaa, b->aaaa, 16) == 0;
    case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR:
        return name_same(&a->target, &b->target);
    case DNS_T_SOA:
        return name_same(&a->soa.mname, &b->soa.mname) && name_same(&a->soa.rname, &b->soa.rname) &&
               a->soa.serial == b->soa.serial && a->soa.refresh == b->soa.refresh &&
               a->soa.retry == b->soa.retry && a->soa.expire == b->soa.expire &&
               a->soa.minimum == b->soa.minimum;
    case DNS_T_MX:
        return a->mx.preference == b->mx.preference && name_same(&a->mx.exchange, &b->mx.exchange);
    case DNS_T_TXT:
        return slice_same(a->txt.data, b->txt.data) && a->txt.count == b->txt.count;
    case DNS_T_SRV:
        return a->srv.priority == b->srv.priority && a->srv.weight == b->srv.weight &&
               a->srv.port == b->srv.port && name_same(&a->srv.target, &b->srv.target);
    case DNS_T_CAA:
        return a->caa.flags == b->caa.flags && slice_same(a->caa.tag, b->caa.tag) &&
               slice_same(a->caa.value, b->caa.value);
    }
    return 0;
}

static void assert_msg_same(const dns_msg_t *a, const dns_msg_t *b)
{
    assert_int_equal(a->h.id, b->h.id);
    assert_int_equal(a->h.flags, b->h.flags);
    assert_int_equal(a->h.qdcount, b->h.qdcount);
    assert_int_equal(a->h.ancount, b->h.ancount);
    assert_int_equal(a->h.nscount, b->h.nscount);
    assert_int_equal(a->h.arcount, b->h.arcount);
    assert_int_equal(a->nqd, b->nqd);
    for (size_t i = 0; i < a->nqd; i++) {
        assert_true(name_same(&a->qd[i].name, &b->qd[i].name));
        assert_int_equal(a->qd[i].qtype, b->qd[i].qtype);
        assert_int_equal(a->qd[i].qclass, b->qd[i].qclass);
    }
    for (int s = 0; s < 3; s++) {
        assert_int_equal(a->sec[s].n, b->sec[s].n);
        for (size_t i = 0; i < a->sec[s].n; i++)
            if (!rr_same(&a->sec[s].rr[i], &b->sec[s].rr[i]))
                fail_msg("section %d record %zu differs", s, i);
    }
    assert_int_equal(a->edns.present, b->edns.present);
    assert_int_equal(a->edns.udp_size, b->edns.udp_size);
    assert_int_equal(a->edns.ext_rcode, b->edns.ext_rcode);
    assert_int_equal(a->edns.version, b->edns.version);
    assert_int_equal(a->edns.flags, b->edns.flags);
    assert_true(slice_same(a->edns.options, b->edns.options));
    assert_int_equal(a->rcode, b->rcode);
}

/* Writes decoded message m again: header, questions, the stored records
 * in order, the OPT record last. */
static int encode_msg(const dns_msg_t *m, uint8_t *out, size_t cap, size_t *len)
{
    dns_builder_t b;
    int rc = dns_builder_init(&b, out, cap, m->h.id, m->h.flags);
    for (size_t i = 0; rc == 0 && i < m->nqd; i++)
        rc = dns_builder_question(&b, &m->qd[i].name, m->qd[i].qtype, m->qd[i].qclass);
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; rc == 0 && i < m->sec[s].n; i++)
            rc = dns_builder_rr(&b, (enum dns_section)s, &m->sec[s].rr[i]);
    if (rc == 0 && m->edns.present)
        rc = dns_builder_edns(&b, &m->edns);
    *len = b.len;
    return rc;
}

/* ------------------------------------------------- real responses */

static void test_a_response_with_compression(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_a_www, sizeof resp_a_www), 0);
    assert_int_equal(m->h.id, 0x1a2b);
    assert_int_equal(m->h.flags, DNS_F_QR | DNS_F_AA | DNS_F_RD);
    assert_int_equal(DNS_F_OPCODE(m->h.flags), 0);
    assert_int_equal(m->rcode, DNS_R_NOERROR);
    assert_int_equal(m->nqd, 1);
    name_is(&m->qd[0].name, "www.example.com.");
    assert_int_equal(m->qd[0].qtype, DNS_T_A);
    assert_int_equal(m->qd[0].qclass, DNS_C_IN);

    /* Owner names are pointers to the question (C0 0C): decompressed. */
    assert_int_equal(m->sec[DNS_SEC_AN].n, 2);
    assert_memory_equal(resp_a_www + 33, "\xc0\x0c", 2);
    name_is(&s->an[0].name, "www.example.com.");
    assert_int_equal(s->an[0].ttl, 3600);
    a_is(&s->an[0], 93, 184, 216, 34);
    a_is(&s->an[1], 93, 184, 216, 35);
    assert_int_equal(s->an[0].rdata.len, 4);

    /* The NS targets point at "example.com" inside the question; the glue
     * owners point into the NS RDATA. */
    assert_int_equal(m->sec[DNS_SEC_NS].n, 2);
    name_is(&s->ns[0].name, "example.com.");
    assert_int_equal(s->ns[0].type, DNS_T_NS);
    name_is(&s->ns[0].target, "ns1.example.com.");
    name_is(&s->ns[1].target, "ns2.example.com.");
    assert_int_equal(m->sec[DNS_SEC_AR].n, 2);
    name_is(&s->ar[0].name, "ns1.example.com.");
    a_is(&s->ar[0], 192, 0, 2, 1);
    name_is(&s->ar[1].name, "ns2.example.com.");
    a_is(&s->ar[1], 192, 0, 2, 2);
    assert_int_equal(m->edns.present, 0);
    store_free(s);
}

static void test_cname_chain(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_cname_chain, sizeof resp_cname_chain), 0);
    name_is(&m->qd[0].name, "alias.example.com.");
    assert_int_equal(m->sec[DNS_SEC_AN].n, 4);
    name_is(&s->an[0].name, "alias.example.com.");
    assert_int_equal(s->an[0].type, DNS_T_CNAME);
    name_is(&s->an[0].target, "alias2.example.com.");
    /* The second owner is a pointer into the first record's RDATA. */
    name_is(&s->an[1].name, "alias2.example.com.");
    assert_int_equal(s->an[1].type, DNS_T_CNAME);
    name_is(&s->an[1].target, "www.example.com.");
    name_is(&s->an[2].name, "www.example.com.");
    a_is(&s->an[2], 93, 184, 216, 34);
    a_is(&s->an[3], 93, 184, 216, 35);
    /* The chain links up, compared without case. */
    assert_true(dns_name_eq(&s->an[0].target, &s->an[1].name));
    assert_true(dns_name_eq(&s->an[1].target, &s->an[2].name));
    store_free(s);
}

static void test_nxdomain_with_soa(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_nxdomain, sizeof resp_nxdomain), 0);
    assert_int_equal(m->rcode, DNS_R_NXDOMAIN);
    assert_string_equal(dns_rcode_name(m->rcode), "NXDOMAIN");
    assert_true(m->h.flags & DNS_F_AA);
    assert_int_equal(m->sec[DNS_SEC_AN].n, 0);
    assert_int_equal(m->sec[DNS_SEC_NS].n, 1);
    const dns_rr_t *soa = &s->ns[0];
    assert_int_equal(soa->type, DNS_T_SOA);
    name_is(&soa->name, "example.com.");
    assert_int_equal(soa->ttl, 300);
    name_is(&soa->soa.mname, "ns1.example.com.");
    name_is(&soa->soa.rname, "hostmaster.example.com.");
    assert_int_equal(soa->soa.serial, 2024010101u);
    assert_int_equal(soa->soa.refresh, 7200);
    assert_int_equal(soa->soa.retry, 3600);
    assert_int_equal(soa->soa.expire, 1209600);
    assert_int_equal(soa->soa.minimum, 300);
    assert_int_equal(m->sec[DNS_SEC_AR].n, 0);
    store_free(s);
}

static void test_mx(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_mx, sizeof resp_mx), 0);
    assert_int_equal(m->qd[0].qtype, DNS_T_MX);
    assert_int_equal(m->sec[DNS_SEC_AN].n, 2);
    assert_int_equal(s->an[0].mx.preference, 10);
    name_is(&s->an[0].mx.exchange, "mail.example.com.");
    assert_int_equal(s->an[1].mx.preference, 20);
    name_is(&s->an[1].mx.exchange, "mail2.example.org.");
    assert_int_equal(m->sec[DNS_SEC_AR].n, 3);
    name_is(&s->ar[0].name, "mail.example.com.");
    a_is(&s->ar[0], 192, 0, 2, 25);
    store_free(s);
}

static void test_txt_several_strings(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_txt, sizeof resp_txt), 0);
    assert_int_equal(m->sec[DNS_SEC_AN].n, 1);
    const dns_rr_t *rr = &s->an[0];
    assert_int_equal(rr->type, DNS_T_TXT);
    assert_int_equal(rr->txt.count, 4);
    const char *want[] = { "first string", "second; with \"quotes\"", "", "third" };
    size_t off = 0, i = 0;
    slice_t str;
    int rc;
    while ((rc = dns_txt_next(rr->txt.data, &off, &str)) == 1)
        slice_is(str, want[i++]);
    assert_int_equal(rc, 0);
    assert_int_equal(i, 4);
    assert_int_equal(off, rr->rdata.len);
    store_free(s);
}

static void test_srv(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_srv, sizeof resp_srv), 0);
    name_is(&m->qd[0].name, "_sip._tcp.example.com.");
    const dns_rr_t *rr = &s->an[0];
    assert_int_equal(rr->type, DNS_T_SRV);
    assert_int_equal(rr->srv.priority, 10);
    assert_int_equal(rr->srv.weight, 60);
    assert_int_equal(rr->srv.port, 5060);
    name_is(&rr->srv.target, "sipserver.example.com.");
    /* NSD follows RFC 2782: the target is written out in full. */
    assert_int_equal(rr->rdata.len, 6 + 23);
    store_free(s);
}

static void test_caa(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_caa, sizeof resp_caa), 0);
    assert_int_equal(m->sec[DNS_SEC_AN].n, 2);
    assert_int_equal(s->an[0].type, DNS_T_CAA);
    assert_int_equal(s->an[0].caa.flags, 0);
    slice_is(s->an[0].caa.tag, "issue");
    slice_is(s->an[0].caa.value, "letsencrypt.org");
    assert_int_equal(s->an[1].caa.flags, 128);
    slice_is(s->an[1].caa.tag, "iodef");
    slice_is(s->an[1].caa.value, "mailto:security@example.com");
    store_free(s);
}

static void test_aaaa(void **state)
{
    (void)state;
    struct store *s = store_new();
    assert_int_equal(decode_into(s, resp_aaaa, sizeof resp_aaaa), 0);
    const uint8_t want[16] = { 0x26, 0x06, 0x28, 0x00, 0x02, 0x20, 0x00, 0x01,
                               0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46 };
    assert_int_equal(s->an[0].type, DNS_T_AAAA);
    assert_memory_equal(s->an[0].aaaa, want, 16);
    store_free(s);
}

static void test_opt_record(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    assert_int_equal(decode_into(s, resp_dig_edns, sizeof resp_dig_edns), 0);
    assert_true(m->edns.present);
    assert_int_equal(m->edns.udp_size, 1232);
    assert_int_equal(m->edns.version, 0);
    assert_int_equal(m->edns.ext_rcode, 0);
    assert_int_equal(m->edns.flags, DNS_EDNS_DO);
    assert_int_equal(m->edns.options.len, 0);
    /* The OPT record counts in ARCOUNT but is not stored as a record. */
    assert_int_equal(m->h.arcount, 3);
    assert_int_equal(m->sec[DNS_SEC_AR].n, 2);
    assert_int_equal(m->sec[DNS_SEC_AR].skipped, 0);

    /* dig's query: RD and AD, DO, and an 8-byte client COOKIE (option 10). */
    assert_int_equal(decode_into(s, query_dig, sizeof query_dig), 0);
    assert_int_equal(m->h.flags, DNS_F_RD | DNS_F_AD);
    assert_true(m->edns.present);
    assert_int_equal(m->edns.udp_size, 1232);
    assert_int_equal(m->edns.flags, DNS_EDNS_DO);
    assert_int_equal(m->edns.options.len, 12);
    assert_memory_equal(m->edns.options.p, "\x00\x0a\x00\x08", 4);
    store_free(s);
}

static void test_extended_rcode(void **state)
{
    (void)state;
    /* BADVERS (16): 0 in the header, 1 in the OPT's extended RCODE. */
    static const uint8_t msg[] = {
        0x00, 0x07, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x29, 0x04, 0xd0, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    struct store *s = store_new();
    assert_int_equal(decode_into(s, msg, sizeof msg), 0);
    assert_int_equal(s->m.rcode, DNS_R_BADVERS);
    assert_string_equal(dns_rcode_name(s->m.rcode), "BADVERS");
    store_free(s);
}

static void test_records_beyond_cap_are_checked_and_counted(void **state)
{
    (void)state;
    struct store *s = store_new();
    dns_msg_t *m = &s->m;
    m->qd_cap = 0;
    m->sec[DNS_SEC_AN].cap = 1;
    m->sec[DNS_SEC_NS].cap = 0;
    m->sec[DNS_SEC_NS].rr = NULL;
    assert_int_equal(decode_into(s, resp_a_www, sizeof resp_a_www), 0);
    assert_int_equal(m->nqd, 0);
    assert_int_equal(m->qd_skipped, 1);
    assert_int_equal(m->sec[DNS_SEC_AN].n, 1);
    assert_int_equal(m->sec[DNS_SEC_AN].skipped, 1);
    a_is(&s->an[0], 93, 184, 216, 34);
    assert_int_equal(m->sec[DNS_SEC_NS].n, 0);
    assert_int_equal(m->sec[DNS_SEC_NS].skipped, 2);
    assert_int_equal(m->sec[DNS_SEC_AR].n, 2);
    store_free(s);
}

static void test_untyped_records_stay_opaque(void **state)
{
    (void)state;
    /* An A record in class CH keeps its 3 bytes (A is Internet-specific),
     * and an HINFO (13) its RDATA as a slice. */
    static const uint8_t msg[] = {
        0x00, 0x01, 0x84, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x01, 'x', 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 1, 2, 3,
        0xc0, 0x0c, 0x00, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x04, 1, 'a', 1, 'b',
    };
    struct store *s = store_new();
    assert_int_equal(decode_into(s, msg, sizeof msg), 0);
    assert_int_equal(s->an[0].type, DNS_T_A);
    assert_int_equal(s->an[0].rclass, DNS_C_CH);
    assert_false(dns_rr_is_typed(DNS_T_A, DNS_C_CH));
    assert_memory_equal(s->an[0].rdata.p, "\x01\x02\x03", 3);
    assert_int_equal(s->an[1].type, 13);
    assert_memory_equal(s->an[1].rdata.p, "\x01" "a" "\x01" "b", 4);
    store_free(s);
}

static void test_header_kept_on_error(void **state)
{
    (void)state;
    struct store *s = store_new();
    uint8_t msg[sizeof resp_a_www];
    memcpy(msg, resp_a_www, sizeof msg);
    msg[33] = 0xc0;
    msg[34] = 0xff; /* the first answer's owner points outside */
    assert_int_equal(decode_into(s, msg, sizeof msg), DNS_E_PTR_OUTSIDE);
    assert_int_equal(s->m.err_off, 33);
    assert_int_equal(s->m.h.id, 0x1a2b);
    assert_int_equal(s->m.h.ancount, 2);
    dns_header_t h;
    assert_int_equal(dns_header_decode(msg, 12, &h), 0);
    assert_int_equal(h.id, 0x1a2b);
    assert_int_equal(dns_header_decode(msg, 11, &h), DNS_E_HEADER);
    assert_int_equal(dns_msg_decode(NULL, 0, &s->m), DNS_E_HEADER);
    store_free(s);
}

static void test_message_over_64k(void **state)
{
    (void)state;
    struct store *s = store_new();
    uint8_t *big = calloc(1, DNS_MSG_MAX + 1);
    assert_non_null(big);
    assert_int_equal(decode_into(s, big, DNS_MSG_MAX + 1), DNS_E_MSG_LONG);
    /* 65535 bytes: only the trailing bytes are wrong. */
    assert_int_equal(decode_into(s, big, DNS_MSG_MAX), DNS_E_TRAILING);
    free(big);
    store_free(s);
}

/* ------------------------------------------- every prefix, every byte */

static void test_every_prefix_fails_cleanly(void **state)
{
    (void)state;
    struct store *s = store_new();
    for (size_t f = 0; f < NFIX; f++) {
        assert_int_equal(decode_into(s, fixtures[f].msg, fixtures[f].len), 0);
        for (size_t n = 0; n < fixtures[f].len; n++) {
            int rc = decode_into(s, fixtures[f].msg, n);
            if (rc >= 0)
                fail_msg("%s: prefix of %zu bytes decoded", fixtures[f].name, n);
            assert_true(s->m.err_off <= n);
        }
    }
    store_free(s);
}

/* Every byte of every fixture set to values that matter to the decoder
 * (pointer and label-type bits, zero, all ones, off by one): no crash, and
 * whatever decodes survives the round trip the fuzzer checks. */
static void test_every_byte_mutated(void **state)
{
    (void)state;
    struct store *a = store_new(), *b = store_new();
    uint8_t buf[512], out[DNS_MSG_MAX], out2[DNS_MSG_MAX];
    size_t decoded = 0, tried = 0;
    for (size_t f = 0; f < NFIX; f++) {
        size_t len = fixtures[f].len;
        assert_true(len <= sizeof buf);
        for (size_t i = 0; i < len; i++) {
            uint8_t o = fixtures[f].msg[i];
            const uint8_t vals[] = { 0x00, 0xff, 0xc0, 0x3f, 0x40, 0x80, (uint8_t)(o ^ 1),
                                     (uint8_t)(o + 1), (uint8_t)(o - 1) };
            for (size_t v = 0; v < sizeof vals; v++) {
                memcpy(buf, fixtures[f].msg, len);
                buf[i] = vals[v];
                tried++;
                if (decode_into(a, buf, len) != 0)
                    continue;
                decoded++;
                size_t n, n2;
                assert_int_equal(encode_msg(&a->m, out, sizeof out, &n), 0);
                assert_int_equal(decode_into(b, out, n), 0);
                assert_msg_same(&a->m, &b->m);
                assert_int_equal(encode_msg(&b->m, out2, sizeof out2, &n2), 0);
                assert_int_equal(n, n2);
                assert_memory_equal(out, out2, n);
            }
        }
    }
    /* Most mutations of TTLs, addresses, IDs still decode. */
    assert_true(decoded > tried / 4);
    store_free(a);
    store_free(b);
}

/* -------------------------------------------------------- round trips */

static void test_fixtures_reencode_byte_for_byte(void **state)
{
    (void)state;
    /* Our compression makes the same choices as NSD's on these. */
    struct store *s = store_new(), *t = store_new();
    uint8_t out[DNS_MSG_MAX];
    for (size_t f = 0; f < NFIX; f++) {
        size_t n;
        assert_int_equal(decode_into(s, fixtures[f].msg, fixtures[f].len), 0);
        assert_int_equal(encode_msg(&s->m, out, sizeof out, &n), 0);
        if (n != fixtures[f].len || memcmp(out, fixtures[f].msg, n) != 0)
            fail_msg("%s: re-encoded to %zu bytes, differently", fixtures[f].name, n);
        assert_int_equal(decode_into(t, out, n), 0);
        assert_msg_same(&s->m, &t->m);
    }
    store_free(s);
    store_free(t);
}

static dns_rr_t rr_of(const char *owner, uint16_t type, uint32_t ttl)
{
    dns_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.name = N(owner);
    rr.type = type;
    rr.rclass = DNS_C_IN;
    rr.ttl = ttl;
    return rr;
}

#define NTYPES 13

/* One record of every type, typed and opaque; txtbuf (at least 14 bytes)
 * holds the TXT data. */
static void all_types(dns_rr_t *rrs, uint8_t *txtbuf)
{
    const slice_t strs[] = { SLICE_LIT("hello"), SLICE_LIT(""), SLICE_LIT("wor\0ld") };
    int tl = dns_txt_pack(txtbuf, 14, strs, 3);
    assert_int_equal(tl, 6 + 1 + 7);

    size_t k = 0;
    rrs[k] = rr_of("Example.COM", DNS_T_A, 1);
    memcpy(rrs[k++].a, "\x0a\x00\x00\x01", 4);
    rrs[k] = rr_of("example.com", DNS_T_AAAA, 2);
    memcpy(rrs[k++].aaaa, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    rrs[k] = rr_of("www.example.com", DNS_T_CNAME, 3);
    rrs[k++].target = N("example.com");
    rrs[k] = rr_of("example.com", DNS_T_NS, 4);
    rrs[k++].target = N("ns.example.net");
    rrs[k] = rr_of("example.com", DNS_T_SOA, 5);
    rrs[k].soa.mname = N("ns.example.net");
    rrs[k].soa.rname = N("host\\.master.example.com");
    rrs[k].soa.serial = 4294967295u;
    rrs[k].soa.refresh = 1;
    rrs[k].soa.retry = 2;
    rrs[k].soa.expire = 3;
    rrs[k++].soa.minimum = 4;
    rrs[k] = rr_of("example.com", DNS_T_MX, 6);
    rrs[k].mx.preference = 65535;
    rrs[k++].mx.exchange = N(".");
    rrs[k] = rr_of("example.com", DNS_T_TXT, 7);
    rrs[k].txt.data = slice_make((const char *)txtbuf, (size_t)tl);
    rrs[k++].txt.count = 3; /* not read by the builder; what decode gives */
    rrs[k] = rr_of("1.0.0.10.in-addr.arpa", DNS_T_PTR, 8);
    rrs[k++].target = N("example.com");
    rrs[k] = rr_of("_http._tcp.example.com", DNS_T_SRV, 9);
    rrs[k].srv.priority = 1;
    rrs[k].srv.weight = 2;
    rrs[k].srv.port = 8080;
    rrs[k++].srv.target = N("www.example.com");
    rrs[k] = rr_of("example.com", DNS_T_CAA, 10);
    rrs[k].caa.flags = 128;
    rrs[k].caa.tag = SLICE_LIT("issuewild");
    rrs[k++].caa.value = SLICE_LIT(";");
    rrs[k] = rr_of("example.com", 65, 11); /* HTTPS: opaque */
    rrs[k++].rdata = SLICE_LIT("\x00\x01\x00");
    rrs[k] = rr_of("example.com", 99, 12); /* empty opaque RDATA */
    rrs[k++].rdata = slice_make(NULL, 0);
    rrs[k] = rr_of("version.bind", DNS_T_TXT, 0);
    rrs[k].rclass = DNS_C_CH; /* TXT is typed in any class */
    rrs[k].txt.data = SLICE_LIT("\x03" "9.9");
    rrs[k++].txt.count = 1;

    assert_int_equal(k, NTYPES);
}

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    uint8_t txtbuf[14];
    dns_rr_t rrs[NTYPES];
    const size_t k = NTYPES;
    all_types(rrs, txtbuf);

    /* Each type alone, then all at once, the OPT record last. */
    uint8_t out[2048];
    struct store *s = store_new();
    for (size_t i = 0; i <= k; i++) {
        dns_builder_t b;
        assert_int_equal(dns_builder_init(&b, out, sizeof out, 0x4242, DNS_F_QR | DNS_F_AA), 0);
        assert_int_equal(dns_builder_question(&b, &rrs[i < k ? i : 0].name,
                                              rrs[i < k ? i : 0].type, DNS_C_IN), 0);
        for (size_t j = 0; j < k; j++)
            if (i == k || j == i)
                assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rrs[j]), 0);
        dns_edns_t e;
        dns_edns_default(&e);
        e.flags = DNS_EDNS_DO;
        assert_int_equal(dns_builder_edns(&b, &e), 0);

        assert_int_equal(decode_into(s, out, b.len), 0);
        assert_int_equal(s->m.h.id, 0x4242);
        assert_int_equal(s->m.sec[DNS_SEC_AN].n, i < k ? 1 : k);
        for (size_t j = 0, at = 0; j < k; j++)
            if (i == k || j == i)
                if (!rr_same(&rrs[j], &s->an[at++]))
                    fail_msg("record %zu (type %u) differs after the round trip", j, rrs[j].type);
        assert_true(s->m.edns.present);
        assert_int_equal(s->m.edns.udp_size, DNS_EDNS_PAYLOAD);
        assert_int_equal(s->m.edns.flags, DNS_EDNS_DO);
    }
    /* Spot checks on the decoded forms. */
    name_is(&s->an[4].soa.rname, "host\\.master.example.com.");
    assert_int_equal(s->an[6].txt.count, 3);
    name_is(&s->an[5].mx.exchange, ".");
    name_is(&s->an[0].name, "Example.COM.");
    store_free(s);
}

/* Every record of every type offered to buffers of every size: each is
 * written whole or refused with nothing written, and what was written is a
 * message holding exactly the records accepted. */
static void test_builder_every_cap(void **state)
{
    (void)state;
    uint8_t txtbuf[14], out[1024];
    dns_rr_t rrs[NTYPES];
    all_types(rrs, txtbuf);
    struct store *s = store_new();
    size_t full = 0;
    for (size_t cap = 12; full == 0 || cap <= full; cap++) {
        dns_builder_t b;
        size_t took[NTYPES], n = 0;
        assert_int_equal(dns_builder_init(&b, out, cap, 9, 0), 0);
        for (size_t j = 0; j < NTYPES; j++) {
            size_t before = b.len;
            int rc = dns_builder_rr(&b, DNS_SEC_AN, &rrs[j]);
            if (rc == 0) {
                took[n++] = j;
                assert_true(b.len > before && b.len <= cap);
            } else {
                assert_int_equal(rc, DNS_E_NOSPACE);
                assert_int_equal(b.len, before);
            }
        }
        if (n == NTYPES && full == 0)
            full = b.len;
        assert_int_equal(decode_into(s, out, b.len), 0);
        assert_int_equal(s->m.sec[DNS_SEC_AN].n, n);
        for (size_t i = 0; i < n; i++)
            assert_true(rr_same(&rrs[took[i]], &s->an[i]));
        if (cap == sizeof out)
            fail_msg("the records never all fit");
    }
    store_free(s);
}

static void test_txt_pack(void **state)
{
    (void)state;
    uint8_t out[300];
    char big[256];
    memset(big, 'z', sizeof big);
    slice_t strs[2] = { SLICE_LIT("ab"), { big, 255 } };
    assert_int_equal(dns_txt_pack(out, sizeof out, strs, 0), DNS_E_ARG);
    assert_int_equal(dns_txt_pack(out, sizeof out, strs, 2), 3 + 256);
    assert_memory_equal(out, "\x02" "ab" "\xff" "zzz", 7);
    assert_int_equal(dns_txt_pack(out, 3 + 255, strs, 2), DNS_E_NOSPACE);
    assert_int_equal(dns_txt_pack(out, 2, strs, 1), DNS_E_NOSPACE);
    strs[1].len = 256;
    assert_int_equal(dns_txt_pack(out, sizeof out, strs, 2), DNS_E_ARG);
    /* A string that overruns the data is an error, wherever it is. */
    size_t off = 0;
    slice_t str;
    assert_int_equal(dns_txt_next(SLICE_LIT("\x01" "a" "\x02" "b"), &off, &str), 1);
    assert_int_equal(dns_txt_next(SLICE_LIT("\x01" "a" "\x02" "b"), &off, &str), DNS_E_RDATA_SHORT);
}

/* ------------------------------------------------------------ builder */

static void test_builder_compresses_like_nsd(void **state)
{
    (void)state;
    uint8_t out[512];
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 0xbeef, DNS_F_QR), 0);
    dns_name_t www = N("www.example.com");
    assert_int_equal(dns_builder_question(&b, &www, DNS_T_A, DNS_C_IN), 0);
    dns_rr_t a = rr_of("www.example.com", DNS_T_A, 3600);
    memcpy(a.a, "\x01\x02\x03\x04", 4);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), 0);
    dns_rr_t ns = rr_of("example.com", DNS_T_NS, 3600);
    ns.target = N("ns1.example.com");
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &ns), 0);
    dns_rr_t glue = rr_of("ns1.example.com", DNS_T_A, 3600);
    memcpy(glue.a, "\xc0\x00\x02\x01", 4);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AR, &glue), 0);

    static const uint8_t want[] = {
        0xbe, 0xef, 0x80, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01,
        3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
        0x00, 0x01, 0x00, 0x01,
        /* 33 */ 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 1, 2, 3, 4,
        /* 49 */ 0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x06,
        /* 61 */ 3, 'n', 's', '1', 0xc0, 0x10,
        /* 67: the glue owner points into the NS RDATA */
        0xc0, 0x3d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 192, 0, 2, 1,
    };
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(out, want, sizeof want);
}

static void test_builder_compression_is_case_exact(void **state)
{
    (void)state;
    /* 0x20 case randomisation must survive: "WwW.ExAmple.com" shares only
     * "com" with "www.example.com". */
    uint8_t out[512];
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 1, 0), 0);
    dns_name_t q = N("WwW.ExAmple.com");
    assert_int_equal(dns_builder_question(&b, &q, DNS_T_A, DNS_C_IN), 0);
    dns_rr_t a = rr_of("www.example.com", DNS_T_A, 1);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), 0);
    static const uint8_t owner[] = { 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0xc0, 24 };
    assert_memory_equal(out + 33, owner, sizeof owner);
    struct store *s = store_new();
    assert_int_equal(decode_into(s, out, b.len), 0);
    name_is(&s->qd[0].name, "WwW.ExAmple.com.");
    name_is(&s->an[0].name, "www.example.com.");
    assert_true(dns_name_eq(&s->qd[0].name, &s->an[0].name));
    store_free(s);
}

static void test_builder_does_not_compress_srv_target(void **state)
{
    (void)state;
    uint8_t out[512];
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 1, 0), 0);
    dns_rr_t srv = rr_of("_x._tcp.example.com", DNS_T_SRV, 1);
    srv.srv.target = N("example.com");
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &srv), 0);
    /* 12 + owner 21 + 10 fixed; RDATA: 6 bytes then the target in full. */
    assert_int_equal(b.len, 12 + 21 + 10 + 6 + 13);
    assert_memory_equal(out + 12 + 21 + 10 + 6, "\x07" "example" "\x03" "com" "\x00", 13);
    /* ...and is not remembered as a target either: the next owner points
     * into the first owner. */
    dns_rr_t a = rr_of("example.com", DNS_T_A, 1);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), 0);
    assert_memory_equal(out + 12 + 21 + 10 + 6 + 13, "\xc0\x14", 2);
}

static void test_builder_refuses_what_does_not_fit(void **state)
{
    (void)state;
    /* The builder refuses a record that does not fit and keeps the message
     * complete; the caller sets TC (or not). */
    uint8_t out[DNS_UDP_MAX];
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 7, DNS_F_QR), 0);
    dns_name_t q = N("many.example.com");
    assert_int_equal(dns_builder_question(&b, &q, DNS_T_TXT, DNS_C_IN), 0);
    uint8_t txt[200];
    memset(txt, 'x', sizeof txt);
    txt[0] = 199;
    dns_rr_t rr = rr_of("many.example.com", DNS_T_TXT, 60);
    rr.txt.data = slice_make((const char *)txt, sizeof txt);
    int added = 0, rc;
    while ((rc = dns_builder_rr(&b, DNS_SEC_AN, &rr)) == 0)
        added++;
    assert_int_equal(rc, DNS_E_NOSPACE);
    assert_int_equal(added, 2);
    size_t len = b.len;
    assert_int_equal(len, 12 + 22 + 2 * (2 + 10 + 200));
    /* A smaller record still fits after the refusal. */
    dns_rr_t a = rr_of("many.example.com", DNS_T_A, 60);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), 0);
    dns_edns_t e;
    dns_edns_default(&e);
    assert_int_equal(dns_builder_edns(&b, &e), 0);
    dns_builder_set_flags(&b, DNS_F_QR | DNS_F_TC);

    struct store *s = store_new();
    assert_int_equal(decode_into(s, out, b.len), 0);
    assert_true(s->m.h.flags & DNS_F_TC);
    assert_int_equal(s->m.sec[DNS_SEC_AN].n, 3);
    assert_true(s->m.edns.present);

    /* The header alone does not fit in 11 bytes; a 12-byte buffer takes
     * nothing more. */
    assert_int_equal(dns_builder_init(&b, out, 11, 7, 0), DNS_E_NOSPACE);
    assert_int_equal(dns_builder_init(&b, out, 12, 7, 0), 0);
    assert_int_equal(dns_builder_question(&b, &dns_name_root, DNS_T_NS, DNS_C_IN), DNS_E_NOSPACE);
    assert_int_equal(dns_builder_edns(&b, &e), DNS_E_NOSPACE);
    assert_int_equal(b.len, 12);
    assert_int_equal(b.has_opt, 0);
    /* Every cut of a record leaves the message as it was. */
    for (size_t cap = 12; cap < 12 + 17 + 4 + 16; cap++) {
        assert_int_equal(dns_builder_init(&b, out, cap, 7, 0), 0);
        rc = dns_builder_question(&b, &q, DNS_T_A, DNS_C_IN);
        assert_true(rc == 0 || (rc == DNS_E_NOSPACE && b.len == 12 && b.ncomp == 0));
        if (rc == 0)
            assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), DNS_E_NOSPACE);
        assert_true(b.len == 12 || b.len == 12 + 22);
        assert_int_equal(decode_into(s, out, b.len), 0);
    }
    store_free(s);
}

static void test_builder_sections_in_order(void **state)
{
    (void)state;
    uint8_t out[512];
    dns_builder_t b;
    dns_rr_t a = rr_of("a.example", DNS_T_A, 1);
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 1, 0), 0);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &a), 0);
    assert_int_equal(dns_builder_question(&b, &a.name, DNS_T_A, DNS_C_IN), DNS_E_ORDER);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), DNS_E_ORDER);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &a), 0);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AR, &a), 0);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &a), DNS_E_ORDER);
    assert_int_equal(dns_builder_rr(&b, (enum dns_section)3, &a), DNS_E_ARG);
    assert_int_equal(b.count[0], 0);
    assert_int_equal(b.count[2], 2);
    assert_int_equal(b.count[3], 1);
}

static void test_builder_refuses_bad_records(void **state)
{
    (void)state;
    uint8_t out[512];
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 1, 0), 0);
    dns_rr_t rr = rr_of("x.example", DNS_T_A, 1);

    dns_name_t bad = { 0, { 0 } };               /* no root label */
    assert_int_equal(dns_builder_question(&b, &bad, DNS_T_A, DNS_C_IN), DNS_E_ARG);
    bad = (dns_name_t){ 3, { 64, 'a', 0 } };      /* length byte over 63 */
    assert_int_equal(dns_builder_question(&b, &bad, DNS_T_A, DNS_C_IN), DNS_E_ARG);
    bad = (dns_name_t){ 3, { 5, 'a', 0 } };       /* label past len */
    assert_int_equal(dns_builder_question(&b, &bad, DNS_T_A, DNS_C_IN), DNS_E_ARG);
    bad = (dns_name_t){ 4, { 1, 'a', 0, 0 } };    /* len past the root */
    assert_int_equal(dns_builder_question(&b, &bad, DNS_T_A, DNS_C_IN), DNS_E_ARG);

    rr.type = DNS_T_CNAME;
    rr.target = bad;
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), DNS_E_ARG);
    rr.type = DNS_T_OPT;
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AR, &rr), DNS_E_ARG);
    rr.type = DNS_T_TXT;
    rr.txt.data = SLICE_LIT("\x05" "abc");
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), DNS_E_RDATA_SHORT);
    rr.txt.data = slice_make(NULL, 0);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), DNS_E_RDATA_SHORT);
    rr.type = DNS_T_CAA;
    rr.caa.tag = SLICE_LIT("");
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), DNS_E_CAA_TAG);
    rr.caa.tag = SLICE_LIT("is sue");
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), DNS_E_CAA_TAG);
    assert_int_equal(b.len, 12); /* nothing written by any of them */

    dns_edns_t e;
    dns_edns_default(&e);
    e.options = SLICE_LIT("\x00\x0a\x00\x09" "12345678"); /* one byte short */
    assert_int_equal(dns_builder_edns(&b, &e), DNS_E_OPT_OPTIONS);
    e.options = SLICE_LIT("\x00\x0a\x00\x08" "12345678");
    assert_int_equal(dns_builder_edns(&b, &e), 0);
    assert_int_equal(dns_builder_edns(&b, &e), DNS_E_OPT_DUP);
    struct store *s = store_new();
    assert_int_equal(decode_into(s, out, b.len), 0);
    assert_int_equal(s->m.edns.options.len, 12);
    store_free(s);
}

static void test_builder_past_pointer_reach(void **state)
{
    (void)state;
    /* Names written past offset 0x3fff cannot be pointed at: they are
     * still compressed against earlier ones, and the message decodes. */
    static uint8_t out[DNS_MSG_MAX];
    static uint8_t txt[DNS_MSG_MAX];
    const slice_t str = { (const char *)memset(txt + 40000, 'y', 255), 255 };
    slice_t strs[80];
    for (size_t i = 0; i < 80; i++)
        strs[i] = str;
    int tl = dns_txt_pack(txt, 40000, strs, 80);
    assert_int_equal(tl, 80 * 256);
    dns_builder_t b;
    assert_int_equal(dns_builder_init(&b, out, sizeof out, 1, 0), 0);
    dns_name_t q = N("big.example");
    assert_int_equal(dns_builder_question(&b, &q, DNS_T_TXT, DNS_C_IN), 0);
    dns_rr_t rr = rr_of("big.example", DNS_T_TXT, 1);
    rr.txt.data = slice_make((const char *)txt, (size_t)tl);
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
    assert_true(b.len > DNS_PTR_REACH);
    dns_rr_t a = rr_of("late.big.example", DNS_T_A, 1);
    size_t at = b.len;
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), 0);
    assert_memory_equal(out + at, "\x04" "late" "\xc0\x0c", 7);
    /* Written again: in full again, since the first copy is out of reach. */
    at = b.len;
    assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &a), 0);
    assert_memory_equal(out + at, "\x04" "late" "\xc0\x0c", 7);
    struct store *s = store_new();
    assert_int_equal(decode_into(s, out, b.len), 0);
    assert_int_equal(s->an[0].txt.count, 80);
    name_is(&s->an[2].name, "late.big.example.");
    store_free(s);
}

/* ------------------------------------------------------------- names */

static void test_name_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        const char *wire;     /* expected wire form when rc == 0 */
        size_t wlen;
    } cases[] = {
        { "www.example.com", 0, "\3www\7example\3com", 17 },
        { "www.example.com.", 0, "\3www\7example\3com", 17 },
        { ".", 0, "", 1 },
        { "a", 0, "\1a", 3 },
        { "a\\.b.c", 0, "\3a.b\1c", 7 },
        { "\\065bc.", 0, "\3Abc", 5 },
        { "\\000\\255", 0, "\2\0\377", 4 },
        { "a\\\\b", 0, "\3a\\b", 5 },
        { "sp ace", 0, "\6sp ace", 8 },
        { "", DNS_E_EMPTY_LABEL, NULL, 0 },
        { "..", DNS_E_EMPTY_LABEL, NULL, 0 },
        { "a..b", DNS_E_EMPTY_LABEL, NULL, 0 },
        { ".a", DNS_E_EMPTY_LABEL, NULL, 0 },
        { "a.b..", DNS_E_EMPTY_LABEL, NULL, 0 },
        { "a\\", DNS_E_ESCAPE, NULL, 0 },
        { "\\25", DNS_E_ESCAPE, NULL, 0 },
        { "\\2x5", DNS_E_ESCAPE, NULL, 0 },
        { "\\256", DNS_E_ESCAPE, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dns_name_t n;
        int rc = dns_name_parse(&n, slice_cstr(cases[i].text));
        if (rc != cases[i].rc)
            fail_msg("\"%s\": %d, want %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(n.len, cases[i].wlen);
            assert_memory_equal(n.wire, cases[i].wire, cases[i].wlen - 1);
            assert_int_equal(n.wire[n.len - 1], 0);
        }
    }
}

static void test_name_length_limits(void **state)
{
    (void)state;
    char text[400];
    dns_name_t n;
    memset(text, 'a', 63);
    assert_int_equal(dns_name_parse(&n, slice_make(text, 63)), 0);
    assert_int_equal(n.len, 65);
    memset(text, 'a', 64);
    assert_int_equal(dns_name_parse(&n, slice_make(text, 64)), DNS_E_LABEL_LONG);
    /* 63.63.63.61: 64 * 3 + 62 + 1 = 255 wire bytes, the most there is. */
    size_t o = 0;
    for (int l = 0; l < 4; l++) {
        size_t k = l < 3 ? 63 : 61;
        memset(text + o, 'a' + l, k);
        o += k;
        text[o++] = '.';
    }
    assert_int_equal(dns_name_parse(&n, slice_make(text, o)), 0);
    assert_int_equal(n.len, 255);
    assert_int_equal(dns_name_parse(&n, slice_make(text, o - 1)), 0); /* no trailing dot */
    assert_int_equal(n.len, 255);
    text[o - 1] = 'd';
    assert_int_equal(dns_name_parse(&n, slice_make(text, o)), DNS_E_NAME_LONG);
    /* 127 one-byte labels: 254 + 1. One more is too long. */
    o = 0;
    for (int l = 0; l < 128; l++) {
        text[o++] = 'x';
        text[o++] = '.';
    }
    assert_int_equal(dns_name_parse(&n, slice_make(text, 254)), 0);
    assert_int_equal(n.len, 255);
    assert_int_equal(dns_name_parse(&n, slice_make(text, 256)), DNS_E_NAME_LONG);
    /* The longest presentation form: 250 bytes written \DDD, 4 dots. */
    char big[DNS_NAME_STR_MAX];
    dns_name_t w = { 255, { 0 } };
    for (size_t i = 0, l = 0; l < 4; l++) {
        size_t k = l < 3 ? 63 : 61;
        w.wire[i++] = (uint8_t)k;
        memset(w.wire + i, 0xff, k);
        i += k;
    }
    int len = dns_name_format(&w, big, sizeof big);
    assert_int_equal(len, DNS_NAME_STR_MAX - 1);
    assert_int_equal(dns_name_format(&w, big, (size_t)len), DNS_E_NOSPACE);
    assert_int_equal(dns_name_format(&w, big, (size_t)len + 1), len);
    dns_name_t back;
    assert_int_equal(dns_name_parse(&back, slice_make(big, (size_t)len)), 0);
    assert_true(name_same(&w, &back));
}

static void test_name_format_escapes(void **state)
{
    (void)state;
    static const uint8_t wire[] = { 8, 'a', '.', 'b', ' ', 0, '\\', '"', 0x80, 4, '(', ';', '@', '$', 0 };
    dns_name_t n;
    n.len = sizeof wire;
    memcpy(n.wire, wire, sizeof wire);
    char out[DNS_NAME_STR_MAX];
    int len = dns_name_format(&n, out, sizeof out);
    assert_string_equal(out, "a\\.b\\032\\000\\\\\\\"\\128.\\(\\;\\@\\$.");
    assert_int_equal(len, (int)strlen(out));
    dns_name_t back;
    assert_int_equal(dns_name_parse(&back, slice_make(out, (size_t)len)), 0);
    assert_true(name_same(&n, &back));
    assert_int_equal(dns_name_format(&dns_name_root, out, 2), 1);
    assert_string_equal(out, ".");
    assert_int_equal(dns_name_format(&dns_name_root, out, 1), DNS_E_NOSPACE);
    assert_int_equal(dns_name_format(&n, out, 5), DNS_E_NOSPACE);
    n.len = 3; /* ends inside a label: not a name */
    assert_int_equal(dns_name_format(&n, out, sizeof out), DNS_E_ARG);
}

static void test_name_eq(void **state)
{
    (void)state;
    dns_name_t a = N("WWW.Example.COM"), b = N("www.example.com.");
    assert_true(dns_name_eq(&a, &b));
    b = N("www.example.co");
    assert_false(dns_name_eq(&a, &b));
    b = N("www.examplf.com");
    assert_false(dns_name_eq(&a, &b));
    /* ASCII only: 0xC3 and 0xE3 are not a case pair. */
    a = N("\\195"), b = N("\\227");
    assert_false(dns_name_eq(&a, &b));
    /* '@' (0x40) and '`' (0x60) are not letters either. */
    a = N("\\@"), b = N("`");
    assert_false(dns_name_eq(&a, &b));
    assert_true(dns_name_eq(&dns_name_root, &dns_name_root));
}

static void test_type_class_rcode_tables(void **state)
{
    (void)state;
    static const struct { const char *name; int v; } types[] = {
        { "A", 1 }, { "NS", 2 }, { "CNAME", 5 }, { "SOA", 6 }, { "PTR", 12 }, { "MX", 15 },
        { "TXT", 16 }, { "AAAA", 28 }, { "SRV", 33 }, { "OPT", 41 }, { "HTTPS", 65 },
        { "ANY", 255 }, { "CAA", 257 },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_int_equal(dns_type_lookup(slice_cstr(types[i].name)), types[i].v);
        assert_string_equal(dns_type_name((uint16_t)types[i].v), types[i].name);
    }
    assert_int_equal(dns_type_lookup(SLICE_LIT("aaaa")), DNS_T_AAAA);
    assert_int_equal(dns_type_lookup(SLICE_LIT("TYPE65280")), 65280);
    assert_int_equal(dns_type_lookup(SLICE_LIT("type1")), 1);
    assert_int_equal(dns_type_lookup(SLICE_LIT("TYPE65536")), DNS_E_UNKNOWN);
    assert_int_equal(dns_type_lookup(SLICE_LIT("TYPE")), DNS_E_UNKNOWN);
    assert_int_equal(dns_type_lookup(SLICE_LIT("TYPE1x")), DNS_E_UNKNOWN);
    assert_int_equal(dns_type_lookup(SLICE_LIT("TYPE123456")), DNS_E_UNKNOWN);
    assert_int_equal(dns_type_lookup(SLICE_LIT("AA")), DNS_E_UNKNOWN);
    assert_null(dns_type_name(65280));
    assert_int_equal(dns_class_lookup(SLICE_LIT("in")), DNS_C_IN);
    assert_int_equal(dns_class_lookup(SLICE_LIT("CH")), DNS_C_CH);
    assert_int_equal(dns_class_lookup(SLICE_LIT("CLASS32769")), 32769);
    assert_int_equal(dns_class_lookup(SLICE_LIT("A")), DNS_E_UNKNOWN);
    assert_string_equal(dns_class_name(DNS_C_IN), "IN");
    assert_string_equal(dns_class_name(DNS_C_ANY), "ANY");
    assert_null(dns_class_name(2));
    static const char *const rcodes[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                          "NOTIMP", "REFUSED" };
    for (unsigned i = 0; i < 6; i++)
        assert_string_equal(dns_rcode_name(i), rcodes[i]);
    assert_null(dns_rcode_name(15));
}

static void test_every_error_has_a_distinct_reason(void **state)
{
    (void)state;
    for (int e = DNS_E_UNKNOWN; e <= DNS_E_HEADER; e++) {
        const char *why = dns_strerror(e);
        assert_string_not_equal(why, "unknown error");
        for (int f = e + 1; f <= DNS_E_HEADER; f++)
            assert_string_not_equal(why, dns_strerror(f));
    }
    assert_string_equal(dns_strerror(0), "unknown error");
    assert_string_equal(dns_strerror(-1000), "unknown error");
}

/* --------------------------------------------------------- malformed */

#define HDR(qd, an, ns, ar) 0xbe, 0xef, 0x81, 0x80, 0, qd, 0, an, 0, ns, 0, ar
/* www.example.com A IN at offsets 12-32; the next record starts at 33. */
#define Q_WWW 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1
#define TTL 0, 0, 0x0e, 0x10
/* An answer at 33 of type T, owner the question: its RDLENGTH is at 43 and
 * its RDATA starts at 45. */
#define AN(t) 0xc0, 0x0c, (t) >> 8, (t) & 0xff, 0, 1, TTL
#define OPT_RR 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0
#define A16 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'
#define L63 63, A16, A16, A16, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
#define BAD(what, err, off, ...) { what, BYTES(__VA_ARGS__), err, off }

static const struct bad {
    const char *what;
    const uint8_t *msg;
    size_t len;
    int err;
    size_t off;
} bad_msgs[] = {
    BAD("header of 11 bytes", DNS_E_HEADER, 0, 0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0),
    BAD("pointer to itself", DNS_E_PTR_LOOP, 12, HDR(1, 0, 0, 0), 0xc0, 0x0c, 0, 1, 0, 1),
    BAD("pointer to its own second byte", DNS_E_PTR_LOOP, 12, HDR(1, 0, 0, 0), 0xc0, 0x0d, 0, 1, 0, 1),
    BAD("label then pointer back to it", DNS_E_PTR_LOOP, 16,
        HDR(1, 0, 0, 0), 3, 'a', 'b', 'c', 0xc0, 0x0c, 0, 1, 0, 1),
    /* Two pointers at 45 and 47 pointing at each other, reached from the
     * second answer's owner through 47: the pointer at 45 leads back into
     * bytes already read. */
    BAD("two pointers pointing at each other", DNS_E_PTR_LOOP, 45,
        HDR(1, 2, 0, 0), Q_WWW, AN(99), 0, 4, 0xc0, 0x2f, 0xc0, 0x2d,
        0xc0, 0x2f, 0, 1, 0, 1, TTL, 0, 4, 1, 2, 3, 4),
    /* The same pair reached through 45: the pointer at 45 itself points
     * forward, which is already wrong. */
    BAD("the same pair entered at the other one", DNS_E_PTR_FORWARD, 45,
        HDR(1, 2, 0, 0), Q_WWW, AN(99), 0, 4, 0xc0, 0x2f, 0xc0, 0x2d,
        0xc0, 0x2d, 0, 1, 0, 1, TTL, 0, 4, 1, 2, 3, 4),
    BAD("forward pointer", DNS_E_PTR_FORWARD, 12,
        HDR(2, 0, 0, 0), 0xc0, 0x12, 0, 1, 0, 1, 1, 'a', 0, 0, 1, 0, 1),
    BAD("pointer outside the message", DNS_E_PTR_OUTSIDE, 12, HDR(1, 0, 0, 0), 0xc0, 0xff, 0, 1, 0, 1),
    BAD("pointer to 0x3fff", DNS_E_PTR_OUTSIDE, 12, HDR(1, 0, 0, 0), 0xff, 0xff, 0, 1, 0, 1),
    BAD("pointer into the header", DNS_E_PTR_HEADER, 33, HDR(1, 1, 0, 0), Q_WWW, 0xc0, 0x05,
        0, 1, 0, 1, TTL, 0, 4, 1, 2, 3, 4),
    BAD("label of 64 bytes", DNS_E_LABEL_LONG, 12, HDR(1, 0, 0, 0), 64, A16, A16, A16, A16, 0, 0, 1, 0, 1),
    BAD("label type 0x40 (extended label)", DNS_E_LABEL_LONG, 12, HDR(1, 0, 0, 0), 0x41, 0, 0, 1, 0, 1),
    BAD("reserved label type 0x80", DNS_E_LABEL_TYPE, 12, HDR(1, 0, 0, 0), 0x80, 0, 0, 1, 0, 1),
    BAD("reserved label type 0xbf", DNS_E_LABEL_TYPE, 12, HDR(1, 0, 0, 0), 0xbf, 0, 0, 1, 0, 1),
    BAD("name of 257 bytes", DNS_E_NAME_LONG, 12 + 3 * 64,
        HDR(1, 0, 0, 0), L63, L63, L63, L63, 0, 0, 1, 0, 1),
    /* The answer owner: a 62-byte label, then a pointer to the 193-byte
     * question name, whose third label no longer fits. */
    BAD("name over 255 through a pointer", DNS_E_NAME_LONG, 12 + 2 * 64,
        HDR(1, 1, 0, 0), L63, L63, L63, 0, 0, 1, 0, 1,
        62, A16, A16, A16, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
        0xc0, 0x0c, 0, 1, 0, 1, TTL, 0, 4, 1, 2, 3, 4),
    BAD("qdcount larger than the questions", DNS_E_COUNTS, 33, HDR(2, 0, 0, 0), Q_WWW),
    BAD("ancount larger than the answers", DNS_E_COUNTS, 49,
        HDR(1, 2, 0, 0), Q_WWW, AN(1), 0, 4, 1, 2, 3, 4),
    BAD("counts that cannot fit", DNS_E_COUNTS, 4, HDR(1, 0, 0, 255), Q_WWW),
    BAD("question cut in its type", DNS_E_TRUNC_Q, 29,
        HDR(1, 0, 0, 0), 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1),
    BAD("name cut in a label", DNS_E_TRUNC_NAME, 12, HDR(1, 0, 0, 0), 7, 'e', 'x', 'a', 'm'),
    BAD("name without its root label", DNS_E_TRUNC_NAME, 18, HDR(1, 0, 0, 0), 1, 'a', 1, 'b', 1, 'c'),
    BAD("name cut in a pointer", DNS_E_TRUNC_NAME, 33, HDR(1, 1, 0, 0), Q_WWW, 0xc0),
    BAD("record cut in its TTL", DNS_E_TRUNC_RR, 35,
        HDR(1, 1, 0, 0), Q_WWW, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0),
    BAD("RDLENGTH past the end", DNS_E_RDLEN, 43, HDR(1, 1, 0, 0), Q_WWW, AN(1), 0, 4, 1, 2),
    BAD("A with RDLENGTH 3", DNS_E_RDATA_SHORT, 45, HDR(1, 1, 0, 0), Q_WWW, AN(1), 0, 3, 1, 2, 3),
    BAD("A with RDLENGTH 5", DNS_E_RDATA_EXTRA, 49,
        HDR(1, 1, 0, 0), Q_WWW, AN(1), 0, 5, 1, 2, 3, 4, 5),
    BAD("AAAA with RDLENGTH 4", DNS_E_RDATA_SHORT, 45,
        HDR(1, 1, 0, 0), Q_WWW, AN(28), 0, 4, 1, 2, 3, 4),
    BAD("CNAME target past its RDATA", DNS_E_RDATA_SHORT, 45,
        HDR(1, 1, 0, 0), Q_WWW, AN(5), 0, 3, 3, 'f', 'o', 'o', 0),
    BAD("CNAME target short of its RDATA", DNS_E_RDATA_EXTRA, 47,
        HDR(1, 1, 0, 0), Q_WWW, AN(5), 0, 4, 0xc0, 0x0c, 0, 0),
    BAD("CNAME target pointing at itself", DNS_E_PTR_LOOP, 45,
        HDR(1, 1, 0, 0), Q_WWW, AN(5), 0, 2, 0xc0, 0x2d),
    BAD("MX without its exchange", DNS_E_RDATA_SHORT, 47, HDR(1, 1, 0, 0), Q_WWW, AN(15), 0, 2, 0, 10),
    BAD("TXT string past its RDATA", DNS_E_RDATA_SHORT, 45,
        HDR(1, 1, 0, 0), Q_WWW, AN(16), 0, 3, 5, 'a', 'b'),
    BAD("TXT without a string", DNS_E_RDATA_SHORT, 45, HDR(1, 1, 0, 0), Q_WWW, AN(16), 0, 0),
    BAD("SOA cut in its numbers", DNS_E_RDATA_SHORT, 49,
        HDR(1, 1, 0, 0), Q_WWW, AN(6), 0, 20, 0xc0, 0x0c, 0xc0, 0x0c,
        0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4),
    BAD("SRV cut in its numbers", DNS_E_RDATA_SHORT, 45, HDR(1, 1, 0, 0), Q_WWW, AN(33), 0, 4, 0, 1, 0, 2),
    BAD("CAA with an empty tag", DNS_E_CAA_TAG, 47, HDR(1, 1, 0, 0), Q_WWW, AN(257), 0, 3, 0, 0, 'x'),
    BAD("CAA tag not alphanumeric", DNS_E_CAA_TAG, 47,
        HDR(1, 1, 0, 0), Q_WWW, AN(257), 0, 8, 0, 5, 'i', 's', '-', 'u', 'e', 'x'),
    BAD("CAA tag past its RDATA", DNS_E_RDATA_SHORT, 47, HDR(1, 1, 0, 0), Q_WWW, AN(257), 0, 3, 0, 5, 'i'),
    BAD("OPT in the answer section", DNS_E_OPT_SECTION, 33, HDR(1, 1, 0, 0), Q_WWW, OPT_RR, 0, 0),
    BAD("OPT not owned by the root", DNS_E_OPT_NAME, 33,
        HDR(1, 0, 0, 1), Q_WWW, 0xc0, 0x0c, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0),
    BAD("two OPT records", DNS_E_OPT_DUP, 44, HDR(1, 0, 0, 2), Q_WWW, OPT_RR, 0, 0, OPT_RR, 0, 0),
    BAD("EDNS option past the OPT RDATA", DNS_E_OPT_OPTIONS, 44,
        HDR(1, 0, 0, 1), Q_WWW, OPT_RR, 0, 4, 0, 10, 0, 8),
    BAD("EDNS option cut in its header", DNS_E_OPT_OPTIONS, 44,
        HDR(1, 0, 0, 1), Q_WWW, OPT_RR, 0, 2, 0, 10),
    BAD("byte after the last record", DNS_E_TRAILING, 33, HDR(1, 0, 0, 0), Q_WWW, 0),
};

static void test_malformed_table(void **state)
{
    (void)state;
    struct store *s = store_new();
    for (size_t i = 0; i < sizeof bad_msgs / sizeof bad_msgs[0]; i++) {
        const struct bad *b = &bad_msgs[i];
        int rc = decode_into(s, b->msg, b->len);
        if (rc != b->err || s->m.err_off != b->off)
            fail_msg("%s: %d (%s) at %zu, want %d (%s) at %zu", b->what, rc, dns_strerror(rc),
                     s->m.err_off, b->err, dns_strerror(b->err), b->off);
    }
    store_free(s);
}

/* A chain of k pointers, each to the one before, the first to the question
 * name "a": the answer's owner points at the last, so reading it takes k + 1
 * pointers. */
static size_t pointer_chain(uint8_t *msg, size_t k)
{
    static const uint8_t head[] = { HDR(1, 2, 0, 0), 1, 'a', 0, 0, 1, 0, 1,
                                    0xc0, 0x0c, 0, 99, 0, 1, TTL };
    size_t o = sizeof head;
    memcpy(msg, head, o);
    msg[o++] = (uint8_t)(2 * k >> 8);
    msg[o++] = (uint8_t)(2 * k);
    size_t first = o;
    for (size_t i = 0; i < k; i++) {
        size_t to = i == 0 ? 12 : first + 2 * (i - 1);
        msg[o++] = (uint8_t)(0xc0 | to >> 8);
        msg[o++] = (uint8_t)to;
    }
    size_t last = o - 2;
    static const uint8_t tail[] = { 0, 1, 0, 1, TTL, 0, 4, 1, 2, 3, 4 };
    msg[o++] = (uint8_t)(0xc0 | last >> 8);
    msg[o++] = (uint8_t)last;
    memcpy(msg + o, tail, sizeof tail);
    return o + sizeof tail;
}

static void test_pointer_hops_cap(void **state)
{
    (void)state;
    uint8_t msg[512];
    struct store *s = store_new();
    size_t n = pointer_chain(msg, DNS_PTR_HOPS_MAX - 1);
    assert_int_equal(decode_into(s, msg, n), 0);
    name_is(&s->an[1].name, "a.");
    n = pointer_chain(msg, DNS_PTR_HOPS_MAX);
    assert_int_equal(decode_into(s, msg, n), DNS_E_PTR_HOPS);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_response_with_compression),
        cmocka_unit_test(test_cname_chain),
        cmocka_unit_test(test_nxdomain_with_soa),
        cmocka_unit_test(test_mx),
        cmocka_unit_test(test_txt_several_strings),
        cmocka_unit_test(test_srv),
        cmocka_unit_test(test_caa),
        cmocka_unit_test(test_aaaa),
        cmocka_unit_test(test_opt_record),
        cmocka_unit_test(test_extended_rcode),
        cmocka_unit_test(test_records_beyond_cap_are_checked_and_counted),
        cmocka_unit_test(test_untyped_records_stay_opaque),
        cmocka_unit_test(test_header_kept_on_error),
        cmocka_unit_test(test_message_over_64k),
        cmocka_unit_test(test_every_prefix_fails_cleanly),
        cmocka_unit_test(test_every_byte_mutated),
        cmocka_unit_test(test_fixtures_reencode_byte_for_byte),
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_builder_every_cap),
        cmocka_unit_test(test_txt_pack),
        cmocka_unit_test(test_builder_compresses_like_nsd),
        cmocka_unit_test(test_builder_compression_is_case_exact),
        cmocka_unit_test(test_builder_does_not_compress_srv_target),
        cmocka_unit_test(test_builder_refuses_what_does_not_fit),
        cmocka_unit_test(test_builder_sections_in_order),
        cmocka_unit_test(test_builder_refuses_bad_records),
        cmocka_unit_test(test_builder_past_pointer_reach),
        cmocka_unit_test(test_name_parse),
        cmocka_unit_test(test_name_length_limits),
        cmocka_unit_test(test_name_format_escapes),
        cmocka_unit_test(test_name_eq),
        cmocka_unit_test(test_type_class_rcode_tables),
        cmocka_unit_test(test_every_error_has_a_distinct_reason),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_pointer_hops_cap),
    };
    return cmocka_run_group_tests_name("dns_msg", tests, NULL, NULL);
}
