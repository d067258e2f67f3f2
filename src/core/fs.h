/* fs.h - opening files below a directory that the kernel confines. */
#ifndef PORTICO_CORE_FS_H
#define PORTICO_CORE_FS_H

#include <stddef.h>
#include <sys/types.h>

/* openat2(dirfd, rel) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: no "..",
 * absolute path or symlink can lead outside dirfd. O_CLOEXEC is always
 * added, O_NOCTTY unless flags has O_PATH. Returns the fd or -errno
 * (-EXDEV for a path that would leave dirfd). */
int fs_open_beneath(int dirfd, const char *rel, int flags);

/* Writes all n bytes (retrying short writes and EINTR). A non-blocking fd
 * that is full (a stdout inherited with O_NONBLOCK) is waited for with
 * fs_wait_writable(). Returns 0 or -errno. */
int fs_write_all(int fd, const void *p, size_t n);

/* Blocks until fd can take bytes (poll for POLLOUT), for a writer that met
 * EAGAIN on an fd it does not own the flags of. Returns 0 or -errno
 * (-EPIPE when the reader is gone). */
int fs_wait_writable(int fd);

/* Reads exactly n bytes at off. Returns 0, -EIO at end of file, or -errno. */
int fs_pread_all(int fd, void *p, size_t n, off_t off);

#endif
