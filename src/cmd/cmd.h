/* cmd.h - the subcommands of the portico binary.
 *
 * Each takes argv as main() gets it (argv[0] is the subcommand name) and
 * returns the process exit status: 0 success, 1 runtime failure, 2 usage. */
#ifndef PORTICO_CMD_CMD_H
#define PORTICO_CMD_CMD_H

#define EXIT_USAGE 2

int cmd_lookup(int argc, char **argv);
int cmd_nc(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

/* Prints "portico CMD: MESSAGE" and a newline on stderr. */
void cmd_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
