/* quantize.c — `rwkv quantize`: write a model as an int8 file.
 *
 * A thin front end over core/quantize.h: load the source (any checkpoint
 * the loader takes), hash it (recorded in the output's metadata), convert
 * and write atomically, and report what was written.
 */
#include <getopt.h>
#include <string.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"
#include "core/model.h"
#include "core/quantize.h"
#include "core/sha256.h"

static const char *const CMD = "quantize";

static void help(void)
{
    printf("usage: rwkv quantize --precision int8 IN OUT.safetensors\n"
           "\n"
           "Writes IN (.pth or .safetensors, f32/f16/bf16) as an int8 file: the large\n"
           "matrices int8 with one float32 scale per row (\"<name>.q8_scale\"), except\n"
           "the attention's receptance and key in bf16; everything else as in IN.  That\n"
           "is exactly what an engine at --precision int8 makes of IN at start-up, so its\n"
           "outputs over OUT are bit for bit those over IN, while OUT loads without IN's\n"
           "float matrices (about 0.6 of the memory of a bf16 file).  Any rwkv command or\n"
           "rwkvd recognises OUT by its content and runs it only at --precision int8\n"
           "(auto picks it).  Details:\n"
           "docs/precision.md, \"Pre-quantized files\".\n"
           "\n"
           "      --precision P   int8 (the only one: bf16 needs no file of its own)\n"
           "  -q, --quiet         no summary line on stderr\n"
           "  -h, --help          this text\n");
}

int cmd_quantize(int argc, char **argv)
{
    enum { O_PRECISION = 256 };
    static const struct option longs[] = {
        {"precision", required_argument, NULL, O_PRECISION},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *precision = NULL;
    int quiet = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", longs, NULL)) != -1) {
        switch (c) {
        case O_PRECISION: precision = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(); return CLI_OK;
        default: return cli_bad_option(CMD, c, argv);
        }
    }
    if (!precision)
        return cli_usage(CMD, "--precision int8 is required");
    if (strcmp(precision, "int8") != 0)
        return cli_usage(CMD, "--precision: '%s': only int8 files exist (bf16 engines convert "
                              "at start-up in place or in a moment)",
                         precision);
    if (argc - optind != 2)
        return cli_usage(CMD, "an input IN and an output OUT.safetensors are required");
    const char *in = argv[optind], *out = argv[optind + 1];

    rwkv_error err;
    rwkv_error_clear(&err);
    double t0 = cli_now();
    uint8_t digest[32];
    char hex[65];
    if (rwkvd_sha256_file(in, digest, &err) != 0)
        return cli_fail(CMD, "%s", err.msg);
    rwkvd_sha256_hex(digest, hex);
    rwkv_model *m = NULL;
    if (rwkv_model_load(in, &m, &err) != 0)
        return cli_fail(CMD, "%s", err.msg);
    rwkv_quantize_stats st;
    int rc = rwkv_quantize_model(m, hex, out, NULL, NULL, &st, &err);
    rwkv_model_free(m);
    if (rc != 0)
        return cli_fail(CMD, "%s", err.msg);
    if (!quiet)
        fprintf(stderr, "rwkv quantize: %s: %zu int8 matrices, %zu bf16, %zu tensors kept, "
                        "%zu bytes of tensors, %.2f s\n",
                out, st.int8_matrices, st.bf16_matrices, st.kept_tensors, st.file_bytes,
                cli_now() - t0);
    return CLI_OK;
}
