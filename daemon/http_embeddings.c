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
#include "daemon/log.h"

#define PATH "/v1/embeddings"
#define MAX_INPUTS 2048 /* OpenAI's limit per request */

typedef struct rwkvd_http_embed rwkvd_http_embed;

struct rwkvd_http_embed {
    const rwkv_model *m;
    const rwkv_tokenizer *tok;
    int C, V;
    size_t max_tokens, max_body;
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

#define BAD(r, param, ...) set_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request_error", param, __VA_ARGS__)

/* ---------------------------------------------------------------- inputs */

typedef struct {
    uint32_t **ids;
    size_t *n;
    size_t count;
    uint64_t tokens;
} inputs;

static void inputs_free(inputs *in)
{
    for (size_t i = 0; i < in->count; i++)
        free(in->ids[i]);
    free(in->ids);
    free(in->n);
    memset(in, 0, sizeof *in);
}

/* Room for n inputs. */
static int inputs_init(inputs *in, size_t n)
{
    in->ids = calloc(n ? n : 1, sizeof *in->ids);
    in->n = calloc(n ? n : 1, sizeof *in->n);
    return in->ids && in->n ? 0 : -1;
}

static bool too_long(rwkvd_http_embed *h, reply *r, size_t i, size_t n)
{
    if (n <= h->max_tokens)
        return false;
    BAD(r, "input",
        "input[%zu] has %zu tokens (EOS included), more than this endpoint takes (%zu, "
        "--http-max-tokens); send long documents through the ZeroMQ ingest socket, which "
        "streams any length",
        i, n, h->max_tokens);
    return true;
}

/* A string: its tokens, then EOS. */
static int add_text(rwkvd_http_embed *h, inputs *in, const char *s, size_t len, reply *r)
{
    size_t i = in->count;
    rwkv_ids ids = {0};
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_tokenizer_encode(h->tok, s, len, &ids, &err) != 0 ||
        rwkv_ids_push(&ids, RWKV_EMBED_EOS, &err) != 0) {
        rwkv_ids_free(&ids);
        set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "%s", err.msg);
        return -1;
    }
    if (too_long(h, r, i, ids.n)) {
        rwkv_ids_free(&ids);
        return -1;
    }
    in->ids[i] = ids.v;
    in->n[i] = ids.n;
    in->count++;
    in->tokens += ids.n;
    return 0;
}

/* A token array: as given, EOS appended unless it ends with one. */
static int add_tokens(rwkvd_http_embed *h, inputs *in, json_t *arr, reply *r)
{
    size_t i = in->count, n = json_array_size(arr);
    uint32_t *v = malloc(sizeof *v * (n + 1));
    if (!v) {
        set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(arr, k);
        json_int_t id = json_is_integer(e) ? json_integer_value(e) : -1;
        if (id < 0 || id >= h->V) {
            free(v);
            BAD(r, "input", "input[%zu][%zu]: a token id must be an integer in 0..%d", i, k,
                h->V - 1);
            return -1;
        }
        v[k] = (uint32_t)id;
    }
    if (n == 0 || v[n - 1] != RWKV_EMBED_EOS)
        v[n++] = RWKV_EMBED_EOS;
    if (too_long(h, r, i, n)) {
        free(v);
        return -1;
    }
    in->ids[i] = v;
    in->n[i] = n;
    in->count++;
    in->tokens += n;
    return 0;
}

/* "input": a string, an array of strings, an array of token ids, or an
 * array of token-id arrays. */
static int parse_input(rwkvd_http_embed *h, json_t *input, inputs *in, reply *r)
{
    if (json_is_string(input)) {
        if (inputs_init(in, 1) != 0)
            goto oom;
        return add_text(h, in, json_string_value(input), json_string_length(input), r);
    }
    if (!json_is_array(input)) {
        BAD(r, "input", "'input' must be a string, an array of strings, an array of token ids "
                        "or an array of token-id arrays");
        return -1;
    }
    size_t n = json_array_size(input);
    if (n == 0) {
        BAD(r, "input", "'input' must not be an empty array");
        return -1;
    }
    json_t *first = json_array_get(input, 0);
    if (json_is_integer(first)) { /* one token array */
        if (inputs_init(in, 1) != 0)
            goto oom;
        return add_tokens(h, in, input, r);
    }
    if (n > MAX_INPUTS) {
        BAD(r, "input", "'input' has %zu items; at most %d per request", n, MAX_INPUTS);
        return -1;
    }
    if (inputs_init(in, n) != 0)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(input, i);
        if (json_is_string(first) && json_is_string(e)) {
            if (add_text(h, in, json_string_value(e), json_string_length(e), r) != 0)
                return -1;
        } else if (json_is_array(first) && json_is_array(e)) {
            if (add_tokens(h, in, e, r) != 0)
                return -1;
        } else {
            BAD(r, "input", "input[%zu]: every item must be a string, or every item an array "
                            "of token ids",
                i);
            return -1;
        }
    }
    return 0;
oom:
    set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
    return -1;
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
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    inputs in = {0};
    float *out = NULL;
    if (!req) {
        BAD(r, NULL, "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
            jerr.line, jerr.column);
        return;
    }
    if (!json_is_object(req)) {
        BAD(r, NULL, "the body must be a JSON object");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(req, key, val)
    {
        if (strcmp(key, "input") && strcmp(key, "model") && strcmp(key, "encoding_format") &&
            strcmp(key, "dimensions") && strcmp(key, "user") && strcmp(key, "task") &&
            strcmp(key, "normalize")) {
            BAD(r, key, "unrecognized request argument supplied: %.64s", key);
            goto out;
        }
    }
    json_t *model = json_object_get(req, "model"), *fmt = json_object_get(req, "encoding_format");
    json_t *dims = json_object_get(req, "dimensions"), *task = json_object_get(req, "task");
    json_t *norm = json_object_get(req, "normalize"), *user = json_object_get(req, "user");
    json_t *input = json_object_get(req, "input");
    rwkv_embed_task t = RWKV_TASK_RETRIEVAL;
    if (model && !json_is_string(model)) {
        BAD(r, "model", "'model' must be a string");
        goto out;
    }
    if (user && !json_is_string(user)) {
        BAD(r, "user", "'user' must be a string");
        goto out;
    }
    if (fmt && !(json_is_string(fmt) && (!strcmp(json_string_value(fmt), "float") ||
                                         !strcmp(json_string_value(fmt), "base64")))) {
        BAD(r, "encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
        goto out;
    }
    if (dims && !(json_is_integer(dims) && json_integer_value(dims) == h->C)) {
        BAD(r, "dimensions", "'dimensions' must be %d, this model's embedding size", h->C);
        goto out;
    }
    rwkv_error terr;
    rwkv_error_clear(&terr);
    if (task && (!json_is_string(task) || rwkv_embed_task_parse(json_string_value(task), &t) != 0 ||
                 rwkv_embed_check(h->m, t, RWKV_EMBED_EOS, &terr) != 0)) {
        BAD(r, "task", "'task' must be a task head this model has: retrieval, similarity or "
                       "classification");
        goto out;
    }
    if (norm && !json_is_boolean(norm)) {
        BAD(r, "normalize", "'normalize' must be true or false");
        goto out;
    }
    if (!input) {
        BAD(r, "input", "'input' is required");
        goto out;
    }
    if (parse_input(h, input, &in, r) != 0)
        goto out;
    out = malloc(sizeof(float) * (size_t)h->C * in.count);
    if (!out) {
        set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
        goto out;
    }
    rwkvd_embed_job job = {.ids = (const uint32_t *const *)in.ids, .n = in.n,
                           .n_inputs = in.count, .task = t,
                           .normalize = norm ? json_is_true(norm) : true, .out = out};
    if (rwkvd_embed_batcher_run(h->batcher, &job) != 0) {
        bool stopping = strstr(job.err, "shutting down") != NULL;
        set_error(r, stopping ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
                  "server_error", NULL, "%s", job.err);
        goto out;
    }
    bool b64 = fmt && !strcmp(json_string_value(fmt), "base64");
    json_t *data = json_array();
    for (size_t i = 0; data && i < in.count; i++) {
        json_t *e = embedding_json(out + i * (size_t)h->C, h->C, b64);
        json_t *item = e ? json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                     (json_int_t)i, "embedding", e)
                         : NULL;
        if (!item || json_array_append_new(data, item) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_decref(r->body);
    r->body = data ? json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data,
                               "model", model ? json_string_value(model) : h->model_name,
                               "usage", "prompt_tokens", (json_int_t)in.tokens, "total_tokens",
                               (json_int_t)in.tokens)
                   : NULL;
    r->status = MHD_HTTP_OK;
    if (!r->body)
        set_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "out of memory");
out:
    free(out);
    inputs_free(&in);
    json_decref(req);
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
    h->m = srv->model;
    h->tok = srv->tok;
    h->C = srv->mi->n_embd;
    h->V = srv->mi->vocab_size;
    h->max_tokens = (size_t)cfg->http_max_tokens;
    h->max_body = (size_t)cfg->http_max_body;
    const char *base = strrchr(cfg->model, '/');
    snprintf(h->model_name, sizeof h->model_name, "%s", base ? base + 1 : cfg->model);
    if (h->C > 4096) { /* embedding_json's stack buffer */
        free(h);
        return rwkv_fail(err, "embeddings: n_embd %d above 4096 is not served over HTTP",
                         srv->mi->n_embd);
    }
    if (!(h->batcher = rwkvd_embed_batcher_new(srv->model, cfg->device, cfg->threads, err))) {
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
