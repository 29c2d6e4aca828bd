/* world_vocab.c — line-by-line parser of the RWKV World vocabulary file (the
 * rules are in world_vocab.h; the literal syntax in world_literal.c).
 *
 * Shape: one counting pass (lines) sizes every array before anything is
 * parsed, so no count read from the file ever drives an allocation: ids must
 * lie in 1..lines, and the decoded token bytes never outgrow the file, so
 * the byte pool is allocated at the file's size.  The ids of a valid file
 * are then a permutation of 1..lines, which is what "contiguous and unique"
 * means.
 */
#include "core/tokenize/world_vocab.h"

#include <stdlib.h>
#include <string.h>

#include "core/tokenize/world_literal.h"

/* Largest file we accept: offsets are 32-bit.  The real file is ~1 MB. */
#define WORLD_MAX_FILE ((size_t)1 << 30)

static int line_fail(rwkv_error *err, const char *label, size_t line, size_t off,
                     const char *why)
{
    return rwkv_fail(err, "%s: line %zu, byte %zu: %s", label, line, off, why);
}

/* Parses a canonical unsigned decimal at buf[*i..end): at least one digit,
 * no leading zero unless the number is 0.  Values above `limit` are
 * reported as limit + 1 (the caller rejects them) so overflow cannot
 * happen.  Returns -1 when no digit is there or a leading zero is found. */
static int parse_uint(const uint8_t *buf, size_t *i, size_t end, uint64_t limit, uint64_t *out)
{
    size_t p = *i;
    if (p >= end || buf[p] < '0' || buf[p] > '9')
        return -1;
    if (buf[p] == '0' && p + 1 < end && buf[p + 1] >= '0' && buf[p + 1] <= '9')
        return -1;
    uint64_t v = 0;
    while (p < end && buf[p] >= '0' && buf[p] <= '9') {
        if (v <= limit)
            v = v * 10 + (uint64_t)(buf[p] - '0');
        p++;
    }
    *out = v > limit ? limit + 1 : v;
    *i = p;
    return 0;
}

void world_vocab_free(world_vocab *v)
{
    if (!v)
        return;
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->line_off);
    memset(v, 0, sizeof *v);
}

int world_vocab_parse(const char *label, const uint8_t *buf, size_t len, world_vocab *v,
                      rwkv_error *err)
{
    memset(v, 0, sizeof *v);
    if (len == 0)
        return rwkv_fail(err, "%s: empty vocabulary file", label);
    if (len > WORLD_MAX_FILE)
        return rwkv_fail(err, "%s: vocabulary file of %zu bytes is too large (limit %zu)",
                         label, len, WORLD_MAX_FILE);

    size_t lines = 0;
    for (const uint8_t *p = buf, *e = buf + len; p < e;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(e - p));
        lines++;
        p = nl ? nl + 1 : e;
    }

    v->pool = malloc(len);
    v->off = calloc(lines + 1, sizeof *v->off);
    v->len = calloc(lines + 1, sizeof *v->len);
    v->line_off = calloc(lines + 1, sizeof *v->line_off);
    if (!v->pool || !v->off || !v->len || !v->line_off) {
        world_vocab_free(v);
        return rwkv_fail(err, "%s: out of memory for %zu vocabulary lines", label, lines);
    }

    size_t pos = 0, line = 0, used = 0;
    uint32_t max_len = 0;
    while (pos < len) {
        line++;
        size_t start = pos;
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t next = nl ? end + 1 : len;
        if (end > start && buf[end - 1] == '\r')
            end--;
        if (end == start) {
            line_fail(err, label, line, start, "empty line");
            goto fail;
        }

        size_t i = start;
        uint64_t id;
        if (parse_uint(buf, &i, end, lines, &id) != 0) {
            line_fail(err, label, line, i, "expected a token id (decimal, no leading zeros)");
            goto fail;
        }
        if (id == 0) {
            line_fail(err, label, line, start, "id 0 is reserved (end of document)");
            goto fail;
        }
        if (id > lines) {
            rwkv_fail(err, "%s: line %zu, byte %zu: id above %zu: ids must be 1..N for a "
                      "file of N lines", label, line, start, lines);
            goto fail;
        }
        if (v->len[id] != 0) {
            rwkv_fail(err, "%s: line %zu, byte %zu: duplicate id %llu", label, line, start,
                      (unsigned long long)id);
            goto fail;
        }
        if (i >= end || buf[i] != ' ') {
            line_fail(err, label, line, i, "expected one space after the id");
            goto fail;
        }
        i++;

        size_t tok_len, lit_used, bad;
        const char *why;
        if (world_literal_decode(buf + i, end - i, v->pool + used, &tok_len, &lit_used, &bad,
                                 &why) != 0) {
            line_fail(err, label, line, i + bad, why);
            goto fail;
        }
        size_t lit_start = i;
        i += lit_used;
        if (tok_len == 0) {
            line_fail(err, label, line, lit_start, "empty token");
            goto fail;
        }
        if (tok_len > WORLD_MAX_TOKEN_BYTES) {
            rwkv_fail(err, "%s: line %zu, byte %zu: token of %zu bytes is longer than "
                      "the limit of %d", label, line, lit_start, tok_len,
                      WORLD_MAX_TOKEN_BYTES);
            goto fail;
        }
        if (i >= end || buf[i] != ' ') {
            line_fail(err, label, line, i, "expected one space after the literal");
            goto fail;
        }
        i++;
        size_t col = i;
        uint64_t n;
        if (parse_uint(buf, &i, end, WORLD_MAX_TOKEN_BYTES, &n) != 0) {
            line_fail(err, label, line, i, "expected the token's byte length");
            goto fail;
        }
        if (i != end) {
            line_fail(err, label, line, i, "unexpected bytes after the length column");
            goto fail;
        }
        if (n != tok_len) {
            rwkv_fail(err, "%s: line %zu, byte %zu: length column says %s%llu but the "
                      "literal decodes to %zu bytes", label, line, col,
                      n > WORLD_MAX_TOKEN_BYTES ? "more than " : "",
                      (unsigned long long)(n > WORLD_MAX_TOKEN_BYTES ? WORLD_MAX_TOKEN_BYTES : n),
                      tok_len);
            goto fail;
        }
        v->off[id] = (uint32_t)used;
        v->len[id] = (uint32_t)tok_len;
        v->line_off[id] = (uint32_t)start;
        used += tok_len;
        if (tok_len > max_len)
            max_len = (uint32_t)tok_len;
        pos = next;
    }
    /* `lines` distinct ids, each in 1..lines: every id 1..lines is present. */
    v->n_tokens = (uint32_t)lines;
    v->max_len = max_len;
    return 0;

fail:
    world_vocab_free(v);
    return -1;
}
