/* mkmodel.c — `rwkv mkmodel`: write a random-weight RWKV-7 checkpoint.
 *
 * A thin front end over core/random_model (which benchmarks call directly):
 * parse the shape string, dtype, FFN width and seed, generate, write
 * atomically, and report what was written.
 */
#include <getopt.h>
#include <string.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"
#include "core/random_model.h"

static const char *const CMD = "mkmodel";

static void help(void)
{
    printf("usage: rwkv mkmodel --shape LX-DX-HX-VX --seed S [OPTIONS] OUT.safetensors\n"
           "\n"
           "Writes a random-weight RWKV-7 (x070) checkpoint in the official layout, for\n"
           "benchmarks and tests.  The same shape, dtype and seed always give the same file.\n"
           "\n"
           "      --shape SHAPE   e.g. L12-D768-H64-V65536: layers, embedding width,\n"
           "                      HEAD SIZE (not the number of heads), vocabulary\n"
           "      --seed S        random seed (unsigned 64-bit)\n"
           "      --dtype T       bf16 (default), f16 or f32\n"
           "      --ffn F         channel-mix width (default 4*D)\n"
           "  -q, --quiet         no summary line on stderr\n"
           "  -h, --help          this text\n");
}

int cmd_mkmodel(int argc, char **argv)
{
    enum { O_SHAPE = 256, O_SEED, O_DTYPE, O_FFN };
    static const struct option longs[] = {
        {"shape", required_argument, NULL, O_SHAPE},
        {"seed", required_argument, NULL, O_SEED},
        {"dtype", required_argument, NULL, O_DTYPE},
        {"ffn", required_argument, NULL, O_FFN},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    rwkv_random_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.dtype = RWKV_BF16;
    const char *shape = NULL;
    int have_seed = 0, quiet = 0;
    long ffn = 0;
    opterr = 0;
    optind = 1;
    int c;
    rwkv_error err;
    rwkv_error_clear(&err);
    while ((c = getopt_long(argc, argv, ":qh", longs, NULL)) != -1) {
        switch (c) {
        case O_SHAPE: shape = optarg; break;
        case O_SEED:
            if (cli_parse_u64(CMD, "--seed", optarg, &spec.seed) != 0)
                return CLI_USAGE;
            have_seed = 1;
            break;
        case O_DTYPE:
            if (strcmp(optarg, "bf16") == 0)
                spec.dtype = RWKV_BF16;
            else if (strcmp(optarg, "f16") == 0)
                spec.dtype = RWKV_F16;
            else if (strcmp(optarg, "f32") == 0)
                spec.dtype = RWKV_F32;
            else
                return cli_usage(CMD, "--dtype: '%s' is not one of bf16, f16, f32", optarg);
            break;
        case O_FFN:
            if (cli_parse_long(CMD, "--ffn", optarg, 1, 1L << 20, &ffn) != 0)
                return CLI_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'h': help(); return CLI_OK;
        default: return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage(CMD, "an output file OUT.safetensors is required");
    if (optind + 1 < argc)
        return cli_usage(CMD, "one output file only (got '%s' and '%s')", argv[optind],
                         argv[optind + 1]);
    const char *out = argv[optind];
    if (!shape)
        return cli_usage(CMD, "--shape is required (e.g. L12-D768-H64-V65536)");
    if (!have_seed)
        return cli_usage(CMD, "--seed is required");
    if (rwkv_random_model_parse_shape(shape, &spec, &err) != 0)
        return cli_usage(CMD, "--shape: %s", err.msg);
    spec.ffn_dim = (int)ffn;
    if (rwkv_random_model_check(&spec, &err) != 0)
        return cli_usage(CMD, "%s", err.msg);

    double t0 = cli_now();
    if (rwkv_random_model_write(&spec, out, &err) != 0)
        return cli_fail(CMD, "%s", err.msg);
    if (!quiet)
        fprintf(stderr, "rwkv mkmodel: %s: L%d-D%d-H%d-V%d ffn %d %s seed %llu, %zu parameters, "
                "%zu bytes of weights, %.2f s\n", out, spec.n_layer, spec.n_embd, spec.head_size,
                spec.vocab_size, spec.ffn_dim ? spec.ffn_dim : 4 * spec.n_embd,
                rwkv_dtype_name(spec.dtype), (unsigned long long)spec.seed,
                rwkv_random_model_params(&spec), rwkv_random_model_bytes(&spec),
                cli_now() - t0);
    return CLI_OK;
}
