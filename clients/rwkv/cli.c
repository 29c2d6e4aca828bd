/* cli.c — shared helpers of the `rwkv` subcommands (see cli.h). */
#include "clients/rwkv/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/precision.h"

/* Outputs are raw little-endian float32/int32 written straight from memory. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the rwkv tool writes raw little-endian arrays; add byte swapping for this host"
#endif

static void vreport(const char *cmd, const char *tail, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++) /* one line, whatever a path contains */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "rwkv: %s: %s%s\n", cmd, msg, tail);
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, "", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    char tail[64];
    snprintf(tail, sizeof tail, " (see 'rwkv %s --help')", cmd);
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, tail, fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

int cli_bad_option(const char *cmd, int c, char *const argv[])
{
    extern int optind, optopt;
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage(cmd, "option '%s' needs a value", arg);
    if (optopt)
        return cli_usage(cmd, "unknown option '-%c'", optopt);
    return cli_usage(cmd, "unknown option '%s'", arg);
}

int cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE)
        return cli_usage(cmd, "%s: '%s' is not an integer", opt, s), -1;
    if (v < lo || v > hi)
        return cli_usage(cmd, "%s: %ld is out of range %ld..%ld", opt, v, lo, hi), -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+' || *s == ' ')
        return cli_usage(cmd, "%s: '%s' is not an unsigned integer", opt, s), -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s || *end || errno == ERANGE)
        return cli_usage(cmd, "%s: '%s' is not an unsigned 64-bit integer", opt, s), -1;
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return cli_usage(cmd, "%s: '%s' is not a finite number", opt, s), -1;
    if (v < lo || v > hi)
        return cli_usage(cmd, "%s: %g is out of range [%g, %g]", opt, v, lo, hi), -1;
    *out = v;
    return 0;
}

int cli_parse_device(const char *cmd, const char *s)
{
    if (strcmp(s, "cpu") == 0 || strcmp(s, "cuda") == 0)
        return 0;
    if (strncmp(s, "cuda:", 5) == 0 && s[5]) {
        long n = 0;
        const char *p = s + 5;
        while (*p >= '0' && *p <= '9' && n < 1024)
            n = n * 10 + (*p++ - '0');
        if (*p == '\0' && n < 1024) /* the range core accepts */
            return 0;
    }
    cli_usage(cmd, "--device: '%s' is not one of cpu, cuda, cuda:N", s);
    return -1;
}

int cli_parse_precision(const char *cmd, const char *s, int *out, int *given)
{
    rwkv_precision p;
    rwkv_error err;
    if (rwkv_precision_parse(s, &p, &err) != 0) {
        cli_usage(cmd, "--precision: '%s' is not one of " RWKV_PRECISION_NAMES, s);
        return -1;
    }
    *out = (int)p;
    *given = 1;
    return 0;
}

int cli_load_tokenizer(const char *cmd, const char *vocab, int bytes, rwkv_tokenizer **out)
{
    *out = NULL;
    if (vocab && bytes)
        return cli_usage(cmd, "give either --vocab or --bytes, not both");
    if (!vocab && !bytes)
        return cli_usage(cmd, "a tokenizer is required: --vocab FILE or --bytes");
    if (bytes) {
        *out = rwkv_tokenizer_bytes();
        return *out ? 0 : cli_fail(cmd, "out of memory");
    }
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_tokenizer_load(vocab, out, &err) != 0)
        return cli_fail(cmd, "%s", err.msg);
    return 0;
}

int cli_load_model(const char *cmd, const char *path, rwkv_model **out)
{
    *out = NULL;
    if (!path)
        return cli_usage(cmd, "--model FILE is required");
    rwkv_error err;
    rwkv_error_clear(&err);
    if (rwkv_model_load(path, out, &err) != 0)
        return cli_fail(cmd, "%s", err.msg);
    return 0;
}

int cli_check_vocab(const char *cmd, const rwkv_tokenizer *t, const rwkv_model *m)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    uint32_t tv = rwkv_tokenizer_vocab_size(t);
    if (mi->vocab_size < 0 || tv > (uint32_t)mi->vocab_size)
        return cli_fail(cmd, "the %s tokenizer has ids up to %u but the model's vocabulary is %d",
                        rwkv_tokenizer_kind_name(t), tv - 1, mi->vocab_size);
    return 0;
}

FILE *cli_open_input(const char *cmd, const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdin;
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_fail(cmd, "%s: %s", path, strerror(errno));
    return f;
}

void cli_close_input(FILE *f)
{
    if (f && f != stdin)
        fclose(f);
}

int cli_out_open(const char *cmd, cli_out *o)
{
    o->f = NULL;
    if (!o->path)
        return 0;
    o->f = fopen(o->path, "wb");
    if (!o->f)
        return cli_fail(cmd, "%s: %s", o->path, strerror(errno));
    return 0;
}

int cli_out_write(const char *cmd, cli_out *o, const void *p, size_t n)
{
    if (!o->f || n == 0)
        return 0;
    if (fwrite(p, 1, n, o->f) != n)
        return cli_fail(cmd, "%s: write failed: %s", o->path, strerror(errno));
    return 0;
}

int cli_out_close(const char *cmd, cli_out *o)
{
    if (!o->f)
        return 0;
    FILE *f = o->f;
    o->f = NULL;
    int bad = fflush(f) != 0 || ferror(f);
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(o->path);
        return cli_fail(cmd, "%s: write failed: %s", o->path, strerror(e));
    }
    return 0;
}

void cli_out_discard(cli_out *o)
{
    if (o->f) {
        fclose(o->f);
        o->f = NULL;
        unlink(o->path);
    }
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
