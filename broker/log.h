/* log: one line per event, to stderr (foreground) or syslog (daemon).
 *
 * Messages are formatted into a bounded buffer and control characters are
 * replaced, so a client-supplied string (a profile name, a URL) cannot forge
 * a log line.  Never pass a secret to these functions. */
#ifndef WSTRUST_BROKER_LOG_H
#define WSTRUST_BROKER_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* use_syslog: send lines to syslog(3) instead of stderr. */
void log_init(bool use_syslog, enum log_level max_level);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
