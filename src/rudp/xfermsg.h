/* xfermsg.h - the file-transfer messages carried on an rudp stream.
 *
 * Sender -> receiver, per file:
 *   "PXF1" | name length (u16) | name | size (u64) | flags (u8: 1 = resume)
 *   then the bytes from the receiver's offset to the end, then SHA-256 (32).
 * Receiver -> sender: two replies per file, each
 *   status (u8) | offset (u64)
 * the first after the header (status 0 and where to start, or a refusal),
 * the second after the digest (0 = stored under its name, else why not).
 * Integers are big-endian. Pure codec: no I/O. */
#ifndef PORTICO_RUDP_XFERMSG_H
#define PORTICO_RUDP_XFERMSG_H

#include <stddef.h>
#include <stdint.h>

#define XFER_MAGIC        "PXF1"
#define XFER_NAME_MAX     255u
#define XFER_HDR_MAX      (4u + 2u + XFER_NAME_MAX + 8u + 1u)
#define XFER_REPLY_LEN    9u
#define XFER_DIGEST_LEN   32u
#define XFER_F_RESUME     0x01u

enum xfer_status {
    XFER_OK = 0,
    XFER_BAD_NAME = 1,     /* the name would leave DIR, or is not a plain name */
    XFER_BAD_DIGEST = 2,   /* the bytes received do not match the digest */
    XFER_IO_ERROR = 3,     /* the receiver could not write the file */
    XFER_BAD_HEADER = 4,
};

typedef struct xfer_hdr {
    char name[XFER_NAME_MAX + 1];
    uint64_t size;
    uint8_t flags;
} xfer_hdr_t;

/* Encodes h; returns the length (<= XFER_HDR_MAX) or 0 for a bad name. */
size_t xfer_hdr_encode(const xfer_hdr_t *h, uint8_t *out);

/* Decodes a header from the first len bytes. Returns the bytes it took,
 * 0 when more are needed, or -1 for a malformed header (bad magic, name
 * not acceptable per xfer_name_ok). */
int xfer_hdr_decode(const uint8_t *buf, size_t len, xfer_hdr_t *h);

/* A plain file name: 1..255 bytes, no '/', no NUL, no control bytes, not
 * "." or "..", not ending in ".part" (the temporary files' suffix). */
int xfer_name_ok(const char *name, size_t len);

void xfer_reply_encode(uint8_t status, uint64_t offset, uint8_t out[XFER_REPLY_LEN]);
void xfer_reply_decode(const uint8_t in[XFER_REPLY_LEN], uint8_t *status, uint64_t *offset);

const char *xfer_status_str(int status);

#endif
