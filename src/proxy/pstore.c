/* pstore.c - cache storage: sharded index, LRU byte limit, disk files with
 * a CRC, atomic replacement and load-time checks. */
#include "proxy/pstore.h"
#include "core/fs.h"
#include "proxy/hop.h"
#include "proxy/limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DISK_MAGIC "PCACHE01"

/* The fixed part of an object file; key, vary, vkey, head and body follow
 * in that order. Host byte order: a cache directory belongs to one
 * machine. */
struct disk_hdr {
    char magic[8];
    uint32_t crc;          /* CRC-32 of every byte after this field */
    uint32_t status;
    int64_t req_time, resp_time;
    uint64_t gen;
    uint32_t key_len, vary_len, vkey_len, head_len;
    uint64_t body_len;
};

struct grave {
    struct grave *next;
    char name[PSTORE_NAME_LEN];
};

struct shard {
    pthread_mutex_t mu;
    pstore_obj_t *buckets[PROXY_STORE_BUCKETS];
    pstore_obj_t *lru_head, *lru_tail;   /* head: most recently used */
    uint64_t bytes, objects, evicted;
};

struct wjob {
    struct wjob *next;
    pstore_obj_t *o;
};

struct pstore {
    struct shard shards[PROXY_STORE_SHARDS];
    /* The writer thread (with a directory). */
    pthread_t writer;
    int writer_on, writer_stop;
    pthread_mutex_t wmu;
    pthread_cond_t wcond;
    struct wjob *whead, **wtail;
    uint64_t shard_limit;
    char *dir;
    int dirfd;
    atomic_uint_fast64_t gen;
    pthread_mutex_t grave_mu;
    struct grave *graves;
    uint64_t loaded, discarded;
};

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define HASH_INIT 0xcbf29ce484222325ull

static struct shard *shard_of(pstore_t *s, uint64_t h)
{
    return &s->shards[h % PROXY_STORE_SHARDS];
}

/* ------------------------------------------------------------ objects */

static char *dup_slice(slice_t s)
{
    char *c = malloc(s.len + 1);
    if (c != NULL) {
        if (s.len)
            memcpy(c, s.p, s.len);
        c[s.len] = '\0';
    }
    return c;
}

/* Body files open in the process (pstore_obj_body_fd): file descriptors
 * are a process-wide resource, so is their cap. */
static atomic_int body_files;

static void obj_free(pstore_obj_t *o)
{
    int bfd = atomic_load_explicit(&o->body_fd, memory_order_acquire);
    if (bfd > 0) {
        close(bfd - 1);
        atomic_fetch_sub_explicit(&body_files, 1, memory_order_relaxed);
    }
    free(o->key);
    free(o->vary);
    free(o->vkey);
    free(o->head);
    free(o->body);
    free(o->fields);
    free(o);
}

/* Splits head into fields ("Name: value\r\n" lines). */
static int parse_head(pstore_obj_t *o)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < o->head_len; i++)
        if (o->head[i] == '\r' && o->head[i + 1] == '\n')
            n++;
    o->fields = calloc(n + 1, sizeof *o->fields);
    if (o->fields == NULL)
        return -1;
    const char *p = o->head, *end = o->head + o->head_len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL && colon > p) {
            const char *v = colon + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            o->fields[o->nfields].name = slice_make(p, (size_t)(colon - p));
            o->fields[o->nfields].value = slice_make(v, (size_t)(ve - v));
            o->nfields++;
        }
        p = eol + 2;
    }
    return 0;
}

pstore_obj_t *pstore_obj_new(slice_t key, slice_t vary, slice_t vkey, int status, const char *head,
                           size_t head_len, int64_t req_time, int64_t resp_time)
{
    pstore_obj_t *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    atomic_init(&o->refs, 1);
    o->key = dup_slice(key);
    o->vary = dup_slice(vary);
    o->vkey = dup_slice(vkey);
    o->head = dup_slice(slice_make(head, head_len));
    if (!o->key || !o->vary || !o->vkey || !o->head) {
        obj_free(o);
        return NULL;
    }
    o->head_len = head_len;
    o->key_len = key.len;
    if (parse_head(o) < 0) {
        obj_free(o);
        return NULL;
    }
    o->status = status;
    o->req_time = req_time;
    o->resp_time = resp_time;
    o->fresh = http_cache_freshness(status, o->fields, o->nfields, 1, (time_t)resp_time, NULL);
    o->init_age = http_cache_initial_age(o->fields, o->nfields, (time_t)req_time, (time_t)resp_time);
    http_cc_from_fields(&o->cc, o->fields, o->nfields);
    o->hash = hash_bytes(HASH_INIT, key.p, key.len);
    return o;
}

int pstore_obj_append(pstore_obj_t *o, const char *p, size_t n, uint64_t max)
{
    if (n == 0)
        return 0;
    if (o->body_len + n > max)
        return -1;
    if (o->body_len + n > o->body_cap) {
        uint64_t cap = o->body_cap ? o->body_cap : n; /* a body in one piece: no slack */
        while (cap < o->body_len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *b = realloc(o->body, (size_t)cap);
        if (b == NULL)
            return -1;
        o->body = b;
        o->body_cap = cap;
    }
    memcpy(o->body + o->body_len, p, n);
    o->body_len += n;
    return 0;
}

void pstore_obj_ref(pstore_obj_t *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void pstore_obj_release(pstore_obj_t *o)
{
    if (o != NULL && atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
        obj_free(o);
}

static void index_drop(pstore_t *s, struct shard *sh, pstore_obj_t *o);

/* A memory file is a second copy of the body: it is counted against the
 * limit as the object's bytes, and made only when it fits in the shard's
 * share with o itself (older objects are evicted for it, as for a put).
 * Returns 0 when counted, -1 when it does not fit or o left the store. */
static int count_body_file(pstore_t *s, pstore_obj_t *o)
{
    struct shard *sh = shard_of(s, o->hash);
    int rc = -1;
    pthread_mutex_lock(&sh->mu);
    if (o->in_index && o->bytes + o->body_len <= s->shard_limit) {
        o->bytes += o->body_len;
        sh->bytes += o->body_len;
        while (sh->bytes > s->shard_limit && sh->lru_tail != NULL && sh->lru_tail != o) {
            index_drop(s, sh, sh->lru_tail);
            sh->evicted++;
        }
        rc = 0;
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* Undoes the budget and the count of a body file that was not kept. */
static void give_back_body_file(pstore_t *s, pstore_obj_t *o)
{
    atomic_fetch_sub_explicit(&body_files, 1, memory_order_relaxed);
    if (s == NULL)
        return;
    struct shard *sh = shard_of(s, o->hash);
    pthread_mutex_lock(&sh->mu);
    if (o->in_index) {
        o->bytes -= o->body_len;
        sh->bytes -= o->body_len;
    }
    pthread_mutex_unlock(&sh->mu);
}

int pstore_obj_body_fd(pstore_t *s, pstore_obj_t *o)
{
    int v = atomic_load_explicit(&o->body_fd, memory_order_acquire);
    if (v != 0)
        return v > 0 ? v - 1 : -1;
    /* The file budget first: a refusal then leaves nothing counted. */
    if (atomic_fetch_add_explicit(&body_files, 1, memory_order_relaxed) >= (int)PROXY_BODY_FILES_MAX) {
        atomic_fetch_sub_explicit(&body_files, 1, memory_order_relaxed);
        return -1; /* sent from memory instead; asked again later */
    }
    if (s != NULL && count_body_file(s, o) < 0) {
        atomic_fetch_sub_explicit(&body_files, 1, memory_order_relaxed);
        return -1; /* sent from memory; asked again at a later hit */
    }
    int fd = memfd_create("portico-proxy-body", MFD_CLOEXEC);
    if (fd >= 0 && fs_write_all(fd, o->body, (size_t)o->body_len) < 0) {
        close(fd);
        fd = -1;
    }
    int want = fd >= 0 ? fd + 1 : -1, expect = 0;
    if (!atomic_compare_exchange_strong_explicit(&o->body_fd, &expect, want, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        if (fd >= 0)
            close(fd); /* another thread was first: use its file */
        give_back_body_file(s, o); /* counted by the first one */
        return expect > 0 ? expect - 1 : -1;
    }
    if (fd < 0)
        give_back_body_file(s, o);
    return fd;
}

void pstore_file_name(const pstore_obj_t *o, char *out)
{
    uint64_t h = hash_bytes(HASH_INIT, o->key, strlen(o->key));
    h = hash_bytes(h, "\n", 1);
    h = hash_bytes(h, o->vkey, strlen(o->vkey));
    snprintf(out, PSTORE_NAME_LEN, "%016llx-%016llx.pce", (unsigned long long)h,
             (unsigned long long)o->gen);
}

/* ------------------------------------------------------------ index */

static void grave_add(pstore_t *s, const pstore_obj_t *o)
{
    if (s->dir == NULL || !o->on_disk)
        return;
    struct grave *g = malloc(sizeof *g);
    if (g == NULL)
        return; /* the file stays; at the next start it is a duplicate or loads again */
    pstore_file_name(o, g->name);
    pthread_mutex_lock(&s->grave_mu);
    g->next = s->graves;
    s->graves = g;
    pthread_mutex_unlock(&s->grave_mu);
}

static void lru_unlink(struct shard *sh, pstore_obj_t *o)
{
    if (o->lru_prev)
        o->lru_prev->lru_next = o->lru_next;
    else
        sh->lru_head = o->lru_next;
    if (o->lru_next)
        o->lru_next->lru_prev = o->lru_prev;
    else
        sh->lru_tail = o->lru_prev;
    o->lru_prev = o->lru_next = NULL;
}

static void lru_front(struct shard *sh, pstore_obj_t *o)
{
    o->lru_next = sh->lru_head;
    o->lru_prev = NULL;
    if (sh->lru_head)
        sh->lru_head->lru_prev = o;
    sh->lru_head = o;
    if (sh->lru_tail == NULL)
        sh->lru_tail = o;
}

/* Takes o out of its shard (lock held) and drops the store's reference. */
static void index_drop(pstore_t *s, struct shard *sh, pstore_obj_t *o)
{
    pstore_obj_t **pp = &sh->buckets[(o->hash / PROXY_STORE_SHARDS) % PROXY_STORE_BUCKETS];
    while (*pp != o)
        pp = &(*pp)->hnext;
    *pp = o->hnext;
    o->hnext = NULL;
    lru_unlink(sh, o);
    sh->bytes -= o->bytes;
    sh->objects--;
    o->in_index = 0;
    grave_add(s, o);
    pstore_obj_release(o);
}

/* What an object holds in memory: the struct, its strings, the parsed
 * field slices, and the body as allocated (its capacity, not its length). */
static uint64_t obj_bytes(const pstore_obj_t *o)
{
    return sizeof *o + strlen(o->key) + strlen(o->vary) + strlen(o->vkey) + o->head_len +
           o->nfields * sizeof(http_field_t) + o->body_cap + 4;
}

uint64_t pstore_max_body(const pstore_t *s)
{
    return s->shard_limit;
}

int pstore_obj_reserve(pstore_obj_t *o, uint64_t n)
{
    if (n <= o->body_cap || n > SIZE_MAX)
        return 0;
    char *b = realloc(o->body, (size_t)n);
    if (b == NULL)
        return -1;
    o->body = b;
    o->body_cap = n;
    return 0;
}

int pstore_put(pstore_t *s, pstore_obj_t *o)
{
    o->bytes = obj_bytes(o);
    if (o->bytes > s->shard_limit)
        return -1;
    struct shard *sh = shard_of(s, o->hash);
    pthread_mutex_lock(&sh->mu);
    pstore_obj_t **head = &sh->buckets[(o->hash / PROXY_STORE_SHARDS) % PROXY_STORE_BUCKETS];
    for (pstore_obj_t *x = *head; x != NULL; x = x->hnext) {
        if (x->hash == o->hash && strcmp(x->key, o->key) == 0 && strcmp(x->vkey, o->vkey) == 0) {
            index_drop(s, sh, x);
            break;
        }
    }
    while (sh->bytes + o->bytes > s->shard_limit && sh->lru_tail != NULL) {
        index_drop(s, sh, sh->lru_tail);
        sh->evicted++;
    }
    if (o->gen == 0)
        o->gen = atomic_fetch_add(&s->gen, 1);
    pstore_obj_ref(o);
    o->in_index = 1;
    o->hnext = *head;
    *head = o;
    lru_front(sh, o);
    sh->bytes += o->bytes;
    sh->objects++;
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

pstore_obj_t *pstore_lookup(pstore_t *s, slice_t key, const http_field_t *fields, size_t nfields)
{
    uint64_t h = hash_bytes(HASH_INIT, key.p, key.len);
    struct shard *sh = shard_of(s, h);
    char vk[PROXY_MAX_SECONDARY_KEY];
    pstore_obj_t *best = NULL;
    pthread_mutex_lock(&sh->mu);
    for (pstore_obj_t *x = sh->buckets[(h / PROXY_STORE_SHARDS) % PROXY_STORE_BUCKETS]; x; x = x->hnext) {
        if (x->hash != h || x->key_len != key.len || memcmp(x->key, key.p, key.len) != 0)
            continue;
        if (x->vary[0] != '\0') {
            int n = hop_vary_key(vk, sizeof vk, slice_cstr(x->vary), fields, nfields);
            if (n < 0 || strcmp(vk, x->vkey) != 0)
                continue;
        }
        if (best == NULL || x->resp_time > best->resp_time)
            best = x;
    }
    if (best != NULL) {
        lru_unlink(sh, best);
        lru_front(sh, best);
        pstore_obj_ref(best);
    }
    pthread_mutex_unlock(&sh->mu);
    return best;
}

int pstore_remove(pstore_t *s, slice_t key)
{
    uint64_t h = hash_bytes(HASH_INIT, key.p, key.len);
    struct shard *sh = shard_of(s, h);
    int n = 0;
    pthread_mutex_lock(&sh->mu);
    pstore_obj_t *x = sh->buckets[(h / PROXY_STORE_SHARDS) % PROXY_STORE_BUCKETS];
    while (x != NULL) {
        pstore_obj_t *next = x->hnext;
        if (x->hash == h && x->key_len == key.len && memcmp(x->key, key.p, key.len) == 0) {
            index_drop(s, sh, x);
            n++;
        }
        x = next;
    }
    pthread_mutex_unlock(&sh->mu);
    return n;
}

/* ------------------------------------------------------------ disk */

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t k = writev(fd, iov, n);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

int pstore_persist(pstore_t *s, pstore_obj_t *o)
{
    if (s->dir == NULL)
        return 0;
    struct disk_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, DISK_MAGIC, 8);
    h.status = (uint32_t)o->status;
    h.req_time = o->req_time;
    h.resp_time = o->resp_time;
    h.gen = o->gen;
    h.key_len = (uint32_t)strlen(o->key);
    h.vary_len = (uint32_t)strlen(o->vary);
    h.vkey_len = (uint32_t)strlen(o->vkey);
    h.head_len = (uint32_t)o->head_len;
    h.body_len = o->body_len;
    struct iovec iov[6] = {
        { &h, sizeof h },         { o->key, h.key_len },   { o->vary, h.vary_len },
        { o->vkey, h.vkey_len },  { o->head, h.head_len }, { o->body, (size_t)o->body_len },
    };
    const size_t skip = offsetof(struct disk_hdr, crc) + sizeof h.crc;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)&h + skip, (uInt)(sizeof h - skip));
    for (int i = 1; i < 6; i++)
        if (iov[i].iov_len)
            crc = crc32_z(crc, iov[i].iov_base, iov[i].iov_len);
    h.crc = (uint32_t)crc;

    char name[PSTORE_NAME_LEN], tmp[PSTORE_NAME_LEN + 8];
    pstore_file_name(o, name);
    snprintf(tmp, sizeof tmp, "%.33s.part", name);
    int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return -errno;
    int rc = write_all(fd, iov, 6);
    if (rc == 0 && fsync(fd) == -1)
        rc = -errno;
    close(fd);
    if (rc == 0 && renameat(s->dirfd, tmp, s->dirfd, name) == -1)
        rc = -errno;
    if (rc < 0) {
        unlinkat(s->dirfd, tmp, 0);
        return rc;
    }
    fsync(s->dirfd);
    struct shard *sh = shard_of(s, o->hash);
    pthread_mutex_lock(&sh->mu);
    o->on_disk = 1;
    if (!o->in_index)
        grave_add(s, o); /* it left the store while being written */
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

void pstore_sweep(pstore_t *s)
{
    pthread_mutex_lock(&s->grave_mu);
    struct grave *g = s->graves;
    s->graves = NULL;
    pthread_mutex_unlock(&s->grave_mu);
    while (g != NULL) {
        struct grave *next = g->next;
        unlinkat(s->dirfd, g->name, 0);
        free(g);
        g = next;
    }
}

/* Reads and checks one object file. Returns the object, or NULL when the
 * file is torn or corrupt. */
static pstore_obj_t *load_file(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1)
        return NULL;
    struct stat st;
    char *data = NULL;
    pstore_obj_t *o = NULL;
    const uint64_t most = sizeof(struct disk_hdr) + 3ull * PROXY_MAX_KEY + PROXY_MAX_SECONDARY_KEY +
                          PROXY_MAX_STORED_HEAD + PROXY_MAX_OBJECT;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(struct disk_hdr) ||
        (uint64_t)st.st_size > most)
        goto out;
    size_t size = (size_t)st.st_size;
    data = malloc(size);
    if (data == NULL)
        goto out;
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, data + got, size - got);
        if (k == -1 && errno == EINTR)
            continue;
        if (k <= 0)
            goto out;
        got += (size_t)k;
    }
    struct disk_hdr h;
    memcpy(&h, data, sizeof h);
    uint64_t want = sizeof h + (uint64_t)h.key_len + h.vary_len + h.vkey_len + h.head_len + h.body_len;
    if (memcmp(h.magic, DISK_MAGIC, 8) != 0 || want != size || h.key_len == 0 ||
        h.key_len > PROXY_MAX_KEY || h.vkey_len > PROXY_MAX_SECONDARY_KEY ||
        h.head_len > PROXY_MAX_STORED_HEAD || h.status < 100 || h.status > 999)
        goto out;
    const size_t skip = offsetof(struct disk_hdr, crc) + sizeof h.crc;
    uLong crc = crc32_z(crc32(0L, Z_NULL, 0), (const Bytef *)data + skip, size - skip);
    if ((uint32_t)crc != h.crc)
        goto out;
    const char *p = data + sizeof h;
    slice_t key = slice_make(p, h.key_len);
    slice_t vary = slice_make(p + h.key_len, h.vary_len);
    slice_t vkey = slice_make(vary.p + h.vary_len, h.vkey_len);
    const char *head = vkey.p + h.vkey_len;
    if (memchr(key.p, '\0', key.len) || memchr(vary.p ? vary.p : "", '\0', vary.len) ||
        memchr(vkey.p ? vkey.p : "", '\0', vkey.len))
        goto out;
    o = pstore_obj_new(key, vary, vkey, (int)h.status, head, h.head_len, h.req_time, h.resp_time);
    if (o == NULL)
        goto out;
    if (pstore_obj_append(o, head + h.head_len, (size_t)h.body_len, h.body_len) < 0) {
        pstore_obj_release(o);
        o = NULL;
        goto out;
    }
    o->gen = h.gen;
    o->on_disk = 1;
out:
    free(data);
    close(fd);
    return o;
}

/* An object with o's key and secondary key is in the store. */
static int index_has(pstore_t *s, const pstore_obj_t *o)
{
    struct shard *sh = shard_of(s, o->hash);
    int found = 0;
    pthread_mutex_lock(&sh->mu);
    for (pstore_obj_t *x = sh->buckets[(o->hash / PROXY_STORE_SHARDS) % PROXY_STORE_BUCKETS]; x; x = x->hnext)
        if (x->hash == o->hash && strcmp(x->key, o->key) == 0 && strcmp(x->vkey, o->vkey) == 0)
            found = 1;
    pthread_mutex_unlock(&sh->mu);
    return found;
}

static int newest_first(const void *a, const void *b)
{
    const pstore_obj_t *x = *(pstore_obj_t *const *)a, *y = *(pstore_obj_t *const *)b;
    return x->resp_time < y->resp_time ? 1 : x->resp_time > y->resp_time ? -1 : 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int load_dir(pstore_t *s, char *err, size_t errlen)
{
    int dfd = dup(s->dirfd);
    DIR *d = dfd == -1 ? NULL : fdopendir(dfd);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read the cache directory '%s': %s", s->dir, strerror(errno));
        if (dfd != -1)
            close(dfd);
        return -1;
    }
    pstore_obj_t **objs = NULL;
    size_t n = 0, cap = 0;
    uint64_t maxgen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (ends_with(e->d_name, ".part")) {
            unlinkat(s->dirfd, e->d_name, 0); /* a write the crash cut short */
            s->discarded++;
            continue;
        }
        if (!ends_with(e->d_name, ".pce"))
            continue;
        pstore_obj_t *o = load_file(s->dirfd, e->d_name);
        char want[PSTORE_NAME_LEN];
        if (o != NULL)
            pstore_file_name(o, want);
        if (o == NULL || strcmp(want, e->d_name) != 0) {
            pstore_obj_release(o);
            unlinkat(s->dirfd, e->d_name, 0);
            s->discarded++;
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            pstore_obj_t **no = realloc(objs, nc * sizeof *no);
            if (no == NULL) {
                pstore_obj_release(o);
                break;
            }
            objs = no;
            cap = nc;
        }
        objs[n++] = o;
        if (o->gen >= maxgen)
            maxgen = o->gen + 1;
    }
    closedir(d);
    if (maxgen > atomic_load(&s->gen))
        atomic_store(&s->gen, maxgen);
    if (n > 1)
        qsort(objs, n, sizeof *objs, newest_first);
    for (size_t i = 0; i < n; i++) {
        pstore_obj_t *o = objs[i];
        /* An older copy of the same variant, or one that no longer fits,
         * goes (pstore_put queues the file of what it replaces). */
        int dup = index_has(s, o);
        if (dup || pstore_put(s, o) < 0) {
            grave_add(s, o);
            s->discarded++;
        } else {
            s->loaded++;
        }
        pstore_obj_release(o);
    }
    free(objs);
    pstore_sweep(s);
    return 0;
}

/* ------------------------------------------------------------ writer */

static void *writer_main(void *arg)
{
    pstore_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->wmu);
        while (s->whead == NULL && !s->writer_stop)
            pthread_cond_wait(&s->wcond, &s->wmu);
        struct wjob *j = s->whead;
        if (j != NULL) {
            s->whead = j->next;
            if (s->whead == NULL)
                s->wtail = &s->whead;
        }
        pthread_mutex_unlock(&s->wmu);
        if (j == NULL)
            return NULL; /* stopping, and the queue is empty */
        if (j->o != NULL) {
            int rc = pstore_persist(s, j->o);
            if (rc < 0)
                fprintf(stderr, "portico proxy: cannot write a cache file: %s\n", strerror(-rc));
            pstore_obj_release(j->o);
        }
        pstore_sweep(s);
        free(j);
    }
}

void pstore_persist_async(pstore_t *s, pstore_obj_t *o)
{
    if (!s->writer_on)
        return;
    struct wjob *j = malloc(sizeof *j);
    if (j == NULL)
        return; /* the object stays in memory only */
    j->next = NULL;
    j->o = o;
    if (o != NULL)
        pstore_obj_ref(o);
    pthread_mutex_lock(&s->wmu);
    *s->wtail = j;
    s->wtail = &j->next;
    pthread_cond_signal(&s->wcond);
    pthread_mutex_unlock(&s->wmu);
}

/* ------------------------------------------------------------ lifecycle */

pstore_t *pstore_open(uint64_t mem_limit, const char *dir, char *err, size_t errlen)
{
    pstore_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < PROXY_STORE_SHARDS; i++)
        pthread_mutex_init(&s->shards[i].mu, NULL);
    pthread_mutex_init(&s->grave_mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcond, NULL);
    s->wtail = &s->whead;
    s->shard_limit = mem_limit / PROXY_STORE_SHARDS;
    s->dirfd = -1;
    atomic_init(&s->gen, 1);
    if (dir != NULL) {
        if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create the cache directory '%s': %s", dir, strerror(errno));
            goto fail;
        }
        s->dir = strdup(dir);
        s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir == NULL || s->dirfd == -1) {
            snprintf(err, errlen, "cannot open the cache directory '%s': %s", dir, strerror(errno));
            goto fail;
        }
        if (load_dir(s, err, errlen) < 0)
            goto fail;
        int rc = pthread_create(&s->writer, NULL, writer_main, s);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start the cache writer thread: %s", strerror(rc));
            goto fail;
        }
        s->writer_on = 1;
    }
    return s;
fail:
    pstore_close(s);
    return NULL;
}

void pstore_close(pstore_t *s)
{
    if (s == NULL)
        return;
    if (s->writer_on) {
        pthread_mutex_lock(&s->wmu);
        s->writer_stop = 1;
        pthread_cond_signal(&s->wcond);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->writer, NULL);
    }
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->wcond);
    for (unsigned i = 0; i < PROXY_STORE_SHARDS; i++) {
        struct shard *sh = &s->shards[i];
        while (sh->lru_head != NULL) {
            pstore_obj_t *o = sh->lru_head;
            o->on_disk = 0; /* closing is not evicting: the file stays */
            index_drop(s, sh, o);
        }
        pthread_mutex_destroy(&sh->mu);
    }
    pstore_sweep(s);
    pthread_mutex_destroy(&s->grave_mu);
    if (s->dirfd != -1)
        close(s->dirfd);
    free(s->dir);
    free(s);
}

int pstore_has_dir(const pstore_t *s)
{
    return s->dir != NULL;
}

const char *pstore_dir(const pstore_t *s)
{
    return s->dir;
}

void pstore_stats(pstore_t *s, struct pstore_stats *st)
{
    memset(st, 0, sizeof *st);
    for (unsigned i = 0; i < PROXY_STORE_SHARDS; i++) {
        struct shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->mu);
        st->objects += sh->objects;
        st->bytes += sh->bytes;
        st->evicted += sh->evicted;
        pthread_mutex_unlock(&sh->mu);
    }
    st->loaded = s->loaded;
    st->discarded = s->discarded;
}
