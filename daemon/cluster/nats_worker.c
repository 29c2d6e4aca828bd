/* nats_worker.c — rwkvd as a worker of a NATS JetStream cluster
 * (PROTOCOL.md §12): the transport of transport.h.
 *
 * Per loop iteration (tick): leases are checked (a lease past its local
 * validity is lost: the partition's documents are forgotten unsaved and its
 * unacked messages dropped unacked), renewed every TTL/3, and balanced
 * against the live workers every TTL/3; unacked messages older than
 * ACK_DELAY get their document checkpointed, which acks them (saved()).
 *
 * Intake fetches (no-wait pull requests) from the consumer of every owned
 * partition into a local queue and hands messages one at a time to
 * rwkvd_handle_ingest.  Each message is then classified (pending.c rules,
 * PROTOCOL.md §12.7): covered later by a checkpoint of its document, or
 * refused and acked once its error output is stored, or NAKed when the
 * refusal may pass on a retry.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/cluster/lease.h"
#include "daemon/cluster/nats_setup.h"
#include "daemon/cluster/out_key.h"
#include "daemon/cluster/partition.h"
#include "daemon/cluster/transport.h"
#include "daemon/log.h"
#include "daemon/server.h"

#define ACK_DELAY 1.0          /* s: longest wait for the checkpoint that acks */
#define ACK_WAIT_S 30          /* the consumers' ack wait */
#define FETCH_BATCH 128
#define MAX_UNACKED 2048       /* per partition: delivered and not yet acked */
#define ACKS_EVERY_S 0.05      /* how often due acks are looked for */
#define NAK_DELAY_MS 1000      /* a refusal that may pass later is redelivered after */
#define FETCH_IDLE_S 0.002     /* pause between rounds that found nothing */
#define BARRIER_MS 10000       /* longest wait for PubAcks before a checkpoint */

typedef enum { P_COVER, P_STORED } pend_kind;

typedef struct pend {
    natsMsg *m;
    uint32_t part;
    pend_kind kind;
    uint64_t seq;
    uint8_t doc[RWKVD_DOC_MAX];
    size_t doc_len;
    double received, progress_at;
} pend;

typedef struct queued {
    natsMsg *m;
    uint32_t part;
} queued;

typedef struct nats_worker {
    rwkvd_transport base;
    rwkvd_nats n;
    rwkvd_leases L;
    char worker[RWKVD_WORKER_ID_MAX + 1];
    uint32_t P;
    natsSubscription **sub;     /* [P], NULL when not owned */
    uint64_t *lag;              /* [P]: undelivered messages at the last fetch */
    queued *q;                  /* fetched, not yet handled */
    size_t q_head, q_len, q_cap;
    uint32_t fetch_next;        /* round-robin start */
    double next_fetch, next_balance, next_acks;
    pend *pend;
    size_t n_pend, cap_pend;
    atomic_uint_fast64_t pub_errors;
    uint64_t pub_errors_seen;
    uint64_t published, acked, naked;
    uint32_t workers_seen;
} nats_worker;

static nats_worker *W(rwkvd_transport *t)
{
    return (nats_worker *)t;
}

/* ---------------------------------------------------------------- outputs */

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    nats_worker *w = closure;
    atomic_fetch_add(&w->pub_errors, 1);
    LOG_ERROR("NATS: an output was not stored: %s (%s)", natsStatus_GetText(pae->Err),
              pae->ErrText ? pae->ErrText : "");
}

static int publish_one(void *ctx, const void *data, size_t len, rwkv_error *err)
{
    nats_worker *w = ctx;
    rwkvd_out_key k;
    if (rwkvd_out_key_read(data, len, &k) != 0) {
        LOG_ERROR("an output that is not a map was not published (%zu bytes)", len);
        return 0;
    }
    if (k.type == RWKVD_OUTK_ACK)
        return 0; /* PROTOCOL.md §12.4: acks are not published in cluster mode */
    char subject[64], hex[RWKVD_DOC_HEX_MAX], id[RWKVD_SUBJECT_MAX], fence[32];
    uint32_t part = 0;
    if (k.have_doc) {
        part = rwkvd_doc_partition(k.doc, k.doc_len, w->P);
        snprintf(subject, sizeof subject, "rwkvd.out.%u", part);
        rwkvd_doc_hex(k.doc, k.doc_len, hex);
    } else {
        snprintf(subject, sizeof subject, "%s", RWKVD_NATS_OUT_NONE);
    }
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK && k.have_doc &&
        (k.type == RWKVD_OUTK_BLOCK || k.type == RWKVD_OUTK_FINAL ||
         k.type == RWKVD_OUTK_SEGMENTS)) {
        /* a reused doc id (after drop) is another incarnation: its outputs
         * must not be taken for duplicates of the first one's */
        char inc[32] = "";
        if (k.inc > 0)
            snprintf(inc, sizeof inc, ":i%llu", (unsigned long long)k.inc);
        if (k.type == RWKVD_OUTK_BLOCK)
            snprintf(id, sizeof id, "%s%s:b%llu", hex, inc, (unsigned long long)k.block);
        else if (k.type == RWKVD_OUTK_SEGMENTS)
            snprintf(id, sizeof id, "%s%s:s%llu", hex, inc, (unsigned long long)k.block);
        else
            snprintf(id, sizeof id, "%s%s:final", hex, inc);
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    }
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Rwkvd-Worker", w->worker);
    if (s == NATS_OK) {
        snprintf(fence, sizeof fence, "%llu",
                 (unsigned long long)(k.have_doc ? rwkvd_lease_revision(&w->L, part) : 0));
        s = natsMsgHeader_Set(m, "Rwkvd-Fence", fence);
    }
    if (s == NATS_OK)
        s = js_PublishMsgAsync(w->n.js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when the library took it */
    if (s == NATS_TIMEOUT)
        return 1; /* too many in flight: try again later */
    if (s != NATS_OK)
        return rwkv_fail(err, "NATS publish on %s: %s", subject, rwkvd_nats_why(s));
    w->published++;
    return 0;
}

static void flush(rwkvd_transport *t, rwkvd_server *srv)
{
    rwkv_error err;
    if (rwkvd_outbox_drain(srv->outbox, publish_one, W(t), &err) < 0)
        LOG_ERROR("%s", err.msg);
}

/* Everything queued so far is stored in RWKVD_OUT.  A PubAck error means
 * an output is gone while the documents have moved past it: the only safe
 * way on is a crash (nothing acked, nothing checkpointed beyond it). */
static int outputs_durable(rwkvd_transport *t, rwkvd_server *srv, rwkv_error *err)
{
    nats_worker *w = W(t);
    double until = rwkvd_now() + BARRIER_MS / 1000.0;
    while (rwkvd_outbox_count(srv->outbox)) {
        if (rwkvd_outbox_drain(srv->outbox, publish_one, w, err) < 0)
            return -1;
        if (rwkvd_outbox_count(srv->outbox) && rwkvd_now() > until)
            return rwkv_fail(err, "NATS: outputs could not be published in %d ms", BARRIER_MS);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = BARRIER_MS;
    natsStatus s;
    for (int attempt = 0; (s = js_PublishAsyncComplete(w->n.js, &po)) != NATS_OK; attempt++) {
        /* no PubAck (a server restart, a lost connection): the library
         * hands the unconfirmed messages back; they are sent again with the
         * same msg ids, so a copy the server did store is dropped there */
        if (attempt == 2)
            return rwkv_fail(err, "NATS: outputs not confirmed stored: %s", rwkvd_nats_why(s));
        natsMsgList pl = {0};
        if (js_PublishAsyncGetPendingList(&pl, w->n.js) == NATS_OK) {
            LOG_WARN("NATS: %d outputs unconfirmed after %d ms; sending them again", pl.Count,
                     BARRIER_MS);
            for (int i = 0; i < pl.Count; i++)
                if (js_PublishMsgAsync(w->n.js, &pl.Msgs[i], NULL) != NATS_OK)
                    LOG_ERROR("NATS: an output could not be sent again");
            natsMsgList_Destroy(&pl);
        }
    }
    uint64_t e = atomic_load(&w->pub_errors);
    if (e != w->pub_errors_seen) {
        LOG_ERROR("NATS: %llu outputs were refused by the server; exiting at once without "
                  "checkpoints or acks, so that their documents are redone from the last "
                  "checkpoint",
                  (unsigned long long)(e - w->pub_errors_seen));
        _exit(3);
    }
    return 0;
}

/* ---------------------------------------------------------------- pending acks */

static bool lease_ok(nats_worker *w, uint32_t part)
{
    return part < w->P && rwkvd_lease_valid(&w->L, part, rwkvd_now());
}

static void pend_remove(nats_worker *w, size_t i)
{
    w->pend[i] = w->pend[--w->n_pend];
}

/* Acks (fencing: only under a valid lease) and forgets entry i. */
static void pend_ack(nats_worker *w, size_t i)
{
    if (lease_ok(w, w->pend[i].part)) {
        natsMsg_Ack(w->pend[i].m, NULL);
        w->acked++;
    }
    natsMsg_Destroy(w->pend[i].m);
    pend_remove(w, i);
}

static void pend_nak(nats_worker *w, size_t i)
{
    if (lease_ok(w, w->pend[i].part)) {
        natsMsg_NakWithDelay(w->pend[i].m, NAK_DELAY_MS, NULL);
        w->naked++;
    }
    natsMsg_Destroy(w->pend[i].m);
    pend_remove(w, i);
}

static void pend_add(nats_worker *w, natsMsg *m, uint32_t part, pend_kind kind,
                     const uint8_t *doc, size_t doc_len, uint64_t seq)
{
    if (w->n_pend == w->cap_pend) {
        size_t cap = w->cap_pend ? 2 * w->cap_pend : 256;
        pend *p = realloc(w->pend, cap * sizeof *p);
        if (!p) {
            natsMsg_Destroy(m); /* redelivered after the ack wait */
            return;
        }
        w->pend = p;
        w->cap_pend = cap;
    }
    pend *e = &w->pend[w->n_pend++];
    double now = rwkvd_now();
    *e = (pend){m, part, kind, seq, {0}, doc_len, now, now};
    if (doc_len)
        memcpy(e->doc, doc, doc_len);
}

static bool same_doc(const pend *e, const rwkvd_session *s)
{
    return e->doc_len == s->doc_len && memcmp(e->doc, s->doc, s->doc_len) == 0;
}

static void saved(rwkvd_transport *t, rwkvd_server *srv, const rwkvd_session *s)
{
    (void)srv;
    nats_worker *w = W(t);
    for (size_t i = 0; i < w->n_pend;) {
        pend *e = &w->pend[i];
        if (e->kind == P_COVER && e->seq < s->next_seq && same_doc(e, s))
            pend_ack(w, i);
        else
            i++;
    }
}

static uint64_t may_write(rwkvd_transport *t, const uint8_t *doc, size_t len)
{
    nats_worker *w = W(t);
    uint32_t part = rwkvd_doc_partition(doc, len, w->P);
    return lease_ok(w, part) ? rwkvd_lease_revision(&w->L, part) : 0;
}

/* ---------------------------------------------------------------- intake */

static uint64_t rejected_sum(const rwkvd_server *srv)
{
    uint64_t n = 0;
    for (int r = 0; r < RWKVD_REASON_COUNT; r++)
        n += srv->stats.rejected[r];
    return n;
}

static bool retry_reason(const rwkvd_server *srv, const uint64_t *before)
{
    /* seq_gap too: in a partition's order a gap is a redelivery still to
     * come (never acked: the message would be lost) */
    static const rwkvd_reason transient[] = {RWKVD_R_OVERLOADED, RWKVD_R_IO_ERROR,
                                             RWKVD_R_SHUTTING_DOWN, RWKVD_R_SEQ_GAP};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (srv->stats.rejected[transient[i]] != before[transient[i]])
            return true;
    return false;
}

static bool held(const rwkvd_session *s, uint64_t seq)
{
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].seq == seq)
            return true;
    return false;
}

static void handle_one(nats_worker *w, rwkvd_server *srv, natsMsg *m, uint32_t part)
{
    const void *data = natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    rwkvd_ingest peek;
    memset(&peek, 0, sizeof peek);
    rwkvd_ingest_peek(data, len, &peek);
    if (peek.have_doc && rwkvd_doc_partition(peek.doc, peek.doc_len, w->P) != part) {
        char msg[160];
        snprintf(msg, sizeof msg, "the document belongs to partition %u, not %u (subject %.60s)",
                 rwkvd_doc_partition(peek.doc, peek.doc_len, w->P), part, natsMsg_GetSubject(m));
        rwkvd_emit_error(srv, peek.doc, peek.doc_len, peek.have_seq, peek.seq, RWKVD_R_BAD_DOC,
                         msg, false, 0);
        pend_add(w, m, part, P_STORED, NULL, 0, 0);
        return;
    }
    uint64_t before[RWKVD_REASON_COUNT];
    memcpy(before, srv->stats.rejected, sizeof before);
    uint64_t rej0 = rejected_sum(srv);
    rwkvd_handle_ingest(srv, data, len);
    bool refused = rejected_sum(srv) != rej0;
    rwkvd_session *s = peek.have_doc ? rwkvd_docs_find(srv, peek.doc, peek.doc_len) : NULL;
    if (s && peek.have_seq && (held(s, peek.seq) || peek.seq < s->next_seq)) {
        /* applied, duplicate or held: acked when a checkpoint covers it */
        pend_add(w, m, part, P_COVER, peek.doc, peek.doc_len, peek.seq);
        return;
    }
    if (refused && retry_reason(srv, before)) {
        pend_add(w, m, part, P_STORED, NULL, 0, 0);
        pend_nak(w, w->n_pend - 1);
        return;
    }
    /* refused for good (or nothing to keep): acked once its error is stored */
    pend_add(w, m, part, P_STORED, NULL, 0, 0);
}

static int queue_push(nats_worker *w, natsMsg *m, uint32_t part)
{
    if (w->q_len == w->q_cap) {
        size_t cap = w->q_cap ? 2 * w->q_cap : 256;
        queued *nq = malloc(cap * sizeof *nq);
        if (!nq)
            return -1;
        for (size_t j = 0; j < w->q_len; j++)
            nq[j] = w->q[(w->q_head + j) % w->q_cap];
        free(w->q);
        w->q = nq;
        w->q_cap = cap;
        w->q_head = 0;
    }
    w->q[(w->q_head + w->q_len++) % w->q_cap] = (queued){m, part};
    return 0;
}

/* Takes what the owned partitions' subscriptions already hold (no wait),
 * FETCH_BATCH at most per partition, round-robin. */
static int fetch_round(nats_worker *w)
{
    int got = 0;
    for (uint32_t k = 0; k < w->P; k++) {
        uint32_t part = (w->fetch_next + k) % w->P;
        if (!w->sub[part] || !lease_ok(w, part))
            continue;
        natsMsg *m = NULL;
        natsMsg *last = NULL;
        for (int i = 0; i < FETCH_BATCH; i++) {
            if (natsSubscription_NextMsg(&m, w->sub[part], 0) != NATS_OK)
                break;
            if (queue_push(w, m, part) != 0) {
                natsMsg_Destroy(m); /* redelivered after the ack wait */
                break;
            }
            last = m;
            got++;
        }
        if (last) {
            jsMsgMetaData *meta = NULL;
            if (natsMsg_GetMetaData(&meta, last) == NATS_OK) {
                w->lag[part] = meta->NumPending;
                jsMsgMetaData_Destroy(meta);
            }
        }
    }
    w->fetch_next = (w->fetch_next + 1) % w->P;
    return got;
}

static void intake(rwkvd_transport *t, rwkvd_server *srv, bool (*can_read)(const rwkvd_server *))
{
    nats_worker *w = W(t);
    for (int i = 0; i < 512 && can_read(srv); i++) {
        if (!w->q_len) {
            double now = rwkvd_now();
            if (now < w->next_fetch)
                return;
            if (fetch_round(w) == 0) {
                w->next_fetch = now + FETCH_IDLE_S;
                return;
            }
        }
        queued e = w->q[w->q_head];
        w->q_head = (w->q_head + 1) % w->q_cap;
        w->q_len--;
        if (!lease_ok(w, e.part)) {
            natsMsg_Destroy(e.m); /* not ours any more: the owner gets it again */
            continue;
        }
        handle_one(w, srv, e.m, e.part);
    }
}

/* ---------------------------------------------------------------- partitions */

static void consumer_name(uint32_t part, uint64_t rev, char out[48])
{
    snprintf(out, 48, "p%u-r%llu", part, (unsigned long long)rev);
}

/* Deletes the consumers of earlier owners and creates this owner's,
 * starting after the lowest ack floor among them. */
static int open_consumer(nats_worker *w, uint32_t part, uint64_t rev, rwkv_error *err)
{
    char prefix[32], name[48], filter[48];
    snprintf(prefix, sizeof prefix, "p%u-r", part);
    consumer_name(part, rev, name);
    snprintf(filter, sizeof filter, "rwkvd.in.%u.*", part);
    uint64_t floor = UINT64_MAX;
    jsConsumerNamesList *names = NULL;
    jsErrCode jerr = 0;
    if (js_ConsumerNames(&names, w->n.js, RWKVD_NATS_IN_STREAM, NULL, &jerr) == NATS_OK) {
        for (int i = 0; i < names->Count; i++) {
            if (strncmp(names->List[i], prefix, strlen(prefix)) != 0)
                continue;
            jsConsumerInfo *ci = NULL;
            if (js_GetConsumerInfo(&ci, w->n.js, RWKVD_NATS_IN_STREAM, names->List[i], NULL,
                                   &jerr) == NATS_OK) {
                if (ci->AckFloor.Stream < floor)
                    floor = ci->AckFloor.Stream;
                jsConsumerInfo_Destroy(ci);
            }
            js_DeleteConsumer(w->n.js, RWKVD_NATS_IN_STREAM, names->List[i], NULL, &jerr);
        }
        jsConsumerNamesList_Destroy(names);
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = name;
    cc.FilterSubject = filter;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)ACK_WAIT_S * 1000000000;
    /* a push consumer: the server streams the partition in order into this
     * worker's inbox, at most MAX_UNACKED ahead of the acks, and intake
     * takes what arrived without waiting (natsSubscription_NextMsg, 0) */
    natsInbox *inbox = NULL;
    if (natsInbox_Create(&inbox) != NATS_OK)
        return rwkv_fail(err, "consumer %s: out of memory", name);
    cc.DeliverSubject = inbox;
    cc.MaxAckPending = MAX_UNACKED;
    cc.MaxDeliver = -1;
    if (floor != UINT64_MAX && floor > 0) {
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = floor + 1;
    } else {
        cc.DeliverPolicy = js_DeliverAll;
    }
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_AddConsumer(&ci, w->n.js, RWKVD_NATS_IN_STREAM, &cc, NULL, &jerr);
    natsInbox_Destroy(inbox);
    if (s != NATS_OK)
        return rwkv_fail(err, "consumer %s: %s", name, rwkvd_nats_why(s));
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = RWKVD_NATS_IN_STREAM;
    so.Consumer = name;
    so.ManualAck = true;
    s = js_SubscribeSync(&w->sub[part], w->n.js, filter, NULL, &so, &jerr);
    /* never dropped for a full client buffer: the server stops at
     * MAX_UNACKED anyway */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(w->sub[part], -1, -1);
    if (s != NATS_OK) {
        if (w->sub[part])
            natsSubscription_Destroy(w->sub[part]);
        w->sub[part] = NULL;
        return rwkv_fail(err, "subscription to %s: %s", name, rwkvd_nats_why(s));
    }
    return 0;
}

typedef struct wake_ctx {
    rwkvd_server *srv;
    nats_worker *w;
    uint32_t part;
} wake_ctx;

static bool in_part(void *ctx, const uint8_t *doc, size_t len)
{
    wake_ctx *c = ctx;
    return rwkvd_doc_partition(doc, len, c->w->P) == c->part;
}

/* Documents of a newly owned partition left with work by the previous
 * owner: no message may ever come to wake them (server.c wake_docs). */
static int wake_scan(void *ctx, const rwkvd_ckpt_info *info, bool from_prev)
{
    (void)from_prev;
    wake_ctx *c = ctx;
    if (rwkvd_doc_partition(info->doc, info->doc_len, c->w->P) != c->part)
        return 0;
    bool work = !info->finished && (info->eof || info->n_pending_tokens > info->block_size);
    if (!work)
        return 0;
    rwkvd_server *srv = c->srv;
    rwkvd_doc_ref *r = realloc(srv->wake, (srv->n_wake + 1) * sizeof *r);
    if (!r)
        return 0;
    srv->wake = r;
    memcpy(r[srv->n_wake].doc, info->doc, info->doc_len);
    r[srv->n_wake].len = info->doc_len;
    srv->n_wake++;
    return 0;
}

static void drop_queue_of(nats_worker *w, uint32_t part, bool nak)
{
    size_t n = w->q_len, k = 0;
    for (size_t i = 0; i < n; i++) {
        queued e = w->q[(w->q_head + i) % w->q_cap];
        if (e.part == part) {
            if (nak && lease_ok(w, part))
                natsMsg_Nak(e.m, NULL);
            natsMsg_Destroy(e.m);
        } else {
            w->q[(w->q_head + k++) % w->q_cap] = e;
        }
    }
    w->q_len = k;
}

/* Forgets the partition's documents in memory, and those still waiting to
 * be woken: loaded later, they would run on a state that the next owner
 * moves past (and could not be saved here anyway). */
static void forget_docs_of(nats_worker *w, rwkvd_server *srv, uint32_t part)
{
    size_t k = srv->wake_done;
    for (size_t i = srv->wake_done; i < srv->n_wake; i++)
        if (rwkvd_doc_partition(srv->wake[i].doc, srv->wake[i].len, w->P) != part)
            srv->wake[k++] = srv->wake[i];
    srv->n_wake = k;
    for (rwkvd_session *s = srv->docs.lru_head, *next; s; s = next) {
        next = s->lnext;
        if (rwkvd_doc_partition(s->doc, s->doc_len, w->P) == part) {
            rwkvd_docs_remove(srv, s);
            rwkvd_session_free(s);
        }
    }
}

static void close_sub(nats_worker *w, uint32_t part)
{
    if (w->sub[part]) {
        natsSubscription_Unsubscribe(w->sub[part]);
        natsSubscription_Destroy(w->sub[part]);
        w->sub[part] = NULL;
    }
}

/* Lost (expired or taken): touch nothing of the partition any more. */
static void lose(nats_worker *w, rwkvd_server *srv, uint32_t part, const char *why)
{
    LOG_WARN("partition %u lost (%s): its documents are forgotten unsaved, its unacked "
             "messages go to the next owner",
             part, why);
    rwkvd_lease_forget(&w->L, part);
    drop_queue_of(w, part, false);
    for (size_t i = 0; i < w->n_pend;) {
        if (w->pend[i].part == part) {
            natsMsg_Destroy(w->pend[i].m);
            pend_remove(w, i);
        } else {
            i++;
        }
    }
    forget_docs_of(w, srv, part);
    close_sub(w, part);
}

/* Hands a partition over cleanly: everything saved and acked first. */
static void release(nats_worker *w, rwkvd_server *srv, uint32_t part)
{
    rwkv_error err;
    bool ok = true;
    for (rwkvd_session *s = srv->docs.lru_head; s; s = s->lnext)
        if (rwkvd_doc_partition(s->doc, s->doc_len, w->P) == part && s->dirty && !s->failed &&
            rwkvd_persist_save(srv, s, &err) != 0) {
            LOG_ERROR("partition %u: checkpoint before release failed: %s", part, err.msg);
            ok = false;
        }
    if (ok && outputs_durable(&w->base, srv, &err) != 0) {
        LOG_ERROR("partition %u: %s", part, err.msg);
        ok = false;
    }
    if (!ok) {
        lose(w, srv, part, "could not be saved for a clean hand-over");
        return;
    }
    for (size_t i = 0; i < w->n_pend;) {
        pend *e = &w->pend[i];
        if (e->part != part) {
            i++;
            continue;
        }
        rwkvd_session *s = e->kind == P_COVER ? rwkvd_docs_find(srv, e->doc, e->doc_len) : NULL;
        if (e->kind == P_STORED || !s || (e->seq < s->next_seq && !s->dirty))
            pend_ack(w, i);
        else
            pend_nak(w, i); /* held out of order: the next owner gets it again */
    }
    drop_queue_of(w, part, true);
    forget_docs_of(w, srv, part);
    close_sub(w, part);
    rwkvd_lease_release(&w->L, part);
    LOG_INFO("partition %u released", part);
}

static bool take(nats_worker *w, rwkvd_server *srv, uint32_t part)
{
    if (!rwkvd_lease_acquire(&w->L, part, rwkvd_now()))
        return false;
    rwkv_error err;
    uint64_t rev = rwkvd_lease_revision(&w->L, part);
    double t0 = rwkvd_now();
    if (open_consumer(w, part, rev, &err) != 0) {
        LOG_ERROR("partition %u: %s (after %.2f s); lease given back", part, err.msg,
                  rwkvd_now() - t0);
        rwkvd_lease_release(&w->L, part);
        return false;
    }
    /* nothing of an earlier ownership may linger: the state on disk is
     * where the partition's documents continue from */
    forget_docs_of(w, srv, part);
    wake_ctx c = {srv, w, part};
    size_t n_bad = 0;
    size_t before = srv->n_wake;
    if (rwkvd_ckpt_store_list(srv->store, wake_scan, &c, &n_bad, &err) != 0)
        LOG_WARN("partition %u: state directory listing: %s", part, err.msg);
    /* half-written checkpoints of a crashed owner; a paused one that still
     * writes loses its rename, which is what fencing wants anyway */
    size_t swept = rwkvd_ckpt_store_sweep_tmp(srv->store, in_part, &c);
    if (swept)
        LOG_INFO("partition %u: %zu temp files of an earlier owner removed", part, swept);
    LOG_INFO("partition %u acquired (lease revision %llu, %zu documents with work left, "
             "consumer ready in %.2f s)",
             part, (unsigned long long)rev, srv->n_wake - before, rwkvd_now() - t0);
    w->next_fetch = 0;
    return true;
}

/* One step towards ceil(P/W) partitions: extras are released; at most ONE
 * partition is taken per call (setting up its consumer takes several
 * requests, slow on a replicated cluster, and the loop must come back to
 * renew what it holds).  Returns whether to come back soon. */
static bool balance(nats_worker *w, rwkvd_server *srv)
{
    uint32_t workers = rwkvd_leases_presence(&w->L);
    w->workers_seen = workers;
    uint32_t target = (w->P + workers - 1) / workers;
    uint32_t owned = rwkvd_leases_owned(&w->L);
    for (uint32_t p = w->P; p-- > 0 && owned > target;)
        if (rwkvd_lease_owned(&w->L, p)) {
            release(w, srv, p);
            owned--;
        }
    uint32_t start = rwkvd_fnv1a32(w->worker, strlen(w->worker)) % w->P;
    for (uint32_t k = 0; k < w->P && owned < target && !srv->stopping; k++) {
        uint32_t p = (start + k) % w->P;
        if (!rwkvd_lease_owned(&w->L, p) && take(w, srv, p))
            return owned + 1 < target;
    }
    return false;
}

/* ---------------------------------------------------------------- tick */

static void acks_due(nats_worker *w, rwkvd_server *srv, double now)
{
    bool stored_waiting = false;
    for (size_t i = 0; i < w->n_pend; i++) {
        pend *e = &w->pend[i];
        if (e->kind == P_STORED) {
            stored_waiting = true;
            continue;
        }
        if (now - e->received < ACK_DELAY)
            continue;
        rwkvd_session *s = rwkvd_docs_find(srv, e->doc, e->doc_len);
        if (s && s->failed) {
            /* ended by an engine error (never checkpointed again): its
             * refusal is the answer, acked once stored like any other */
            e->kind = P_STORED;
            stored_waiting = true;
            continue;
        }
        rwkv_error err;
        if (s && s->dirty && e->seq < s->next_seq && rwkvd_persist_save(srv, s, &err) != 0) {
            LOG_ERROR("checkpoint for acks failed: %s", err.msg);
            return; /* saved() acked what the others covered */
        }
    }
    rwkv_error err;
    if (stored_waiting && outputs_durable(&w->base, srv, &err) != 0) {
        LOG_ERROR("%s", err.msg);
        return;
    }
    for (size_t i = 0; i < w->n_pend;) {
        pend *e = &w->pend[i];
        if (e->kind == P_STORED) {
            pend_ack(w, i);
            continue;
        }
        rwkvd_session *s = rwkvd_docs_find(srv, e->doc, e->doc_len);
        if (!s || (!s->dirty && e->seq < s->next_seq && s->on_disk)) {
            /* not in memory: saved when evicted, or dropped */
            if (now - e->received >= ACK_DELAY || !s) {
                pend_ack(w, i);
                continue;
            }
        } else if (now - e->progress_at > ACK_WAIT_S / 3.0) {
            natsMsg_InProgress(e->m, NULL); /* held: keep the ack wait from expiring */
            e->progress_at = now;
        }
        i++;
    }
}

static void tick(rwkvd_transport *t, rwkvd_server *srv)
{
    nats_worker *w = W(t);
    double now = rwkvd_now();
    /* renewals run on the lease thread; here: what ran out or was refused */
    for (uint32_t p = 0; p < w->P; p++)
        if (rwkvd_lease_owned(&w->L, p) && !rwkvd_lease_valid(&w->L, p, now))
            lose(w, srv, p, "not renewed in time, or renewal refused");
    if (now >= w->next_balance && !srv->stopping)
        w->next_balance = now + (balance(w, srv) ? 0.0 : w->L.ttl / 3);
    if (now >= w->next_acks) { /* a walk over every unacked message: not every turn */
        acks_due(w, srv, now);
        w->next_acks = now + ACKS_EVERY_S;
    }
}

/* ---------------------------------------------------------------- stop */

static void stop(rwkvd_transport *t, rwkvd_server *srv)
{
    nats_worker *w = W(t);
    for (uint32_t p = 0; p < w->P; p++)
        if (rwkvd_lease_owned(&w->L, p) && lease_ok(w, p))
            release(w, srv, p);
        else if (rwkvd_lease_owned(&w->L, p))
            lose(w, srv, p, "ran out during the stop");
    rwkvd_leases_leave(&w->L);
    LOG_INFO("NATS worker %s stopped: %llu outputs published, %llu messages acked, %llu naked",
             w->worker, (unsigned long long)w->published, (unsigned long long)w->acked,
             (unsigned long long)w->naked);
}

static void status(rwkvd_transport *t, rwkvd_status_info *st)
{
    nats_worker *w = W(t);
    struct rwkvd_cluster_status *c = &st->cluster;
    memset(c, 0, sizeof *c);
    c->on = true;
    memcpy(c->worker, w->worker, sizeof c->worker);
    c->partitions = w->P;
    c->workers = w->workers_seen;
    pthread_mutex_lock(&w->L.mu);
    for (uint32_t p = 0; p < w->P; p++) {
        if (!w->L.p[p].owned)
            continue;
        c->owned++;
        c->lag += w->lag[p];
        if (c->n_leases < sizeof c->leases / sizeof c->leases[0])
            c->leases[c->n_leases++] = (struct rwkvd_lease_status){p, w->L.p[p].revision,
                                                                   w->lag[p]};
    }
    c->leases_acquired = w->L.acquired_total;
    c->leases_lost = w->L.lost_total;
    c->leases_released = w->L.released_total;
    c->lease_renewals = w->L.renewals_total;
    pthread_mutex_unlock(&w->L.mu);
    c->unacked = w->n_pend;
    c->published = w->published;
    c->acked = w->acked;
}

static void worker_free(rwkvd_transport *t)
{
    nats_worker *w = W(t);
    if (!w)
        return;
    for (size_t i = 0; i < w->n_pend; i++)
        natsMsg_Destroy(w->pend[i].m);
    for (size_t i = 0; i < w->q_len; i++)
        natsMsg_Destroy(w->q[(w->q_head + i) % w->q_cap].m);
    if (w->sub)
        for (uint32_t p = 0; p < w->P; p++)
            close_sub(w, p);
    if (w->n.js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        js_PublishAsyncComplete(w->n.js, &po);
    }
    rwkvd_leases_free(&w->L); /* its thread uses the connection */
    rwkvd_nats_close(&w->n);
    free(w->pend);
    free(w->q);
    free(w->sub);
    free(w->lag);
    free(w);
    nats_Close();
}

static const rwkvd_transport_ops nats_ops = {
    .name = "nats",
    .intake = intake,
    .flush = flush,
    .outputs_durable = outputs_durable,
    .may_write = may_write,
    .saved = saved,
    .tick = tick,
    .stop = stop,
    .status = status,
    .free = worker_free,
};

rwkvd_transport *rwkvd_nats_transport_new(rwkvd_server *srv, rwkv_error *err)
{
    const rwkvd_config *c = &srv->cfg;
    nats_worker *w = calloc(1, sizeof *w);
    if (!w) {
        rwkv_fail(err, "out of memory");
        return NULL;
    }
    w->base.ops = &nats_ops;
    if (c->worker_id[0]) {
        if (!rwkvd_worker_id_valid(c->worker_id)) {
            rwkv_fail(err, "worker_id '%.64s': 1..64 characters of A-Z a-z 0-9 _ -",
                      c->worker_id);
            goto fail;
        }
        memcpy(w->worker, c->worker_id, strlen(c->worker_id) + 1); /* valid: <= 64 */
    } else {
        rwkvd_worker_id_default(w->worker);
    }
    char name[96];
    snprintf(name, sizeof name, "rwkvd %s", w->worker);
    /* API requests (lease renewals among them) give up well within a lease */
    int64_t api_ms = (int64_t)llround(c->lease_ttl * 250);
    rwkvd_nats_params p = {c->nats, c->nats_creds, c->nats_ca, name, 5000,
                           api_ms < 5000 ? api_ms : 5000, c->nats_replicas, on_pub_error, w};
    if (rwkvd_nats_connect(&w->n, &p, err) != 0 || rwkvd_nats_ensure_streams(&w->n, err) != 0 ||
        rwkvd_nats_partitions(&w->n, (uint32_t)c->partitions, &w->P, err) != 0 ||
        rwkvd_nats_lease_bucket(&w->n, (int64_t)llround(c->lease_ttl * 1000), err) != 0)
        goto fail;
    w->sub = calloc(w->P, sizeof *w->sub);
    w->lag = calloc(w->P, sizeof *w->lag);
    if (!w->sub || !w->lag || rwkvd_leases_init(&w->L, w->n.lease_kv, w->worker, w->P, c->lease_ttl) != 0 ||
        rwkvd_leases_start(&w->L) != 0) {
        rwkv_fail(err, "out of memory");
        goto fail;
    }
    LOG_INFO("NATS worker %s on %s: %u partitions, lease TTL %.1f s", w->worker, c->nats, w->P,
             c->lease_ttl);
    return &w->base;
fail:
    worker_free(&w->base);
    return NULL;
}
