/* cmd.h - the subcommands of the portico binary.
 *
 * Each takes argv as main() gets it (argv[0] is the subcommand name) and
 * returns the process exit status: 0 success, 1 runtime failure, 2 usage. */
#ifndef PORTICO_CMD_CMD_H
#define PORTICO_CMD_CMD_H

#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2

int cmd_get(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_nc(int argc, char **argv);
int cmd_resolver(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_xfer(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

/* "123", "64k", "1m", "2g" (binary multiples) into *v. Returns 0 or -1. */
int cmd_parse_size(const char *s, uint64_t *v);
/* Seconds (> 0, at most 30 days, fractions allowed) as milliseconds, at
 * least 1. Returns 0 or -1. */
int cmd_parse_secs(const char *s, uint32_t *ms);

/* A --tcp-congestion value: "auto" or a name of 1-15 characters from
 * [a-z0-9_] (whether the kernel has it is checked when the listeners
 * open). Returns 0, or -1 with err set. */
int cmd_check_congestion(const char *s, char *err, size_t errlen);

struct addr;
/* Resolves listen specs ("127.0.0.1:8080", "[::1]:80", ":80",
 * "localhost:8080", which may give several) into out[*n, max), adding to
 * *n. On error prints "portico CMD: ..." and returns EXIT_USAGE for a
 * malformed spec, 1 for a name that does not resolve or too many
 * addresses; 0 on success. */
int cmd_listen_addrs(const char *cmd, const char *const *specs, int nspecs,
                     struct addr *out, int *n, int max);

/* Prints "portico CMD: MESSAGE" and a newline on stderr. */
void cmd_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
