/* log: the daemon's messages. To stderr in the foreground, to a file in the
 * store directory when daemonised. Never pass a password or an AUTHENTICATE
 * line to these functions. */
#ifndef MAILFS_LOG_H
#define MAILFS_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Messages above `level` are dropped. `path` NULL means stderr; otherwise the
 * file is opened for appending (0600). Returns 0 or -errno. */
int log_open(const char *path, enum log_level level);
void log_close(void);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
