/* static.h - the static file handler of `portico serve`: GET, HEAD and
 * OPTIONS on the files below one directory, with conditional and range
 * requests, index.html, trailing-slash redirects and optional listings. */
#ifndef PORTICO_SERVER_STATIC_H
#define PORTICO_SERVER_STATIC_H

#include <stddef.h>

#include "server/server.h"
#include "server/write.h"

/* Files of a text-like type between these sizes are also offered gzipped,
 * compressed once on the pool and kept with the open-file cache entry. */
#define STATIC_GZIP_MIN 1024
#define STATIC_GZIP_MAX (8 * 1024 * 1024)

struct static_config {
    int rootfd;          /* O_DIRECTORY fd of the served directory */
    int list;            /* HTML listing for directories without index.html */
    size_t max_target;   /* sizes the per-worker path buffers */
    size_t file_cache;   /* open files kept per worker, 0 = none */
    int writable;        /* PUT, DELETE, POST */
    int trace;           /* TRACE echoes the request */
    int multiple_choices; /* 300 when the request does not decide between variants */
    struct write_config write;
};

/* Writes the strong ETag of a file (quotes included) into out (at least
 * 64 bytes). Returns its length. */
struct stat;
size_t static_etag(char *out, const struct stat *st);

/* Opens `dir` and checks that the kernel can confine opens to it.
 * Returns 0 with *rootfd set, or -1 with a message in err. */
int static_check_root(const char *dir, int *rootfd, char *err, size_t errlen);

/* hs_handler callbacks; arg / wctx are a struct static_config and the
 * context static_worker_init returned. */
void *static_worker_init(int idx, void *arg);
void static_worker_free(void *wctx);
void static_on_request(hs_req_t *r, void *wctx);
/* The engine refused r's head (hs_handler.on_refused): upload requests
 * get their 413 from write_refused(). */
void static_on_refused(hs_req_t *r, void *wctx, int status);

#endif
