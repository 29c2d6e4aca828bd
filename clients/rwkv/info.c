/* info.c — `rwkv info`: what a checkpoint is.
 *
 * Loads the model exactly as eval would (so a file info accepts is a file
 * eval accepts) and prints its shape, dtypes, sizes and state size, as
 * aligned text or, with --json, one JSON object built with jansson.
 * The per-dtype tensor counts come from the tensor file, which is opened
 * first and then handed to rwkv_model_from_tensors.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"
#include "core/precision.h"
#include "core/embedding.h"
#include "core/tensor_file.h"

static const char *const CMD = "info";

static void help(void)
{
    printf("usage: rwkv info --model FILE [--json]\n"
           "\n"
           "Describes a checkpoint: generation, layers, embedding, heads x head size, FFN\n"
           "width, vocabulary, dtypes, parameters, weight bytes, state size, file format;\n"
           "and this CPU's features (cpuid) with the precisions it runs (--precision).\n"
           "\n"
           "  -m, --model FILE   checkpoint (.pth or .safetensors)\n"
           "      --json         one JSON object instead of text\n"
           "  -h, --help         this text\n");
}

/* 1234567 -> "1,234,567" */
static const char *grouped(size_t v, char *buf, size_t cap)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

/* The precisions this CPU runs, space separated, into buf. */
static void runnable_precisions(char *buf, size_t cap)
{
    const rwkv_cpu_features *f = rwkv_cpu_features_get();
    size_t o = 0;
    buf[0] = '\0';
    for (int p = RWKV_PRECISION_FP32; p <= RWKV_PRECISION_INT8; p++)
        if (rwkv_precision_check((rwkv_precision)p, f, NULL) == 0 && o < cap)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? " " : "",
                                  rwkv_precision_name((rwkv_precision)p));
}

static json_t *words(const char *s)
{
    json_t *a = json_array();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        json_array_append_new(a, json_string(w));
    return a;
}

/* "cls/sts/retr" for the heads present (rwkv-emb's order); "" for none. */
static const char *task_heads(const rwkv_model_info *mi, char *buf, size_t cap)
{
    static const rwkv_embed_task order[] = {RWKV_TASK_CLASSIFICATION, RWKV_TASK_SIMILARITY,
                                            RWKV_TASK_RETRIEVAL};
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < 3; i++)
        if (mi->embed_tasks & (1u << order[i]) && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "/" : "",
                                  rwkv_embed_task_head(order[i]));
    return buf;
}

static int print_json(const rwkv_model_info *mi, const size_t *dtype_count)
{
    json_t *o = json_object(), *dt = json_object();
    json_object_set_new(o, "path", json_string(mi->path));
    json_object_set_new(o, "format", json_string(mi->format));
    json_object_set_new(o, "generation", json_string(mi->generation_name));
    json_object_set_new(o, "generation_code", json_integer(mi->generation));
    json_object_set_new(o, "n_layer", json_integer(mi->n_layer));
    json_object_set_new(o, "n_embd", json_integer(mi->n_embd));
    json_object_set_new(o, "n_head", json_integer(mi->n_head));
    json_object_set_new(o, "head_size", json_integer(mi->head_size));
    json_object_set_new(o, "ffn_dim", json_integer(mi->ffn_dim));
    json_object_set_new(o, "vocab_size", json_integer(mi->vocab_size));
    char th[32];
    json_object_set_new(o, "lm_head", json_boolean(mi->has_lm_head));
    if (mi->embed_tasks)
        json_object_set_new(o, "embedding", json_string(task_heads(mi, th, sizeof th)));
    json_object_set_new(o, "matrix_dtype", json_string(rwkv_dtype_name(mi->matrix_dtype)));
    for (int d = RWKV_F32; d <= RWKV_I8; d++)
        if (dtype_count[d])
            json_object_set_new(dt, rwkv_dtype_name((rwkv_dtype)d),
                                json_integer((json_int_t)dtype_count[d]));
    json_object_set_new(o, "tensor_dtypes", dt);
    json_object_set_new(o, "int8_quantized", json_boolean(mi->int8_quantized));
    json_object_set_new(o, "n_params", json_integer((json_int_t)mi->n_params));
    json_object_set_new(o, "weight_bytes", json_integer((json_int_t)mi->weight_bytes));
    json_object_set_new(o, "state_floats", json_integer((json_int_t)mi->state_floats));
    json_object_set_new(o, "state_bytes", json_integer((json_int_t)(mi->state_floats * 4)));
    char feat[256], prec[64];
    const rwkv_cpu_features *f = rwkv_cpu_features_get();
    rwkv_cpu_features_describe(f, feat, sizeof feat);
    runnable_precisions(prec, sizeof prec);
    json_object_set_new(o, "cpu_features", words(strcmp(feat, "none") ? feat : ""));
    json_object_set_new(o, "precisions", words(prec));
    json_object_set_new(o, "precision_auto",
                        json_string(mi->int8_quantized
                                        ? "int8"
                                        : rwkv_precision_name(rwkv_precision_auto(f))));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return cli_fail(CMD, "out of memory");
    puts(text);
    free(text);
    return CLI_OK;
}

static void print_text(const rwkv_model_info *mi, const size_t *dtype_count)
{
    char a[40], b[40];
    printf("file:        %s (%s)\n", mi->path, mi->format);
    printf("generation:  %s\n", mi->generation_name);
    if (mi->embed_tasks) {
        char th[32];
        printf("model:       EmbeddingRWKV, heads %s (no LM head)\n",
               task_heads(mi, th, sizeof th));
    }
    printf("layers:      %d\n", mi->n_layer);
    printf("embedding:   %d\n", mi->n_embd);
    printf("heads:       %d x %d\n", mi->n_head, mi->head_size);
    printf("ffn:         %d\n", mi->ffn_dim);
    printf("vocab:       %d\n", mi->vocab_size);
    printf("dtypes:      matrices %s; tensors:", rwkv_dtype_name(mi->matrix_dtype));
    for (int d = RWKV_F32; d <= RWKV_I8; d++)
        if (dtype_count[d])
            printf(" %zu %s", dtype_count[d], rwkv_dtype_name((rwkv_dtype)d));
    printf("\n");
    if (mi->int8_quantized)
        printf("quantized:   int8 (rwkv quantize): large matrices int8 with per-row scales, "
               "attention receptance/key bf16; runs only at --precision int8\n");
    printf("parameters:  %s (%.3f B)\n", grouped(mi->n_params, a, sizeof a),
           (double)mi->n_params / 1e9);
    printf("weights:     %s bytes (%.1f MiB)\n", grouped(mi->weight_bytes, a, sizeof a),
           (double)mi->weight_bytes / 1048576.0);
    printf("state:       %s floats, %s bytes\n", grouped(mi->state_floats, a, sizeof a),
           grouped(mi->state_floats * 4, b, sizeof b));
    char feat[256], prec[64];
    const rwkv_cpu_features *f = rwkv_cpu_features_get();
    rwkv_cpu_features_describe(f, feat, sizeof feat);
    runnable_precisions(prec, sizeof prec);
    printf("cpu:         %s\n", feat);
    printf("precisions:  %s (auto: %s)\n", prec,
           mi->int8_quantized ? "int8, this file's only one"
                              : rwkv_precision_name(rwkv_precision_auto(f)));
}

int cmd_info(int argc, char **argv)
{
    enum { O_JSON = 256 };
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int json = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":m:h", longs, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case O_JSON: json = 1; break;
        case 'h': help(); return CLI_OK;
        default: return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (!path)
        return cli_usage(CMD, "--model FILE is required");

    rwkv_error err;
    rwkv_error_clear(&err);
    rwkv_tensor_file *f = NULL;
    if (rwkv_tensor_file_open(path, &f, &err) != 0)
        return cli_fail(CMD, "%s", err.msg);
    size_t dtype_count[RWKV_I8 + 1] = {0};
    for (size_t i = 0; i < rwkv_tensor_file_count(f); i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
        if (t->dtype >= RWKV_F32 && t->dtype <= RWKV_I8)
            dtype_count[t->dtype]++;
    }
    rwkv_model *m = NULL;
    if (rwkv_model_from_tensors(f, &m, &err) != 0) /* f is closed on failure too */
        return cli_fail(CMD, "%s", err.msg);
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    int status = CLI_OK;
    if (json)
        status = print_json(mi, dtype_count);
    else
        print_text(mi, dtype_count);
    if (status == CLI_OK && (fflush(stdout) != 0 || ferror(stdout)))
        status = cli_fail(CMD, "stdout: write failed");
    rwkv_model_free(m);
    return status;
}
