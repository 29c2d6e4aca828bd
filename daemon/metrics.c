/* metrics.c — Prometheus text rendering of rwkvd_status_info (see metrics.h). */
#include "daemon/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "core/sha256.h"

typedef struct out {
    char *p;
    size_t n, cap;
    int oom;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    while (!o->oom) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            o->oom = 1;
            return;
        }
        if ((size_t)k < o->cap - o->n) {
            o->n += (size_t)k;
            return;
        }
        size_t cap = (o->cap + (size_t)k + 1) * 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->oom = 1;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

/* A label value: \ " and newline escaped, control bytes dropped. */
static void label(out *o, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            put(o, "\\%c", *v);
        else if (*v == '\n')
            put(o, "\\n");
        else if ((unsigned char)*v >= 0x20)
            put(o, "%c", *v);
    }
}

static void head(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(out *o, const char *name, const char *type, const char *help, double v)
{
    head(o, name, type, help);
    put(o, "%s %.17g\n", name, v);
}

/* Cluster mode (PROTOCOL.md §12): the worker's partitions and leases. */
static void cluster_metrics(out *o, const struct rwkvd_cluster_status *c)
{
    one(o, "rwkvd_cluster_partitions", "gauge", "Partitions of the cluster.", c->partitions);
    one(o, "rwkvd_cluster_partitions_owned", "gauge", "Partitions this worker holds a lease on.",
        c->owned);
    one(o, "rwkvd_cluster_workers", "gauge", "Live workers seen at the last rebalance.",
        c->workers);
    one(o, "rwkvd_cluster_leases_acquired_total", "counter", "Partition leases acquired.",
        (double)c->leases_acquired);
    one(o, "rwkvd_cluster_leases_lost_total", "counter",
        "Partition leases lost (ran out or taken): their documents were forgotten unsaved.",
        (double)c->leases_lost);
    one(o, "rwkvd_cluster_leases_released_total", "counter",
        "Partition leases handed over cleanly (rebalance, stop).", (double)c->leases_released);
    one(o, "rwkvd_cluster_lease_renewals_total", "counter", "Successful lease renewals.",
        (double)c->lease_renewals);
    one(o, "rwkvd_cluster_unacked_messages", "gauge",
        "Ingest messages held until a checkpoint covers them.", (double)c->unacked);
    one(o, "rwkvd_cluster_outputs_published_total", "counter",
        "Outputs published to the output stream.", (double)c->published);
    one(o, "rwkvd_cluster_messages_acked_total", "counter", "Ingest messages acked.",
        (double)c->acked);
    head(o, "rwkvd_cluster_lease_revision", "gauge",
         "Fencing token (KV revision) of each lease held.");
    for (uint32_t i = 0; i < c->n_leases; i++)
        put(o, "rwkvd_cluster_lease_revision{partition=\"%u\"} %llu\n", c->leases[i].partition,
            (unsigned long long)c->leases[i].revision);
    head(o, "rwkvd_cluster_lag_messages", "gauge",
         "Messages in the stream not yet delivered to this worker, per partition held.");
    for (uint32_t i = 0; i < c->n_leases; i++)
        put(o, "rwkvd_cluster_lag_messages{partition=\"%u\"} %llu\n", c->leases[i].partition,
            (unsigned long long)c->leases[i].lag);
}

char *rwkvd_metrics_render(const rwkvd_status_info *s)
{
    out o = {malloc(4096), 0, 4096, 0};
    if (!o.p)
        return NULL;
    o.p[0] = '\0';
    char hex[65];
    rwkvd_sha256_hex(s->model_sha256, hex);
    head(&o, "rwkvd_build_info", "gauge", "Daemon version, model, device and precision (value 1).");
    put(&o, "rwkvd_build_info{version=\"%s\",model_sha256=\"%s\",generation=\"", RWKVD_VERSION, hex);
    label(&o, s->generation);
    put(&o, "\",device=\"");
    label(&o, s->device);
    put(&o, "\",precision=\"");
    label(&o, s->precision);
    put(&o, "\",tokenizer=\"");
    label(&o, s->tokenizer);
    put(&o, "\"} 1\n");
    one(&o, "rwkvd_uptime_seconds", "gauge", "Seconds since the daemon started.", s->uptime_s);
    one(&o, "rwkvd_docs_active", "gauge", "Documents in memory.", (double)s->docs_active);
    one(&o, "rwkvd_docs_on_disk", "gauge", "Documents with a checkpoint on disk.",
        (double)s->docs_on_disk);
    one(&o, "rwkvd_docs_max_active", "gauge", "Configured maximum of documents in memory.",
        (double)s->docs_max_active);
    one(&o, "rwkvd_docs_finished_total", "counter", "Documents that reached eof.",
        (double)s->docs_finished_total);
    one(&o, "rwkvd_held_messages", "gauge", "Out-of-order messages held, all documents.",
        (double)s->held_messages);
    head(&o, "rwkvd_queue_messages", "gauge", "Messages waiting in the daemon's queues.");
    put(&o, "rwkvd_queue_messages{queue=\"ingest\"} %llu\n", (unsigned long long)s->ingest_queue);
    put(&o, "rwkvd_queue_messages{queue=\"emit\"} %llu\n", (unsigned long long)s->emit_queue);
    one(&o, "rwkvd_messages_total", "counter", "Ingest messages received.",
        (double)s->messages_total);
    one(&o, "rwkvd_tokens_total", "counter", "Tokens run through the model.",
        (double)s->tokens_total);
    one(&o, "rwkvd_blocks_total", "counter", "Blocks completed and emitted.",
        (double)s->blocks_total);
    one(&o, "rwkvd_tokens_per_second", "gauge", "Token rate over the last 10 seconds.",
        s->tokens_per_s);
    head(&o, "rwkvd_checkpoint_seconds", "summary", "Time spent writing checkpoints.");
    put(&o, "rwkvd_checkpoint_seconds_sum %.17g\n", s->checkpoint_seconds_sum);
    put(&o, "rwkvd_checkpoint_seconds_count %llu\n", (unsigned long long)s->checkpoints_total);
    one(&o, "rwkvd_checkpoint_failures_total", "counter", "Checkpoints that could not be written.",
        (double)s->checkpoint_failures_total);
    head(&o, "rwkvd_auth_refused_total", "counter",
         "CURVE handshakes refused (key not in the role's allow-list), by role.");
    static const char *const roles[3] = {"producer", "consumer", "operator"};
    for (int r = 0; r < 3; r++)
        put(&o, "rwkvd_auth_refused_total{role=\"%s\"} %llu\n", roles[r],
            (unsigned long long)s->auth_refused[r]);
    head(&o, "rwkvd_rejected_total", "counter", "Messages and requests refused, by reason.");
    for (int r = 1; r < RWKVD_REASON_COUNT; r++)
        put(&o, "rwkvd_rejected_total{reason=\"%s\"} %llu\n", rwkvd_reason_name((rwkvd_reason)r),
            (unsigned long long)s->rejected[r]);
    if (s->cluster.on)
        cluster_metrics(&o, &s->cluster);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
