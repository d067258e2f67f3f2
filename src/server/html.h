/* html.h - the little HTML that generated pages (listings, variant lists)
 * need. */
#ifndef PORTICO_SERVER_HTML_H
#define PORTICO_SERVER_HTML_H

#include "core/buf.h"

/* Appends s with & < > " ' escaped. Returns 0 or buf_append's error. */
int html_escape(buf_t *b, const char *s);

#endif
