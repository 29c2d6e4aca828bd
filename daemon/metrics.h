/* metrics.h — the daemon's figures in the Prometheus text exposition format
 * (version 0.0.4), rendered from the same struct the `status` control reply
 * is encoded from (msg_encode.h), so /metrics and `status` always agree.
 *
 * Names: rwkvd_tokens_total, rwkvd_blocks_total, rwkvd_messages_total,
 * rwkvd_docs_active, rwkvd_docs_on_disk, rwkvd_docs_max_active,
 * rwkvd_docs_finished_total, rwkvd_held_messages, rwkvd_queue_messages{queue},
 * rwkvd_tokens_per_second, rwkvd_checkpoint_seconds (summary: _sum, _count),
 * rwkvd_checkpoint_failures_total, rwkvd_rejected_total{reason} (every
 * reason of reason.h, zeros included, so rate() works from the start),
 * rwkvd_auth_refused_total{role} (CURVE handshakes refused, role producer,
 * consumer or operator; zeros without CURVE), rwkvd_uptime_seconds,
 * rwkvd_build_info{version,model_sha256,generation,device,tokenizer}.
 */
#ifndef RWKVD_METRICS_H
#define RWKVD_METRICS_H

#include "core/msg_encode.h"

/* The whole /metrics body, NUL-terminated (malloc'ed; the caller frees);
 * NULL only when out of memory.  Label values are escaped as the format
 * requires.  Thread safe. */
char *rwkvd_metrics_render(const rwkvd_status_info *s);

#endif
