/* config.c — the option table and what is derived from it: defaults,
 * value parsing and range checks, --help, the effective-config dump
 * (see config.h).  Reading the sources (INI, environment, command line)
 * is in config_load.c.
 */
#include "daemon/config.h"

#include "core/precision.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(rwkvd_config, field), sizeof(((rwkvd_config *)0)->field)

static const rwkvd_option options[] = {
    {"config", RWKVD_OPT_PATH, F(config_file), "", 0, 0, false, true, "PATH",
     "INI file to read (name = value lines, optional [rwkvd] section). Command line and "
     "environment only."},
    {"model", RWKVD_OPT_PATH, F(model), "", 0, 0, false, false, "PATH",
     "RWKV model checkpoint (.pth or .safetensors). Required."},
    {"vocab", RWKVD_OPT_PATH, F(vocab), "", 0, 0, false, false, "PATH",
     "Tokenizer: a World vocabulary file (rwkv_vocab_v20230424.txt) or a GPT-NeoX "
     "tokenizer.json (20B_tokenizer.json; the kind is recognised from the content), "
     "\"bytes\" for the byte-level tokenizer, or empty for \"bytes\" when the model's "
     "vocabulary is 256."},
    {"device", RWKVD_OPT_DEVICE, F(device), "cpu", 0, 0, false, false, "DEV",
     "Where the model runs: cpu, cuda or cuda:N."},
    {"precision", RWKVD_OPT_PRECISION, F(precision), "fp32", 0, 0, false, false, "P",
     "Arithmetic of the CPU engine's large products: fp32 (exact, the reference), bf16, "
     "int8, or auto (the fastest this CPU runs; see docs/precision.md). A document's "
     "checkpoint records it: resuming under another precision is refused (other_model) "
     "unless --allow-precision-change."},
    {"allow_precision_change", RWKVD_OPT_BOOL, F(allow_precision_change), "false", 0, 0, true,
     false, "", "Continue a document whose checkpoint was computed in another precision "
     "(or already mixed) instead of refusing it: it is logged, and the document's outputs "
     "and checkpoints say \"mixed\" from then on (PROTOCOL.md 8.1). --allow-precision-change "
     "alone turns it on; =false off."},
    {"threads", RWKVD_OPT_INT, F(threads), "0", 0, 1024, false, false, "N",
     "CPU worker threads; 0 = one per online CPU."},
    {"block_size", RWKVD_OPT_INT, F(block_size), "256", 1, 65536, false, false, "N",
     "Tokens per block: one output message per block. A document keeps the block size it "
     "started with, across restarts."},
    {"ingest", RWKVD_OPT_ENDPOINT, F(ingest), "tcp://127.0.0.1:5555", 0, 0, false, false,
     "ENDPOINT", "ZeroMQ PULL endpoint the daemon binds for documents."},
    {"emit", RWKVD_OPT_ENDPOINT, F(emit), "tcp://127.0.0.1:5556", 0, 0, false, false,
     "ENDPOINT", "ZeroMQ PUSH endpoint the daemon binds for outputs."},
    {"control", RWKVD_OPT_ENDPOINT, F(control), "tcp://127.0.0.1:5557", 0, 0, false, false,
     "ENDPOINT", "ZeroMQ ROUTER endpoint the daemon binds for control requests."},
    {"ingest_hwm", RWKVD_OPT_INT, F(ingest_hwm), "1000", 1, 10000000, false, false, "N",
     "High-water mark (messages) of the ingest socket."},
    {"emit_hwm", RWKVD_OPT_INT, F(emit_hwm), "256", 1, 10000000, false, false, "N",
     "High-water mark (messages) of the emit socket; when full, the daemon stops taking "
     "input rather than drop outputs."},
    {"control_hwm", RWKVD_OPT_INT, F(control_hwm), "100", 1, 1000000, false, false, "N",
     "High-water mark (messages) of the control socket."},
    {"max_message_size", RWKVD_OPT_SIZE, F(max_message_size), "8M", 1024, INT64_C(1) << 30,
     false, false, "BYTES",
     "Largest ingest message (also ZMQ_MAXMSGSIZE: larger ones are dropped by ZeroMQ). "
     "Suffixes K, M, G."},
    {"max_tokens_per_message", RWKVD_OPT_INT, F(max_tokens_per_message), "1048576", 1,
     INT64_C(1) << 28, true, false, "N", "Most token ids one ingest message may carry."},
    {"linger_ms", RWKVD_OPT_INT, F(linger_ms), "5000", 0, 600000, true, false, "MS",
     "At shutdown, how long queued outputs may still be delivered."},
    {"curve_secret_key", RWKVD_OPT_PATH, F(curve_secret_key), "", 0, 0, false, false, "FILE",
     "The daemon's CURVE key pair (from `rwkvd keygen`; mode 0600): every socket is then "
     "encrypted and admits only the keys of its role's allow-list. Empty = plaintext."},
    {"curve_producers", RWKVD_OPT_PATH, F(curve_producers), "", 0, 0, true, false, "DIR",
     "Directory of public key files of the clients allowed to send documents (ingest). "
     "Re-read on SIGHUP."},
    {"curve_consumers", RWKVD_OPT_PATH, F(curve_consumers), "", 0, 0, true, false, "DIR",
     "Directory of public key files of the clients allowed to receive outputs (emit). "
     "Re-read on SIGHUP."},
    {"curve_operators", RWKVD_OPT_PATH, F(curve_operators), "", 0, 0, true, false, "DIR",
     "Directory of public key files of the clients allowed on the control socket. Re-read "
     "on SIGHUP."},
    {"state_dir", RWKVD_OPT_PATH, F(state_dir), "./var/rwkvd", 0, 0, false, false, "PATH",
     "Directory of document checkpoints (created if missing; $STATE_DIRECTORY from systemd "
     "replaces the default)."},
    {"max_active_docs", RWKVD_OPT_INT, F(max_active_docs), "1024", 1, 10000000, true, false,
     "N", "Documents kept in memory; beyond it the least recently used go to disk."},
    {"max_held_msgs", RWKVD_OPT_INT, F(max_held_msgs), "16", 0, 65536, true, false, "N",
     "Out-of-order messages held per document while waiting for a missing seq; 0 refuses "
     "every gap at once."},
    {"checkpoint_blocks", RWKVD_OPT_INT, F(checkpoint_blocks), "16", 0, 1000000000, true, false,
     "N", "Checkpoint a document every N blocks (0 = not by count)."},
    {"checkpoint_seconds", RWKVD_OPT_SECONDS, F(checkpoint_seconds), "30", 0, 86400, true,
     false, "S", "Checkpoint a document with unsaved progress every S seconds (0 = not by "
     "time)."},
    {"zstd_level", RWKVD_OPT_INT, F(zstd_level), "1", -7, 19, true, false, "N",
     "zstd level of checkpoints (-7 fastest .. 19 smallest; states are float noise that "
     "level 3 packs no smaller than level 1)."},
    {"log_level", RWKVD_OPT_LOGLEVEL, F(log_level), "info", 0, 0, true, false, "LEVEL",
     "error, warn, info or debug."},
    {"log_file", RWKVD_OPT_PATH, F(log_file), "", 0, 0, true, false, "PATH",
     "Log file (reopened on SIGHUP, for logrotate); empty = stderr."},
    {"metrics_port", RWKVD_OPT_INT, F(metrics_port), "0", 0, 65535, false, false, "PORT",
     "HTTP port serving Prometheus metrics at /metrics; 0 = off."},
    {"metrics_bind", RWKVD_OPT_STR, F(metrics_bind), "127.0.0.1", 0, 0, false, false, "ADDR",
     "Address the metrics port binds."},
    /* cluster mode (daemon/cluster/, PROTOCOL.md §12) */
    {"nats", RWKVD_OPT_STR, F(nats), "", 0, 0, false, false, "URL",
     "NATS server URL(s), comma-separated (nats://host:4222): run as a worker of a NATS "
     "JetStream cluster instead of the ingest/emit sockets; empty = ZeroMQ only."},
    {"nats_creds", RWKVD_OPT_PATH, F(nats_creds), "", 0, 0, false, false, "PATH",
     "NATS user credentials file (JWT + seed) for --nats; empty = none."},
    {"nats_ca", RWKVD_OPT_PATH, F(nats_ca), "", 0, 0, false, false, "PATH",
     "CA certificates (PEM) that sign the NATS server's TLS certificate; also turns TLS "
     "on. Empty = the URL decides (tls://)."},
    {"partitions", RWKVD_OPT_INT, F(partitions), "16", 1, 4096, false, false, "P",
     "Partitions of the cluster's document stream; the same for every worker and producer "
     "for the cluster's lifetime."},
    {"nats_replicas", RWKVD_OPT_INT, F(nats_replicas), "1", 1, 5, false, false, "N",
     "Replicas of the streams and key-value buckets this worker creates when they are "
     "missing (existing ones are used as they are): 3 on a 3-node JetStream cluster."},
    {"lease_ttl", RWKVD_OPT_SECONDS, F(lease_ttl), "10", 1, 3600, false, false, "S",
     "Lifetime of a partition lease; leases are renewed every S/3, and a dead worker's "
     "partitions move after S."},
    {"worker_id", RWKVD_OPT_STR, F(worker_id), "", 0, 0, false, false, "NAME",
     "This worker's name in the cluster (1..64 of A-Z a-z 0-9 _ -); empty = "
     "<hostname>-<pid>."},
    {"http_port", RWKVD_OPT_INT, F(http_port), "0", 0, 65535, false, false, "PORT",
     "HTTP port serving the OpenAI-style POST /v1/embeddings (EmbeddingRWKV models only); "
     "0 = off."},
    {"http_bind", RWKVD_OPT_STR, F(http_bind), "127.0.0.1", 0, 0, false, false, "ADDR",
     "Address the /v1/embeddings port binds."},
    {"http_max_tokens", RWKVD_OPT_INT, F(http_max_tokens), "8192", 1, 1 << 20, false, false, "N",
     "Most tokens of one /v1/embeddings input; longer documents go through the ingest "
     "socket (streaming, any length)."},
    {"http_max_body", RWKVD_OPT_SIZE, F(http_max_body), "1M", 1024, INT64_C(1) << 30, false,
     false, "BYTES", "Largest /v1/embeddings request body."},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

const rwkvd_option *rwkvd_config_options(size_t *n)
{
    *n = N_OPTIONS;
    return options;
}

/* name equality with '-' == '_' */
static bool same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

const rwkvd_option *rwkvd_config_find(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (same_name(options[i].name, name))
            return &options[i];
    return NULL;
}

const char *rwkvd_log_level_name(rwkvd_log_level l)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return (unsigned)l < 4 ? names[l] : "?";
}

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || isspace((unsigned char)s[0]))
        return -1;
    *out = v;
    return 0;
}

static int set_text(char *dst, size_t cap, const rwkvd_option *o, const char *v, rwkv_error *err)
{
    size_t n = strlen(v);
    if (n >= cap)
        return rwkv_fail(err, "%s: %zu bytes, at most %zu", o->name, n, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return rwkv_fail(err, "%s: control character at byte %zu", o->name, i);
    memcpy(dst, v, n + 1);
    return 0;
}

int rwkvd_config_set(rwkvd_config *c, const char *name, const char *v, rwkv_error *err)
{
    const rwkvd_option *o = rwkvd_config_find(name);
    if (!o)
        return rwkv_fail(err, "unknown option '%.64s'", name);
    void *field = (char *)c + o->offset;
    int64_t iv;
    switch (o->type) {
    case RWKVD_OPT_PATH:
    case RWKVD_OPT_STR:
        return set_text(field, o->size, o, v, err);
    case RWKVD_OPT_ENDPOINT:
        if (strncmp(v, "tcp://", 6) && strncmp(v, "ipc://", 6) && strncmp(v, "inproc://", 9))
            return rwkv_fail(err, "%s: '%.64s' is not a tcp://, ipc:// or inproc:// endpoint",
                             o->name, v);
        if (strchr(v, ' ') || strchr(v, '\t'))
            return rwkv_fail(err, "%s: endpoint contains a space", o->name);
        return set_text(field, o->size, o, v, err);
    case RWKVD_OPT_INT:
        if (parse_int64(v, &iv) != 0)
            return rwkv_fail(err, "%s: '%.64s' is not an integer", o->name, v);
        if (iv < o->min || iv > o->max)
            return rwkv_fail(err, "%s: %lld is not in %lld..%lld", o->name, (long long)iv,
                             (long long)o->min, (long long)o->max);
        *(int *)field = (int)iv;
        return 0;
    case RWKVD_OPT_SIZE: {
        char num[32];
        size_t n = strlen(v);
        int64_t mult = 1;
        if (n && strchr("kKmMgG", v[n - 1])) {
            char s = (char)toupper((unsigned char)v[n - 1]);
            mult = s == 'K' ? 1024 : s == 'M' ? 1024 * 1024 : INT64_C(1) << 30;
            n--;
        }
        if (n == 0 || n >= sizeof num)
            return rwkv_fail(err, "%s: '%.64s' is not a size", o->name, v);
        memcpy(num, v, n);
        num[n] = '\0';
        if (parse_int64(num, &iv) != 0 || iv < 0)
            return rwkv_fail(err, "%s: '%.64s' is not a size (bytes, or with K, M, G)", o->name, v);
        if (iv > o->max / mult || iv * mult < o->min)
            return rwkv_fail(err, "%s: %s is not in %lld..%lld bytes", o->name, v,
                             (long long)o->min, (long long)o->max);
        *(uint64_t *)field = (uint64_t)(iv * mult);
        return 0;
    }
    case RWKVD_OPT_SECONDS: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d) || isspace((unsigned char)v[0]))
            return rwkv_fail(err, "%s: '%.64s' is not a number of seconds", o->name, v);
        if (d < (double)o->min || d > (double)o->max)
            return rwkv_fail(err, "%s: %g is not in %lld..%lld", o->name, d, (long long)o->min,
                             (long long)o->max);
        *(double *)field = d;
        return 0;
    }
    case RWKVD_OPT_LOGLEVEL:
        for (int l = 0; l < 4; l++)
            if (strcmp(v, rwkvd_log_level_name((rwkvd_log_level)l)) == 0) {
                *(rwkvd_log_level *)field = (rwkvd_log_level)l;
                return 0;
            }
        return rwkv_fail(err, "%s: '%.64s' is not one of error, warn, info, debug", o->name, v);
    case RWKVD_OPT_PRECISION: {
        rwkv_precision p;
        if (rwkv_precision_parse(v, &p, NULL) != 0)
            return rwkv_fail(err, "%s: '%.64s' is not one of " RWKV_PRECISION_NAMES, o->name, v);
        c->precision_code = (int)p;
        return set_text(field, o->size, o, v, err);
    }
    case RWKVD_OPT_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"},
                                 *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < 4; i++)
            if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
                *(bool *)field = strcmp(v, yes[i]) == 0;
                return 0;
            }
        return rwkv_fail(err, "%s: '%.64s' is not true or false (yes/no, on/off, 1/0)", o->name,
                         v);
    }
    case RWKVD_OPT_DEVICE:
        if (strcmp(v, "cpu") == 0) {
            c->device_kind = RWKVD_DEVICE_CPU;
            c->device_index = 0;
        } else if (strcmp(v, "cuda") == 0) {
            c->device_kind = RWKVD_DEVICE_CUDA;
            c->device_index = 0;
        } else if (strncmp(v, "cuda:", 5) == 0 && parse_int64(v + 5, &iv) == 0 && iv >= 0 &&
                   iv < 64 && v[5] != '+') {
            c->device_kind = RWKVD_DEVICE_CUDA;
            c->device_index = (int)iv;
        } else {
            return rwkv_fail(err, "%s: '%.64s' is not cpu, cuda or cuda:N (N in 0..63)", o->name, v);
        }
        return set_text(field, o->size, o, v, err);
    }
    return rwkv_fail(err, "%s: unhandled option type", o->name);
}

void rwkvd_config_defaults(rwkvd_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_OPTIONS; i++)
        rwkvd_config_set(c, options[i].name, options[i].def, NULL);
}

void rwkvd_config_value(const rwkvd_config *c, const rwkvd_option *o, char *buf, size_t len)
{
    const void *field = (const char *)c + o->offset;
    switch (o->type) {
    case RWKVD_OPT_INT:
        snprintf(buf, len, "%d", *(const int *)field);
        break;
    case RWKVD_OPT_SIZE:
        snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)field);
        break;
    case RWKVD_OPT_SECONDS:
        snprintf(buf, len, "%.17g", *(const double *)field);
        break;
    case RWKVD_OPT_LOGLEVEL:
        snprintf(buf, len, "%s", rwkvd_log_level_name(*(const rwkvd_log_level *)field));
        break;
    case RWKVD_OPT_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    default:
        snprintf(buf, len, "%s", (const char *)field);
        break;
    }
}

/* ---- text generation: a tiny growable string ---- */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    for (int attempt = 0; attempt < 2 && !s->oom; attempt++) {
        va_start(ap, fmt);
        int k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            s->oom = true;
            return;
        }
        if (s->p && (size_t)k < s->cap - s->n) {
            s->n += (size_t)k;
            return;
        }
        size_t want = (s->n + (size_t)k + 1) * 2 + 256;
        char *np = realloc(s->p, want);
        if (!np) {
            s->oom = true;
            return;
        }
        s->p = np;
        s->cap = want;
    }
}

static char *sb_done(sbuf *s)
{
    if (s->oom) {
        free(s->p);
        return NULL;
    }
    return s->p;
}

/* Appends text wrapped at `width` columns, every line indented by `indent`. */
static void sb_wrap(sbuf *s, const char *text, int indent, int width)
{
    int col = indent;
    const char *p = text;
    while (*p) {
        const char *w = p;
        while (*w && *w != ' ')
            w++;
        int wl = (int)(w - p);
        if (col > indent && col + 1 + wl > width) {
            sb_add(s, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            sb_add(s, " ");
            col++;
        }
        sb_add(s, "%.*s", wl, p);
        col += wl;
        p = *w ? w + 1 : w;
    }
    sb_add(s, "\n");
}

char *rwkvd_config_help(const char *prog)
{
    sbuf s = {0};
    sb_add(&s, "Usage: %s --model PATH [--option VALUE]...\n\n", prog ? prog : "rwkvd");
    sb_wrap(&s,
            "rwkvd runs an RWKV language model over documents sent on ZeroMQ and sends back "
            "embeddings, logits, top-k and surprisal per block of tokens, checkpointing every "
            "document so that it survives restarts (protocol: daemon/PROTOCOL.md).",
            0, 78);
    sb_add(&s, "\n");
    sb_wrap(&s,
            "Every option may also be set in the environment as RWKVD_<NAME> (RWKVD_BLOCK_SIZE) "
            "or in the INI file as name = value (block_size = 512). Precedence: command line > "
            "environment > INI file > defaults. --opt=value and --opt value both work. "
            "[reload] marks options that SIGHUP re-reads while running; the others need a "
            "restart.",
            0, 78);
    sb_add(&s, "\nOptions:\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rwkvd_option *o = &options[i];
        char flag[64];
        /* a bool is a flag: --name alone (--name=false to turn it off) */
        size_t k = o->type == RWKVD_OPT_BOOL
                       ? (size_t)snprintf(flag, sizeof flag, "--%s", o->name)
                       : (size_t)snprintf(flag, sizeof flag, "--%s %s", o->name, o->metavar);
        for (size_t j = 2; j < k; j++)
            if (flag[j] == '_')
                flag[j] = '-';
        if (k <= 28)
            sb_add(&s, "  %-28s", flag);
        else
            sb_add(&s, "  %s\n%30s", flag, "");
        char extra[512], env[80];
        size_t e = (size_t)snprintf(env, sizeof env, "RWKVD_");
        for (const char *c = o->name; *c && e < sizeof env - 1; c++)
            env[e++] = (char)toupper((unsigned char)*c);
        env[e] = '\0';
        char range[96] = "";
        if (o->type == RWKVD_OPT_INT || o->type == RWKVD_OPT_SECONDS || o->type == RWKVD_OPT_SIZE)
            snprintf(range, sizeof range, "; %lld..%lld", (long long)o->min, (long long)o->max);
        snprintf(extra, sizeof extra, "%s (default: %s%s; %s)%s", o->help,
                 o->def[0] ? o->def : "empty", range, env, o->reloadable ? " [reload]" : "");
        sb_wrap(&s, extra, 30, 78);
    }
    sb_add(&s, "  %-28s", "-h, --help");
    sb_wrap(&s, "This text.", 30, 78);
    sb_add(&s, "  %-28s", "--version");
    sb_wrap(&s, "The version (" RWKVD_VERSION ").", 30, 78);
    sb_add(&s, "\n");
    sb_wrap(&s, "Signals: SIGTERM/SIGINT checkpoint every document and exit; SIGHUP reloads the "
                "[reload] options and reopens the log file.", 0, 78);
    return sb_done(&s);
}

char *rwkvd_config_format(const rwkvd_config *c)
{
    sbuf s = {0};
    sb_add(&s, "# rwkvd effective configuration\n[rwkvd]\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].not_in_ini)
            continue;
        char v[RWKVD_CFG_PATH_MAX];
        rwkvd_config_value(c, &options[i], v, sizeof v);
        sb_add(&s, "%s = \"%s\"\n", options[i].name, v);
    }
    return sb_done(&s);
}
