#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

int fs_open_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how = {
        /* openat2 refuses O_NOCTTY together with O_PATH */
        .flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

int fs_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = fs_wait_writable(fd);
            if (rc < 0)
                return rc;
            continue;
        }
        if (w == -1)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int fs_wait_writable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -errno;
        if (p.revents & POLLOUT)
            return 0;
        if (p.revents & (POLLERR | POLLHUP))
            return -EPIPE;
        if (p.revents & POLLNVAL)
            return -EBADF;
    }
}

int fs_pread_all(int fd, void *p, size_t n, off_t off)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = pread(fd, c, n, off);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            return -errno;
        if (r == 0)
            return -EIO;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}
