/* config.h — the daemon's configuration: one struct, one table of options.
 *
 * Every option is described once, in the table in config.c (name, type,
 * default, range, whether SIGHUP may change it, help text).  Everything else
 * is derived from that table: defaults (parsed from the default text by the
 * same code that parses user input, so a default can never be out of range),
 * the INI keys, the environment names, the command-line flags, `--help`
 * (always complete) and the effective-config dump.
 *
 * Sources and precedence: command line > environment > INI file > defaults.
 *   command line  --block-size 512  or  --block-size=512 (also --block_size)
 *   environment   RWKVD_BLOCK_SIZE=512   (unknown RWKVD_* names are ignored:
 *                 other tools share the prefix)
 *   INI file      block_size = 512       named by --config or RWKVD_CONFIG;
 *                 optional single section [rwkvd]; # or ; starts a comment
 *                 line; unknown keys, duplicates, lines over 4096 bytes,
 *                 control bytes are errors naming file:line
 *   systemd       $STATE_DIRECTORY (set by StateDirectory=) replaces the
 *                 default state_dir; any explicit setting wins over it
 *
 * Library code: nothing here prints or exits; errors come back as one line.
 * Not thread safe (configuration happens before threads start, and on
 * SIGHUP in the main loop).
 */
#ifndef RWKVD_CONFIG_H
#define RWKVD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define RWKVD_VERSION "0.1.0"
#define RWKVD_CFG_PATH_MAX 4096
#define RWKVD_CFG_STR_MAX 256
#define RWKVD_INI_LINE_MAX 4096
#define RWKVD_INI_FILE_MAX (1 << 20)

typedef enum rwkvd_log_level {
    RWKVD_LOG_ERROR = 0,
    RWKVD_LOG_WARN,
    RWKVD_LOG_INFO,
    RWKVD_LOG_DEBUG,
} rwkvd_log_level;

typedef enum rwkvd_device_kind { RWKVD_DEVICE_CPU = 0, RWKVD_DEVICE_CUDA } rwkvd_device_kind;

typedef struct rwkvd_config {
    char config_file[RWKVD_CFG_PATH_MAX]; /* the INI file read ("" = none) */
    /* model */
    char model[RWKVD_CFG_PATH_MAX];
    char vocab[RWKVD_CFG_PATH_MAX];       /* "", "bytes" or a vocabulary file */
    char device[RWKVD_CFG_STR_MAX];       /* as given: "cpu", "cuda", "cuda:1" */
    rwkvd_device_kind device_kind;        /* parsed from device */
    int device_index;                     /* N of cuda:N (0 for "cuda") */
    int threads;                          /* 0 = one per online CPU */
    char precision[RWKVD_CFG_STR_MAX];    /* as given: fp32, bf16, int8, auto */
    int precision_code;                   /* rwkv_precision parsed from precision */
    bool allow_precision_change;          /* continue checkpoints of another precision
                                             (documents then "mixed", PROTOCOL.md §8.1) */
    int block_size;
    /* sockets */
    char ingest[RWKVD_CFG_STR_MAX];
    char emit[RWKVD_CFG_STR_MAX];
    char control[RWKVD_CFG_STR_MAX];
    int ingest_hwm, emit_hwm, control_hwm;
    uint64_t max_message_size;            /* bytes; also ZMQ_MAXMSGSIZE */
    int max_tokens_per_message;
    int linger_ms;
    /* CURVE security (daemon/wire/curve.h); "" = off / nobody admitted */
    char curve_secret_key[RWKVD_CFG_PATH_MAX];
    char curve_producers[RWKVD_CFG_PATH_MAX];
    char curve_consumers[RWKVD_CFG_PATH_MAX];
    char curve_operators[RWKVD_CFG_PATH_MAX];
    /* documents and checkpoints */
    char state_dir[RWKVD_CFG_PATH_MAX];
    int max_active_docs;
    int max_held_msgs;                    /* per document; 0 refuses any gap */
    int checkpoint_blocks;                /* 0 = not by block count */
    double checkpoint_seconds;            /* 0 = not by time */
    int zstd_level;
    /* operations */
    rwkvd_log_level log_level;
    char log_file[RWKVD_CFG_PATH_MAX];    /* "" = stderr */
    int metrics_port;                     /* 0 = no HTTP metrics */
    char metrics_bind[RWKVD_CFG_STR_MAX];
    /* cluster mode (daemon/cluster/): "" = off */
    char nats[RWKVD_CFG_PATH_MAX];        /* server URL(s) */
    char nats_creds[RWKVD_CFG_PATH_MAX];
    char nats_ca[RWKVD_CFG_PATH_MAX];
    int partitions;
    int nats_replicas;
    double lease_ttl;                     /* seconds */
    char worker_id[RWKVD_CFG_STR_MAX];
    /* POST /v1/embeddings (daemon/http_embeddings.h), EmbeddingRWKV only */
    int http_port;                        /* 0 = off */
    char http_bind[RWKVD_CFG_STR_MAX];
    int http_max_tokens;                  /* per input */
    uint64_t http_max_body;               /* bytes */
} rwkvd_config;

typedef enum rwkvd_opt_type {
    RWKVD_OPT_PATH,     /* any text without control bytes */
    RWKVD_OPT_STR,
    RWKVD_OPT_ENDPOINT, /* tcp://, ipc:// or inproc:// */
    RWKVD_OPT_INT,      /* decimal, within [min, max] */
    RWKVD_OPT_SIZE,     /* bytes, optional suffix K, M, G (x1024), within [min, max] */
    RWKVD_OPT_SECONDS,  /* decimal number, within [min, max] */
    RWKVD_OPT_LOGLEVEL, /* error|warn|info|debug */
    RWKVD_OPT_DEVICE,   /* cpu|cuda|cuda:N */
    RWKVD_OPT_PRECISION, /* fp32|bf16|int8|auto (core/precision.h) */
    RWKVD_OPT_BOOL,     /* true|false (also yes|no, on|off, 1|0); on the command line
                           --name alone means true, --name=false sets false */
} rwkvd_opt_type;

typedef struct rwkvd_option {
    const char *name;     /* INI key; --name with '_' -> '-'; RWKVD_NAME uppercased */
    rwkvd_opt_type type;
    size_t offset, size;  /* of the field in rwkvd_config */
    const char *def;      /* default, as text */
    int64_t min, max;     /* INT/SIZE/SECONDS ranges */
    bool reloadable;      /* SIGHUP may change it while running */
    bool not_in_ini;      /* only command line / environment (the INI path itself) */
    const char *metavar;  /* "N", "PATH", ... for --help */
    const char *help;     /* one or two sentences */
} rwkvd_option;

/* The option table (static storage) and its length. */
const rwkvd_option *rwkvd_config_options(size_t *n);
/* The option with this name ('-' and '_' are interchangeable), or NULL. */
const rwkvd_option *rwkvd_config_find(const char *name);

/* All defaults.  Never fails (test_config checks every default parses). */
void rwkvd_config_defaults(rwkvd_config *c);

/* Sets one option from text.  Returns 0, or -1 with err = "<name>: <why>"
 * (the caller prefixes the source: file:line, environment, command line). */
int rwkvd_config_set(rwkvd_config *c, const char *name, const char *value, rwkv_error *err);

/* INI text from memory / from a file.  label names the input in errors
 * ("rwkvd.ini:12: unknown key 'blok_size'").  Options already set by
 * earlier sources are overwritten (call before env and command line). */
int rwkvd_config_parse_ini(rwkvd_config *c, const char *label, const char *buf, size_t len,
                           rwkv_error *err);
int rwkvd_config_load_ini(rwkvd_config *c, const char *path, rwkv_error *err);

/* RWKVD_<NAME> variables from envp (NULL-terminated "K=V" strings). */
int rwkvd_config_load_env(rwkvd_config *c, char *const *envp, rwkv_error *err);

typedef enum rwkvd_config_action {
    RWKVD_CONFIG_RUN = 0,
    RWKVD_CONFIG_HELP,    /* --help / -h: print rwkvd_config_help, exit 0 */
    RWKVD_CONFIG_VERSION, /* --version */
} rwkvd_config_action;

/* The whole chain: defaults, $STATE_DIRECTORY, INI (--config or
 * RWKVD_CONFIG), environment, command line; then checks that need the
 * whole picture (a model is required to run).  argv[0] is skipped.
 * Returns 0 with *c and *action set, or -1 with err naming the source. */
int rwkvd_config_load(rwkvd_config *c, int argc, char *const *argv, char *const *envp,
                      rwkvd_config_action *action, rwkv_error *err);

/* SIGHUP: loads the configuration again from the same argv/envp (and the
 * INI file, re-read) into *next.  Options not reloadable keep cur's value
 * when they changed; their names go into `kept` ("model, ingest") so the
 * caller can log that a restart is needed.  Returns 0, or -1 with err (then
 * keep running with cur). */
int rwkvd_config_reload(const rwkvd_config *cur, rwkvd_config *next, int argc,
                        char *const *argv, char *const *envp, char *kept, size_t kept_len,
                        rwkv_error *err);

/* --help text generated from the table (malloc'ed; NULL if out of memory). */
char *rwkvd_config_help(const char *prog);

/* The effective configuration as INI text that rwkvd_config_parse_ini reads
 * back to the same struct (malloc'ed; NULL if out of memory). */
char *rwkvd_config_format(const rwkvd_config *c);

/* One option's current value as text, into buf. */
void rwkvd_config_value(const rwkvd_config *c, const rwkvd_option *o, char *buf, size_t len);

const char *rwkvd_log_level_name(rwkvd_log_level l);

#endif
