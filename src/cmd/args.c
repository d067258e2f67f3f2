/* args.c - option values shared by the subcommands: byte sizes with a
 * k/m/g suffix, seconds as milliseconds, listen addresses. */
#include "cmd/cmd.h"
#include "core/sock.h"
#include "dns/hostaddr.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_parse_size(const char *s, uint64_t *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024;
    else if (*end == 'g' || *end == 'G')
        mul = 1024ull * 1024 * 1024;
    if (mul != 1)
        end++;
    if (errno || *end != '\0' || n > UINT64_MAX / mul)
        return -1;
    *v = n * mul;
    return 0;
}

int cmd_parse_secs(const char *s, uint32_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v > 0) || v > 86400.0 * 30)
        return -1;
    *ms = (uint32_t)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

int cmd_check_congestion(const char *s, char *err, size_t errlen)
{
    size_t n = strlen(s);
    int ok = n >= 1 && n <= 15;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
    if (!ok)
        snprintf(err, errlen, "invalid tcp-congestion '%s': expected auto or a kernel name such as cubic", s);
    return ok ? 0 : -1;
}

int cmd_listen_addrs(const char *cmd, const char *const *specs, int nspecs,
                     struct addr *out, int *n, int max)
{
    for (int i = 0; i < nspecs; i++) {
        char host[HOST_MAX], err[ERR_MAX];
        uint16_t port;
        if (addr_split(specs[i], host, sizeof host, &port, err, sizeof err) < 0) {
            cmd_error(cmd, "%s", err);
            return EXIT_USAGE;
        }
        int room = max - *n;
        int k = room > 0 ? dns_hostaddr_sync(host, port, AF_UNSPEC, 1, &out[*n], room, err,
                                             sizeof err)
                         : -1;
        if (k < 0) {
            cmd_error(cmd, "%s", room > 0 ? err : "too many listen addresses");
            return 1;
        }
        *n += k;
    }
    return 0;
}
