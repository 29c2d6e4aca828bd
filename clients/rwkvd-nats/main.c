/* main.c — rwkvd-nats: the NATS JetStream mapping of PROTOCOL.md §12 as a
 * pipe, for scripts and tests in any language.
 *
 *   rwkvd-nats pub --nats URL [--partitions P] [--no-msg-id]
 *       stdin: frames [u32 little-endian length][msgpack ingest map]; each
 *       map is published with JetStream (PubAck awaited before exit) on
 *       rwkvd.in.<partition(doc)>.<hex(doc)> with Nats-Msg-Id <hex>:<seq>.
 *       A frame whose doc cannot be read goes to rwkvd.in.0.00 (the worker
 *       refuses it exactly as the ingest socket would).
 *   rwkvd-nats sub --nats URL --durable NAME [--until-final N] [--idle-timeout S]
 *       a durable pull consumer on RWKVD_OUT; writes every output as a frame
 *       [u32 length][msgpack] on stdout and acks it after the write is
 *       flushed, so a crash of this process loses nothing.  Exits after N
 *       distinct final outputs (0) or S seconds without output (1 unless N
 *       was reached).
 *   rwkvd-nats leases --nats URL
 *       prints "p.<n> <worker> <revision>" per held lease, then
 *       "workers <count>".
 *
 * Exit status: 0 ok, 1 failure, 2 bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/msg_decode.h"
#include "daemon/cluster/nats_setup.h"
#include "daemon/cluster/out_key.h"
#include "daemon/cluster/partition.h"

#define MAX_FRAME (64u << 20)

typedef struct args {
    const char *cmd, *url, *durable, *creds, *ca;
    uint32_t partitions;
    bool no_msg_id;
    uint64_t until_final;
    double idle_timeout;
} args;

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "rwkvd-nats: %s\n"
            "usage: rwkvd-nats pub --nats URL [--partitions P] [--no-msg-id]\n"
            "       rwkvd-nats sub --nats URL --durable NAME [--until-final N] "
            "[--idle-timeout S]\n"
            "       rwkvd-nats leases --nats URL\n"
            "       (also --nats-creds PATH, --nats-ca PATH)\n",
            why);
    return 2;
}

static int parse(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->idle_timeout = 0;
    if (argc < 2)
        return usage("a command is needed");
    a->cmd = argv[1];
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},        {"partitions", required_argument, 0, 'p'},
        {"no-msg-id", no_argument, 0, 'm'},         {"durable", required_argument, 0, 'd'},
        {"until-final", required_argument, 0, 'u'}, {"idle-timeout", required_argument, 0, 'i'},
        {"nats-creds", required_argument, 0, 'c'},  {"nats-ca", required_argument, 0, 'a'},
        {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
        case 'n': a->url = optarg; break;
        case 'd': a->durable = optarg; break;
        case 'c': a->creds = optarg; break;
        case 'a': a->ca = optarg; break;
        case 'm': a->no_msg_id = true; break;
        case 'p': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || *end || v < 1 || v > 4096)
                return usage("--partitions: 1..4096");
            a->partitions = (uint32_t)v;
            break;
        }
        case 'u':
            a->until_final = strtoull(optarg, &end, 10);
            if (errno || *end)
                return usage("--until-final: a count");
            break;
        case 'i':
            a->idle_timeout = strtod(optarg, &end);
            if (errno || *end || a->idle_timeout < 0)
                return usage("--idle-timeout: seconds");
            break;
        default:
            return usage("unknown option");
        }
    }
    if (optind != argc)
        return usage("unexpected argument");
    if (!a->url)
        return usage("--nats URL is needed");
    if (strcmp(a->cmd, "sub") == 0 && (!a->durable || !rwkvd_worker_id_valid(a->durable)))
        return usage("sub needs --durable NAME (1..64 of A-Z a-z 0-9 _ -)");
    return 0;
}

static int read_frame(FILE *in, uint8_t **buf, size_t *cap, size_t *len)
{
    uint8_t h[4];
    size_t k = fread(h, 1, 4, in);
    if (k == 0)
        return 0;
    if (k != 4)
        return -1;
    uint32_t n = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                 (uint32_t)h[3] << 24;
    if (n > MAX_FRAME)
        return -1;
    if (n > *cap) {
        uint8_t *b = realloc(*buf, n);
        if (!b)
            return -1;
        *buf = b;
        *cap = n;
    }
    if (fread(*buf, 1, n, in) != n)
        return -1;
    *len = n;
    return 1;
}

static int cmd_pub(const args *a, rwkvd_nats *n)
{
    uint32_t P = 0;
    rwkv_error err;
    if (rwkvd_nats_ensure_streams(n, &err) != 0 ||
        rwkvd_nats_partitions(n, a->partitions ? a->partitions : 16, &P, &err) != 0) {
        /* without --partitions, an existing cluster's count is used */
        if (a->partitions || rwkvd_nats_partitions(n, 0, &P, &err) != 0) {
            fprintf(stderr, "rwkvd-nats: %s\n", err.msg);
            return 1;
        }
    }
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    uint64_t count = 0;
    int rc = 0, r;
    while ((r = read_frame(stdin, &buf, &cap, &len)) == 1) {
        rwkvd_ingest peek;
        memset(&peek, 0, sizeof peek);
        rwkvd_ingest_peek(buf, len, &peek);
        char subject[RWKVD_SUBJECT_MAX], id[RWKVD_SUBJECT_MAX], hex[RWKVD_DOC_HEX_MAX];
        if (peek.have_doc) {
            rwkvd_in_subject(peek.doc, peek.doc_len, P, subject);
            rwkvd_doc_hex(peek.doc, peek.doc_len, hex);
        } else {
            snprintf(subject, sizeof subject, "rwkvd.in.0.00");
        }
        natsMsg *m = NULL;
        natsStatus s = natsMsg_Create(&m, subject, NULL, (const char *)buf, (int)len);
        if (s == NATS_OK && peek.have_doc && peek.have_seq && !a->no_msg_id) {
            snprintf(id, sizeof id, "%s:%llu", hex, (unsigned long long)peek.seq);
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        }
        while (s == NATS_OK || s == NATS_TIMEOUT) {
            s = js_PublishMsgAsync(n->js, &m, NULL);
            if (s != NATS_TIMEOUT) /* TIMEOUT: too many in flight, retry */
                break;
        }
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
            fprintf(stderr, "rwkvd-nats: publish on %s: %s\n", subject, rwkvd_nats_why(s));
            rc = 1;
            break;
        }
        count++;
    }
    if (r < 0) {
        fprintf(stderr, "rwkvd-nats: stdin: a cut or oversized frame after %llu messages\n",
                (unsigned long long)count);
        rc = 1;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    natsStatus s = js_PublishAsyncComplete(n->js, &po);
    if (s != NATS_OK) {
        fprintf(stderr, "rwkvd-nats: not every message was confirmed stored: %s\n",
                rwkvd_nats_why(s));
        rc = 1;
    }
    free(buf);
    return rc;
}

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    int *failed = closure;
    *failed = 1;
    fprintf(stderr, "rwkvd-nats: a message was not stored: %s\n",
            pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

/* Distinct final outputs by doc (linear: a test-sized tool). */
typedef struct finals {
    char **hex;
    size_t n, cap;
} finals;

static bool finals_add(finals *f, const char *hex)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->hex[i], hex) == 0)
            return false;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        char **h = realloc(f->hex, cap * sizeof *h);
        if (!h)
            return false;
        f->hex = h;
        f->cap = cap;
    }
    f->hex[f->n] = strdup(hex);
    if (!f->hex[f->n])
        return false;
    f->n++;
    return true;
}

static int cmd_sub(const args *a, rwkvd_nats *n)
{
    rwkv_error err;
    if (rwkvd_nats_ensure_streams(n, &err) != 0) {
        fprintf(stderr, "rwkvd-nats: %s\n", err.msg);
        return 1;
    }
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = RWKVD_NATS_OUT_STREAM;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 65536;
    natsStatus s = js_PullSubscribe(&sub, n->js, RWKVD_NATS_OUT_SUBJECTS, a->durable, NULL, &so,
                                    &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "rwkvd-nats: durable consumer %s on %s: %s\n", a->durable,
                RWKVD_NATS_OUT_STREAM, rwkvd_nats_why(s));
        return 1;
    }
    finals f = {0};
    double last = now_s();
    int rc = 0;
    while (!stop_signal) {
        if (a->until_final && f.n >= a->until_final)
            break;
        if (a->idle_timeout > 0 && now_s() - last > a->idle_timeout) {
            rc = a->until_final ? 1 : 0;
            if (rc)
                fprintf(stderr, "rwkvd-nats: idle for %.1f s with %zu of %llu finals\n",
                        a->idle_timeout, f.n, (unsigned long long)a->until_final);
            break;
        }
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, 256, 200, &jerr);
        if (s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0)) {
            natsMsgList_Destroy(&list);
            continue;
        }
        if (s != NATS_OK) {
            /* reconnecting, or the server restarting: go on */
            natsMsgList_Destroy(&list);
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        last = now_s();
        for (int i = 0; i < list.Count; i++) {
            const char *d = natsMsg_GetData(list.Msgs[i]);
            uint32_t len = (uint32_t)natsMsg_GetDataLength(list.Msgs[i]);
            uint8_t h[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                            (uint8_t)(len >> 24)};
            if (fwrite(h, 1, 4, stdout) != 4 || fwrite(d, 1, len, stdout) != len) {
                fprintf(stderr, "rwkvd-nats: stdout: %s\n", strerror(errno));
                rc = 1;
                break;
            }
            rwkvd_out_key k;
            if (rwkvd_out_key_read(d, len, &k) == 0 && k.type == RWKVD_OUTK_FINAL && k.have_doc) {
                char hex[RWKVD_DOC_HEX_MAX];
                rwkvd_doc_hex(k.doc, k.doc_len, hex);
                finals_add(&f, hex);
            }
        }
        if (fflush(stdout) != 0)
            rc = 1;
        /* acked only once written out */
        for (int i = 0; rc == 0 && i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        natsMsgList_Destroy(&list);
        if (rc)
            break;
    }
    natsConnection_FlushTimeout(n->nc, 5000);
    for (size_t i = 0; i < f.n; i++)
        free(f.hex[i]);
    free(f.hex);
    natsSubscription_Destroy(sub); /* the durable consumer stays on the server */
    return rc;
}

static int cmd_leases(const args *a, rwkvd_nats *n)
{
    (void)a;
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, n->js, RWKVD_NATS_LEASE_BUCKET);
    if (s != NATS_OK) {
        printf("workers 0\n");
        return 0;
    }
    kvKeysList list = {0};
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.Timeout = 2000;
    int workers = 0;
    if (kvStore_Keys(&list, kv, &wo) == NATS_OK) {
        for (int i = 0; i < list.Count; i++) {
            if (strncmp(list.Keys[i], "w.", 2) == 0) {
                workers++;
                continue;
            }
            kvEntry *e = NULL;
            if (kvStore_Get(&e, kv, list.Keys[i]) != NATS_OK)
                continue;
            int len = kvEntry_ValueLen(e);
            if (len > 0)
                printf("%s %.*s %llu\n", list.Keys[i], len, (const char *)kvEntry_Value(e),
                       (unsigned long long)kvEntry_Revision(e));
            kvEntry_Destroy(e);
        }
        kvKeysList_Destroy(&list);
    }
    printf("workers %d\n", workers);
    kvStore_Destroy(kv);
    return 0;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    if (strcmp(a.cmd, "pub") && strcmp(a.cmd, "sub") && strcmp(a.cmd, "leases"))
        return usage("the command is pub, sub or leases");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int pub_failed = 0;
    rwkvd_nats n;
    rwkv_error err;
    rwkvd_nats_params p = {a.url, a.creds, a.ca, "rwkvd-nats", 10000, 0, 1, on_pub_error,
                           &pub_failed};
    if (rwkvd_nats_connect(&n, &p, &err) != 0) {
        fprintf(stderr, "rwkvd-nats: %s\n", err.msg);
        rwkvd_nats_close(&n);
        nats_Close();
        return 1;
    }
    if (strcmp(a.cmd, "pub") == 0)
        rc = cmd_pub(&a, &n);
    else if (strcmp(a.cmd, "sub") == 0)
        rc = cmd_sub(&a, &n);
    else
        rc = cmd_leases(&a, &n);
    if (pub_failed)
        rc = 1;
    rwkvd_nats_close(&n);
    nats_Close();
    return rc;
}
