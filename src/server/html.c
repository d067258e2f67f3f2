#include "server/html.h"

int html_escape(buf_t *b, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++) {
        switch (*s) {
        case '&': rc = buf_append(b, "&amp;", 5); break;
        case '<': rc = buf_append(b, "&lt;", 4); break;
        case '>': rc = buf_append(b, "&gt;", 4); break;
        case '"': rc = buf_append(b, "&quot;", 6); break;
        case '\'': rc = buf_append(b, "&#39;", 5); break;
        default: rc = buf_append(b, s, 1); break;
        }
    }
    return rc;
}
