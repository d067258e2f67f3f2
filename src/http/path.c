#include "http/path.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

long http_path_normalize(slice_t enc, char *out, size_t outcap)
{
    if (enc.len == 0 || enc.p[0] != '/' || outcap < 2)
        return -1;
    /* out holds "/seg1/seg2" (empty for the root) while segments are read;
     * each segment is decoded in place after its '/' and then kept,
     * dropped (".", empty) or used to pop the one before (".."). */
    size_t o = 0, i = 1;
    int trailing = 0;
    for (;;) {
        size_t seg = o + 1;
        if (seg >= outcap)
            return -1;
        out[o] = '/';
        size_t w = seg;
        while (i < enc.len && enc.p[i] != '/') {
            char c = enc.p[i];
            if (c == '%') {
                int h = i + 2 < enc.len ? hexval(enc.p[i + 1]) : -1;
                int l = h >= 0 ? hexval(enc.p[i + 2]) : -1;
                if (h < 0 || l < 0)
                    return -1;
                c = (char)(h * 16 + l);
                if (c == '\0' || c == '/')
                    return -1;
                i += 3;
            } else {
                i++;
            }
            if (w + 1 >= outcap)
                return -1;
            out[w++] = c;
        }
        size_t slen = w - seg;
        if (slen == 0 || (slen == 1 && out[seg] == '.')) {
            trailing = 1;
        } else if (slen == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (o == 0)
                return -1; /* above the root */
            do
                o--;
            while (o > 0 && out[o] != '/');
            /* o is at the '/' that began the popped segment */
            trailing = 1;
        } else {
            o = w;
            trailing = 0;
        }
        if (i >= enc.len)
            break;
        i++; /* the '/' */
    }
    if (o == 0 || trailing) {
        if (o + 2 > outcap)
            return -1;
        out[o++] = '/';
    }
    out[o] = '\0';
    return (long)o;
}

long http_path_encode(slice_t raw, char *out, size_t outcap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (outcap == 0)
        return -1;
    for (size_t i = 0; i < raw.len; i++) {
        unsigned char c = (unsigned char)raw.p[i];
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   strchr("-._~/!$()*+,;=:@", c) != NULL;
        if (c == 0)
            keep = 0;
        if (keep) {
            if (o + 1 >= outcap)
                return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outcap)
                return -1;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return (long)o;
}
