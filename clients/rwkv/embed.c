/* embed.c — `rwkv embed`: EmbeddingRWKV document embeddings (core/embedding.h).
 *
 * One float32 row of C values per input, in the order given: the text
 * INPUTs first, then the --ids-in files.  A text is streamed through the
 * tokenizer in 64 KiB chunks and run in blocks of --block tokens, so any
 * length takes O(1) memory: the EOS id 65535 is appended (rwkv-emb's
 * add_eos=True), and with --eos-every K also inserted after every K text
 * tokens (the multi-EOS layout: a piece of K tokens, EOS, the next piece,
 * ..., the last piece followed by EOS).  --ids-in takes raw little-endian
 * int32 ids as given (EOS included by the caller, nothing added).  The
 * embedding is the task head over the mean of ln_out at the EOS positions.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"
#include "core/embedding.h"
#include "core/forward.h"
#include "core/state.h"

static const char *const CMD = "embed";

enum { CHUNK_BYTES = 1 << 16, MAX_BLOCK = 1 << 20, MAX_IDS_IN = 256 };

static void help(void)
{
    printf("usage: rwkv embed --model FILE (--vocab FILE | --bytes) [OPTIONS] "
           "--out-embedding F INPUT...\n"
           "\n"
           "EmbeddingRWKV embeddings: one float32 row of n_embd values per input (the text\n"
           "INPUTs in order, then the --ids-in files), streamed in blocks (any length).\n"
           "A text gets the EOS id 65535 appended; the embedding is the task head over the\n"
           "mean of the final LayerNorm output at the EOS positions.\n"
           "\n"
           "  -m, --model FILE        an EmbeddingRWKV checkpoint (.pth or .safetensors)\n"
           "      --vocab FILE        World vocabulary .txt (or a tokenizer.json)\n"
           "      --bytes             byte-level tokens (id = byte)\n"
           "      --task T            retrieval (default), similarity or classification\n"
           "      --eos-every K       also insert EOS after every K text tokens\n"
           "      --ids-in FILE       raw little-endian int32 ids, EOS as given (repeatable;\n"
           "                          no tokenizer needed when there is no text INPUT)\n"
           "      --normalize         scale each embedding to unit L2 norm\n"
           "      --out-embedding F   float32 [inputs][C]\n"
           "      --out-pooled F      float32 [inputs][C]: the mean before the task head\n"
           "  -b, --block T           tokens per forward call (default 512)\n"
           "  -t, --threads N         worker threads (default 0: one per CPU)\n"
           "      --device DEV        cpu (default), cuda or cuda:N\n"
           "      --precision P       fp32 (default; auto for an int8 file), bf16, int8 or\n"
           "                          auto (the CPU's fastest; docs/precision.md)\n"
           "  -q, --quiet             no summary line on stderr\n"
           "  -h, --help              this text\n");
}

typedef struct opts {
    const char *model, *vocab, *device;
    int bytes, quiet, normalize;
    long block, threads, eos_every;
    int precision, precision_given; /* rwkv_precision */
    rwkv_embed_task task;
    const char *ids_in[MAX_IDS_IN];
    int n_ids_in;
    cli_out out_emb, out_pooled;
    char **inputs;
    int n_inputs;
} opts;

/* One document on its way through the model. */
typedef struct doc {
    rwkv_engine *e;
    rwkv_state *st;
    uint32_t *block;
    long cap, n;
    long eos_every, since_eos;
    double *sum;
    int64_t count;
    uint64_t tokens;
} doc;

static int flush(doc *d, rwkv_error *err)
{
    if (d->n == 0)
        return 0;
    rwkv_request q = {.state = d->st, .tokens = d->block, .n_tokens = (int)d->n,
                      .next_token = -1, .eos_sum = d->sum, .eos_count = &d->count,
                      .eos_id = RWKV_EMBED_EOS};
    d->tokens += (uint64_t)d->n;
    d->n = 0;
    return rwkv_forward(d->e, &q, 1, err);
}

static int push(doc *d, uint32_t id, rwkv_error *err)
{
    d->block[d->n++] = id;
    return d->n == d->cap ? flush(d, err) : 0;
}

/* A text token, and the EOS --eos-every puts after every K of them. */
static int push_text(doc *d, uint32_t id, rwkv_error *err)
{
    if (push(d, id, err) != 0)
        return -1;
    if (d->eos_every && ++d->since_eos == d->eos_every) {
        d->since_eos = 0;
        return push(d, RWKV_EMBED_EOS, err);
    }
    return 0;
}

static int run_text(doc *d, const rwkv_tokenizer *tok, const char *path)
{
    rwkv_error err;
    rwkv_error_clear(&err);
    FILE *in = cli_open_input(CMD, path);
    if (!in)
        return CLI_FAIL;
    rwkv_encoder *enc = rwkv_encoder_new(tok);
    char *chunk = malloc(CHUNK_BYTES);
    rwkv_ids q = {0};
    int rc = CLI_OK, eof = 0, any = 0;
    if (!enc || !chunk) {
        rc = cli_fail(CMD, "out of memory");
        goto out;
    }
    while (!eof) {
        size_t got = fread(chunk, 1, CHUNK_BYTES, in);
        if (got < CHUNK_BYTES) {
            if (ferror(in)) {
                rc = cli_fail(CMD, "%s: read error: %s", path, strerror(errno));
                goto out;
            }
            eof = 1;
        }
        q.n = 0;
        if (rwkv_encoder_feed(enc, chunk, got, &q, &err) != 0 ||
            (eof && rwkv_encoder_finish(enc, &q, &err) != 0)) {
            rc = cli_fail(CMD, "%s: %s", path, err.msg);
            goto out;
        }
        for (size_t i = 0; i < q.n; i++)
            if (push_text(d, q.v[i], &err) != 0) {
                rc = cli_fail(CMD, "%s: %s", path, err.msg);
                goto out;
            }
        any |= q.n > 0;
    }
    /* the final EOS, unless --eos-every has just put one there */
    if ((d->since_eos > 0 || !any || !d->eos_every) && push(d, RWKV_EMBED_EOS, &err) != 0)
        rc = cli_fail(CMD, "%s: %s", path, err.msg);
out:
    rwkv_ids_free(&q);
    free(chunk);
    rwkv_encoder_free(enc);
    cli_close_input(in);
    return rc;
}

static int run_ids(doc *d, const char *path)
{
    rwkv_error err;
    rwkv_error_clear(&err);
    FILE *in = fopen(path, "rb");
    if (!in)
        return cli_fail(CMD, "--ids-in %s: %s", path, strerror(errno));
    int rc = CLI_OK;
    unsigned char b[4];
    size_t got;
    uint64_t at = 0;
    while ((got = fread(b, 1, 4, in)) == 4) {
        uint32_t id = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                      (uint32_t)b[3] << 24;
        if (push(d, id, &err) != 0) {
            rc = cli_fail(CMD, "--ids-in %s (ids up to offset %llu): %s", path,
                          (unsigned long long)(at * 4), err.msg);
            break;
        }
        at++;
    }
    if (rc == CLI_OK && ferror(in))
        rc = cli_fail(CMD, "--ids-in %s: read error: %s", path, strerror(errno));
    else if (rc == CLI_OK && got != 0)
        rc = cli_fail(CMD, "--ids-in %s: %llu bytes is not a whole number of int32 ids", path,
                      (unsigned long long)(at * 4 + got));
    else if (rc == CLI_OK && at == 0)
        rc = cli_fail(CMD, "--ids-in %s: no ids", path);
    fclose(in);
    return rc;
}

/* One input from the initial state to its row(s) in the outputs. */
static int embed_one(opts *o, doc *d, const rwkv_model *m, const rwkv_tokenizer *tok,
                     const char *text_path, const char *ids_path, float *emb, float *pooled)
{
    int C = rwkv_model_get_info(m)->n_embd;
    rwkv_state_reset(d->st);
    memset(d->sum, 0, sizeof(double) * (size_t)C);
    d->count = 0;
    d->n = 0;
    d->since_eos = 0;
    int rc = text_path ? run_text(d, tok, text_path) : run_ids(d, ids_path);
    if (rc != CLI_OK)
        return rc;
    rwkv_error err;
    rwkv_error_clear(&err);
    const char *name = text_path ? text_path : ids_path;
    if (flush(d, &err) != 0 ||
        rwkv_embed_finish(m, o->task, d->sum, d->count, o->normalize, pooled, emb, &err) != 0)
        return cli_fail(CMD, "%s: %s", name, err.msg);
    if (cli_out_write(CMD, &o->out_emb, emb, (size_t)C * sizeof(float)) ||
        cli_out_write(CMD, &o->out_pooled, pooled, (size_t)C * sizeof(float)))
        return CLI_FAIL;
    return CLI_OK;
}

static int parse(int argc, char **argv, opts *o, int *status)
{
    enum { O_VOCAB = 256, O_BYTES, O_TASK, O_EOS_EVERY, O_IDS_IN, O_NORMALIZE, O_OUT_EMB,
           O_OUT_POOLED, O_DEVICE, O_PRECISION };
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},
        {"vocab", required_argument, NULL, O_VOCAB},
        {"bytes", no_argument, NULL, O_BYTES},
        {"task", required_argument, NULL, O_TASK},
        {"eos-every", required_argument, NULL, O_EOS_EVERY},
        {"ids-in", required_argument, NULL, O_IDS_IN},
        {"normalize", no_argument, NULL, O_NORMALIZE},
        {"out-embedding", required_argument, NULL, O_OUT_EMB},
        {"out-pooled", required_argument, NULL, O_OUT_POOLED},
        {"block", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"device", required_argument, NULL, O_DEVICE},
        {"precision", required_argument, NULL, O_PRECISION},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->block = 512;
    o->task = RWKV_TASK_RETRIEVAL;
    opterr = 0;
    optind = 1;
    int c, bad = 0;
    *status = CLI_USAGE;
    while ((c = getopt_long(argc, argv, ":m:b:t:qh", longs, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case O_VOCAB: o->vocab = optarg; break;
        case O_BYTES: o->bytes = 1; break;
        case O_TASK:
            if (rwkv_embed_task_parse(optarg, &o->task) != 0)
                return cli_usage(CMD, "--task: '%s' is not one of retrieval, similarity, "
                                      "classification",
                                 optarg),
                       -1;
            break;
        case O_EOS_EVERY:
            bad = cli_parse_long(CMD, "--eos-every", optarg, 1, 1L << 30, &o->eos_every);
            break;
        case O_IDS_IN:
            if (o->n_ids_in == MAX_IDS_IN)
                return cli_usage(CMD, "at most %d --ids-in files", MAX_IDS_IN), -1;
            o->ids_in[o->n_ids_in++] = optarg;
            break;
        case O_NORMALIZE: o->normalize = 1; break;
        case O_OUT_EMB: o->out_emb.path = optarg; break;
        case O_OUT_POOLED: o->out_pooled.path = optarg; break;
        case 'b': bad = cli_parse_long(CMD, "--block", optarg, 1, MAX_BLOCK, &o->block); break;
        case 't': bad = cli_parse_long(CMD, "--threads", optarg, 0, 4096, &o->threads); break;
        case O_DEVICE: o->device = optarg; bad = cli_parse_device(CMD, optarg) != 0; break;
        case O_PRECISION:
            bad = cli_parse_precision(CMD, optarg, &o->precision, &o->precision_given) != 0;
            break;
        case 'q': o->quiet = 1; break;
        case 'h': help(); *status = CLI_OK; return -1;
        default: *status = cli_bad_option(CMD, c, argv); return -1;
        }
        if (bad)
            return -1;
    }
    o->inputs = argv + optind;
    o->n_inputs = argc - optind;
    if (!o->model)
        return cli_usage(CMD, "--model FILE is required"), -1;
    if (o->n_inputs + o->n_ids_in == 0)
        return cli_usage(CMD, "an INPUT file ('-' for stdin) or --ids-in FILE is required"), -1;
    if (!o->out_emb.path)
        return cli_usage(CMD, "--out-embedding FILE is required"), -1;
    if (o->out_pooled.path && !strcmp(o->out_pooled.path, o->out_emb.path))
        return cli_usage(CMD, "--out-embedding and --out-pooled name the same file '%s'",
                         o->out_emb.path),
               -1;
    if (o->eos_every && o->n_inputs == 0)
        return cli_usage(CMD, "--eos-every applies to text INPUTs (--ids-in ids are taken as "
                              "given)"),
               -1;
    return 0;
}

int cmd_embed(int argc, char **argv)
{
    opts o;
    int status;
    if (parse(argc, argv, &o, &status) != 0)
        return status;
    rwkv_tokenizer *tok = NULL;
    rwkv_model *m = NULL;
    rwkv_engine *e = NULL;
    doc d = {0};
    float *row = NULL;
    int rc;
    if (o.n_inputs > 0 && (rc = cli_load_tokenizer(CMD, o.vocab, o.bytes, &tok)) != 0)
        return rc;
    if ((rc = cli_load_model(CMD, o.model, &m)) != 0)
        goto out;
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_embed_check(m, o.task, RWKV_EMBED_EOS, &err) != 0) {
        rc = cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    if (tok && (rc = cli_check_vocab(CMD, tok, m)) != 0)
        goto out;
    /* --precision, by default fp32, except for an int8 file (rwkv quantize),
     * which runs only at int8 (auto takes it there; other devices refuse it
     * with the reason) */
    rwkv_precision p = (rwkv_precision)o.precision;
    if (!o.precision_given && rwkv_model_get_info(m)->int8_quantized)
        p = RWKV_PRECISION_AUTO;
    rwkv_engine_opts eo = {.device = o.device, .n_threads = (int)o.threads, .precision = p};
    if (!(e = rwkv_engine_new_opts(m, &eo, &err))) {
        rc = cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    int C = rwkv_model_get_info(m)->n_embd;
    d.e = e;
    d.cap = o.block;
    d.eos_every = o.eos_every;
    d.st = rwkv_state_new(m);
    d.block = malloc(sizeof *d.block * (size_t)o.block);
    d.sum = malloc(sizeof *d.sum * (size_t)C);
    row = malloc(sizeof *row * 2 * (size_t)C);
    if (!d.st || !d.block || !d.sum || !row) {
        rc = cli_fail(CMD, "out of memory");
        goto out;
    }
    if ((rc = cli_out_open(CMD, &o.out_emb)) != 0 || (rc = cli_out_open(CMD, &o.out_pooled)) != 0)
        goto out;
    double t0 = cli_now();
    for (int i = 0; i < o.n_inputs + o.n_ids_in && rc == CLI_OK; i++)
        rc = embed_one(&o, &d, m, tok, i < o.n_inputs ? o.inputs[i] : NULL,
                       i < o.n_inputs ? NULL : o.ids_in[i - o.n_inputs], row, row + C);
    if (rc == CLI_OK && ((rc = cli_out_close(CMD, &o.out_emb)) != 0 ||
                         (rc = cli_out_close(CMD, &o.out_pooled)) != 0))
        goto out;
    if (rc == CLI_OK && !o.quiet) {
        double dt = cli_now() - t0;
        fprintf(stderr,
                "rwkv: embed: %d inputs, %llu tokens, %.2f s, %.0f tokens/s, task %s; on %s\n",
                o.n_inputs + o.n_ids_in, (unsigned long long)d.tokens, dt,
                dt > 0 ? (double)d.tokens / dt : 0.0, rwkv_embed_task_name(o.task),
                rwkv_engine_device(e));
    }
out:
    if (rc != CLI_OK) {
        cli_out_discard(&o.out_emb);
        cli_out_discard(&o.out_pooled);
    }
    free(row);
    free(d.sum);
    free(d.block);
    rwkv_state_free(d.st);
    rwkv_engine_free(e);
    rwkv_model_free(m);
    rwkv_tokenizer_free(tok);
    return rc;
}
