/* log.c — see log.h. */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    pthread_mutex_t mu;
    int fd;                  /* 2 = stderr */
    char path[RWKVD_CFG_PATH_MAX];
    rwkvd_log_level level;
    int journal;             /* stderr is connected to the systemd journal */
} g = {PTHREAD_MUTEX_INITIALIZER, 2, "", RWKVD_LOG_INFO, 0};

static int open_path(const char *path, rwkv_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return rwkv_fail(err, "log file %s: %s", path, strerror(errno));
    return fd;
}

int rwkvd_log_open(const char *path, rwkvd_log_level level, rwkv_error *err)
{
    pthread_mutex_lock(&g.mu);
    g.level = level;
    g.journal = getenv("JOURNAL_STREAM") != NULL;
    int rc = 0;
    if (path && *path) {
        int fd = open_path(path, err);
        if (fd >= 0) {
            if (g.fd != 2)
                close(g.fd);
            g.fd = fd;
            snprintf(g.path, sizeof g.path, "%s", path);
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}

int rwkvd_log_reopen(rwkv_error *err)
{
    pthread_mutex_lock(&g.mu);
    int rc = 0;
    if (g.path[0]) {
        int fd = open_path(g.path, err);
        if (fd >= 0) {
            close(g.fd);
            g.fd = fd;
        } else {
            rc = -1; /* keep writing to the old descriptor */
        }
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}

void rwkvd_log_set_level(rwkvd_log_level level)
{
    pthread_mutex_lock(&g.mu);
    g.level = level;
    pthread_mutex_unlock(&g.mu);
}

void rwkvd_log_close(void)
{
    pthread_mutex_lock(&g.mu);
    if (g.fd != 2)
        close(g.fd);
    g.fd = 2;
    g.path[0] = 0;
    pthread_mutex_unlock(&g.mu);
}

void rwkvd_log(rwkvd_log_level level, const char *fmt, ...)
{
    if (level > g.level)
        return;
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    static const int prio[] = {3, 4, 6, 7};
    char text[1024], line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    int n;
    pthread_mutex_lock(&g.mu);
    if (g.journal && g.fd == 2) {
        n = snprintf(line, sizeof line, "<%d>%s %s\n", prio[level], names[level], text);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof line, "%s.%03ldZ rwkvd[%d] %s %s\n", when,
                     ts.tv_nsec / 1000000, (int)getpid(), names[level], text);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1, line[n - 1] = '\n';
    ssize_t w = write(g.fd, line, (size_t)n);
    (void)w; /* nowhere left to report a failing log */
    pthread_mutex_unlock(&g.mu);
}

void rwkvd_log_doc(const uint8_t *doc, size_t len, char out[96])
{
    size_t o = 0, i = 0;
    for (; i < len && o < 80; i++) {
        if (doc[i] >= 0x20 && doc[i] < 0x7f && doc[i] != '\\')
            out[o++] = (char)doc[i];
        else
            o += (size_t)snprintf(out + o, 96 - o, "\\x%02x", doc[i]);
    }
    if (i < len)
        o += (size_t)snprintf(out + o, 96 - o, "...");
    out[o] = '\0';
}
