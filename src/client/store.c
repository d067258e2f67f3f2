/* store.c - cache entries on disk, written atomically, checked on read. */
#include "client/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"

#define STORE_MAGIC "PCACHE01"
#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME  UINT64_C(1099511628211)

struct hdr {
    char magic[8];
    uint64_t key_len, vary_len, head_len, body_len;
    int64_t request_time, response_time;
    uint64_t sum;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static void entry_path(char *out, size_t size, const char *dir, slice_t key)
{
    snprintf(out, size, "%s/%016llx", dir, (unsigned long long)fnv(FNV_OFFSET, key.p, key.len));
}

void store_entry_dispose(store_entry_t *e)
{
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    free(e->meta);
    e->meta = NULL;
}

void store_remove(const char *dir, slice_t key)
{
    char path[STORE_PATH_MAX];
    entry_path(path, sizeof path, dir, key);
    unlink(path);
}

int store_lookup(const char *dir, slice_t key, store_entry_t *e, const char **why)
{
    char path[STORE_PATH_MAX];
    struct hdr h;
    struct stat st;
    memset(e, 0, sizeof *e);
    e->fd = -1;
    *why = "";
    entry_path(path, sizeof path, dir, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return 0;
    e->fd = fd;
    if (fstat(fd, &st) != 0 || fs_pread_all(fd, &h, sizeof h, 0) != 0 ||
        memcmp(h.magic, STORE_MAGIC, 8) != 0) {
        *why = "bad entry header";
        goto corrupt;
    }
    uint64_t meta = h.key_len + h.vary_len + h.head_len;
    if (h.key_len > STORE_META_MAX || h.vary_len > STORE_META_MAX ||
        h.head_len > STORE_META_MAX || meta > STORE_META_MAX ||
        (uint64_t)st.st_size != sizeof h + meta + h.body_len) {
        *why = "entry size does not match its header (torn write)";
        goto corrupt;
    }
    e->meta = malloc(meta + 1);
    if (e->meta == NULL || fs_pread_all(fd, e->meta, meta, sizeof h) != 0) {
        *why = "cannot read the entry";
        goto corrupt;
    }
    e->key = slice_make(e->meta, h.key_len);
    if (!slice_eq(e->key, key)) {
        store_entry_dispose(e);
        return 0; /* another URL with the same hash: a miss */
    }
    uint64_t sum = fnv(FNV_OFFSET, e->meta, meta);
    char buf[65536];
    off_t off = (off_t)(sizeof h + meta);
    uint64_t left = h.body_len;
    while (left > 0) {
        size_t n = left > sizeof buf ? sizeof buf : (size_t)left;
        if (fs_pread_all(fd, buf, n, off) != 0) {
            *why = "cannot read the entry";
            goto corrupt;
        }
        sum = fnv(sum, buf, n);
        off += (off_t)n;
        left -= n;
    }
    if (sum != h.sum) {
        *why = "entry checksum mismatch";
        goto corrupt;
    }
    e->vary = slice_make(e->meta + h.key_len, h.vary_len);
    e->head = slice_make(e->meta + h.key_len + h.vary_len, h.head_len);
    e->body_off = sizeof h + meta;
    e->body_len = h.body_len;
    e->request_time = (time_t)h.request_time;
    e->response_time = (time_t)h.response_time;
    return 1;
corrupt:
    store_entry_dispose(e);
    unlink(path);
    return -1;
}

int store_begin(store_writer_t *w, const char *dir, slice_t key, slice_t vary, slice_t head,
                time_t request_time, time_t response_time)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (key.len + vary.len + head.len > STORE_META_MAX)
        return -EFBIG;
    entry_path(w->final, sizeof w->final, dir, key);
    snprintf(w->tmp, sizeof w->tmp, "%s/.tmp-XXXXXX", dir);
    int fd = mkostemp(w->tmp, O_CLOEXEC);
    if (fd == -1)
        return -errno;
    w->fd = fd;
    w->request_time = request_time;
    w->response_time = response_time;
    struct hdr h = { 0 };
    int rc = fs_write_all(fd, &h, sizeof h); /* the real one comes last */
    slice_t parts[3] = { key, vary, head };
    w->sum = FNV_OFFSET;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = fs_write_all(fd, parts[i].p, parts[i].len);
        w->sum = fnv(w->sum, parts[i].p, parts[i].len);
        w->meta_len[i] = parts[i].len;
    }
    if (rc != 0)
        store_abort(w);
    return rc;
}

int store_write(store_writer_t *w, const void *p, size_t n)
{
    int rc = fs_write_all(w->fd, p, n);
    if (rc == 0) {
        w->sum = fnv(w->sum, p, n);
        w->body_len += n;
    }
    return rc;
}

int store_copy_body(store_writer_t *w, const store_entry_t *e)
{
    char buf[65536];
    uint64_t left = e->body_len;
    off_t off = (off_t)e->body_off;
    while (left > 0) {
        size_t n = left > sizeof buf ? sizeof buf : (size_t)left;
        if (fs_pread_all(e->fd, buf, n, off) != 0)
            return -EIO;
        int rc = store_write(w, buf, n);
        if (rc != 0)
            return rc;
        off += (off_t)n;
        left -= n;
    }
    return 0;
}

int store_commit(store_writer_t *w)
{
    struct hdr h = { 0 };
    memcpy(h.magic, STORE_MAGIC, 8);
    h.key_len = w->meta_len[0];
    h.vary_len = w->meta_len[1];
    h.head_len = w->meta_len[2];
    h.body_len = w->body_len;
    h.request_time = (int64_t)w->request_time;
    h.response_time = (int64_t)w->response_time;
    h.sum = w->sum;
    int rc = 0;
    if (pwrite(w->fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        rc = -EIO;
    else if (fsync(w->fd) != 0)
        rc = -errno;
    else if (rename(w->tmp, w->final) != 0)
        rc = -errno;
    if (rc != 0) {
        store_abort(w);
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    return 0;
}

void store_abort(store_writer_t *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp);
    }
    w->fd = -1;
}
