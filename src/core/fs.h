/* fs.h - opening files below a directory that the kernel confines. */
#ifndef PORTICO_CORE_FS_H
#define PORTICO_CORE_FS_H

/* openat2(dirfd, rel) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: no "..",
 * absolute path or symlink can lead outside dirfd. O_CLOEXEC is always
 * added, O_NOCTTY unless flags has O_PATH. Returns the fd or -errno
 * (-EXDEV for a path that would leave dirfd). */
int fs_open_beneath(int dirfd, const char *rel, int flags);

#endif
