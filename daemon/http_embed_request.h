/* http_embed_request.h — parsing and checking one POST /v1/embeddings body
 * (outside bytes) into the inputs to embed, as a pure function: no server,
 * no engine, so tests/fuzz/fuzz_http_embed.c can throw anything at it.
 * The request shapes are http_embeddings.h's. */
#ifndef RWKVD_HTTP_EMBED_REQUEST_H
#define RWKVD_HTTP_EMBED_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/embedding.h"
#include "core/tokenizer.h"

#define RWKVD_EMBED_MAX_INPUTS 2048 /* OpenAI's limit per request */

/* What the endpoint serves. */
typedef struct rwkvd_embed_limits {
    const rwkv_tokenizer *tok;
    int n_embd, vocab;
    unsigned embed_tasks;   /* rwkv_model_info.embed_tasks */
    size_t max_tokens;      /* per input, EOS included */
} rwkvd_embed_limits;

typedef struct rwkvd_embed_request {
    uint32_t **ids;         /* [count], each ending with EOS */
    size_t *n;
    size_t count;
    uint64_t tokens;        /* all inputs' ids (usage.prompt_tokens) */
    rwkv_embed_task task;
    bool normalize;
    bool base64;
    char *model;            /* the request's "model", or NULL */
} rwkvd_embed_request;

/* A refusal: HTTP status, OpenAI error type, offending parameter (or "")
 * and a one-line message. */
typedef struct rwkvd_embed_refusal {
    unsigned status;
    const char *type;
    char param[64];
    char message[512];
} rwkvd_embed_refusal;

/* 0 with *out filled (free with rwkvd_embed_request_free), or -1 with *why
 * and nothing allocated. */
int rwkvd_embed_request_parse(const char *body, size_t len, const rwkvd_embed_limits *lim,
                              rwkvd_embed_request *out, rwkvd_embed_refusal *why);
void rwkvd_embed_request_free(rwkvd_embed_request *r);

#endif
