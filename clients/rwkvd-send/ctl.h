/* ctl.h — rwkvd-send's control-socket client (PROTOCOL.md §6): the two
 * requests the sender needs, `resume` (where to continue, and progress) and
 * `health` (the daemon's uptime, to notice a restart while sending).
 *
 * A REQ socket, one request at a time, every wait bounded by a timeout.
 * ZeroMQ's REQ socket refuses a second send until the reply arrives, so
 * after a timeout the socket is closed (linger 0) and a fresh one is made on
 * the next call: a late reply to the old request can never be taken for the
 * answer to a new one.  Requests carry an increasing integer `id` and the
 * reply's id is checked as well.
 *
 * Replies are untrusted bytes: bounded in size, pre-scanned by
 * rwkvd_mp_scan (core/mp_scan.h) before msgpack-c sees them, and every
 * field is type-checked.  Not thread safe; one client per thread.
 */
#ifndef RWKVD_SEND_CTL_H
#define RWKVD_SEND_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "daemon/wire/curve_client.h"

typedef struct ctl_client ctl_client;

/* What `resume` says about one document. */
typedef struct ctl_resume {
    bool known;        /* in memory or on disk */
    bool finished;     /* eof was processed */
    uint64_t next_seq; /* the seq the daemon expects next */
    uint64_t tokens;   /* tokens received (partial block included) */
    uint64_t blocks;   /* blocks completed and emitted */
} ctl_resume;

/* Outcome of one call. */
typedef enum ctl_status {
    CTL_OK = 0,
    CTL_TIMEOUT,  /* no reply within the timeout (socket recreated next time) */
    CTL_REFUSED,  /* the daemon answered ok: false (err holds reason: message) */
    CTL_BAD,      /* a reply we cannot use, or a ZeroMQ failure (err says which) */
} ctl_status;

/* A client for `endpoint` on the ZeroMQ context zctx (not owned).  Connects
 * lazily.  NULL with err set when memory runs out. */
ctl_client *ctl_open(void *zctx, const char *endpoint, const rwkvd_curve_client *curve,
                     rwkv_error *err);
/* Closes the socket; accepts NULL. */
void ctl_close(ctl_client *c);

/* `resume` for doc[0..doc_len).  timeout_ms < 0 waits forever. */
ctl_status ctl_resume_doc(ctl_client *c, const uint8_t *doc, size_t doc_len, int timeout_ms,
                          ctl_resume *out, rwkv_error *err);

/* `health`: *uptime_s is the daemon's uptime in seconds. */
ctl_status ctl_health(ctl_client *c, int timeout_ms, double *uptime_s, rwkv_error *err);

#endif
