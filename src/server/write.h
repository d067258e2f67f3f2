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
#include "server/resumable.h"
#include "server/server.h"

struct write_config {
    int rootfd;
    tpool_t *pool;
    const auth_db_t *auth;    /* NULL: no authentication */
    int trace;                /* TRACE is answered (for Allow) */
    rup_registry_t *uploads;  /* resumable uploads; NULL: not offered */
};

/* Handles PUT, DELETE, POST and PATCH on `path` (normalised, starting with
 * '/'), and every method on an upload resource (RUP_PREFIX: HEAD for the
 * offset, PATCH to append, DELETE to cancel). Answers or holds r.
 *
 * Resumable uploads: a PUT or POST (not multipart, not partial) with a
 * valid Upload-Complete field gets an upload resource, announced at once in
 * a `104 Upload Resumption Supported` interim response (Location,
 * Upload-Limit); if the body is cut, what arrived stays in the resource and
 * the client goes on from Upload-Offset with PATCH (application/partial-
 * upload). The target is written only when the upload completes, exactly
 * as a plain PUT or POST body would be. */
void write_request(hs_req_t *r, const struct write_config *cfg, const char *path, size_t plen);

/* The engine refuses r with `status` before write_request sees it (413:
 * Content-Length past --max-body). For an upload creation or append, a 413
 * is answered here with Upload-Limit (the draft wants the limits named on a
 * 413 they caused); anything else is left to the engine. */
void write_refused(hs_req_t *r, const struct write_config *cfg, const char *path, size_t plen,
                   int status);

#endif
