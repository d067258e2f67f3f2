/* limits.h - caps and defaults of the origin-server handlers (src/server)
 * that are not HTTP-engine limits (those are in http/limits.h). Each is
 * also an option of `portico serve`. */
#ifndef PORTICO_SERVER_LIMITS_H
#define PORTICO_SERVER_LIMITS_H

/* Resumable uploads: unfinished upload resources kept at once (a new
 * upload past it is taken as a plain, non-resumable one). */
#define UPLOADS_DEFAULT_MAX            64u
#define UPLOADS_CEIL_MAX               4096u
/* Seconds an upload resource lives without a request to it (abandoned
 * uploads are dropped, their data freed); also how long a completed one
 * still answers HEAD. */
#define UPLOADS_DEFAULT_EXPIRY_S       3600u

#endif
