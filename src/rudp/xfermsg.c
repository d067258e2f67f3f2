/* xfermsg.c - encode/decode of the file-transfer messages. */
#include "rudp/xfermsg.h"

#include <string.h>

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int xfer_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > XFER_NAME_MAX)
        return 0;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '/' || ch < 0x20 || ch == 0x7f)
            return 0;
    }
    if (len >= 5 && memcmp(name + len - 5, ".part", 5) == 0)
        return 0;
    return 1;
}

size_t xfer_hdr_encode(const xfer_hdr_t *h, uint8_t *out)
{
    size_t n = strlen(h->name);
    if (!xfer_name_ok(h->name, n))
        return 0;
    memcpy(out, XFER_MAGIC, 4);
    out[4] = (uint8_t)(n >> 8);
    out[5] = (uint8_t)n;
    memcpy(out + 6, h->name, n);
    put64(out + 6 + n, h->size);
    out[14 + n] = h->flags;
    return 15 + n;
}

int xfer_hdr_decode(const uint8_t *buf, size_t len, xfer_hdr_t *h)
{
    if (len < 6)
        return memcmp(buf, XFER_MAGIC, len) == 0 ? 0 : -1;
    if (memcmp(buf, XFER_MAGIC, 4) != 0)
        return -1;
    size_t n = (size_t)buf[4] << 8 | buf[5];
    if (n == 0 || n > XFER_NAME_MAX)
        return -1;
    if (len < 15 + n)
        return 0;
    if (!xfer_name_ok((const char *)buf + 6, n))
        return -1;
    memcpy(h->name, buf + 6, n);
    h->name[n] = '\0';
    h->size = get64(buf + 6 + n);
    h->flags = buf[14 + n];
    return (int)(15 + n);
}

void xfer_reply_encode(uint8_t status, uint64_t offset, uint8_t out[XFER_REPLY_LEN])
{
    out[0] = status;
    put64(out + 1, offset);
}

void xfer_reply_decode(const uint8_t in[XFER_REPLY_LEN], uint8_t *status, uint64_t *offset)
{
    *status = in[0];
    *offset = get64(in + 1);
}

const char *xfer_status_str(int status)
{
    switch (status) {
    case XFER_OK: return "ok";
    case XFER_BAD_NAME: return "refused: not a plain file name";
    case XFER_BAD_DIGEST: return "digest mismatch: the receiver discarded the file";
    case XFER_IO_ERROR: return "the receiver could not write the file";
    case XFER_BAD_HEADER: return "malformed header";
    default: return "unknown status";
    }
}
