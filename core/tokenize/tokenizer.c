/* tokenizer.c — the public tokenizer API (tokenizer.h): loading with kind
 * recognition (a digit first: World vocabulary; `{` after optional
 * whitespace: tokenizer.json), the byte-level tokenizer, whole-text encode
 * and decode.
 *
 * Everything kind-specific sits behind tokenizer_ops (tokenizer_internal.h);
 * this file only dispatches.  The byte tokenizer lives here because it is a
 * dozen lines: id = byte value, nothing is ever held back.
 *
 * Decode returns raw bytes, even when they are not valid UTF-8 (a token may
 * be part of a character, and a text may be cut anywhere).  The official
 * decode() turns a whole invalid string into one U+FFFD; showing or
 * replacing invalid bytes is the caller's decision (the CLI's, the
 * daemon's), not the tokenizer's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/read_fd.h"
#include "core/tokenize/tokenizer_internal.h"

/* Largest vocabulary file we read (the World vocab is ~1 MB, a NeoX
 * tokenizer.json ~2 MB). */
#define TOKENIZER_MAX_FILE ((size_t)256 << 20)

/* ---------------------------------------------------------------- bytes */

/* Constant tables, so the shared byte tokenizer needs no initialisation. */
#define SEQ4(i) (i), (i) + 1, (i) + 2, (i) + 3
#define SEQ16(i) SEQ4(i), SEQ4((i) + 4), SEQ4((i) + 8), SEQ4((i) + 12)
#define SEQ64(i) SEQ16(i), SEQ16((i) + 16), SEQ16((i) + 32), SEQ16((i) + 48)
#define SEQ256 SEQ64(0), SEQ64(64), SEQ64(128), SEQ64(192)
#define ONE16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
#define ONE256 ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, \
               ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, ONE16
static const uint8_t byte_pool[256] = {SEQ256};
static const uint32_t byte_off[256] = {SEQ256};
static const uint32_t byte_len[256] = {ONE256};

static int bytes_encode_prefix(const rwkv_tokenizer *t, const uint8_t *buf, size_t len,
                               bool final, rwkv_ids *out, size_t *consumed, rwkv_error *err)
{
    (void)t;
    (void)final;
    for (size_t i = 0; i < len; i++) {
        if (tok_push(out, buf[i], err) != 0) {
            *consumed = i;
            return -1;
        }
    }
    *consumed = len;
    return 0;
}

static bool bytes_pending_ok(const rwkv_tokenizer *t, const uint8_t *bytes, size_t n)
{
    (void)t;
    (void)bytes;
    return n == 0;
}

static void bytes_destroy(rwkv_tokenizer *t)
{
    (void)t;
}

static const tokenizer_ops bytes_ops = {
    .encode_prefix = bytes_encode_prefix,
    .pending_ok = bytes_pending_ok,
    .destroy = bytes_destroy,
};

rwkv_tokenizer *rwkv_tokenizer_bytes(void)
{
    rwkv_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = RWKV_TOKENIZER_BYTES;
    t->kind_name = "bytes";
    t->ops = &bytes_ops;
    t->vocab_size = 256;
    t->tok_pool = byte_pool;
    t->tok_off = byte_off;
    t->tok_len = byte_len;
    t->max_pending = 0;
    t->lookahead = 1;
    return t;
}

/* ---------------------------------------------------------------- loading */

int rwkv_tokenizer_parse(const char *label, const void *buf, size_t len,
                         rwkv_tokenizer **out, rwkv_error *err)
{
    *out = NULL;
    const uint8_t *b = buf;
    if (len == 0)
        return rwkv_fail(err, "%s: empty vocabulary file", label);
    if (b[0] >= '0' && b[0] <= '9')
        return world_tokenizer_parse(label, b, len, out, err);
    size_t i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    if (i < len && b[i] == '{')
        return bpe_tokenizer_parse(label, b, len, out, err);
    return rwkv_fail(err, "%s: byte 0: unrecognised vocabulary format (expected an RWKV "
                     "World vocabulary: lines of `<id> <literal> <length>`, or a Hugging Face "
                     "tokenizer.json: a JSON object)", label);
}

int rwkv_tokenizer_load(const char *path, rwkv_tokenizer **out, rwkv_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rwkv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rwkv_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rwkv_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > TOKENIZER_MAX_FILE) {
        close(fd);
        return rwkv_fail(err, "%s: vocabulary file of %lld bytes is too large (limit %zu)",
                         path, (long long)st.st_size, TOKENIZER_MAX_FILE);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return rwkv_fail(err, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got;
    int e = rwkv_read_up_to(fd, buf, size, &got);
    close(fd);
    if (e || got < size) {
        free(buf);
        return rwkv_fail(err, "%s: read failed at byte %zu: %s", path, got,
                         e ? strerror(e) : "file shrank while reading");
    }
    int rc = rwkv_tokenizer_parse(path, buf, size, out, err);
    free(buf);
    return rc;
}

void rwkv_tokenizer_free(rwkv_tokenizer *t)
{
    if (!t)
        return;
    t->ops->destroy(t);
    free(t);
}

/* ---------------------------------------------------------------- queries */

rwkv_tokenizer_kind rwkv_tokenizer_get_kind(const rwkv_tokenizer *t)
{
    return t->kind;
}

const char *rwkv_tokenizer_kind_name(const rwkv_tokenizer *t)
{
    return t->kind_name;
}

uint32_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer *t)
{
    return t->vocab_size;
}

bool rwkv_tokenizer_spells_input(const rwkv_tokenizer *t)
{
    /* bytes: id = byte; World: greedy match over the raw bytes.  BPE
     * normalises (NFC, U+FFFD for invalid UTF-8), so its tokens may not. */
    return t->kind != RWKV_TOKENIZER_BPE;
}

size_t rwkv_tokenizer_max_pending(const rwkv_tokenizer *t)
{
    return t->max_pending;
}

int rwkv_tokenizer_token_bytes(const rwkv_tokenizer *t, uint32_t id, const uint8_t **bytes,
                               size_t *len)
{
    if (id >= t->vocab_size || t->tok_len[id] == 0)
        return -1;
    *bytes = t->tok_pool + t->tok_off[id];
    *len = t->tok_len[id];
    return 0;
}

/* ---------------------------------------------------------------- encode / decode */

int rwkv_tokenizer_encode(const rwkv_tokenizer *t, const void *buf, size_t len,
                          rwkv_ids *out, rwkv_error *err)
{
    size_t consumed = 0;
    if (t->ops->encode_prefix(t, buf, len, true, out, &consumed, err) != 0)
        return -1;
    if (consumed != len)
        return rwkv_fail(err, "%s tokenizer: final encode stopped at byte %zu of %zu "
                         "(internal error)", t->kind_name, consumed, len);
    return 0;
}

int rwkv_tokenizer_decode(const rwkv_tokenizer *t, const uint32_t *ids, size_t n,
                          uint8_t **out, size_t *out_len, rwkv_error *err)
{
    *out = NULL;
    *out_len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id >= t->vocab_size || t->tok_len[id] == 0)
            return rwkv_fail(err, "decode: id %u at position %zu has no bytes (%s vocabulary "
                             "of %u ids%s)", id, i, t->kind_name, t->vocab_size,
                             id == 0 && t->kind == RWKV_TOKENIZER_WORLD
                                 ? "; id 0 is end of document" : "");
        total += t->tok_len[id]; /* <= n * 1024: cannot overflow before n does */
    }
    if (total == SIZE_MAX)
        return rwkv_fail(err, "decode: output too large");
    uint8_t *buf = malloc(total + 1);
    if (!buf)
        return rwkv_fail(err, "decode: out of memory for %zu bytes", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        memcpy(buf + o, t->tok_pool + t->tok_off[id], t->tok_len[id]);
        o += t->tok_len[id];
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return 0;
}
