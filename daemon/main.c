/* main.c — rwkvd: configuration, model, tokenizer and engine, the start-up
 * self-test, systemd readiness, then the server loop until SIGTERM. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon/log.h"
#include "daemon/http_embeddings.h"
#include "daemon/metrics_http.h"
#include "daemon/server.h"
#include "core/cpu_features.h"
#include "core/precision.h"
#include "daemon/wire/keygen.h"
#include "core/sha256.h"

/* One block through the engine on a scratch state: the model computes
 * finite numbers before we tell systemd we are ready. */
static int self_test(rwkvd_server *srv, rwkv_error *err)
{
    uint32_t toks[8];
    for (int i = 0; i < 8; i++)
        toks[i] = (uint32_t)((i * 37 + 1) % srv->mi->vocab_size);
    float *logits = malloc((size_t)srv->mi->vocab_size * sizeof(float));
    rwkv_state *st = rwkv_state_new(srv->model);
    if (!logits || !st) {
        free(logits);
        rwkv_state_free(st);
        return rwkv_fail(err, "self-test: out of memory");
    }
    rwkv_request q = {.state = st, .tokens = toks, .n_tokens = 8, .logits = RWKV_LOGITS_LAST,
                      .logits_out = logits, .next_token = -1};
    int n = srv->mi->vocab_size;
    if (!srv->mi->has_lm_head) { /* EmbeddingRWKV: the final norm's output instead */
        q = (rwkv_request){.state = st, .tokens = toks, .n_tokens = 8,
                           .hidden = RWKV_HIDDEN_LAST, .hidden_out = logits, .next_token = -1};
        n = srv->mi->n_embd;
    }
    int rc = rwkv_forward(srv->engine, &q, 1, err);
    for (int v = 0; rc == 0 && v < n; v++)
        if (!isfinite(logits[v]))
            rc = rwkv_fail(err, "self-test: logit %d is not finite: the model is broken", v);
    free(logits);
    rwkv_state_free(st);
    return rc;
}

static int load_model(rwkvd_server *srv, rwkv_error *err)
{
    const rwkvd_config *c = &srv->cfg;
    double t0 = rwkvd_now();
    if (rwkv_model_load(c->model, &srv->model, err) != 0)
        return -1;
    srv->mi = rwkv_model_get_info(srv->model);
    if (!c->vocab[0] && srv->mi->vocab_size != 256)
        return rwkv_fail(err,
                         "model %s has a vocabulary of %d tokens: give its vocabulary file with "
                         "--vocab (or --vocab bytes to feed raw bytes as ids 0..255)",
                         c->model, srv->mi->vocab_size);
    if (!c->vocab[0] || strcmp(c->vocab, "bytes") == 0) {
        srv->tok = rwkv_tokenizer_bytes();
        if (!srv->tok)
            return rwkv_fail(err, "out of memory");
    } else if (rwkv_tokenizer_load(c->vocab, &srv->tok, err) != 0) {
        return -1;
    }
    if (rwkv_tokenizer_vocab_size(srv->tok) > (uint32_t)srv->mi->vocab_size)
        return rwkv_fail(err, "vocabulary %s has %u ids but the model only %d", c->vocab,
                         rwkv_tokenizer_vocab_size(srv->tok), srv->mi->vocab_size);
    rwkvd_model_id *id = &srv->model_id;
    if (rwkvd_sha256_file(c->model, id->model_sha256, err) != 0)
        return -1;
    if (c->vocab[0] && strcmp(c->vocab, "bytes") != 0 &&
        rwkvd_sha256_file(c->vocab, id->tokenizer_sha256, err) != 0)
        return -1;
    id->generation = (uint32_t)srv->mi->generation;
    id->n_layer = (uint32_t)srv->mi->n_layer;
    id->n_embd = (uint32_t)srv->mi->n_embd;
    id->vocab = (uint32_t)srv->mi->vocab_size;
    id->state_floats = srv->mi->state_floats;
    memcpy(srv->head_template.model_sha256, id->model_sha256, 32);
    srv->head_template.dim = (uint32_t)srv->mi->n_embd;
    rwkv_engine_opts eo = {c->device, c->threads, (rwkv_precision)c->precision_code};
    srv->engine = rwkv_engine_new_opts(srv->model, &eo, err);
    if (!srv->engine)
        return -1;
    /* checkpoints record the precision their state was computed in */
    id->precision = (uint8_t)rwkv_engine_precision(srv->engine);
    char feat[256];
    rwkv_cpu_features_describe(rwkv_cpu_features_get(), feat, sizeof feat);
    LOG_INFO("cpu features: %s; precision %s (asked: %s)", feat,
             rwkv_precision_name(rwkv_engine_precision(srv->engine)), c->precision);
    char hex[65];
    rwkvd_sha256_hex(id->model_sha256, hex);
    LOG_INFO("model %s: %s, %d layers, dim %d, vocab %d, %zu parameters (%s), sha256 %s, "
             "loaded in %.2f s; tokenizer %s; engine on %s",
             c->model, srv->mi->generation_name, srv->mi->n_layer, srv->mi->n_embd,
             srv->mi->vocab_size, srv->mi->n_params, rwkv_dtype_name(srv->mi->matrix_dtype), hex,
             rwkvd_now() - t0, rwkv_tokenizer_kind_name(srv->tok),
             rwkv_engine_device(srv->engine));
    srv->stats.n_layer = (uint32_t)srv->mi->n_layer;
    srv->stats.dim = (uint32_t)srv->mi->n_embd;
    srv->stats.vocab = (uint32_t)srv->mi->vocab_size;
    srv->stats.state_floats = srv->mi->state_floats;
    memcpy(srv->stats.model_sha256, id->model_sha256, 32);
    srv->stats.model_path = c->model;
    srv->stats.generation = srv->mi->generation_name;
    srv->stats.tokenizer = rwkv_tokenizer_kind_name(srv->tok);
    srv->stats.device = c->device;
    srv->stats.precision = rwkv_precision_name(rwkv_engine_precision(srv->engine));
    return 0;
}

int main(int argc, char **argv, char **envp)
{
    signal(SIGPIPE, SIG_IGN);

    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return rwkvd_keygen_main(argc - 1, argv + 1);

    static rwkvd_server srv;
    rwkv_error err;
    rwkvd_config_action action;
    if (rwkvd_config_load(&srv.cfg, argc, argv, envp, &action, &err) != 0) {
        fprintf(stderr, "rwkvd: %s\n(see rwkvd --help)\n", err.msg);
        return 2;
    }
    if (action == RWKVD_CONFIG_HELP) {
        char *help = rwkvd_config_help(argv[0]);
        fputs(help ? help : "out of memory\n", stdout);
        free(help);
        return 0;
    }
    if (action == RWKVD_CONFIG_VERSION) {
        printf("rwkvd %s\n", RWKVD_VERSION);
        return 0;
    }
    srv.argc = argc;
    srv.argv = argv;
    srv.envp = envp;
    if (rwkvd_log_open(srv.cfg.log_file, srv.cfg.log_level, &err) != 0)
        fprintf(stderr, "rwkvd: %s (logging to stderr)\n", err.msg);
    LOG_INFO("rwkvd %s starting", RWKVD_VERSION);
    int rc = 1;
    if (load_model(&srv, &err) != 0 || self_test(&srv, &err) != 0 ||
        rwkvd_server_init(&srv, &err) != 0 || rwkvd_metrics_http_start(&srv, &err) != 0 ||
        rwkvd_http_embeddings_start(&srv, &err) != 0) {
        LOG_ERROR("%s", err.msg);
        fprintf(stderr, "rwkvd: %s\n", err.msg);
        sd_notifyf(0, "STATUS=failed: %s", err.msg);
    } else {
        LOG_INFO("ready: ingest %s, emit %s, control %s, block %d tokens, state %s%s%s",
                 srv.cfg.ingest, srv.cfg.emit, srv.cfg.control, srv.cfg.block_size,
                 srv.cfg.state_dir, srv.cfg.metrics_port ? ", metrics on port " : "",
                 srv.cfg.metrics_port ? "(see --metrics-port)" : "");
        sd_notify(0, "READY=1\nSTATUS=ready");
        rc = rwkvd_server_run(&srv);
    }
    rwkvd_http_embeddings_stop(&srv);
    rwkvd_metrics_http_stop(&srv);
    rwkvd_server_free(&srv);
    rwkv_engine_free(srv.engine);
    rwkv_tokenizer_free(srv.tok);
    rwkv_model_free(srv.model);
    rwkvd_log_close();
    return rc;
}
