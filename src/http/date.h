/* date.h - HTTP-date (RFC 9110 §5.6.7): formatting and parsing. */
#ifndef PORTICO_HTTP_DATE_H
#define PORTICO_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

#include "core/slice.h"

#define HTTP_DATE_LEN 29   /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Writes the IMF-fixdate of t into out (HTTP_DATE_LEN + 1 bytes, NUL
 * terminated). Returns HTTP_DATE_LEN. */
size_t http_date_format(char *out, time_t t);

/* Parses IMF-fixdate, the obsolete RFC 850 form and asctime form.
 * Returns 0 with *t set, or -1 when s is none of them. */
int http_date_parse(slice_t s, time_t *t);

#endif
