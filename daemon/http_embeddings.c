/* http_embeddings.c — see http_embeddings.h.  The request body is outside
 * bytes: it is size-capped while it arrives, parsed by jansson, and every
 * field is type- and range-checked before anything runs; every refusal is
 * an OpenAI-style error object {"error": {"message", "type", "param",
 * "code"}} with the matching HTTP status. */
#include "daemon/http_embeddings.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedding.h"
#include "core/tokenizer.h"
#include "daemon/embed_batcher.h"
#include "daemon/http_embed_request.h"
#include "daemon/log.h"

#define PATH "/v1/embeddings"

typedef struct rwkvd_http_embed rwkvd_http_embed;

struct rwkvd_http_embed {
    rwkvd_embed_limits lim;
    int C;
    size_t max_body;
    char model_name[RWKVD_CFG_PATH_MAX]; /* echoed when the request names no model */
    rwkvd_embed_batcher *batcher;
    struct MHD_Daemon *mhd;
};

/* One connection's request body, accumulated as it arrives. */
typedef struct {
    char *body;
    size_t len, cap;
    bool too_big;
} conn_ctx;

/* The answer being built: status and JSON body. */
typedef struct {
    unsigned status;
    json_t *body;
} reply;

static void set_error(reply *r, unsigned status, const char *type, const char *param,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void set_error(reply *r, unsigned status, const char *type, const char *param,
                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(r->body);
    r->status = status;
    r->body = json_pack("{s:{s:s,s:s,s:o,s:n}}", "error", "message", msg, "type", type, "param",
                        param ? json_string(param) : json_null(), "code");
}


/* ---------------------------------------------------------------- output */

static char *base64(const void *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *w++ = tbl[v >> 18 & 63];
        *w++ = tbl[v >> 12 & 63];
        *w++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *w = 0;
    return o;
}

/* One embedding as the request's encoding_format wants it. */
static json_t *embedding_json(const float *v, int C, bool b64)
{
    if (b64) {
        unsigned char le[4 * 4096];
        for (int i = 0; i < C; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            le[4 * i] = (unsigned char)u;
            le[4 * i + 1] = (unsigned char)(u >> 8);
            le[4 * i + 2] = (unsigned char)(u >> 16);
            le[4 * i + 3] = (unsigned char)(u >> 24);
        }
        char *s = base64(le, 4 * (size_t)C);
        json_t *j = s ? json_string(s) : NULL;
        free(s);
        return j;
    }
    json_t *a = json_array();
    for (int i = 0; a && i < C; i++)
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* ---------------------------------------------------------------- request */

static void handle_request(rwkvd_http_embed *h, const char *body, size_t len, reply *r)
{
    rwkvd_embed_request q;
    rwkvd_embed_refusal why;
    if (rwkvd_embed_request_parse(body, len, &h->lim, &q, &why) != 0) {
        set_error(r, why.status, why.type, why.param[0] ? why.param : NULL, "%s", why.message);
        return;
    }
    float *out = malloc(sizeof(float) * (size_t)h->C * q.count);
    if (!out) {
        set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
        goto out;
    }
    rwkvd_embed_job job = {.ids = (const uint32_t *const *)q.ids, .n = q.n,
                           .n_inputs = q.count, .task = q.task, .normalize = q.normalize,
                           .out = out};
    if (rwkvd_embed_batcher_run(h->batcher, &job) != 0) {
        bool stopping = strstr(job.err, "shutting down") != NULL;
        set_error(r, stopping ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
                  "server_error", NULL, "%s", job.err);
        goto out;
    }
    json_t *data = json_array();
    for (size_t i = 0; data && i < q.count; i++) {
        json_t *e = embedding_json(out + i * (size_t)h->C, h->C, q.base64);
        json_t *item = e ? json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                     (json_int_t)i, "embedding", e)
                         : NULL;
        if (!item || json_array_append_new(data, item) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_decref(r->body);
    /* s? keeps a model name that is not valid UTF-8 from failing the pack */
    json_t *name = json_string(q.model ? q.model : h->model_name);
    /* precision: an rwkvd extension beside model (PROTOCOL.md §8.1); OpenAI
     * clients ignore fields they do not know */
    r->body = data ? json_pack("{s:s,s:o,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data,
                               "model", name ? name : json_string("?"), "precision",
                               rwkv_precision_name(rwkvd_embed_batcher_precision(h->batcher)),
                               "usage", "prompt_tokens", (json_int_t)q.tokens, "total_tokens",
                               (json_int_t)q.tokens)
                   : NULL;
    if (!data)
        json_decref(name);
    r->status = MHD_HTTP_OK;
    if (!r->body)
        set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
out:
    free(out);
    rwkvd_embed_request_free(&q);
}

/* ---------------------------------------------------------------- MHD */

static enum MHD_Result respond(struct MHD_Connection *conn, reply *r)
{
    char *text = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
    json_decref(r->body);
    r->body = NULL;
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, "Allow", "POST");
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    rwkvd_http_embed *h = cls;
    conn_ctx *c = *con_cls;
    if (!c) { /* the headers: the body (if any) follows in later calls */
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_big || c->len + n > h->max_body) {
            c->too_big = true; /* keep reading, answer 413 at the end */
            free(c->body);
            c->body = NULL;
            c->len = c->cap = 0;
            return MHD_YES;
        }
        if (c->len + n > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n)
                cap *= 2;
            char *b = realloc(c->body, cap);
            if (!b)
                return MHD_NO;
            c->body = b;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload, n);
        c->len += n;
        return MHD_YES;
    }
    reply r = {0, NULL};
    if (strcmp(url, PATH) != 0)
        set_error(&r, MHD_HTTP_NOT_FOUND, "invalid_request_error", NULL,
                  "unknown path %.100s: this endpoint serves POST %s", url, PATH);
    else if (strcmp(method, "POST") != 0)
        set_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL,
                  "%s is not allowed: use POST %s", method, PATH);
    else if (c->too_big)
        set_error(&r, 413u /* content too large */, "invalid_request_error", NULL,
                  "the request body is larger than %zu bytes (--http-max-body); send long "
                  "documents through the ZeroMQ ingest socket, which streams any length",
                  h->max_body);
    else
        handle_request(h, c->body ? c->body : "", c->len, &r);
    return respond(conn, &r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    conn_ctx *c = *con_cls;
    if (c) {
        free(c->body);
        free(c);
    }
    *con_cls = NULL;
}

int rwkvd_http_embeddings_start(rwkvd_server *srv, rwkv_error *err)
{
    const rwkvd_config *cfg = &srv->cfg;
    if (cfg->http_port <= 0)
        return 0;
    if (!srv->mi->embed_tasks)
        return rwkv_fail(err, "http_port: /v1/embeddings needs an EmbeddingRWKV model; %s is a "
                              "%s language model",
                         cfg->model, srv->mi->generation_name);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->http_port);
    if (inet_pton(AF_INET, cfg->http_bind, &sa.sin_addr) != 1)
        return rwkv_fail(err, "http_bind '%s' is not an IPv4 address", cfg->http_bind);
    rwkvd_http_embed *h = calloc(1, sizeof *h);
    if (!h)
        return rwkv_fail(err, "embeddings: out of memory");
    h->lim = (rwkvd_embed_limits){.tok = srv->tok, .n_embd = srv->mi->n_embd,
                                  .vocab = srv->mi->vocab_size,
                                  .embed_tasks = srv->mi->embed_tasks,
                                  .max_tokens = (size_t)cfg->http_max_tokens};
    h->C = srv->mi->n_embd;
    h->max_body = (size_t)cfg->http_max_body;
    const char *base = strrchr(cfg->model, '/');
    snprintf(h->model_name, sizeof h->model_name, "%s", base ? base + 1 : cfg->model);
    if (h->C > 4096) { /* embedding_json's stack buffer */
        free(h);
        return rwkv_fail(err, "embeddings: n_embd %d above 4096 is not served over HTTP",
                         srv->mi->n_embd);
    }
    rwkv_engine_opts eo = {cfg->device, cfg->threads, (rwkv_precision)cfg->precision_code};
    if (!(h->batcher = rwkvd_embed_batcher_new(srv->model, &eo, err))) {
        free(h);
        return -1;
    }
    h->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                  MHD_USE_ERROR_LOG,
                              (uint16_t)cfg->http_port, NULL, NULL, handle, h,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                              MHD_OPTION_CONNECTION_LIMIT, 64u,
                              MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!h->mhd) {
        rwkvd_embed_batcher_free(h->batcher);
        free(h);
        return rwkv_fail(err, "http: cannot listen on %s:%d", cfg->http_bind, cfg->http_port);
    }
    srv->http_embed = h;
    LOG_INFO("POST %s on http://%s:%d (max %d tokens per input)", PATH, cfg->http_bind,
             cfg->http_port, cfg->http_max_tokens);
    return 0;
}

void rwkvd_http_embeddings_stop(rwkvd_server *srv)
{
    rwkvd_http_embed *h = srv->http_embed;
    if (!h)
        return;
    /* the listener first: its connection threads may be waiting on the
     * worker, which keeps serving until they are gone */
    MHD_stop_daemon(h->mhd);
    rwkvd_embed_batcher_free(h->batcher);
    free(h);
    srv->http_embed = NULL;
}
