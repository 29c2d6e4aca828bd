/* bpe_json.c — reads a Hugging Face tokenizer.json of the byte-level BPE
 * kind (GPT-NeoX "20B") into a checked bpe_model.
 *
 * JSON is parsed by jansson (already a dependency): it validates UTF-8,
 * rejects NUL in strings, duplicate keys (JSON_REJECT_DUPLICATES: so a token
 * cannot appear twice in the vocab) and nesting deeper than 2048, and reports
 * the byte offset of syntax errors.  What is left to us is the meaning, and
 * everything is checked before use: ids in range and unique, vocab keys and
 * added tokens consistent, every merge naming vocab tokens whose concatenation
 * is a token, every byte of valid UTF-8 having a single-byte token.
 *
 * Supported is exactly the pipeline the 20B file uses (fixtures/tokenizer-20b/
 * README.md): normalizer NFC (or none), pre-tokenizer ByteLevel without
 * prefix space and with its regex, model BPE without dropout, affixes or
 * ignore_merges, decoder ByteLevel, added tokens without strip/single-word
 * flags whose normalized ones are runs of 2..K spaces.  Anything else is
 * refused with a message naming the field, never approximated.  The post-
 * processor, truncation and padding are not read: encode means
 * add_special_tokens=false (the post-processor adds nothing then), and
 * rwkvd encodes unbounded streams, not padded batches.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenize/bpe_internal.h"

uint32_t bpe_byte_to_cp(uint8_t b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
        return b;
    if (b <= 0x20)
        return 0x100u + b;
    if (b <= 0xA0)
        return 0x100u + 33 + (b - 0x7Fu);
    return 0x143; /* 0xAD */
}

int bpe_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return bpe_byte_to_cp((uint8_t)cp) == cp ? (int)cp : -1;
    if (cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp < 0x100 + 67)
        return (int)(0x7F + cp - 0x100 - 33);
    return cp == 0x143 ? 0xAD : -1;
}

void bpe_model_free(bpe_model *m)
{
    if (!m)
        return;
    free(m->pool);
    free(m->off);
    free(m->len);
    free(m->is_symbol);
    free(m->merge_left);
    free(m->merge_right);
    free(m->merge_id);
    free(m->raw);
    free(m->added_pool);
    memset(m, 0, sizeof *m);
}

typedef struct reader {
    const char *label;
    rwkv_error *err;
    bpe_model *m;
    size_t pool_cap;
} reader;

/* A string shown in a message: at most 40 bytes, cut at a character. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (n < cap - 4) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    size_t k = cap - 4;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    memcpy(buf, s, k);
    memcpy(buf + k, "...", 4);
    return buf;
}

/* The bytes a token string decodes to (the ByteLevel decoder): mapped back
 * through the byte table when every character is in it, else its own UTF-8.
 * dst has room for strlen(s) bytes.  Returns the byte count. */
static size_t token_bytes(const char *s, uint8_t *dst, bool *symbol)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += bpe_utf8_next(u + i, n - i, &cp);
        int b = bpe_cp_to_byte(cp);
        if (b < 0) {
            memcpy(dst, s, n);
            *symbol = false;
            return n;
        }
        dst[k++] = (uint8_t)b;
    }
    *symbol = true;
    return k;
}

static const char *type_of(json_t *obj)
{
    json_t *t = json_object_get(obj, "type");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* Optional field that must be absent, null, false, 0 or "". */
static int must_be_off(reader *r, json_t *obj, const char *where, const char *key,
                       const char *why)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v) || json_is_false(v) ||
        (json_is_number(v) && json_number_value(v) == 0.0) ||
        (json_is_string(v) && json_string_length(v) == 0))
        return 0;
    return rwkv_fail(r->err, "%s: %s.%s is set, which is not supported (%s)", r->label, where,
                     key, why);
}

static int check_pipeline(reader *r, json_t *root)
{
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        const char *t = json_is_object(norm) ? type_of(norm) : NULL;
        if (!t || strcmp(t, "NFC") != 0)
            return rwkv_fail(r->err, "%s: normalizer \"%s\" is not supported (only NFC or none)",
                             r->label, t ? t : "?");
        r->m->nfc = true;
    }
    json_t *pre = json_object_get(root, "pre_tokenizer");
    const char *pt = json_is_object(pre) ? type_of(pre) : NULL;
    if (!pt || strcmp(pt, "ByteLevel") != 0)
        return rwkv_fail(r->err, "%s: pre_tokenizer \"%s\" is not supported (only ByteLevel)",
                         r->label, pt ? pt : (pre && !json_is_null(pre) ? "?" : "none"));
    if (!json_is_false(json_object_get(pre, "add_prefix_space")))
        return rwkv_fail(r->err, "%s: pre_tokenizer.add_prefix_space is not false (a missing "
                         "value means true), which is not supported", r->label);
    json_t *ur = json_object_get(pre, "use_regex");
    if (ur && !json_is_true(ur))
        return rwkv_fail(r->err, "%s: pre_tokenizer.use_regex is not true, which is not "
                         "supported", r->label);
    json_t *dec = json_object_get(root, "decoder");
    const char *dt = json_is_object(dec) ? type_of(dec) : NULL;
    if (!dt || strcmp(dt, "ByteLevel") != 0)
        return rwkv_fail(r->err, "%s: decoder \"%s\" is not supported (only ByteLevel)",
                         r->label, dt ? dt : "none");
    return 0;
}

static int check_model(reader *r, json_t *model)
{
    const char *t = type_of(model);
    json_t *tv = json_object_get(model, "type");
    if (tv && (!t || strcmp(t, "BPE") != 0))
        return rwkv_fail(r->err, "%s: model.type \"%s\" is not supported (only byte-level BPE)",
                         r->label, t ? t : "?");
    if (must_be_off(r, model, "model", "dropout", "dropout makes encoding random") != 0 ||
        must_be_off(r, model, "model", "continuing_subword_prefix", "no word affixes") != 0 ||
        must_be_off(r, model, "model", "end_of_word_suffix", "no word affixes") != 0 ||
        must_be_off(r, model, "model", "ignore_merges", "merges always apply") != 0)
        return -1;
    return 0;
}

/* First pass over the vocab: ids in range, unique, key sizes. */
static int scan_vocab(reader *r, json_t *vocab, uint32_t *max_id, size_t *bytes)
{
    const char *key;
    json_t *val;
    char sb[48];
    *max_id = 0;
    *bytes = 0;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val))
            return rwkv_fail(r->err, "%s: model.vocab[\"%s\"] is not an integer id", r->label,
                             shown(key, sb, sizeof sb));
        json_int_t id = json_integer_value(val);
        if (id < 0 || id >= (json_int_t)BPE_MAX_ID)
            return rwkv_fail(r->err, "%s: model.vocab[\"%s\"]: id %lld is out of range "
                             "(0..%u)", r->label, shown(key, sb, sizeof sb), (long long)id,
                             BPE_MAX_ID - 1);
        size_t n = strlen(key);
        if (n == 0 || n > BPE_MAX_TOKEN_BYTES)
            return rwkv_fail(r->err, "%s: model.vocab has a token of %zu bytes (1..%d)",
                             r->label, n, BPE_MAX_TOKEN_BYTES);
        if ((uint32_t)id > *max_id)
            *max_id = (uint32_t)id;
        *bytes += n;
    }
    return 0;
}

static int alloc_tables(reader *r, uint32_t vocab_size, size_t bytes)
{
    bpe_model *m = r->m;
    m->vocab_size = vocab_size;
    m->off = calloc(vocab_size, sizeof *m->off);
    m->len = calloc(vocab_size, sizeof *m->len);
    m->is_symbol = calloc(vocab_size, 1);
    m->pool = malloc(bytes ? bytes : 1);
    r->pool_cap = bytes;
    if (!m->off || !m->len || !m->is_symbol || !m->pool)
        return rwkv_fail(r->err, "%s: out of memory for %u tokens", r->label, vocab_size);
    return 0;
}

static int fill_vocab(reader *r, json_t *vocab, size_t *used)
{
    bpe_model *m = r->m;
    const char *key;
    json_t *val;
    char sb[48], sb2[48];
    json_object_foreach(vocab, key, val) {
        uint32_t id = (uint32_t)json_integer_value(val);
        if (m->len[id] != 0) {
            const char *other = NULL;
            const char *k2;
            json_t *v2;
            json_object_foreach(vocab, k2, v2) {
                if ((uint32_t)json_integer_value(v2) == id && strcmp(k2, key) != 0) {
                    other = k2;
                    break;
                }
            }
            return rwkv_fail(r->err, "%s: model.vocab: \"%s\" and \"%s\" both have id %u",
                             r->label, shown(other ? other : "?", sb2, sizeof sb2),
                             shown(key, sb, sizeof sb), id);
        }
        bool sym;
        if (strlen(key) > r->pool_cap - *used)
            return rwkv_fail(r->err, "%s: token pool overflow (internal error)", r->label);
        size_t k = token_bytes(key, m->pool + *used, &sym);
        m->off[id] = (uint32_t)*used;
        m->len[id] = (uint32_t)k;
        m->is_symbol[id] = sym;
        *used += k;
    }
    return 0;
}

static int read_bytes_ids(reader *r, json_t *vocab)
{
    bpe_model *m = r->m;
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        size_t k = bpe_utf8_put(bpe_byte_to_cp((uint8_t)b), u);
        char s[5];
        memcpy(s, u, k);
        s[k] = 0;
        json_t *v = json_object_get(vocab, s);
        m->byte_id[b] = v ? (uint32_t)json_integer_value(v) : BPE_NONE;
        bool in_utf8 = b < 0xC0 || (b >= 0xC2 && b <= 0xF4);
        if (in_utf8 && m->byte_id[b] == BPE_NONE)
            return rwkv_fail(r->err, "%s: model.vocab has no token for the byte 0x%02x (\"%s\"); "
                             "every byte of valid UTF-8 needs one", r->label, (unsigned)b, s);
    }
    return 0;
}

/* One merge: "A B" or ["A", "B"]. */
static int read_merge(reader *r, json_t *vocab, json_t *e, size_t i, char **cat, size_t *cat_cap)
{
    bpe_model *m = r->m;
    const char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    char sb[48];
    if (json_is_string(e)) {
        const char *s = json_string_value(e);
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' '))
            return rwkv_fail(r->err, "%s: model.merges[%zu] \"%s\" is not two tokens separated "
                             "by one space", r->label, i, shown(s, sb, sizeof sb));
        a = s;
        na = (size_t)(sp - s);
        b = sp + 1;
        nb = strlen(b);
    } else if (json_is_array(e) && json_array_size(e) == 2 &&
               json_is_string(json_array_get(e, 0)) && json_is_string(json_array_get(e, 1))) {
        a = json_string_value(json_array_get(e, 0));
        b = json_string_value(json_array_get(e, 1));
        na = strlen(a);
        nb = strlen(b);
    } else {
        return rwkv_fail(r->err, "%s: model.merges[%zu] is neither \"A B\" nor [\"A\", \"B\"]",
                         r->label, i);
    }
    if (na + nb + 2 > *cat_cap) {
        size_t cap = (na + nb + 2) * 2;
        char *nc = realloc(*cat, cap);
        if (!nc)
            return rwkv_fail(r->err, "%s: out of memory", r->label);
        *cat = nc;
        *cat_cap = cap;
    }
    char *c = *cat;
    uint32_t ids[3];
    const char *part[2] = {a, b};
    size_t plen[2] = {na, nb};
    for (int k = 0; k < 2; k++) {
        memcpy(c, part[k], plen[k]);
        c[plen[k]] = 0;
        json_t *v = json_object_get(vocab, c);
        if (!v)
            return rwkv_fail(r->err, "%s: model.merges[%zu]: \"%s\" is not a vocab token",
                             r->label, i, shown(c, sb, sizeof sb));
        ids[k] = (uint32_t)json_integer_value(v);
    }
    memcpy(c, a, na);
    memcpy(c + na, b, nb);
    c[na + nb] = 0;
    json_t *v = json_object_get(vocab, c);
    if (!v)
        return rwkv_fail(r->err, "%s: model.merges[%zu]: the merged token \"%s\" is not in the "
                         "vocab", r->label, i, shown(c, sb, sizeof sb));
    ids[2] = (uint32_t)json_integer_value(v);
    m->merge_left[i] = ids[0];
    m->merge_right[i] = ids[1];
    m->merge_id[i] = ids[2];
    return 0;
}

static int read_merges(reader *r, json_t *model, json_t *vocab)
{
    bpe_model *m = r->m;
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return rwkv_fail(r->err, "%s: model.merges is %s, not an array", r->label,
                         merges ? "of the wrong type" : "missing");
    size_t n = json_array_size(merges);
    if (n >= BPE_MAX_ID)
        return rwkv_fail(r->err, "%s: model.merges has %zu entries (at most %u)", r->label, n,
                         BPE_MAX_ID - 1);
    m->n_merges = (uint32_t)n;
    m->merge_left = malloc((n ? n : 1) * sizeof *m->merge_left);
    m->merge_right = malloc((n ? n : 1) * sizeof *m->merge_right);
    m->merge_id = malloc((n ? n : 1) * sizeof *m->merge_id);
    if (!m->merge_left || !m->merge_right || !m->merge_id)
        return rwkv_fail(r->err, "%s: out of memory for %zu merges", r->label, n);
    char *cat = NULL;
    size_t cat_cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (read_merge(r, vocab, json_array_get(merges, i), i, &cat, &cat_cap) != 0) {
            free(cat);
            return -1;
        }
    }
    free(cat);
    return 0;
}

/* Bool field with a default; -1 (error set) when present but not a bool. */
static int get_bool(reader *r, json_t *obj, const char *key, bool dflt, size_t i, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return rwkv_fail(r->err, "%s: added_tokens[%zu].%s is not true or false", r->label, i,
                         key);
    *out = json_is_true(v);
    return 0;
}

static int cmp_added(const void *pa, const void *pb, void *pool)
{
    const bpe_added *a = pa, *b = pb;
    const uint8_t *p = pool;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(p + a->off, p + b->off, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int read_added(reader *r, json_t *root, json_t *vocab, uint32_t *max_id)
{
    bpe_model *m = r->m;
    json_t *arr = json_object_get(root, "added_tokens");
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return rwkv_fail(r->err, "%s: added_tokens is not an array", r->label);
    size_t n = json_array_size(arr);
    if (n > 4096)
        return rwkv_fail(r->err, "%s: %zu added tokens (at most 4096)", r->label, n);
    m->raw = calloc(n ? n : 1, sizeof *m->raw);
    m->added_pool = malloc(n * BPE_MAX_ADDED_BYTES + 1);
    if (!m->raw || !m->added_pool)
        return rwkv_fail(r->err, "%s: out of memory", r->label);
    size_t used = 0;
    char sb[48];
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        if (!json_is_object(e))
            return rwkv_fail(r->err, "%s: added_tokens[%zu] is not an object", r->label, i);
        json_t *jid = json_object_get(e, "id"), *jc = json_object_get(e, "content");
        if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
            json_integer_value(jid) >= (json_int_t)BPE_MAX_ID)
            return rwkv_fail(r->err, "%s: added_tokens[%zu].id is missing or out of range "
                             "(0..%u)", r->label, i, BPE_MAX_ID - 1);
        if (!json_is_string(jc) || json_string_length(jc) == 0 ||
            json_string_length(jc) > BPE_MAX_ADDED_BYTES)
            return rwkv_fail(r->err, "%s: added_tokens[%zu].content is missing, empty or longer "
                             "than %d bytes", r->label, i, BPE_MAX_ADDED_BYTES);
        uint32_t id = (uint32_t)json_integer_value(jid);
        const char *c = json_string_value(jc);
        size_t cn = strlen(c);
        if (cn != json_string_length(jc))
            return rwkv_fail(r->err, "%s: added_tokens[%zu].content holds a NUL", r->label, i);
        if (strstr(c, "\xEF\xBF\xBD"))
            return rwkv_fail(r->err, "%s: added_tokens[%zu].content holds U+FFFD, which invalid "
                             "UTF-8 turns into; not supported", r->label, i);
        bool special, normalized, flag;
        if (get_bool(r, e, "special", false, i, &special) != 0 ||
            get_bool(r, e, "normalized", !special, i, &normalized) != 0)
            return -1;
        static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
        for (int f = 0; f < 3; f++) {
            if (get_bool(r, e, flags[f], false, i, &flag) != 0)
                return -1;
            if (flag)
                return rwkv_fail(r->err, "%s: added_tokens[%zu].%s is true, which is not "
                                 "supported", r->label, i, flags[f]);
        }
        if (id > *max_id)
            *max_id = id;
        /* the same id in the vocab must be the same text */
        json_t *vv = json_object_get(vocab, c);
        if (vv && (uint32_t)json_integer_value(vv) != id)
            return rwkv_fail(r->err, "%s: added_tokens[%zu] \"%s\" has id %u but the vocab gives "
                             "it id %lld", r->label, i, shown(c, sb, sizeof sb), id,
                             (long long)json_integer_value(vv));
        for (size_t j = 0; j < i; j++) {
            json_t *o = json_array_get(arr, j);
            if ((uint32_t)json_integer_value(json_object_get(o, "id")) == id)
                return rwkv_fail(r->err, "%s: added_tokens[%zu] and [%zu] both have id %u",
                                 r->label, j, i, id);
            if (strcmp(json_string_value(json_object_get(o, "content")), c) == 0)
                return rwkv_fail(r->err, "%s: added_tokens[%zu] and [%zu] are both \"%s\"",
                                 r->label, j, i, shown(c, sb, sizeof sb));
        }
        if (normalized) {
            if (cn < 2 || strspn(c, " ") != cn)
                return rwkv_fail(r->err, "%s: added_tokens[%zu] \"%s\" is normalized but not a "
                                 "run of 2 or more spaces; not supported", r->label, i,
                                 shown(c, sb, sizeof sb));
            m->space_id[cn] = id + 1; /* +1: 0 marks a missing length until checked */
            if (cn > m->space_max)
                m->space_max = (uint32_t)cn;
        } else {
            memcpy(m->added_pool + used, c, cn);
            m->raw[m->n_raw].id = id;
            m->raw[m->n_raw].off = (uint32_t)used;
            m->raw[m->n_raw].len = (uint32_t)cn;
            m->n_raw++;
            used += cn;
            if (cn > m->raw_max_len)
                m->raw_max_len = cn;
            m->raw_first[(uint8_t)c[0] >> 3] |= (uint8_t)(1u << ((uint8_t)c[0] & 7));
        }
    }
    for (uint32_t k = 2; k <= m->space_max; k++) {
        if (m->space_id[k] == 0)
            return rwkv_fail(r->err, "%s: added tokens are runs of up to %u spaces but the run "
                             "of %u is missing; not supported", r->label, m->space_max, k);
        m->space_id[k]--;
    }
    qsort_r(m->raw, m->n_raw, sizeof *m->raw, cmp_added, m->added_pool);
    return 0;
}

/* Token bytes for the added-token ids the vocab does not have. */
static int place_added(reader *r, json_t *root, json_t *vocab, size_t *used)
{
    bpe_model *m = r->m;
    json_t *arr = json_object_get(root, "added_tokens");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    char sb[48];
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        uint32_t id = (uint32_t)json_integer_value(json_object_get(e, "id"));
        const char *c = json_string_value(json_object_get(e, "content"));
        if (m->len[id] != 0) {
            if (json_object_get(vocab, c))
                continue; /* the vocab has it, with the same id (checked) */
            return rwkv_fail(r->err, "%s: added_tokens[%zu] \"%s\" has id %u, which the vocab "
                             "gives to another token", r->label, i, shown(c, sb, sizeof sb), id);
        }
        bool sym;
        if (strlen(c) > r->pool_cap - *used)
            return rwkv_fail(r->err, "%s: token pool overflow (internal error)", r->label);
        size_t k = token_bytes(c, m->pool + *used, &sym);
        m->off[id] = (uint32_t)*used;
        m->len[id] = (uint32_t)k;
        *used += k;
    }
    return 0;
}

static int read_root(reader *r, json_t *root)
{
    bpe_model *m = r->m;
    if (!json_is_object(root))
        return rwkv_fail(r->err, "%s: the top level is not a JSON object", r->label);
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return rwkv_fail(r->err, "%s: \"model\" is %s, not an object", r->label,
                         model ? "of the wrong type" : "missing");
    if (check_model(r, model) != 0 || check_pipeline(r, root) != 0)
        return -1;
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return rwkv_fail(r->err, "%s: model.vocab is %s, not an object", r->label,
                         vocab ? "of the wrong type" : "missing");
    size_t nv = json_object_size(vocab);
    if (nv == 0 || nv >= BPE_MAX_ID)
        return rwkv_fail(r->err, "%s: model.vocab has %zu tokens (1..%u)", r->label, nv,
                         BPE_MAX_ID - 1);
    m->n_model = (uint32_t)nv;
    uint32_t max_id;
    size_t bytes;
    if (scan_vocab(r, vocab, &max_id, &bytes) != 0 || read_added(r, root, vocab, &max_id) != 0)
        return -1;
    size_t n_added = m->n_raw + (m->space_max ? m->space_max - 1 : 0);
    if ((size_t)max_id >= 2 * (nv + n_added) + 256)
        return rwkv_fail(r->err, "%s: id %u is far beyond the %zu tokens (ids must be nearly "
                         "dense)", r->label, max_id, nv + n_added);
    bytes += n_added * BPE_MAX_ADDED_BYTES;
    if (alloc_tables(r, max_id + 1, bytes) != 0)
        return -1;
    size_t used = 0;
    if (fill_vocab(r, vocab, &used) != 0 || place_added(r, root, vocab, &used) != 0 ||
        read_bytes_ids(r, vocab) != 0 || read_merges(r, model, vocab) != 0)
        return -1;
    return 0;
}

int bpe_json_read(const char *label, const uint8_t *buf, size_t len, bpe_model *m,
                  rwkv_error *err)
{
    memset(m, 0, sizeof *m);
    if (len > BPE_MAX_JSON)
        return rwkv_fail(err, "%s: %zu bytes is too large for a tokenizer.json (limit %zu)",
                         label, len, BPE_MAX_JSON);
    json_error_t je;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return rwkv_fail(err, "%s: byte %d (line %d, column %d): invalid JSON: %s", label,
                         je.position, je.line, je.column, je.text);
    reader r = {label, err, m, 0};
    int rc = read_root(&r, root);
    json_decref(root);
    if (rc != 0)
        bpe_model_free(m);
    return rc;
}
