/* limits.h - caps and default timeouts of the HTTP client engine.
 *
 * Each default is a field of client_opts_t (client.h), so commands and the
 * proxy set them from their options; the engine reads only the struct. */
#ifndef PORTICO_CLIENT_LIMITS_H
#define PORTICO_CLIENT_LIMITS_H

#define CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000u   /* name lookup + TCP connect */
#define CLIENT_DEFAULT_HEADER_TIMEOUT_MS  30000u   /* request sent -> final response head */
#define CLIENT_DEFAULT_READ_TIMEOUT_MS    30000u   /* no byte of the body, or no send progress */
#define CLIENT_DEFAULT_IDLE_TIMEOUT_MS    30000u   /* a pooled connection with no request */
#define CLIENT_DEFAULT_MAX_IDLE           8u       /* idle connections kept per origin */
#define CLIENT_DEFAULT_MAX_HEAD           (64u * 1024u)  /* response head, 1xx heads each */
#define CLIENT_DEFAULT_MAX_FIELDS         200u     /* fields of a response head */
#define CLIENT_DEFAULT_MAX_INFO           16u      /* 1xx heads before the final one */

/* Bytes read from the socket at once (and the read buffer's growth unit). */
#define CLIENT_READ_CHUNK                 (64u * 1024u)
/* client_req_sink(): the pipe's asked size (F_SETPIPE_SZ; the default
 * stays when refused) and the most bytes spliced at once. */
#define CLIENT_SPLICE_PIPE                (1024u * 1024u)
/* client_req_sink(): SO_RCVLOWAT while waiting for the socket, so the loop
 * wakes for this many bytes (or the body's rest, or a close), not for each
 * segment. Bytes held back when the read timeout fires count as progress. */
#define CLIENT_SPLICE_LOWAT               (256u * 1024u)
/* Queued request body bytes before client_req_write() says -ENOBUFS. */
#define CLIENT_SEND_BUF_CAP               (256u * 1024u)
/* client_req_write() asks for more (on_drain) below this much queued. */
#define CLIENT_SEND_LOW_WATER             (64u * 1024u)
/* Addresses tried per origin, and how long a resolved name is kept (ms):
 * a fixed 60 s, as the answers' TTLs are not reported by dns/hostaddr.h. */
#define CLIENT_MAX_ADDRS                  8
#define CLIENT_DNS_KEEP_MS                60000u
/* Longest host name (bytes). */
#define CLIENT_HOST_MAX                   255u

#endif
