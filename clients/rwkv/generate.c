/* generate.c — `rwkv generate`: sample a continuation of a prompt.
 *
 * The prompt is run in blocks (logits after its last token), then one token
 * at a time: sample (core/sampler), write the token's raw bytes to stdout and
 * flush, feed it back.  A World token can end inside a UTF-8 character; the
 * bytes are written as they come, so the stream as a whole is exact.
 *
 * Only the continuation is printed, not the prompt.  Ids the tokenizer has
 * no bytes for are never drawn: the model's padding ids beyond the
 * tokenizer's vocabulary get logit -inf, and the World end-of-document
 * token 0 ends the generation early when it is drawn.  Without --seed a seed
 * is taken from the clock and reported in the summary on stderr, so any run
 * can be repeated.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"
#include "core/forward.h"
#include "core/rng.h"
#include "core/sampler.h"

static const char *const CMD = "generate";

enum { PROMPT_BLOCK = 256 };

static void help(void)
{
    printf("usage: rwkv generate --model FILE (--vocab FILE | --bytes) --prompt TEXT [OPTIONS]\n"
           "\n"
           "Samples a continuation of TEXT and streams it to stdout as it is generated.\n"
           "\n"
           "  -m, --model FILE       checkpoint (.pth or .safetensors)\n"
           "      --vocab FILE       World vocabulary .txt or GPT-NeoX tokenizer.json\n"
           "      --bytes            byte-level tokens (id = byte)\n"
           "  -p, --prompt TEXT      the text to continue (not echoed)\n"
           "  -n, --max-tokens N     tokens to generate (default 200)\n"
           "      --temperature T    0 = greedy (argmax); default 1\n"
           "      --top-k K          keep the K most likely tokens (default 0: all)\n"
           "      --top-p P          keep the smallest most-likely set with mass >= P,\n"
           "                         measured before temperature (default 1: all)\n"
           "  -s, --seed S           random seed (default: from the clock, reported)\n"
           "  -t, --threads N        worker threads (default 0: one per CPU)\n"
           "      --device DEV       cpu (default), cuda or cuda:N (a GPU; precision bf16,\n"
           "                         or fp32 with RWKV_CUDA_PRECISION=fp32 in the environment)\n"
           "      --precision P      fp32 (default, exact), bf16, int8 or auto (the CPU's\n"
           "                         fastest; docs/precision.md); CPU engines only\n"
           "  -q, --quiet            no summary line on stderr\n"
           "  -h, --help             this text\n");
}

typedef struct gen_opts {
    const char *model, *vocab, *prompt;
    const char *device; /* NULL: cpu */
    int precision, precision_given; /* rwkv_precision */
    int bytes, quiet, have_seed;
    long max_tokens, threads, top_k;
    double temperature, top_p;
    uint64_t seed;
} gen_opts;

static int parse_args(int argc, char **argv, gen_opts *o, int *status)
{
    enum { O_VOCAB = 256, O_BYTES, O_TEMP, O_TOPK, O_TOPP, O_DEVICE, O_PRECISION };
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},
        {"vocab", required_argument, NULL, O_VOCAB},
        {"bytes", no_argument, NULL, O_BYTES},
        {"prompt", required_argument, NULL, 'p'},
        {"max-tokens", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, O_TEMP},
        {"top-k", required_argument, NULL, O_TOPK},
        {"top-p", required_argument, NULL, O_TOPP},
        {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"device", required_argument, NULL, O_DEVICE},
        {"precision", required_argument, NULL, O_PRECISION},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->max_tokens = 200;
    o->temperature = 1.0;
    o->top_p = 1.0;
    opterr = 0;
    optind = 1;
    int c;
    *status = CLI_USAGE;
    while ((c = getopt_long(argc, argv, ":m:p:n:s:t:qh", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o->model = optarg; break;
        case O_VOCAB: o->vocab = optarg; break;
        case O_BYTES: o->bytes = 1; break;
        case 'p': o->prompt = optarg; break;
        case 'n': bad = cli_parse_long(CMD, "--max-tokens", optarg, 0, 1000000000L, &o->max_tokens); break;
        case O_TEMP: bad = cli_parse_double(CMD, "--temperature", optarg, 0, 1e6, &o->temperature); break;
        case O_TOPK: bad = cli_parse_long(CMD, "--top-k", optarg, 0, 2147483647L, &o->top_k); break;
        case O_TOPP:
            bad = cli_parse_double(CMD, "--top-p", optarg, 0, 1, &o->top_p);
            if (!bad && o->top_p <= 0)
                bad = (cli_usage(CMD, "--top-p must be greater than 0"), 1);
            break;
        case 's': bad = cli_parse_u64(CMD, "--seed", optarg, &o->seed); o->have_seed = 1; break;
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
    if (optind < argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]), -1;
    if (!o->model)
        return cli_usage(CMD, "--model FILE is required"), -1;
    if (!o->prompt)
        return cli_usage(CMD, "--prompt TEXT is required"), -1;
    if (!o->prompt[0])
        return cli_usage(CMD, "--prompt must not be empty"), -1;
    if (!o->have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)getpid() << 32;
        o->seed = rwkv_splitmix64(&x);
    }
    *status = CLI_OK;
    return 0;
}

/* Runs tokens through the model; logits after the last one land in `logits`. */
static int feed(rwkv_engine *eng, rwkv_state *st, const uint32_t *tok, size_t n, float *logits)
{
    rwkv_error err;
    rwkv_error_clear(&err);
    for (size_t at = 0; at < n; at += PROMPT_BLOCK) {
        rwkv_request q;
        memset(&q, 0, sizeof q);
        q.state = st;
        q.tokens = tok + at;
        q.n_tokens = (int)(n - at < PROMPT_BLOCK ? n - at : PROMPT_BLOCK);
        q.logits = at + (size_t)q.n_tokens == n ? RWKV_LOGITS_LAST : RWKV_LOGITS_NONE;
        q.logits_out = logits;
        q.next_token = -1;
        if (rwkv_forward(eng, &q, 1, &err) != 0)
            return cli_fail(CMD, "%s", err.msg);
    }
    return CLI_OK;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int status;
    if (parse_args(argc, argv, &o, &status) != 0)
        return status;
    rwkv_tokenizer *tok = NULL;
    rwkv_model *model = NULL;
    rwkv_engine *eng = NULL;
    rwkv_state *st = NULL;
    rwkv_sampler *smp = NULL;
    rwkv_ids prompt = {0};
    float *logits = NULL;
    rwkv_error err;
    rwkv_error_clear(&err);
    if ((status = cli_load_tokenizer(CMD, o.vocab, o.bytes, &tok)) != CLI_OK ||
        (status = cli_load_model(CMD, o.model, &model)) != CLI_OK ||
        (status = cli_check_vocab(CMD, tok, model)) != CLI_OK)
        goto out;
    status = CLI_FAIL;
    const rwkv_model_info *mi = rwkv_model_get_info(model);
    const size_t V = (size_t)mi->vocab_size, tok_v = rwkv_tokenizer_vocab_size(tok);
    /* id 0 ends a document for World (its end-of-document id) and for the
     * GPT-NeoX tokenizer (<|endoftext|>); a byte model has no such id */
    const int has_eod = rwkv_tokenizer_get_kind(tok) != RWKV_TOKENIZER_BYTES;
    rwkv_sampler_params sp = {o.temperature, (int)o.top_k, o.top_p, o.seed};
    if (!(smp = rwkv_sampler_new(V, &sp, &err)) ||
        !(eng = rwkv_engine_new_opts(
              model, &(rwkv_engine_opts){o.device, (int)o.threads, (rwkv_precision)o.precision},
              &err))) {
        cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    st = rwkv_state_new(model);
    logits = malloc(V * sizeof *logits);
    if (!st || !logits ||
        rwkv_tokenizer_encode(tok, o.prompt, strlen(o.prompt), &prompt, &err) != 0) {
        cli_fail(CMD, "out of memory");
        goto out;
    }

    double t0 = cli_now();
    if (feed(eng, st, prompt.v, prompt.n, logits) != CLI_OK)
        goto out;
    double t_prompt = cli_now() - t0;
    long produced = 0;
    int ended = 0;
    t0 = cli_now();
    while (produced < o.max_tokens) {
        for (size_t i = tok_v; i < V; i++)
            logits[i] = -INFINITY;
        uint32_t id;
        if (rwkv_sampler_sample(smp, logits, &id, &err) != 0) {
            cli_fail(CMD, "after %ld tokens: %s", produced, err.msg);
            goto out;
        }
        if (has_eod && id == 0) {
            ended = 1;
            break;
        }
        const uint8_t *bytes;
        size_t len;
        if (rwkv_tokenizer_token_bytes(tok, id, &bytes, &len) != 0) {
            cli_fail(CMD, "sampled id %u has no bytes in the %s tokenizer", id,
                     rwkv_tokenizer_kind_name(tok));
            goto out;
        }
        if (fwrite(bytes, 1, len, stdout) != len || fflush(stdout) != 0) {
            cli_fail(CMD, "stdout: write failed: %s", strerror(errno));
            goto out;
        }
        produced++;
        if (produced < o.max_tokens && feed(eng, st, &id, 1, logits) != CLI_OK)
            goto out;
    }
    double secs = cli_now() - t0;
    status = CLI_OK;
    if (!o.quiet)
        fprintf(stderr, "\nrwkv generate: prompt %zu tokens in %.3f s; %ld tokens in %.3f s, "
                "%.1f tok/s%s; seed %llu%s%s\n", prompt.n, t_prompt, produced, secs,
                secs > 0 ? (double)produced / secs : 0.0, ended ? " (end of document)" : "",
                (unsigned long long)o.seed, o.device || o.precision_given ? "; on " : "",
                o.device || o.precision_given ? rwkv_engine_device(eng) : "");
out:
    free(logits);
    rwkv_ids_free(&prompt);
    rwkv_sampler_free(smp);
    rwkv_state_free(st);
    rwkv_engine_free(eng);
    rwkv_model_free(model);
    rwkv_tokenizer_free(tok);
    return status;
}
