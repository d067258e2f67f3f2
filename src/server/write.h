/* write.h - the writing methods of `portico serve --writable`: PUT (whole
 * or partial), DELETE, and POST of a new file into a directory.
 *
 * Nothing is ever half-written: a body streams into an unnamed temporary
 * file (O_TMPFILE) in the target's directory; only when it is complete is
 * it fsync()ed, given a name and renamed over the target, and the directory
 * fsync()ed. A client that stops mid-body leaves the old file as it was and
 * no file behind. Preconditions (If-Match, If-None-Match, If-Unmodified-
 * Since) are checked when the request arrives and again under a lock just
 * before the rename, so that of two concurrent conditional writers one
 * gets 412 instead of silently losing the other's update.
 *
 * Disk work (fsync, rename, unlink, password hashing) runs on the thread
 * pool; the request is held meanwhile (hs_hold). */
#ifndef PORTICO_SERVER_WRITE_H
#define PORTICO_SERVER_WRITE_H

#include "core/tpool.h"
#include "server/auth.h"
#include "server/server.h"

struct write_config {
    int rootfd;
    tpool_t *pool;
    const auth_db_t *auth;    /* NULL: no authentication */
    int trace;                /* TRACE is answered (for Allow) */
};

/* Handles PUT, DELETE and POST on `path` (normalised, starting with '/').
 * Answers or holds r. */
void write_request(hs_req_t *r, const struct write_config *cfg, const char *path, size_t plen);

#endif
