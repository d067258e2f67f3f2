/* netaddr.h - test helper: an addr_t from an IPv4 or IPv6 literal (port 0),
 * failing the test on anything else. */
#ifndef PORTICO_TESTS_NETADDR_H
#define PORTICO_TESTS_NETADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/sock.h"

static inline addr_t test_ip(const char *s)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    memset(&s4, 0, sizeof s4);
    memset(&s6, 0, sizeof s6);
    if (inet_pton(AF_INET, s, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        memcpy(&a.ss, &s4, sizeof s4);
        a.len = sizeof s4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, s, &s6.sin6_addr), 1);
        s6.sin6_family = AF_INET6;
        memcpy(&a.ss, &s6, sizeof s6);
        a.len = sizeof s6;
    }
    return a;
}

#endif
