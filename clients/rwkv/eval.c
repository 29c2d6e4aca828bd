/* eval.c — `rwkv eval`: run a model over a text file of any size.
 *
 * The input is read in 64 KiB chunks through the streaming encoder, and the
 * token stream is cut into blocks of --block tokens, each one rwkv_forward
 * call.  Nothing grows with the input: a block is run only once the token
 * after it is known (one token of lookahead), so its last position gets its
 * surprisal too; per-block outputs (logits all, hidden all, surprisal) are
 * written as soon as the block is done.
 *
 * Output layouts (raw little-endian float32, as in the fixtures):
 *   --out-logits   all: [T][V] (row t predicts token t+1); last: [V]
 *   --out-hidden   all: [T][C]; last: [C]; mean: [C] (float64 accumulation)
 *   --out-surprisal [T-1]: entry t-1 = -ln p(token t | tokens < t), nats,
 *                  t = 1..T-1.  The input's last token has no successor and
 *                  gets NO entry (the file is never padded with NaN), so the
 *                  file matches the fixtures' surprisal.f32 exactly.
 *   --out-state    the final state, rwkv_state_export layout.
 * --in-state F starts from a state file of exactly the model's state size.
 * With --in-state, surprisal starts at the input's second token as well:
 * the first token's probability would depend on logits from before the file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"
#include "clients/rwkv/eval_segments.h"
#include "core/forward.h"

static const char *const CMD = "eval";

enum { CHUNK_BYTES = 1 << 16, MAX_BLOCK = 1 << 20 };

static void help(void)
{
    printf("usage: rwkv eval --model FILE (--vocab FILE | --bytes) [OPTIONS] INPUT\n"
           "\n"
           "Runs the model over INPUT (a file of text bytes; '-' reads stdin), streaming:\n"
           "the input is tokenized and evaluated in blocks, never held whole in memory.\n"
           "\n"
           "  -m, --model FILE        checkpoint (.pth or .safetensors)\n"
           "      --vocab FILE        World vocabulary .txt or GPT-NeoX tokenizer.json\n"
           "      --bytes             byte-level tokens (id = byte), for the tiny models\n"
           "  -b, --block T           tokens per forward call (default 256)\n"
           "      --logits MODE       all|last|none (default: all with --out-logits)\n"
           "      --hidden MODE       all|last|mean|none (default: all with --out-hidden)\n"
           "      --out-logits FILE   float32 [T][V] (all) or [V] (last)\n"
           "      --out-hidden FILE   float32 [T][C] (all) or [C] (last, mean)\n"
           "      --out-surprisal F   float32 [T-1]: -ln p(token t | tokens before), t=1..T-1\n"
           "      --out-state FILE    final recurrent state, float32\n"
           "      --segments SEP      line (default) or a delimiter of 1..16 bytes (escapes\n"
           "                          \\n \\r \\t \\\\ \\xHH): per-segment surprisal records\n"
           "      --out-segments F    JSON lines, one per segment (as the daemon's segments\n"
           "                          messages: byte and token ranges, surprisal sum/max,\n"
           "                          anomaly score); needs a bytes or World tokenizer\n"
           "      --segment-text N    add each segment's first N bytes (0..256) as \"text\"\n"
           "      --in-state FILE     start from this state (exactly the model's state size)\n"
           "  -t, --threads N         worker threads (default 0: one per CPU)\n"
           "      --device DEV        cpu (default), cuda or cuda:N (a GPU; precision bf16,\n"
           "                          or fp32 with RWKV_CUDA_PRECISION=fp32 in the environment)\n"
           "      --precision P       fp32 (default, exact), bf16, int8 or auto (the CPU's\n"
           "                          fastest; docs/precision.md); CPU engines only\n"
           "  -q, --quiet             no summary line on stderr\n"
           "  -h, --help              this text\n"
           "\n"
           "Outputs are raw little-endian float32 without header.  A summary (tokens,\n"
           "seconds, tokens/s, mean surprisal) goes to stderr.\n");
}

typedef struct eval_opts {
    const char *model, *vocab, *input;
    int bytes, quiet;
    long block, threads;
    int logits, hidden; /* rwkv_logits_mode / rwkv_hidden_mode, -1 = not given */
    cli_out out_logits, out_hidden, out_state, out_surprisal, out_segments;
    const char *segments; /* --segments argument, NULL: line */
    long segment_text;    /* --segment-text N */
    const char *in_state;
    const char *device; /* NULL: cpu */
    int precision, precision_given; /* rwkv_precision */
} eval_opts;

typedef struct eval_run {
    eval_opts *o;
    rwkv_engine *eng;
    rwkv_state *st;
    size_t V, C;
    float *logits, *hidden, *surprisal;
    double *hidden_sum;
    uint64_t tokens;
    double surprisal_sum;
    uint64_t surprisal_n;
    int use_segs;
    eval_segments segs;
} eval_run;

static int parse_mode(const char *opt, const char *s, int allow_mean, int *out)
{
    static const char *const names[] = {"none", "last", "all", "mean"};
    for (int i = 0; i < (allow_mean ? 4 : 3); i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i; /* same numbering as rwkv_logits_mode / rwkv_hidden_mode */
            return 0;
        }
    cli_usage(CMD, "%s: '%s' is not one of %s", opt, s,
              allow_mean ? "all, last, mean, none" : "all, last, none");
    return -1;
}

static int parse_args(int argc, char **argv, eval_opts *o, int *status)
{
    enum { O_VOCAB = 256, O_BYTES, O_LOGITS, O_HIDDEN, O_OUT_LOGITS, O_OUT_HIDDEN,
           O_OUT_STATE, O_IN_STATE, O_OUT_SURPRISAL, O_DEVICE, O_PRECISION, O_SEGMENTS,
           O_OUT_SEGMENTS, O_SEGMENT_TEXT };
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},
        {"vocab", required_argument, NULL, O_VOCAB},
        {"bytes", no_argument, NULL, O_BYTES},
        {"block", required_argument, NULL, 'b'},
        {"logits", required_argument, NULL, O_LOGITS},
        {"hidden", required_argument, NULL, O_HIDDEN},
        {"out-logits", required_argument, NULL, O_OUT_LOGITS},
        {"out-hidden", required_argument, NULL, O_OUT_HIDDEN},
        {"out-state", required_argument, NULL, O_OUT_STATE},
        {"in-state", required_argument, NULL, O_IN_STATE},
        {"out-surprisal", required_argument, NULL, O_OUT_SURPRISAL},
        {"segments", required_argument, NULL, O_SEGMENTS},
        {"out-segments", required_argument, NULL, O_OUT_SEGMENTS},
        {"segment-text", required_argument, NULL, O_SEGMENT_TEXT},
        {"threads", required_argument, NULL, 't'},
        {"device", required_argument, NULL, O_DEVICE},
        {"precision", required_argument, NULL, O_PRECISION},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->block = 256;
    o->logits = o->hidden = -1;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":m:b:t:qh", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o->model = optarg; break;
        case O_VOCAB: o->vocab = optarg; break;
        case O_BYTES: o->bytes = 1; break;
        case 'b': bad = cli_parse_long(CMD, "--block", optarg, 1, MAX_BLOCK, &o->block); break;
        case 't': bad = cli_parse_long(CMD, "--threads", optarg, 0, 4096, &o->threads); break;
        case O_LOGITS: bad = parse_mode("--logits", optarg, 0, &o->logits); break;
        case O_HIDDEN: bad = parse_mode("--hidden", optarg, 1, &o->hidden); break;
        case O_OUT_LOGITS: o->out_logits.path = optarg; break;
        case O_OUT_HIDDEN: o->out_hidden.path = optarg; break;
        case O_OUT_STATE: o->out_state.path = optarg; break;
        case O_IN_STATE: o->in_state = optarg; break;
        case O_OUT_SURPRISAL: o->out_surprisal.path = optarg; break;
        case O_SEGMENTS: o->segments = optarg; break;
        case O_OUT_SEGMENTS: o->out_segments.path = optarg; break;
        case O_SEGMENT_TEXT:
            bad = cli_parse_long(CMD, "--segment-text", optarg, 0, RWKV_SEG_TEXT_MAX,
                                 &o->segment_text);
            break;
        case O_DEVICE: o->device = optarg; bad = cli_parse_device(CMD, optarg) != 0; break;
        case O_PRECISION:
            bad = cli_parse_precision(CMD, optarg, &o->precision, &o->precision_given) != 0;
            break;
        case 'q': o->quiet = 1; break;
        case 'h': help(); *status = CLI_OK; return -1;
        default: *status = cli_bad_option(CMD, c, argv); return -1;
        }
        if (bad) {
            *status = CLI_USAGE;
            return -1;
        }
    }
    *status = CLI_USAGE;
    if (optind >= argc)
        return cli_usage(CMD, "an INPUT file is required ('-' for stdin)"), -1;
    if (optind + 1 < argc)
        return cli_usage(CMD, "one INPUT only (got '%s' and '%s')", argv[optind],
                         argv[optind + 1]), -1;
    o->input = argv[optind];
    if (!o->model)
        return cli_usage(CMD, "--model FILE is required"), -1;
    if (o->logits < 0)
        o->logits = o->out_logits.path ? RWKV_LOGITS_ALL : RWKV_LOGITS_NONE;
    if (o->hidden < 0)
        o->hidden = o->out_hidden.path ? RWKV_HIDDEN_ALL : RWKV_HIDDEN_NONE;
    if ((o->logits != RWKV_LOGITS_NONE) != (o->out_logits.path != NULL))
        return cli_usage(CMD, o->out_logits.path ? "--out-logits with --logits none"
                                                 : "--logits needs --out-logits FILE"), -1;
    if ((o->hidden != RWKV_HIDDEN_NONE) != (o->out_hidden.path != NULL))
        return cli_usage(CMD, o->out_hidden.path ? "--out-hidden with --hidden none"
                                                 : "--hidden needs --out-hidden FILE"), -1;
    if ((o->segments || o->segment_text) && !o->out_segments.path)
        return cli_usage(CMD, "--segments and --segment-text need --out-segments FILE"), -1;
    /* no output may overwrite another output or an input while it is read */
    const char *names[] = {"--out-logits", "--out-hidden", "--out-state", "--out-surprisal",
                           "--out-segments", "--in-state", "INPUT", "--model", "--vocab"};
    const char *paths[] = {o->out_logits.path, o->out_hidden.path, o->out_state.path,
                           o->out_surprisal.path, o->out_segments.path, o->in_state, o->input,
                           o->model, o->vocab};
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 9; j++)
            if (paths[i] && paths[j] && strcmp(paths[i], paths[j]) == 0)
                return cli_usage(CMD, "%s and %s name the same file '%s'", names[i], names[j],
                                 paths[i]), -1;
    *status = CLI_OK;
    return 0;
}

static int load_state(const eval_opts *o, rwkv_state *st)
{
    size_t n = rwkv_state_floats(st), want = n * sizeof(float);
    FILE *f = fopen(o->in_state, "rb");
    if (!f)
        return cli_fail(CMD, "--in-state %s: %s", o->in_state, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cli_fail(CMD, "--in-state %s: not a regular file", o->in_state);
    }
    if ((uint64_t)sb.st_size != (uint64_t)want) {
        fclose(f);
        return cli_fail(CMD, "--in-state %s: %lld bytes, but this model's state is %zu bytes "
                        "(%zu float32)", o->in_state, (long long)sb.st_size, want, n);
    }
    float *buf = malloc(want);
    if (!buf) {
        fclose(f);
        return cli_fail(CMD, "out of memory");
    }
    size_t got = fread(buf, 1, want, f);
    fclose(f);
    rwkv_error err;
    rwkv_error_clear(&err);
    int rc = CLI_OK;
    if (got != want)
        rc = cli_fail(CMD, "--in-state %s: short read (%zu of %zu bytes)", o->in_state, got, want);
    else if (rwkv_state_import(st, buf, n, &err) != 0)
        rc = cli_fail(CMD, "--in-state %s: %s", o->in_state, err.msg);
    free(buf);
    return rc;
}

/* One forward call; `next` is the token after the block or -1 at the end. */
static int run_block(eval_run *r, const uint32_t *tok, int n, int64_t next)
{
    const eval_opts *o = r->o;
    const int final = next < 0;
    rwkv_request q;
    memset(&q, 0, sizeof q);
    q.state = r->st;
    q.tokens = tok;
    q.n_tokens = n;
    if (o->logits == RWKV_LOGITS_ALL || (o->logits == RWKV_LOGITS_LAST && final))
        q.logits = (rwkv_logits_mode)o->logits;
    q.logits_out = r->logits;
    if (o->hidden == RWKV_HIDDEN_ALL || (o->hidden == RWKV_HIDDEN_LAST && final))
        q.hidden = (rwkv_hidden_mode)o->hidden;
    q.hidden_out = r->hidden;
    q.hidden_sum = o->hidden == RWKV_HIDDEN_MEAN ? r->hidden_sum : NULL;
    q.surprisal_out = r->surprisal;
    q.next_token = next;
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_forward(r->eng, &q, 1, &err) != 0)
        return cli_fail(CMD, "%s", err.msg);
    r->tokens += (uint64_t)n;
    if (q.logits == RWKV_LOGITS_ALL &&
        cli_out_write(CMD, &r->o->out_logits, r->logits, (size_t)n * r->V * sizeof(float)))
        return CLI_FAIL;
    if (q.hidden == RWKV_HIDDEN_ALL &&
        cli_out_write(CMD, &r->o->out_hidden, r->hidden, (size_t)n * r->C * sizeof(float)))
        return CLI_FAIL;
    if (r->surprisal) {
        size_t m = final ? (size_t)n - 1 : (size_t)n;
        for (size_t i = 0; i < m; i++)
            r->surprisal_sum += r->surprisal[i];
        r->surprisal_n += m;
        if (r->o->out_surprisal.path &&
            cli_out_write(CMD, &r->o->out_surprisal, r->surprisal, m * sizeof(float)))
            return CLI_FAIL;
    }
    if (r->use_segs && eval_segments_block(CMD, &r->segs, tok, n, r->surprisal, final) != CLI_OK)
        return CLI_FAIL;
    if (final && q.logits == RWKV_LOGITS_LAST &&
        cli_out_write(CMD, &r->o->out_logits, r->logits, r->V * sizeof(float)))
        return CLI_FAIL;
    if (final && q.hidden == RWKV_HIDDEN_LAST &&
        cli_out_write(CMD, &r->o->out_hidden, r->hidden, r->C * sizeof(float)))
        return CLI_FAIL;
    return CLI_OK;
}

/* Reads, tokenizes and evaluates the whole input. */
static int stream(eval_run *r, FILE *in, const rwkv_tokenizer *tok)
{
    const size_t T = (size_t)r->o->block;
    rwkv_encoder *enc = rwkv_encoder_new(tok);
    unsigned char *chunk = malloc(CHUNK_BYTES);
    rwkv_ids q = {0};
    rwkv_error err;
    rwkv_error_clear(&err);
    int rc = CLI_OK, eof = 0;
    if (!enc || !chunk) {
        rc = cli_fail(CMD, "out of memory");
        goto out;
    }
    while (!eof) {
        size_t got = fread(chunk, 1, CHUNK_BYTES, in);
        if (got < CHUNK_BYTES) {
            if (ferror(in)) {
                rc = cli_fail(CMD, "%s: read error: %s", r->o->input, strerror(errno));
                goto out;
            }
            eof = 1;
        }
        if (rwkv_encoder_feed(enc, chunk, got, &q, &err) != 0 ||
            (eof && rwkv_encoder_finish(enc, &q, &err) != 0)) {
            rc = cli_fail(CMD, "%s: %s", r->o->input, err.msg);
            goto out;
        }
        /* run every block whose successor token is known */
        size_t pos = 0;
        while (q.n - pos > T) {
            if ((rc = run_block(r, q.v + pos, (int)T, q.v[pos + T])) != CLI_OK)
                goto out;
            pos += T;
        }
        if (pos > 0) {
            memmove(q.v, q.v + pos, (q.n - pos) * sizeof *q.v);
            q.n -= pos;
        }
    }
    if (q.n == 0 && r->tokens == 0) {
        rc = cli_fail(CMD, "%s: the input has no tokens", r->o->input);
        goto out;
    }
    if (q.n > 0)
        rc = run_block(r, q.v, (int)q.n, -1);
out:
    rwkv_ids_free(&q);
    free(chunk);
    rwkv_encoder_free(enc);
    return rc;
}

static int finish_outputs(eval_run *r)
{
    eval_opts *o = r->o;
    int rc = CLI_OK;
    if (o->hidden == RWKV_HIDDEN_MEAN) {
        for (size_t i = 0; i < r->C; i++)
            r->hidden[i] = (float)(r->hidden_sum[i] / (double)r->tokens);
        if (cli_out_write(CMD, &o->out_hidden, r->hidden, r->C * sizeof(float)))
            return CLI_FAIL;
    }
    if (o->out_state.path) {
        size_t n = rwkv_state_floats(r->st);
        float *buf = malloc(n * sizeof *buf);
        if (!buf)
            return cli_fail(CMD, "out of memory");
        rwkv_error err;
        if (rwkv_state_export(r->st, buf, &err) != 0) {
            free(buf);
            return cli_fail(CMD, "%s", err.msg);
        }
        rc = cli_out_write(CMD, &o->out_state, buf, n * sizeof *buf);
        free(buf);
    }
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    int status;
    if (parse_args(argc, argv, &o, &status) != 0)
        return status;
    rwkv_tokenizer *tok = NULL;
    rwkv_model *model = NULL;
    FILE *in = NULL;
    eval_run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    cli_out *outs[] = {&o.out_logits, &o.out_hidden, &o.out_state, &o.out_surprisal,
                       &o.out_segments};
    rwkv_error err;
    rwkv_error_clear(&err);

    if ((status = cli_load_tokenizer(CMD, o.vocab, o.bytes, &tok)) != CLI_OK ||
        (status = cli_load_model(CMD, o.model, &model)) != CLI_OK ||
        (status = cli_check_vocab(CMD, tok, model)) != CLI_OK)
        goto out;
    const rwkv_model_info *mi = rwkv_model_get_info(model);
    r.V = (size_t)mi->vocab_size;
    r.C = (size_t)mi->n_embd;
    status = CLI_FAIL;
    r.st = rwkv_state_new(model);
    if (!r.st) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    if (o.in_state && (status = load_state(&o, r.st)) != CLI_OK)
        goto out;
    status = CLI_FAIL;
    size_t T = (size_t)o.block;
    if (o.logits != RWKV_LOGITS_NONE)
        r.logits = malloc((o.logits == RWKV_LOGITS_ALL ? T : 1) * r.V * sizeof(float));
    if (o.hidden != RWKV_HIDDEN_NONE)
        r.hidden = malloc((o.hidden == RWKV_HIDDEN_ALL ? T : 1) * r.C * sizeof(float));
    if (o.hidden == RWKV_HIDDEN_MEAN)
        r.hidden_sum = calloc(r.C, sizeof(double));
    if (o.out_segments.path) {
        rwkv_seg_config sc;
        if (eval_segments_parse(CMD, o.segments ? o.segments : "line", &sc) != 0) {
            status = CLI_USAGE;
            goto out;
        }
        sc.text_cap = (uint16_t)o.segment_text;
        if (eval_segments_init(CMD, &r.segs, &sc, tok, &o.out_segments) != 0)
            goto out;
        r.use_segs = 1;
    }
    if (o.out_surprisal.path || r.use_segs)
        r.surprisal = malloc(T * sizeof(float));
    if ((o.logits != RWKV_LOGITS_NONE && !r.logits) ||
        (o.hidden != RWKV_HIDDEN_NONE && !r.hidden) ||
        (o.hidden == RWKV_HIDDEN_MEAN && !r.hidden_sum) || (r.use_segs && !r.surprisal) ||
        (o.out_surprisal.path && !r.surprisal)) {
        cli_fail(CMD, "out of memory for blocks of %zu tokens (try a smaller --block)", T);
        goto out;
    }
    rwkv_engine_opts eo = {o.device, (int)o.threads, (rwkv_precision)o.precision};
    r.eng = rwkv_engine_new_opts(model, &eo, &err);
    if (!r.eng) {
        cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    if (!(in = cli_open_input(CMD, o.input)))
        goto out;
    for (int i = 0; i < 5; i++)
        if (cli_out_open(CMD, outs[i]) != CLI_OK)
            goto out;

    double t0 = cli_now();
    if (stream(&r, in, tok) != CLI_OK || finish_outputs(&r) != CLI_OK)
        goto out;
    double secs = cli_now() - t0;
    status = CLI_OK;
    for (int i = 0; i < 5; i++)
        if (cli_out_close(CMD, outs[i]) != CLI_OK)
            status = CLI_FAIL;
    if (status != CLI_OK) { /* a late write error: leave no half set of outputs */
        for (int i = 0; i < 5; i++)
            if (outs[i]->path)
                unlink(outs[i]->path);
        goto out;
    }
    if (!o.quiet) {
        char extra[96] = "";
        if (r.surprisal_n)
            snprintf(extra, sizeof extra, ", mean surprisal %.6f nats (%.4f bits) over %llu",
                     r.surprisal_sum / (double)r.surprisal_n,
                     r.surprisal_sum / (double)r.surprisal_n / 0.6931471805599453,
                     (unsigned long long)r.surprisal_n);
        fprintf(stderr, "rwkv eval: %llu tokens in %.3f s, %.1f tok/s%s%s%s\n",
                (unsigned long long)r.tokens, secs, secs > 0 ? (double)r.tokens / secs : 0.0,
                extra, o.device || o.precision_given ? "; on " : "",
                o.device || o.precision_given ? rwkv_engine_device(r.eng) : "");
    }
out:
    for (int i = 0; i < 5; i++)
        cli_out_discard(outs[i]);
    cli_close_input(in);
    rwkv_engine_free(r.eng);
    rwkv_state_free(r.st);
    free(r.logits);
    free(r.hidden);
    free(r.hidden_sum);
    free(r.surprisal);
    rwkv_model_free(model);
    rwkv_tokenizer_free(tok);
    return status;
}
