/* nats_in.c — rwkvd-sink --nats: the output stream of a NATS JetStream
 * cluster of rwkvd workers (PROTOCOL.md §12.4) instead of an emit socket.
 *
 * A durable pull consumer (its name given by --durable) on RWKVD_OUT keeps
 * the sink's place on the server.  Each fetched batch is handed to the
 * sink, flushed to the destination, and only then acked: a sink killed at
 * any point gets the unacked rest again when it restarts under the same
 * name, and with --append it recognises what it wrote already (keys
 * (doc, block) and (doc, "final"), as for ZeroMQ). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clients/rwkvd-sink/sink.h"
#include "daemon/cluster/nats_setup.h"
#include "daemon/cluster/partition.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sink_nats_run(const sink_config *cfg, int (*on_msg)(void *ctx, const uint8_t *p, size_t n),
                  int (*on_batch)(void *ctx), bool (*done)(void *ctx), void *ctx,
                  volatile int *stop)
{
    rwkvd_nats n;
    rwkv_error err = {{0}};
    rwkvd_nats_params p = {cfg->nats, cfg->nats_creds, cfg->nats_ca, "rwkvd-sink", 10000, 0, 1,
                           NULL, NULL};
    natsSubscription *sub = NULL;
    int rc = SINK_FAIL;
    if (rwkvd_nats_connect(&n, &p, &err) != 0 || rwkvd_nats_ensure_streams(&n, &err) != 0) {
        fprintf(stderr, "rwkvd-sink: %s\n", err.msg);
        goto out;
    }
    jsErrCode jerr = 0;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = RWKVD_NATS_OUT_STREAM;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 65536;
    natsStatus s = js_PullSubscribe(&sub, n.js, RWKVD_NATS_OUT_SUBJECTS, cfg->durable, NULL, &so,
                                    &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "rwkvd-sink: durable consumer %s on %s: %s\n", cfg->durable,
                RWKVD_NATS_OUT_STREAM, rwkvd_nats_why(s));
        goto out;
    }
    double last = now_s();
    for (;;) {
        if (*stop || done(ctx)) {
            rc = SINK_OK;
            break;
        }
        if (cfg->idle_timeout > 0 && now_s() - last > cfg->idle_timeout) {
            if (cfg->until_final) {
                fprintf(stderr, "rwkvd-sink: idle for %.1f s before %llu final outputs\n",
                        cfg->idle_timeout, (unsigned long long)cfg->until_final);
                break;
            }
            rc = SINK_OK;
            break;
        }
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, 256, 200, &jerr);
        if (s != NATS_OK || list.Count == 0) {
            /* nothing yet, or the server is away (the client reconnects) */
            natsMsgList_Destroy(&list);
            continue;
        }
        last = now_s();
        int bad = 0;
        for (int i = 0; i < list.Count && !bad; i++)
            bad = on_msg(ctx, (const uint8_t *)natsMsg_GetData(list.Msgs[i]),
                         (size_t)natsMsg_GetDataLength(list.Msgs[i])) != 0;
        if (!bad)
            bad = on_batch(ctx) != 0;
        for (int i = 0; i < list.Count && !bad; i++)
            natsMsg_Ack(list.Msgs[i], NULL); /* written and flushed */
        natsMsgList_Destroy(&list);
        if (bad)
            break;
    }
    natsConnection_FlushTimeout(n.nc, 5000); /* the acks out */
out:
    if (sub)
        natsSubscription_Destroy(sub);
    rwkvd_nats_close(&n);
    nats_Close();
    return rc;
}
