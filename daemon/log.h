/* log.h — the daemon's one logging function (redis serverLog style).
 *
 * One line per event: "2026-11-23T12:00:00.123Z rwkvd[pid] LEVEL text".
 * Text from outside (document ids, error messages quoting input) is made
 * printable before it is written, so a hostile message cannot forge log
 * lines.  Under systemd (JOURNAL_STREAM set and logging to stderr) each line
 * carries a "<N>" syslog priority prefix instead of the timestamp, which the
 * journal understands.  rwkvd_log_reopen() reopens the log file (SIGHUP,
 * after logrotate).  Thread safe (one write per line).
 */
#ifndef RWKVD_LOG_H
#define RWKVD_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "daemon/config.h"

/* path NULL or "" = stderr.  Returns 0, or -1 with err (stderr is used). */
int rwkvd_log_open(const char *path, rwkvd_log_level level, rwkv_error *err);
int rwkvd_log_reopen(rwkv_error *err);
void rwkvd_log_set_level(rwkvd_log_level level);
void rwkvd_log_close(void);

void rwkvd_log(rwkvd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A document id made printable for logs: printable ASCII as is, other bytes
 * as \xNN, cut at about 80 characters.  out needs 96 bytes. */
void rwkvd_log_doc(const uint8_t *doc, size_t len, char out[96]);

#define LOG_ERROR(...) rwkvd_log(RWKVD_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) rwkvd_log(RWKVD_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) rwkvd_log(RWKVD_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) rwkvd_log(RWKVD_LOG_DEBUG, __VA_ARGS__)

#endif
