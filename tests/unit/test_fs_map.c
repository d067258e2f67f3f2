/* test_fs_map.c - what `portico serve` relies on when it sends small files
 * from their read-only mapping (hs_resp_file_mapped): the process never
 * touches the mapped bytes, the kernel copies them, so a file cut short
 * under the mapping makes the send fail with EFAULT (or send less) instead
 * of killing the process with SIGBUS, and a file changed in place shows its
 * new bytes through the same mapping. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define SIZE (3 * 4096)

static int make_file(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/portico-map-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char data[SIZE];
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, data, SIZE), SIZE);
    return fd;
}

static void test_truncated_mapping_gives_efault_not_sigbus(void **state)
{
    (void)state;
    char path[64];
    int fd = make_file(path, sizeof path);
    const char *map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    /* Whole: the bytes arrive as the file has them. */
    assert_int_equal(send(sv[0], map, SIZE, MSG_NOSIGNAL), SIZE);
    char got[SIZE];
    assert_int_equal(recv(sv[1], got, SIZE, MSG_WAITALL), SIZE);
    assert_memory_equal(got, "abcdefghij", 10);
    /* Cut to one page: what lies past it is gone. */
    assert_int_equal(ftruncate(fd, 4096), 0);
    ssize_t k = send(sv[0], map + 4096, SIZE - 4096, MSG_NOSIGNAL);
    assert_int_equal(k, -1);
    assert_int_equal(errno, EFAULT);
    /* A send that starts inside the file stops at its end or fails. */
    k = send(sv[0], map, SIZE, MSG_NOSIGNAL);
    assert_true(k == -1 ? errno == EFAULT : k <= 4096);
    munmap((void *)map, SIZE);
    close(sv[0]);
    close(sv[1]);
    close(fd);
    unlink(path);
}

static void test_mapping_sees_in_place_changes(void **state)
{
    (void)state;
    char path[64];
    int fd = make_file(path, sizeof path);
    const char *map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(pwrite(fd, "XYZ", 3, 0), 3);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(send(sv[0], map, 5, MSG_NOSIGNAL), 5);
    char got[5];
    assert_int_equal(recv(sv[1], got, 5, MSG_WAITALL), 5);
    assert_memory_equal(got, "XYZde", 5);
    munmap((void *)map, SIZE);
    close(sv[0]);
    close(sv[1]);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_mapping_gives_efault_not_sigbus),
        cmocka_unit_test(test_mapping_sees_in_place_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
