#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
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
