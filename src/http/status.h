/* status.h - reason phrases of the status codes portico sends. */
#ifndef PORTICO_HTTP_STATUS_H
#define PORTICO_HTTP_STATUS_H

/* The reason phrase of `status`, or "Unknown" when it has none here. */
const char *http_reason(int status);

#endif
