/* args.c — rwkvd-sink's command line: options, their ranges, --help.
 * Every bad argument is one line on stderr and exit status 2. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkvd-sink/sink.h"
#include "daemon/cluster/partition.h"

static void help(void)
{
    printf(
        "usage: rwkvd-sink [OPTIONS]\n"
        "\n"
        "Receives rwkvd's outputs (a PULL socket connected to the emit endpoint) and writes\n"
        "each one ONCE: outputs are at-least-once (a daemon restart re-emits the blocks after\n"
        "its last checkpoint), so block outputs are deduplicated by (doc, inc, block),\n"
        "final outputs by (doc, inc, \"final\") and segments outputs by (doc, inc,\n"
        "\"segments\", block); inc is the document id's incarnation (0 until it is dropped\n"
        "and reused).  Connect exactly one sink to an emit endpoint.\n"
        "\n"
        "options:\n"
        "  --emit EP            emit endpoint (default " SINK_DEFAULT_EMIT ")\n"
        "  --curve-server-key FILE  the daemon's CURVE public key (for a daemon run with\n"
        "                       --curve-secret-key); needs --curve-key\n"
        "  --curve-key FILE     this client's key pair (`rwkvd keygen`, mode 0600); its\n"
        "                       public key must be in the daemon's consumer allow-list\n"
        "  --nats URL --durable NAME\n"
        "                       read the output stream of a NATS JetStream cluster of rwkvd\n"
        "                       workers instead (PROTOCOL.md 12) through the durable consumer\n"
        "                       NAME; each output is acked once written and flushed, so a\n"
        "                       sink restarted with --append under the same NAME loses\n"
        "                       nothing and writes nothing twice\n"
        "  --nats-creds PATH    NATS user credentials file; --nats-ca PATH: CA certificates\n"
        "                       (PEM) of the server's TLS certificate (turns TLS on)\n"
        "  --out FILE           write JSON Lines to FILE (default: stdout)\n"
        "  --raw DIR            write raw little-endian arrays instead, per document\n"
        "                       DIR/<doc-hex>/: <block>.embedding.f32, .surprisal.f32,\n"
        "                       .logits_last.f32, .topk_ids.u32, .topk_logprobs.f32 and\n"
        "                       <block>.json (the other fields; written last), final.json and\n"
        "                       final.embedding.f32.  Doc ids over 120 bytes use their first\n"
        "                       96 bytes in hex, '~' and a 64-bit hash; the .json has the id.\n"
        "  --append             keep what --out/--raw already holds and rebuild the set of\n"
        "                       written keys from it, so a restarted sink still deduplicates\n"
        "                       (a cut-off last line of FILE is removed first)\n"
        "  --verify-identical   report a re-emitted output whose bytes differ from the first\n"
        "                       copy (the daemon promises byte-identical re-emission); such a\n"
        "                       difference makes the exit status 1\n"
        "  --until-final N      exit after N final outputs (already written ones count with\n"
        "                       --append)\n"
        "  --idle-timeout S     exit after S seconds without any output (status 1 when\n"
        "                       --until-final was not reached)\n"
        "  --segments-top N     at exit, print on stderr the N most anomalous segments seen\n"
        "                       in segments outputs (highest score, then mean surprisal),\n"
        "                       with their document, byte and token ranges\n"
        "  -q, --quiet          no acks or notes on stderr (errors still go there)\n"
        "  -h, --help           this text\n"
        "\n"
        "JSON Lines: one object per output: \"type\", \"doc\", \"block\" first, then the\n"
        "output's other fields in order; vectors as arrays of numbers (float32 printed with 9\n"
        "significant digits, so they read back bit-exactly; NaN and infinities as null);\n"
        "ids that are not UTF-8 and other binary values as {\"hex\": \"...\"}; block and final\n"
        "records end with \"msg_hash\", a 64-bit hash of the message's bytes.  Error and ack\n"
        "outputs are written too, and reported on stderr.\n");
}

static int usage(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "rwkvd-sink: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return SINK_USAGE;
}

enum { OPT_EMIT = 256, OPT_OUT, OPT_RAW, OPT_APPEND, OPT_VERIFY, OPT_UNTIL, OPT_IDLE,
       OPT_CURVE_SERVER, OPT_CURVE_KEY, OPT_NATS, OPT_DURABLE, OPT_NATS_CREDS, OPT_NATS_CA,
       OPT_TOP };

int sink_parse_args(int argc, char **argv, sink_config *cfg)
{
    static const struct option longopts[] = {
        {"emit", required_argument, NULL, OPT_EMIT},
        {"curve-server-key", required_argument, NULL, OPT_CURVE_SERVER},
        {"curve-key", required_argument, NULL, OPT_CURVE_KEY},
        {"out", required_argument, NULL, OPT_OUT},
        {"raw", required_argument, NULL, OPT_RAW},
        {"append", no_argument, NULL, OPT_APPEND},
        {"verify-identical", no_argument, NULL, OPT_VERIFY},
        {"until-final", required_argument, NULL, OPT_UNTIL},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"nats", required_argument, NULL, OPT_NATS},
        {"durable", required_argument, NULL, OPT_DURABLE},
        {"nats-creds", required_argument, NULL, OPT_NATS_CREDS},
        {"nats-ca", required_argument, NULL, OPT_NATS_CA},
        {"segments-top", required_argument, NULL, OPT_TOP},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(cfg, 0, sizeof *cfg);
    cfg->emit = SINK_DEFAULT_EMIT;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CURVE_SERVER:
            cfg->curve_server_key = optarg;
            break;
        case OPT_CURVE_KEY:
            cfg->curve_key = optarg;
            break;
        case OPT_EMIT:
            cfg->emit = optarg;
            break;
        case OPT_OUT:
            if (!*optarg)
                return usage("%s", "--out: empty file name");
            cfg->out = optarg;
            break;
        case OPT_RAW:
            if (!*optarg)
                return usage("%s", "--raw: empty directory name");
            cfg->raw = optarg;
            break;
        case OPT_APPEND:
            cfg->append = true;
            break;
        case OPT_NATS:
            cfg->nats = optarg;
            break;
        case OPT_DURABLE:
            cfg->durable = optarg;
            break;
        case OPT_NATS_CREDS:
            cfg->nats_creds = optarg;
            break;
        case OPT_NATS_CA:
            cfg->nats_ca = optarg;
            break;
        case OPT_VERIFY:
            cfg->verify = true;
            break;
        case OPT_UNTIL: {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || *optarg == '-' || n == 0)
                return usage("--until-final: '%s' is not a positive integer", optarg);
            cfg->until_final = n;
            break;
        }
        case OPT_TOP: {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || *optarg == '-' || n == 0 || n > 1000000)
                return usage("--segments-top: '%s' is not an integer in 1..1000000", optarg);
            cfg->segments_top = n;
            break;
        }
        case OPT_IDLE: {
            char *end;
            errno = 0;
            double t = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(t) || t <= 0 || t > 1e6)
                return usage("--idle-timeout: '%s' is not a number of seconds above 0", optarg);
            cfg->idle_timeout = t;
            break;
        }
        case 'q':
            cfg->quiet = true;
            break;
        case 'h':
            help();
            return -1;
        case ':':
            return usage("%s: needs a value", argv[optind - 1]);
        default:
            return usage("%s: unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage("'%s': no arguments are accepted, only options", argv[optind]);
    if (!cfg->curve_server_key != !cfg->curve_key)
        return usage("%s", "--curve-server-key and --curve-key go together");
    if (cfg->out && cfg->raw)
        return usage("%s", "--out and --raw exclude each other");
    if (cfg->append && !cfg->out && !cfg->raw)
        return usage("%s", "--append needs --out or --raw");
    if (!cfg->nats != !cfg->durable)
        return usage("%s", "--nats and --durable NAME go together");
    if (cfg->durable && !rwkvd_worker_id_valid(cfg->durable))
        return usage("--durable: '%s' is not 1..64 of A-Z a-z 0-9 _ -", cfg->durable);
    return SINK_OK;
}
