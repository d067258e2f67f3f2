/* log.h - leveled logging to stderr or a file, safe from any thread.
 *
 * Each message is formatted into one line and written with a single
 * write(2), so lines from several threads never interleave. log_reopen()
 * (called on SIGHUP) reopens the file, for log rotation. */
#ifndef PORTICO_CORE_LOG_H
#define PORTICO_CORE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Parses "error", "warn", "info" or "debug"; returns -1 when unknown. */
int log_level_parse(const char *s);

/* Sets where lines go: NULL or "-" is stderr. Returns 0, or -errno when the
 * file cannot be opened (the previous destination stays). */
int log_open(const char *path, enum log_level level);

/* Reopens the current file (no-op on stderr). Returns 0 or -errno. */
int log_reopen(void);

void log_close(void);

enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  do { if (log_get_level() >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
