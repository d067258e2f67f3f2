/* tunnel.h - a CONNECT tunnel: bytes spliced both ways between the client
 * and the upstream socket, on the loop.
 *
 * Each direction has a buffer of PROXY_TUNNEL_BUF bytes: a side is read
 * only while the buffer toward the other side has room (backpressure: a
 * slow reader slows the writer down, memory stays bounded). An EOF from
 * one side is passed on as a half-close (shutdown(SHUT_WR)) of the other
 * once the buffered bytes are out, and the other direction goes on. The
 * tunnel ends when both directions are shut, on an error, or after
 * idle_ms with no byte either way. */
#ifndef PORTICO_PROXY_TUNNEL_H
#define PORTICO_PROXY_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

/* Starts a tunnel between two connected non-blocking sockets, which it
 * owns from now on (closed when it ends, or at once on failure). early[0,
 * n) are bytes the client sent already (taken over; freed with free()).
 * Returns 0 or -errno. */
int tunnel_start(loop_t *l, int client_fd, char *early, size_t n, int upstream_fd, uint32_t idle_ms);

#endif
