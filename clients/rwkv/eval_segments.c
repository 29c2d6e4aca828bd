/* eval_segments.c — see eval_segments.h. */
#include "clients/rwkv/eval_segments.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

int eval_segments_parse(const char *cmd, const char *arg, rwkv_seg_config *cfg)
{
    rwkv_seg_config_lines(cfg);
    if (strcmp(arg, "line") == 0)
        return 0;
    size_t n = 0;
    for (const char *p = arg; *p; n++) {
        if (n == RWKV_SEG_DELIM_MAX) {
            cli_usage(cmd, "--segments: the delimiter is longer than %d bytes", RWKV_SEG_DELIM_MAX);
            return -1;
        }
        uint8_t c = (uint8_t)*p++;
        if (c == '\\') {
            char e = *p++;
            unsigned v;
            if (e == 'n')
                c = '\n';
            else if (e == 'r')
                c = '\r';
            else if (e == 't')
                c = '\t';
            else if (e == '\\')
                c = '\\';
            else if (e == 'x' && sscanf(p, "%2x", &v) == 1 && p[0] && p[1] &&
                     strspn(p, "0123456789abcdefABCDEF") >= 2) {
                c = (uint8_t)v;
                p += 2;
            } else {
                cli_usage(cmd, "--segments: unknown escape in '%s' (\\n \\r \\t \\\\ \\xHH)", arg);
                return -1;
            }
        }
        cfg->delim[n] = c;
    }
    if (n == 0) {
        cli_usage(cmd, "--segments: empty delimiter");
        return -1;
    }
    cfg->delim_len = (uint8_t)n;
    return 0;
}

int eval_segments_init(const char *cmd, eval_segments *es, const rwkv_seg_config *cfg,
                       const rwkv_tokenizer *tok, cli_out *out)
{
    if (!rwkv_tokenizer_spells_input(tok)) {
        cli_fail(cmd, "--segments: the %s tokenizer normalises text, so its tokens have no "
                 "exact byte offsets", rwkv_tokenizer_kind_name(tok));
        return -1;
    }
    rwkv_error err;
    if (rwkv_segmenter_init(&es->seg, cfg, &err) != 0) {
        cli_usage(cmd, "--segments: %s", err.msg);
        return -1;
    }
    es->tok = tok;
    es->out = out;
    es->carry = NAN;
    es->written = 0;
    return 0;
}

static void num(char *buf, size_t len, bool have, double v, int digits)
{
    if (have)
        snprintf(buf, len, "%.*g", digits, v);
    else
        snprintf(buf, len, "null");
}

/* ,"text":<JSON string> for valid UTF-8, else ,"text":{"hex":"..."} (as
 * rwkvd-sink renders bin); at most 6 output bytes per input byte. */
static size_t put_text(char *o, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    bool utf8 = rwkvd_utf8_check(p, n) == n;
    k += (size_t)sprintf(o + k, utf8 ? ",\"text\":\"" : ",\"text\":{\"hex\":\"");
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!utf8) {
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        } else if (c == '"' || c == '\\') {
            o[k++] = '\\';
            o[k++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)sprintf(o + k, "\\u%04x", c);
        } else {
            o[k++] = (char)c;
        }
    }
    k += (size_t)sprintf(o + k, utf8 ? "\"" : "\"}");
    return k;
}

typedef struct {
    const char *cmd;
    eval_segments *es;
} write_ctx;

static int write_segment(void *ctx, const rwkv_segment *g)
{
    write_ctx *w = ctx;
    char sum[40], max[40], pos[24], score[40], line[512 + 6 * RWKV_SEG_TEXT_MAX];
    bool scored = g->n_scored > 0;
    num(sum, sizeof sum, scored, g->surprisal_sum, 17);
    num(max, sizeof max, scored, g->surprisal_max, 17); /* the float exactly */
    num(score, sizeof score, g->has_score, g->score, 17);
    if (scored)
        snprintf(pos, sizeof pos, "%llu", (unsigned long long)g->max_pos);
    else
        snprintf(pos, sizeof pos, "null");
    int n = snprintf(line, sizeof line,
                     "{\"seg\":%llu,\"byte_start\":%llu,\"byte_end\":%llu,\"tok_start\":%llu,"
                     "\"tok_end\":%llu,\"surprisal_sum\":%s,\"surprisal_max\":%s,"
                     "\"surprisal_max_pos\":%s,\"score\":%s,\"anomalous\":%s",
                     (unsigned long long)g->index, (unsigned long long)g->byte_start,
                     (unsigned long long)g->byte_end, (unsigned long long)g->tok_start,
                     (unsigned long long)g->tok_end, sum, max, pos, score,
                     g->anomalous ? "true" : "false");
    if (w->es->seg.cfg.text_cap > 0)
        n += (int)put_text(line + n, g->text, g->text_len);
    line[n++] = '}';
    line[n++] = '\n';
    w->es->written++;
    return cli_out_write(w->cmd, w->es->out, line, (size_t)n) != CLI_OK ? -1 : 0;
}

int eval_segments_block(const char *cmd, eval_segments *es, const uint32_t *tokens, int n,
                        const float *sur, int final)
{
    write_ctx w = {cmd, es};
    for (int i = 0; i < n; i++) {
        const uint8_t *b;
        size_t len;
        if (rwkv_tokenizer_token_bytes(es->tok, tokens[i], &b, &len) != 0)
            return cli_fail(cmd, "--segments: token %u has no bytes", tokens[i]);
        float s = i == 0 ? es->carry : sur[i - 1];
        if (rwkv_segmenter_token(&es->seg, b, len, s, write_segment, &w) != 0)
            return CLI_FAIL;
    }
    es->carry = final ? NAN : sur[n - 1];
    if (final && rwkv_segmenter_finish(&es->seg, write_segment, &w) != 0)
        return CLI_FAIL;
    return CLI_OK;
}
