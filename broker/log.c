#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static bool log_syslog;
static enum log_level log_max = LOG_LVL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(bool use_syslog, enum log_level max_level)
{
	log_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog("wstrustd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl > log_max)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One event, one line: neutralise anything a peer could use to forge
	 * or hide log lines. */
	for (unsigned char *p = (unsigned char *)line; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';

	if (log_syslog) {
		syslog(syslog_prio[lvl], "%s: %s", level_names[lvl], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ wstrustd %s: %s\n",
	        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	        ts.tv_nsec / 1000000, level_names[lvl], line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
