/* nats_setup.c — see nats_setup.h. */
#include "daemon/cluster/nats_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cluster/partition.h"

const char *rwkvd_nats_why(natsStatus s)
{
    static _Thread_local char buf[320];
    const char *last = nats_GetLastError(NULL);
    snprintf(buf, sizeof buf, "%s%s%.250s", natsStatus_GetText(s), last && *last ? ": " : "",
             last ? last : "");
    return buf;
}

int rwkvd_nats_connect(rwkvd_nats *n, const rwkvd_nats_params *p, rwkv_error *err)
{
    memset(n, 0, sizeof *n);
    n->replicas = p->replicas > 0 ? p->replicas : 1;
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    /* "a,b,c": natsOptions_SetURL takes one URL; the list goes to SetServers */
    char urls[2048];
    const char *list[16];
    int n_urls = 0;
    snprintf(urls, sizeof urls, "%s", p->url);
    for (char *save = NULL, *u = strtok_r(urls, ",", &save); u && n_urls < 16;
         u = strtok_r(NULL, ",", &save))
        if (*u)
            list[n_urls++] = u;
    if (s == NATS_OK)
        s = n_urls > 1 ? natsOptions_SetServers(o, list, n_urls) : natsOptions_SetURL(o, p->url);
    if (s == NATS_OK && p->name)
        s = natsOptions_SetName(o, p->name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* a server restart is survived */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK && p->creds && *p->creds)
        s = natsOptions_SetUserCredentialsFromFiles(o, p->creds, NULL);
    if (s == NATS_OK && p->ca && *p->ca) {
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(o, p->ca);
    }
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return rwkv_fail(err, "NATS options: %s", rwkvd_nats_why(s));
    }
    s = natsConnection_Connect(&n->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return rwkv_fail(err, "cannot connect to NATS at %.200s: %s", p->url, rwkvd_nats_why(s));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = p->pub_timeout_ms > 0 ? p->pub_timeout_ms : 5000;
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.ErrHandler = p->on_pub_error;
    jo.PublishAsync.ErrHandlerClosure = p->on_pub_error_ctx;
    s = natsConnection_JetStream(&n->js, n->nc, &jo);
    if (s == NATS_OK) {
        jsOptions ko;
        jsOptions_Init(&ko);
        ko.Wait = p->kv_timeout_ms > 0 ? p->kv_timeout_ms : jo.Wait;
        s = natsConnection_JetStream(&n->js_kv, n->nc, &ko);
    }
    if (s != NATS_OK)
        return rwkv_fail(err, "JetStream context: %s", rwkvd_nats_why(s));
    return 0;
}

static int ensure_stream(rwkvd_nats *n, const char *name, const char *subject, rwkv_error *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, n->js, name, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    jsStreamConfig c;
    jsStreamConfig_Init(&c);
    c.Name = name;
    const char *subjects[1] = {subject};
    c.Subjects = subjects;
    c.SubjectsLen = 1;
    c.Storage = js_FileStorage;
    c.Retention = js_LimitsPolicy;
    c.Duplicates = RWKVD_NATS_DUP_WINDOW_NS;
    c.Replicas = n->replicas;
    s = js_AddStream(&si, n->js, &c, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    /* created meanwhile by another process */
    if (js_GetStreamInfo(&si, n->js, name, NULL, &jerr) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    return rwkv_fail(err, "cannot create the JetStream stream %s: %s", name, rwkvd_nats_why(s));
}

int rwkvd_nats_ensure_streams(rwkvd_nats *n, rwkv_error *err)
{
    if (ensure_stream(n, RWKVD_NATS_IN_STREAM, RWKVD_NATS_IN_SUBJECTS, err) != 0 ||
        ensure_stream(n, RWKVD_NATS_OUT_STREAM, RWKVD_NATS_OUT_SUBJECTS, err) != 0)
        return -1;
    return 0;
}

static int open_bucket(rwkvd_nats *n, jsCtx *use, const char *bucket, int64_t ttl_ms,
                       kvStore **out, rwkv_error *err)
{
    if (js_KeyValue(out, use, bucket) == NATS_OK)
        return 0;
    kvConfig c;
    kvConfig_Init(&c);
    c.Bucket = bucket;
    c.History = 1;
    c.TTL = ttl_ms * 1000000; /* nats.c passes it as the stream MaxAge: ns */
    c.StorageType = js_FileStorage;
    c.Replicas = n->replicas;
    natsStatus s = js_CreateKeyValue(out, n->js, &c);
    if (s == NATS_OK) {
        kvStore_Destroy(*out); /* opened again through the context it is used with */
        *out = NULL;
    }
    if (js_KeyValue(out, use, bucket) == NATS_OK)
        return 0;
    return rwkv_fail(err, "cannot create the key-value bucket %s: %s", bucket, rwkvd_nats_why(s));
}

int rwkvd_nats_lease_bucket(rwkvd_nats *n, int64_t ttl_ms, rwkv_error *err)
{
    return open_bucket(n, n->js_kv, RWKVD_NATS_LEASE_BUCKET, ttl_ms, &n->lease_kv, err);
}

int rwkvd_nats_partitions(rwkvd_nats *n, uint32_t want, uint32_t *out, rwkv_error *err)
{
    if (!n->cluster_kv &&
        open_bucket(n, n->js, RWKVD_NATS_CLUSTER_BUCKET, 0, &n->cluster_kv, err) != 0)
        return -1;
    char text[16];
    snprintf(text, sizeof text, "%u", want);
    if (want > 0 && kvStore_CreateString(NULL, n->cluster_kv, "partitions", text) == NATS_OK) {
        *out = want;
        return 0;
    }
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, n->cluster_kv, "partitions");
    if (s != NATS_OK)
        return rwkv_fail(err, "%s: key 'partitions': %s", RWKVD_NATS_CLUSTER_BUCKET,
                         rwkvd_nats_why(s));
    char got[16] = "";
    int len = kvEntry_ValueLen(e);
    if (len > 0 && len < (int)sizeof got)
        memcpy(got, kvEntry_Value(e), (size_t)len);
    kvEntry_Destroy(e);
    char *end;
    unsigned long v = strtoul(got, &end, 10);
    if (!got[0] || *end || v < 1 || v > 4096)
        return rwkv_fail(err, "%s: key 'partitions' holds '%.15s', not a count 1..4096",
                         RWKVD_NATS_CLUSTER_BUCKET, got);
    if (want > 0 && v != want)
        return rwkv_fail(err, "the cluster has %lu partitions (bucket %s), not %u: every "
                              "worker and producer must use the same count",
                         v, RWKVD_NATS_CLUSTER_BUCKET, want);
    *out = (uint32_t)v;
    return 0;
}

void rwkvd_nats_close(rwkvd_nats *n)
{
    if (n->lease_kv)
        kvStore_Destroy(n->lease_kv);
    if (n->cluster_kv)
        kvStore_Destroy(n->cluster_kv);
    if (n->js)
        jsCtx_Destroy(n->js);
    if (n->js_kv)
        jsCtx_Destroy(n->js_kv);
    if (n->nc) {
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
    }
    memset(n, 0, sizeof *n);
}
