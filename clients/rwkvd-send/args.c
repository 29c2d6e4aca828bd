/* args.c — rwkvd-send's command line: options, their ranges, --help.
 * Every bad argument is one line on stderr and exit status 2. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkvd-send/send.h"

static void help(void)
{
    printf(
        "usage: rwkvd-send [OPTIONS] FILE|-\n"
        "\n"
        "Streams FILE (or stdin, '-') to rwkvd as ONE document, in messages of --chunk-size\n"
        "bytes.  Message seq k always carries bytes [k*chunk, (k+1)*chunk) of the input: the\n"
        "tool asks the daemon where the document stands (`resume`) and sends only what it\n"
        "lacks, so re-running the same command after a crash (of the sender or the daemon)\n"
        "continues exactly.  Use the SAME --chunk-size on every run of a document.\n"
        "\n"
        "options:\n"
        "  --doc ID           document id (1..256 bytes; default: FILE as given; required\n"
        "                     for stdin)\n"
        "  --chunk-size N     bytes per message (default 65536; suffixes K, M = KiB, MiB);\n"
        "                     N plus ~300 bytes must fit the daemon's max_message_size\n"
        "                     (8 MiB by default)\n"
        "  --outputs LIST     comma-separated subset of embedding,logits_last,topk,surprisal\n"
        "                     ('' or 'none': only the final message)\n"
        "  --pooling P        last | mean\n"
        "  --no-normalize     do not L2-normalize embeddings\n"
        "  --topk K           k of the topk output, 1..64\n"
        "                     (--outputs/--pooling/--no-normalize/--topk go out as opts on\n"
        "                     seq 0; a document keeps the options it started with)\n"
        "  --ingest EP        ingest endpoint (default " SEND_DEFAULT_INGEST ")\n"
        "  --control EP       control endpoint (default " SEND_DEFAULT_CONTROL ")\n"
        "  --curve-server-key FILE  the daemon's CURVE public key (for a daemon run with\n"
        "                     --curve-secret-key); needs --curve-key\n"
        "  --curve-key FILE   this client's key pair (`rwkvd keygen`, mode 0600); its public\n"
        "                     key must be in the daemon's producer AND operator allow-lists\n"
        "  --nats URL         send to a cluster of rwkvd workers on NATS JetStream instead\n"
        "                     (PROTOCOL.md 12): every message is published with its msg id\n"
        "                     and the server's PubAck awaited; exit 0 means the document is\n"
        "                     stored in the stream (the workers take it from there).  A\n"
        "                     re-run sends from seq 0: the server drops repeats within its\n"
        "                     duplicate window and workers ignore older seqs.\n"
        "  --nats-creds PATH  NATS user credentials file; --nats-ca PATH: CA certificates\n"
        "                     (PEM) of the server's TLS certificate (turns TLS on)\n"
        "  --timeout S        give up after S seconds without progress: no message accepted\n"
        "                     and the document not advancing (default 60; 0 = never)\n"
        "  --no-wait          exit once every message is handed over, without waiting for\n"
        "                     the daemon to process the document\n"
        "  -q, --quiet        no progress line and no notes; errors only\n"
        "  -h, --help         this text\n"
        "\n"
        "A progress line (bytes sent, tokens, tok/s, ETA) is shown when stderr is a terminal.\n"
        "If the daemon restarts mid-send, a FILE is re-sent from where the daemon resumed;\n"
        "stdin cannot be rewound, so the tool then fails: re-run it with the same input.\n"
        "Exit status: 0 when everything was sent and (unless --no-wait) the daemon finished\n"
        "the document; 1 on failure; 2 for bad arguments.  Errors are one line on stderr.\n");
}

static int usage(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "rwkvd-send: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return SEND_USAGE;
}

/* "65536", "64K", "64KiB", "8M", "8MiB" -> bytes in [1, SEND_MAX_CHUNK]. */
static int parse_size(const char *s, size_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    unsigned long long mul = 1;
    if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0 || strcmp(end, "KiB") == 0)
        mul = 1024;
    else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
        mul = 1024 * 1024;
    else if (*end != 0)
        return -1;
    if (v == 0 || v > SEND_MAX_CHUNK / mul)
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

static int parse_outputs(const char *s, send_config *cfg)
{
    static const char *const names[] = {"embedding", "logits_last", "topk", "surprisal"};
    cfg->set_outputs = true;
    cfg->n_outputs = 0;
    if (*s == 0 || strcmp(s, "none") == 0)
        return 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *found = NULL;
        for (size_t i = 0; i < 4; i++)
            if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
                found = names[i];
        if (!found)
            return usage("--outputs: '%s': each item must be one of embedding, logits_last, "
                         "topk, surprisal", s);
        for (size_t i = 0; i < cfg->n_outputs; i++)
            if (cfg->outputs[i] == found)
                return usage("--outputs: '%s': an output is named twice", s);
        cfg->outputs[cfg->n_outputs++] = found;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static void set_label(send_config *cfg)
{
    for (size_t i = 0; i < cfg->doc_len; i++) {
        unsigned char c = cfg->doc[i];
        cfg->doc_label[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    cfg->doc_label[cfg->doc_len] = 0;
}

enum { OPT_DOC = 256, OPT_CHUNK, OPT_OUTPUTS, OPT_POOLING, OPT_NO_NORM, OPT_TOPK, OPT_INGEST,
       OPT_CONTROL, OPT_TIMEOUT, OPT_NO_WAIT, OPT_CURVE_SERVER, OPT_CURVE_KEY, OPT_NATS,
       OPT_NATS_CREDS, OPT_NATS_CA };

int send_parse_args(int argc, char **argv, send_config *cfg)
{
    static const struct option longopts[] = {
        {"doc", required_argument, NULL, OPT_DOC},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"outputs", required_argument, NULL, OPT_OUTPUTS},
        {"pooling", required_argument, NULL, OPT_POOLING},
        {"no-normalize", no_argument, NULL, OPT_NO_NORM},
        {"topk", required_argument, NULL, OPT_TOPK},
        {"ingest", required_argument, NULL, OPT_INGEST},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"curve-server-key", required_argument, NULL, OPT_CURVE_SERVER},
        {"curve-key", required_argument, NULL, OPT_CURVE_KEY},
        {"nats", required_argument, NULL, OPT_NATS},
        {"nats-creds", required_argument, NULL, OPT_NATS_CREDS},
        {"nats-ca", required_argument, NULL, OPT_NATS_CA},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(cfg, 0, sizeof *cfg);
    cfg->chunk = SEND_DEFAULT_CHUNK;
    cfg->ingest = SEND_DEFAULT_INGEST;
    cfg->control = SEND_DEFAULT_CONTROL;
    cfg->timeout = SEND_DEFAULT_TIMEOUT;
    const char *doc = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DOC:
            doc = optarg;
            break;
        case OPT_CHUNK:
            if (parse_size(optarg, &cfg->chunk) != 0)
                return usage("--chunk-size: '%s' is not a size from 1 byte to 1 GiB", optarg);
            break;
        case OPT_OUTPUTS:
            if (parse_outputs(optarg, cfg) != 0)
                return SEND_USAGE;
            break;
        case OPT_POOLING:
            if (strcmp(optarg, "last") != 0 && strcmp(optarg, "mean") != 0)
                return usage("--pooling: '%s' is neither last nor mean", optarg);
            cfg->pooling = optarg;
            break;
        case OPT_NO_NORM:
            cfg->no_normalize = true;
            break;
        case OPT_TOPK: {
            char *end;
            errno = 0;
            long k = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || k < 1 || k > RWKVD_TOPK_MAX)
                return usage("--topk: '%s' is not an integer from 1 to 64", optarg);
            cfg->topk = (unsigned)k;
            break;
        }
        case OPT_INGEST:
            cfg->ingest = optarg;
            break;
        case OPT_CONTROL:
            cfg->control = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end;
            errno = 0;
            double t = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(t) || t < 0 || t > 1e6)
                return usage("--timeout: '%s' is not a number of seconds from 0 to 1e6", optarg);
            cfg->timeout = t;
            break;
        }
        case OPT_CURVE_SERVER:
            cfg->curve_server_key = optarg;
            break;
        case OPT_CURVE_KEY:
            cfg->curve_key = optarg;
            break;
        case OPT_NO_WAIT:
            cfg->no_wait = true;
            break;
        case OPT_NATS:
            cfg->nats = optarg;
            break;
        case OPT_NATS_CREDS:
            cfg->nats_creds = optarg;
            break;
        case OPT_NATS_CA:
            cfg->nats_ca = optarg;
            break;
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
    if (optind != argc - 1)
        return usage("%s", optind >= argc ? "one FILE (or '-' for stdin) is required"
                                          : "exactly one FILE is accepted");
    if (!cfg->curve_server_key != !cfg->curve_key)
        return usage("%s", "--curve-server-key and --curve-key go together");
    cfg->path = argv[optind];
    if (!doc) {
        if (strcmp(cfg->path, "-") == 0)
            return usage("%s", "--doc is required when reading stdin");
        doc = cfg->path;
    }
    size_t n = strlen(doc);
    if (n == 0 || n > RWKVD_DOC_MAX)
        return usage("document id '%s' must be 1 to 256 bytes", doc);
    memcpy(cfg->doc, doc, n);
    cfg->doc_len = n;
    set_label(cfg);
    return SEND_OK;
}
