/* nats_out.c — rwkvd-send --nats: one file or stdin -> one document in the
 * RWKVD_IN stream of a NATS JetStream cluster (PROTOCOL.md §12).
 *
 * The same messages as over ZeroMQ (seq k = bytes [k*chunk, (k+1)*chunk),
 * eof on the last), published on rwkvd.in.<partition>.<hex(doc)> with
 * Nats-Msg-Id <hex(doc)>:<seq>, asynchronously with at most a few thousand
 * in flight; the program ends once the server confirmed every one (PubAck):
 * the document is then stored, and whichever worker owns its partition
 * processes it, also across worker crashes.  There is no `resume` here (no
 * single daemon to ask): a re-run after a crash publishes from seq 0, the
 * server drops repeats within its duplicate window and workers answer older
 * seqs as duplicates, so a re-run is always safe. */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "clients/rwkvd-send/input.h"
#include "clients/rwkvd-send/send.h"
#include "daemon/cluster/nats_setup.h"
#include "daemon/cluster/partition.h"

static int failed_pub;

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)closure;
    failed_pub = 1;
    fprintf(stderr, "rwkvd-send: a message was not stored: %s\n",
            pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

static int publish_all(const send_config *cfg, rwkvd_nats *n, send_input *in, uint32_t P,
                       uint64_t *count)
{
    char subject[RWKVD_SUBJECT_MAX], hex[RWKVD_DOC_HEX_MAX], id[RWKVD_SUBJECT_MAX];
    rwkvd_in_subject(cfg->doc, cfg->doc_len, P, subject);
    rwkvd_doc_hex(cfg->doc, cfg->doc_len, hex);
    rwkv_error err = {{0}};
    for (uint64_t seq = 0;; seq++) {
        const uint8_t *data;
        size_t len;
        bool last;
        if (input_read(in, &data, &len, &last, &err) != 0) {
            fprintf(stderr, "rwkvd-send: %s\n", err.msg);
            return -1;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (send_encode(cfg, seq, data, len, last, &sb) != 0) {
            msgpack_sbuffer_destroy(&sb);
            fprintf(stderr, "rwkvd-send: out of memory encoding seq %llu\n",
                    (unsigned long long)seq);
            return -1;
        }
        natsMsg *m = NULL;
        natsStatus s = natsMsg_Create(&m, subject, NULL, sb.data, (int)sb.size);
        msgpack_sbuffer_destroy(&sb);
        snprintf(id, sizeof id, "%s:%llu", hex, (unsigned long long)seq);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        while (s == NATS_OK && (s = js_PublishMsgAsync(n->js, &m, NULL)) == NATS_TIMEOUT)
            s = NATS_OK; /* too many in flight: the library waited; go again */
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
            fprintf(stderr, "rwkvd-send: publish seq %llu on %s: %s\n", (unsigned long long)seq,
                    subject, rwkvd_nats_why(s));
            return -1;
        }
        (*count)++;
        if (last)
            return 0;
    }
}

int send_run_nats(const send_config *cfg)
{
    rwkv_error err = {{0}};
    send_input *in = input_open(cfg->path, cfg->chunk, &err);
    if (!in) {
        fprintf(stderr, "rwkvd-send: %s\n", err.msg);
        return SEND_FAIL;
    }
    rwkvd_nats n;
    rwkvd_nats_params p = {cfg->nats,   cfg->nats_creds, cfg->nats_ca, "rwkvd-send", 10000, 0, 1,
                           on_pub_error, NULL};
    uint32_t P = 0;
    uint64_t count = 0;
    int rc = SEND_FAIL;
    if (rwkvd_nats_connect(&n, &p, &err) != 0 || rwkvd_nats_ensure_streams(&n, &err) != 0 ||
        rwkvd_nats_partitions(&n, 0, &P, &err) != 0) {
        fprintf(stderr, "rwkvd-send: %s%s\n", err.msg,
                strstr(err.msg, "partitions") ? " (start a worker first: it fixes the count)" : "");
        goto out;
    }
    if (publish_all(cfg, &n, in, P, &count) != 0)
        goto out;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = cfg->timeout > 0 ? (int64_t)(cfg->timeout * 1000) : 600000;
    natsStatus s = js_PublishAsyncComplete(n.js, &po);
    if (s != NATS_OK) {
        fprintf(stderr, "rwkvd-send: not every message was confirmed stored: %s\n",
                rwkvd_nats_why(s));
        goto out;
    }
    if (failed_pub)
        goto out;
    if (!cfg->quiet)
        fprintf(stderr, "rwkvd-send: %s: %llu messages stored in %s (partition %u of %u)\n",
                cfg->doc_label, (unsigned long long)count, RWKVD_NATS_IN_STREAM,
                rwkvd_doc_partition(cfg->doc, cfg->doc_len, P), P);
    rc = SEND_OK;
out:
    rwkvd_nats_close(&n);
    nats_Close();
    input_close(in);
    return rc;
}
