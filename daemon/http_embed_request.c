/* http_embed_request.c — see http_embed_request.h.  Every field is type-
 * and range-checked before anything is tokenized; strings get EOS appended,
 * token arrays get it unless they end with one. */
#include "daemon/http_embed_request.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(rwkvd_embed_refusal *why, unsigned status, const char *param, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
static int refuse(rwkvd_embed_refusal *why, unsigned status, const char *param, const char *fmt,
                  ...)
{
    why->status = status;
    why->type = status == 400 || status == 413 ? "invalid_request_error" : "server_error";
    snprintf(why->param, sizeof why->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    /* JSON strings must be UTF-8: a parser message may quote input bytes */
    for (char *c = why->message; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return -1;
}

#define BAD(why, param, ...) refuse(why, 400, param, __VA_ARGS__)
#define OOM(why) refuse(why, 500, NULL, "out of memory")

void rwkvd_embed_request_free(rwkvd_embed_request *r)
{
    for (size_t i = 0; r->ids && i < r->count; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->n);
    free(r->model);
    memset(r, 0, sizeof *r);
}

static int too_long(const rwkvd_embed_limits *lim, rwkvd_embed_refusal *why, size_t i, size_t n)
{
    if (n <= lim->max_tokens)
        return 0;
    return BAD(why, "input",
               "input[%zu] has %zu tokens (EOS included), more than this endpoint takes (%zu, "
               "--http-max-tokens); send long documents through the ZeroMQ ingest socket, "
               "which streams any length",
               i, n, lim->max_tokens);
}

/* A string: its tokens, then EOS. */
static int add_text(const rwkvd_embed_limits *lim, rwkvd_embed_request *r, json_t *s,
                    rwkvd_embed_refusal *why)
{
    size_t i = r->count;
    rwkv_ids ids = {0};
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_tokenizer_encode(lim->tok, json_string_value(s), json_string_length(s), &ids,
                              &err) != 0 ||
        rwkv_ids_push(&ids, RWKV_EMBED_EOS, &err) != 0) {
        rwkv_ids_free(&ids);
        return OOM(why);
    }
    if (too_long(lim, why, i, ids.n) != 0) {
        rwkv_ids_free(&ids);
        return -1;
    }
    r->ids[i] = ids.v;
    r->n[i] = ids.n;
    r->count++;
    r->tokens += ids.n;
    return 0;
}

/* A token array: as given, EOS appended unless it ends with one. */
static int add_tokens(const rwkvd_embed_limits *lim, rwkvd_embed_request *r, json_t *arr,
                      rwkvd_embed_refusal *why)
{
    size_t i = r->count, n = json_array_size(arr);
    if (n + 1 > lim->max_tokens + 1) /* checked before allocating for it */
        return too_long(lim, why, i, n);
    uint32_t *v = malloc(sizeof *v * (n + 1));
    if (!v)
        return OOM(why);
    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(arr, k);
        json_int_t id = json_is_integer(e) ? json_integer_value(e) : -1;
        if (id < 0 || id >= lim->vocab) {
            free(v);
            return BAD(why, "input", "input[%zu][%zu]: a token id must be an integer in 0..%d",
                       i, k, lim->vocab - 1);
        }
        v[k] = (uint32_t)id;
    }
    if (n == 0 || v[n - 1] != RWKV_EMBED_EOS)
        v[n++] = RWKV_EMBED_EOS;
    if (too_long(lim, why, i, n) != 0) {
        free(v);
        return -1;
    }
    r->ids[i] = v;
    r->n[i] = n;
    r->count++;
    r->tokens += n;
    return 0;
}

static int alloc_inputs(rwkvd_embed_request *r, size_t n, rwkvd_embed_refusal *why)
{
    r->ids = calloc(n, sizeof *r->ids);
    r->n = calloc(n, sizeof *r->n);
    return r->ids && r->n ? 0 : OOM(why);
}

/* "input": a string, an array of strings, an array of token ids, or an
 * array of token-id arrays. */
static int parse_input(const rwkvd_embed_limits *lim, json_t *input, rwkvd_embed_request *r,
                       rwkvd_embed_refusal *why)
{
    if (json_is_string(input))
        return alloc_inputs(r, 1, why) || add_text(lim, r, input, why) ? -1 : 0;
    if (!json_is_array(input))
        return BAD(why, "input", "'input' must be a string, an array of strings, an array of "
                                 "token ids or an array of token-id arrays");
    size_t n = json_array_size(input);
    if (n == 0)
        return BAD(why, "input", "'input' must not be an empty array");
    json_t *first = json_array_get(input, 0);
    if (json_is_integer(first)) /* one token array */
        return alloc_inputs(r, 1, why) || add_tokens(lim, r, input, why) ? -1 : 0;
    if (n > RWKVD_EMBED_MAX_INPUTS)
        return BAD(why, "input", "'input' has %zu items; at most %d per request", n,
                   RWKVD_EMBED_MAX_INPUTS);
    if (alloc_inputs(r, n, why) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(input, i);
        int rc;
        if (json_is_string(first) && json_is_string(e))
            rc = add_text(lim, r, e, why);
        else if (json_is_array(first) && json_is_array(e))
            rc = add_tokens(lim, r, e, why);
        else
            rc = BAD(why, "input", "input[%zu]: every item must be a string, or every item an "
                                   "array of token ids",
                     i);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static const char *const KNOWN[] = {"input", "model", "encoding_format", "dimensions", "user",
                                    "task", "normalize"};

static int parse_object(json_t *req, const rwkvd_embed_limits *lim, rwkvd_embed_request *r,
                        rwkvd_embed_refusal *why)
{
    if (!json_is_object(req))
        return BAD(why, NULL, "the body must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(req, key, val)
    {
        size_t k = 0;
        while (k < sizeof KNOWN / sizeof *KNOWN && strcmp(key, KNOWN[k]) != 0)
            k++;
        if (k == sizeof KNOWN / sizeof *KNOWN) {
            char shown[64];
            snprintf(shown, sizeof shown, "%s", key);
            for (char *p = shown; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                    *p = '?';
            return BAD(why, shown, "unrecognized request argument supplied: %s", shown);
        }
    }
    json_t *model = json_object_get(req, "model"), *fmt = json_object_get(req, "encoding_format");
    json_t *dims = json_object_get(req, "dimensions"), *task = json_object_get(req, "task");
    json_t *norm = json_object_get(req, "normalize"), *user = json_object_get(req, "user");
    json_t *input = json_object_get(req, "input");
    if (model && !json_is_string(model))
        return BAD(why, "model", "'model' must be a string");
    if (user && !json_is_string(user))
        return BAD(why, "user", "'user' must be a string");
    if (fmt && !(json_is_string(fmt) && (!strcmp(json_string_value(fmt), "float") ||
                                         !strcmp(json_string_value(fmt), "base64"))))
        return BAD(why, "encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    if (dims && !(json_is_integer(dims) && json_integer_value(dims) == lim->n_embd))
        return BAD(why, "dimensions", "'dimensions' must be %d, this model's embedding size",
                   lim->n_embd);
    r->task = RWKV_TASK_RETRIEVAL;
    if (task && (!json_is_string(task) ||
                 rwkv_embed_task_parse(json_string_value(task), &r->task) != 0 ||
                 !(lim->embed_tasks & (1u << r->task))))
        return BAD(why, "task", "'task' must be a task head this model has: retrieval, "
                                "similarity or classification");
    if (norm && !json_is_boolean(norm))
        return BAD(why, "normalize", "'normalize' must be true or false");
    r->normalize = norm ? json_is_true(norm) : true;
    r->base64 = fmt && !strcmp(json_string_value(fmt), "base64");
    if (model && !(r->model = strdup(json_string_value(model))))
        return OOM(why);
    if (!input)
        return BAD(why, "input", "'input' is required");
    return parse_input(lim, input, r, why);
}

int rwkvd_embed_request_parse(const char *body, size_t len, const rwkvd_embed_limits *lim,
                              rwkvd_embed_request *out, rwkvd_embed_refusal *why)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req)
        return BAD(why, NULL, "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
    int rc = parse_object(req, lim, out, why);
    json_decref(req);
    if (rc != 0)
        rwkvd_embed_request_free(out);
    return rc;
}
