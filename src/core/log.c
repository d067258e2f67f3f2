#include "core/log.h"
#include "core/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_fd = STDERR_FILENO;
static _Atomic int log_level = LOG_WARN;
static char *log_path; /* NULL: stderr */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd == -1 ? -errno : fd;
}

int log_open(const char *path, enum log_level level)
{
    int fd = STDERR_FILENO;
    char *copy = NULL;

    if (path != NULL && strcmp(path, "-") != 0) {
        fd = open_file(path);
        if (fd < 0)
            return fd;
        copy = strdup(path);
        if (copy == NULL) {
            close(fd);
            return -ENOMEM;
        }
    }
    pthread_mutex_lock(&log_lock);
    int old = atomic_exchange(&log_fd, fd);
    free(log_path);
    log_path = copy;
    atomic_store(&log_level, (int)level);
    pthread_mutex_unlock(&log_lock);
    if (old != STDERR_FILENO)
        close(old);
    return 0;
}

int log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&log_lock);
    if (log_path != NULL) {
        int fd = open_file(log_path);
        if (fd < 0) {
            rc = fd;
        } else {
            /* The new file takes the old number: a writer that loaded it
             * just before writes to one file or the other, never to an fd
             * closed and reused by a socket. */
            int old = atomic_load(&log_fd);
            if (dup3(fd, old, O_CLOEXEC) == -1)
                rc = -errno;
            close(fd);
        }
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

void log_close(void)
{
    pthread_mutex_lock(&log_lock);
    int old = atomic_exchange(&log_fd, STDERR_FILENO);
    free(log_path);
    log_path = NULL;
    pthread_mutex_unlock(&log_lock);
    if (old != STDERR_FILENO)
        close(old);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;

    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';

    int fd = atomic_load_explicit(&log_fd, memory_order_acquire);
    ssize_t w = write(fd, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
