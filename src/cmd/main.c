/* main.c - the portico binary: dispatch to a subcommand. */
#include "cmd/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PORTICO_VERSION "0.1.0"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    { "serve", cmd_serve, "HTTP/1.1 file server (the main job)" },
    { "lookup", cmd_lookup, "DNS lookups like nslookup: stub resolver, --json, -x" },
    { "get", cmd_get, "HTTP/1.1 client like curl: keep-alive, redirects, resume, --cache" },
    { "nc", cmd_nc, "TCP/UDP sockets from the shell: connect, listen, echo" },
    { "proxy", cmd_proxy, "caching HTTP proxy: forward, reverse, CONNECT, firewall rules" },
    { "resolver", cmd_resolver, "caching recursive DNS server: iterative or forwarding" },
    { "xfer", cmd_xfer, "file transfer over UDP: sliding window with SACK, SHA-256 checked" },
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portico COMMAND [OPTIONS] [ARGS]\n"
            "\n"
            "portico is a network toolkit: one binary, one command per tool.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Run 'portico COMMAND --help' for the options of a command.\n"
            "  -h, --help     this text\n"
            "  -V, --version  print the version\n");
}

void cmd_error(const char *cmd, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "portico %s: %s\n", cmd, line);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
        printf("portico %s\n", PORTICO_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (name[0] == '-')
        fprintf(stderr, "portico: unknown option '%s' (see 'portico --help')\n", name);
    else
        fprintf(stderr, "portico: unknown command '%s' (see 'portico --help')\n", name);
    return EXIT_USAGE;
}
