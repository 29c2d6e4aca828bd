/* test_tokenizer_bpe_json.c — hand-made tokenizer.json files, good and bad.
 *
 * The base file is a tiny valid byte-level BPE tokenizer built here with
 * jansson: the 256 byte symbols (GPT-2's bytes_to_unicode, written out
 * independently of core), a few merges, <|endoftext|> and runs of 2..4
 * spaces as added tokens.  Each bad file changes one thing and must be
 * refused with a message naming the file and the field (or, for broken
 * JSON, the byte); every truncation of the base file is refused; the
 * accepted variations (merges as pairs, no normalizer, no added tokens,
 * ignored fields) encode as expected.  Also the kind recognition: a file of
 * neither kind, an empty file. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "tests/testutil.h"

#define LABEL "t.json"

static char sym[256][5]; /* byte -> its byte-level character, UTF-8 */

static void make_symbols(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        unsigned cp = self ? (unsigned)b : 256u + (unsigned)n++;
        if (cp < 0x80) {
            sym[b][0] = (char)cp;
            sym[b][1] = 0;
        } else {
            sym[b][0] = (char)(0xC0 | (cp >> 6));
            sym[b][1] = (char)(0x80 | (cp & 0x3F));
            sym[b][2] = 0;
        }
    }
}

static json_t *added(int id, const char *content, int special, int normalized)
{
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "special", special, "normalized", normalized, "single_word", 0, "lstrip",
                     0, "rstrip", 0);
}

/* ids: <|endoftext|> 0, byte b -> b + 1, then he 257, ll 258, hell 259,
 * Gw 260 (space + w), lo 261; added spaces: 4 -> 300, 3 -> 301, 2 -> 302 */
static json_t *base(void)
{
    make_symbols();
    json_t *vocab = json_object();
    json_object_set_new(vocab, "<|endoftext|>", json_integer(0));
    for (int b = 0; b < 256; b++)
        json_object_set_new(vocab, sym[b], json_integer(b + 1));
    char gw[8];
    snprintf(gw, sizeof gw, "%sw", sym[' ']);
    json_object_set_new(vocab, "he", json_integer(257));
    json_object_set_new(vocab, "ll", json_integer(258));
    json_object_set_new(vocab, "hell", json_integer(259));
    json_object_set_new(vocab, gw, json_integer(260));
    json_object_set_new(vocab, "lo", json_integer(261));
    char mw[16];
    snprintf(mw, sizeof mw, "%s w", sym[' ']);
    json_t *merges = json_pack("[s, s, s, s, s]", "h e", "l l", "he ll", mw, "l o");
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:o, s:o}", "type", "BPE",
                              "dropout", "unk_token", "continuing_subword_prefix",
                              "end_of_word_suffix", "fuse_unk", 0, "vocab", vocab, "merges",
                              merges);
    json_t *adds = json_pack("[o, o, o, o]", added(0, "<|endoftext|>", 1, 0),
                             added(300, "    ", 0, 1), added(301, "   ", 0, 1),
                             added(302, "  ", 0, 1));
    return json_pack("{s:s, s:n, s:n, s:o, s:{s:s}, s:{s:s, s:b, s:b}, s:{s:s}, s:{s:s}, "
                     "s:o}",
                     "version", "1.0", "truncation", "padding", "added_tokens", adds,
                     "normalizer", "type", "NFC", "pre_tokenizer", "type", "ByteLevel",
                     "add_prefix_space", 0, "trim_offsets", 1, "post_processor", "type",
                     "ByteLevel", "decoder", "type", "ByteLevel", "model", model);
}

static int parse_json(json_t *root, rwkv_tokenizer **t, rwkv_error *err)
{
    char *s = json_dumps(root, JSON_COMPACT);
    int rc = rwkv_tokenizer_parse(LABEL, s, strlen(s), t, err);
    free(s);
    return rc;
}

static int encodes_to(rwkv_tokenizer *t, const char *text, const uint32_t *want, size_t n)
{
    rwkv_ids ids = {0};
    rwkv_error err = {{0}};
    int ok = rwkv_tokenizer_encode(t, text, strlen(text), &ids, &err) == 0 && ids.n == n &&
             memcmp(ids.v, want, n * sizeof *want) == 0;
    if (!ok) {
        printf("  '%s' ->", text);
        for (size_t i = 0; i < ids.n; i++)
            printf(" %u", ids.v[i]);
        printf("\n");
    }
    rwkv_ids_free(&ids);
    return ok;
}

#define B(c) ((uint32_t)(unsigned char)(c) + 1)

static void test_base_file_works(void)
{
    json_t *root = base();
    rwkv_tokenizer *t = NULL;
    rwkv_error err = {{0}};
    CHECKF(parse_json(root, &t, &err) == 0, "%s", err.msg);
    json_decref(root);
    CHECK(rwkv_tokenizer_get_kind(t) == RWKV_TOKENIZER_BPE);
    CHECK(rwkv_tokenizer_vocab_size(t) == 303);
    static const uint32_t hello[] = {259, B('o'), 260, B('o'), B('r'), B('l'), B('d')};
    int ok = encodes_to(t, "hello world", hello, 7);
    static const uint32_t sp1[] = {B('a'), 300, B('b')};
    ok = ok && encodes_to(t, "a    b", sp1, 3);
    static const uint32_t sp2[] = {B('a'), 300, 260}; /* 5 spaces: 4, then " w" */
    ok = ok && encodes_to(t, "a     w", sp2, 3);
    static const uint32_t sp3[] = {B('a'), 300, 300, 302, B('\n')}; /* 10 spaces */
    ok = ok && encodes_to(t, "a          \n", sp3, 5);
    static const uint32_t eot[] = {259, B('o'), 0, 0, B('x')};
    ok = ok && encodes_to(t, "hello<|endoftext|><|endoftext|>x", eot, 5);
    static const uint32_t nfc[] = {B(0xC3), B(0xA9)}; /* e + U+0301 -> U+00E9 */
    ok = ok && encodes_to(t, "e\xCC\x81", nfc, 2);
    const uint8_t *b;
    size_t n;
    ok = ok && rwkv_tokenizer_token_bytes(t, 300, &b, &n) == 0 && n == 4 &&
         memcmp(b, "    ", 4) == 0;
    ok = ok && rwkv_tokenizer_token_bytes(t, 260, &b, &n) == 0 && n == 2 &&
         memcmp(b, " w", 2) == 0;
    ok = ok && rwkv_tokenizer_token_bytes(t, 0, &b, &n) == 0 && n == 13;
    rwkv_tokenizer_free(t);
    CHECK(ok);
}

/* Edits one field of the base file; the parse must fail naming it. */
typedef void (*edit_fn)(json_t *root);

static json_t *model_of(json_t *r) { return json_object_get(r, "model"); }
static json_t *vocab_of(json_t *r) { return json_object_get(model_of(r), "vocab"); }
static json_t *merges_of(json_t *r) { return json_object_get(model_of(r), "merges"); }
static json_t *added_of(json_t *r) { return json_object_get(r, "added_tokens"); }

static void e_empty_obj(json_t *r) { json_object_clear(r); }
static void e_no_model(json_t *r) { json_object_del(r, "model"); }
static void e_model_num(json_t *r) { json_object_set_new(r, "model", json_integer(5)); }
static void e_wordpiece(json_t *r) { json_object_set_new(model_of(r), "type", json_string("WordPiece")); }
static void e_type_num(json_t *r) { json_object_set_new(model_of(r), "type", json_integer(7)); }
static void e_no_vocab(json_t *r) { json_object_del(model_of(r), "vocab"); }
static void e_vocab_arr(json_t *r) { json_object_set_new(model_of(r), "vocab", json_array()); }
static void e_vocab_empty(json_t *r) { json_object_clear(vocab_of(r)); }
static void e_id_str(json_t *r) { json_object_set_new(vocab_of(r), "he", json_string("x")); }
static void e_id_neg(json_t *r) { json_object_set_new(vocab_of(r), "he", json_integer(-1)); }
static void e_id_real(json_t *r) { json_object_set_new(vocab_of(r), "he", json_real(257.0)); }
static void e_id_big(json_t *r) { json_object_set_new(vocab_of(r), "he", json_integer(1 << 22)); }
static void e_id_dup(json_t *r) { json_object_set_new(vocab_of(r), "ll", json_integer(257)); }
static void e_id_gap(json_t *r) { json_object_set_new(vocab_of(r), "lo", json_integer(100000)); }
static void e_no_byte(json_t *r) { json_object_del(vocab_of(r), "z"); }
static void e_no_merges(json_t *r) { json_object_del(model_of(r), "merges"); }
static void e_merges_obj(json_t *r) { json_object_set_new(model_of(r), "merges", json_object()); }
static void e_merge_num(json_t *r) { json_array_set_new(merges_of(r), 0, json_integer(3)); }
static void e_merge_nospace(json_t *r) { json_array_set_new(merges_of(r), 0, json_string("he")); }
static void e_merge_three(json_t *r) { json_array_set_new(merges_of(r), 0, json_string("h e l")); }
static void e_merge_lead(json_t *r) { json_array_set_new(merges_of(r), 0, json_string(" h")); }
static void e_merge_two_sp(json_t *r) { json_array_set_new(merges_of(r), 0, json_string("h  e")); }
static void e_merge_one(json_t *r) { json_array_set_new(merges_of(r), 0, json_pack("[s]", "h")); }
static void e_merge_unknown(json_t *r) { json_array_set_new(merges_of(r), 0, json_string("h zz")); }
static void e_merge_result(json_t *r) { json_array_append_new(merges_of(r), json_string("o r")); }
static void e_merge_dup(json_t *r) { json_array_append_new(merges_of(r), json_string("h e")); }
static void e_nfkc(json_t *r) { json_object_set_new(r, "normalizer", json_pack("{s:s}", "type", "NFKC")); }
static void e_norm_seq(json_t *r)
{
    json_object_set_new(r, "normalizer", json_pack("{s:s, s:[{s:s}]}", "type", "Sequence",
                                                   "normalizers", "type", "NFC"));
}
static void e_no_pre(json_t *r) { json_object_del(r, "pre_tokenizer"); }
static void e_pre_ws(json_t *r) { json_object_set_new(r, "pre_tokenizer", json_pack("{s:s}", "type", "Whitespace")); }
static void e_prefix_true(json_t *r) { json_object_set_new(json_object_get(r, "pre_tokenizer"), "add_prefix_space", json_true()); }
static void e_prefix_missing(json_t *r) { json_object_del(json_object_get(r, "pre_tokenizer"), "add_prefix_space"); }
static void e_regex_off(json_t *r) { json_object_set_new(json_object_get(r, "pre_tokenizer"), "use_regex", json_false()); }
static void e_no_decoder(json_t *r) { json_object_del(r, "decoder"); }
static void e_decoder_wp(json_t *r) { json_object_set_new(r, "decoder", json_pack("{s:s}", "type", "WordPiece")); }
static void e_dropout(json_t *r) { json_object_set_new(model_of(r), "dropout", json_real(0.1)); }
static void e_prefix(json_t *r) { json_object_set_new(model_of(r), "continuing_subword_prefix", json_string("##")); }
static void e_suffix(json_t *r) { json_object_set_new(model_of(r), "end_of_word_suffix", json_string("</w>")); }
static void e_ignore(json_t *r) { json_object_set_new(model_of(r), "ignore_merges", json_true()); }
static void e_added_obj(json_t *r) { json_object_set_new(r, "added_tokens", json_object()); }
static void e_added_num(json_t *r) { json_array_set_new(added_of(r), 1, json_integer(3)); }
static void e_added_noid(json_t *r) { json_object_del(json_array_get(added_of(r), 1), "id"); }
static void e_added_negid(json_t *r) { json_object_set_new(json_array_get(added_of(r), 1), "id", json_integer(-5)); }
static void e_added_empty(json_t *r) { json_object_set_new(json_array_get(added_of(r), 0), "content", json_string("")); }
static void e_added_long(json_t *r)
{
    json_object_set_new(json_array_get(added_of(r), 0), "content",
                        json_string("<|0123456789012345678901234567890123456789012345678901234567890|>"));
}
static void e_added_numc(json_t *r) { json_object_set_new(json_array_get(added_of(r), 0), "content", json_integer(5)); }
static void e_lstrip(json_t *r) { json_object_set_new(json_array_get(added_of(r), 0), "lstrip", json_true()); }
static void e_rstrip(json_t *r) { json_object_set_new(json_array_get(added_of(r), 0), "rstrip", json_true()); }
static void e_single(json_t *r) { json_object_set_new(json_array_get(added_of(r), 0), "single_word", json_true()); }
static void e_special_str(json_t *r) { json_object_set_new(json_array_get(added_of(r), 0), "special", json_string("yes")); }
static void e_norm_text(json_t *r) { json_array_append_new(added_of(r), added(303, "abc", 0, 1)); }
static void e_norm_one(json_t *r) { json_array_append_new(added_of(r), added(303, " ", 0, 1)); }
static void e_norm_gap(json_t *r) { json_array_remove(added_of(r), 2); }
static void e_added_dupid(json_t *r) { json_array_append_new(added_of(r), added(300, "<x>", 1, 0)); }
static void e_added_dupc(json_t *r)
{
    json_array_append_new(added_of(r), added(303, "<x>", 1, 0));
    json_array_append_new(added_of(r), added(304, "<x>", 1, 0));
}
static void e_added_vocab_id(json_t *r) { json_array_append_new(added_of(r), added(303, "he", 1, 0)); }
static void e_added_taken(json_t *r) { json_array_append_new(added_of(r), added(257, "<x>", 1, 0)); }
static void e_added_fffd(json_t *r) { json_array_append_new(added_of(r), added(303, "<\xEF\xBF\xBD>", 1, 0)); }
static void e_added_many(json_t *r)
{
    for (int i = 0; i < 4097; i++) {
        char c[16];
        snprintf(c, sizeof c, "<%d>", i);
        json_array_append_new(added_of(r), added(303 + i, c, 1, 0));
    }
}

static void test_one_bad_field_each(void)
{
    static const struct { edit_fn edit; const char *want; } bad[] = {
        {e_empty_obj, "\"model\" is missing"},
        {e_no_model, "\"model\" is missing"},
        {e_model_num, "\"model\" is of the wrong type"},
        {e_wordpiece, "model.type \"WordPiece\" is not supported"},
        {e_type_num, "model.type \"?\""},
        {e_no_vocab, "model.vocab is missing"},
        {e_vocab_arr, "model.vocab is of the wrong type"},
        {e_vocab_empty, "model.vocab has 0 tokens"},
        {e_id_str, "model.vocab[\"he\"] is not an integer id"},
        {e_id_neg, "id -1 is out of range"},
        {e_id_real, "model.vocab[\"he\"] is not an integer id"},
        {e_id_big, "id 4194304 is out of range"},
        {e_id_dup, "both have id 257"},
        {e_id_gap, "far beyond"},
        {e_no_byte, "no token for the byte 0x7a"},
        {e_no_merges, "model.merges is missing"},
        {e_merges_obj, "model.merges is of the wrong type"},
        {e_merge_num, "model.merges[0] is neither"},
        {e_merge_nospace, "model.merges[0] \"he\" is not two tokens"},
        {e_merge_three, "model.merges[0] \"h e l\" is not two tokens"},
        {e_merge_lead, "model.merges[0] \" h\" is not two tokens"},
        {e_merge_two_sp, "is not two tokens"},
        {e_merge_one, "model.merges[0] is neither"},
        {e_merge_unknown, "model.merges[0]: \"zz\" is not a vocab token"},
        {e_merge_result, "model.merges[5]: the merged token \"or\" is not in the vocab"},
        {e_merge_dup, "model.merges[5] repeats the pair of model.merges[0]"},
        {e_nfkc, "normalizer \"NFKC\" is not supported"},
        {e_norm_seq, "normalizer \"Sequence\" is not supported"},
        {e_no_pre, "pre_tokenizer \"none\" is not supported"},
        {e_pre_ws, "pre_tokenizer \"Whitespace\" is not supported"},
        {e_prefix_true, "add_prefix_space is not false"},
        {e_prefix_missing, "add_prefix_space is not false"},
        {e_regex_off, "use_regex is not true"},
        {e_no_decoder, "decoder \"none\" is not supported"},
        {e_decoder_wp, "decoder \"WordPiece\" is not supported"},
        {e_dropout, "model.dropout is set"},
        {e_prefix, "model.continuing_subword_prefix is set"},
        {e_suffix, "model.end_of_word_suffix is set"},
        {e_ignore, "model.ignore_merges is set"},
        {e_added_obj, "added_tokens is not an array"},
        {e_added_num, "added_tokens[1] is not an object"},
        {e_added_noid, "added_tokens[1].id is missing or out of range"},
        {e_added_negid, "added_tokens[1].id is missing or out of range"},
        {e_added_empty, "added_tokens[0].content is missing, empty"},
        {e_added_long, "longer than 64 bytes"},
        {e_added_numc, "added_tokens[0].content is missing"},
        {e_lstrip, "added_tokens[0].lstrip is true"},
        {e_rstrip, "added_tokens[0].rstrip is true"},
        {e_single, "added_tokens[0].single_word is true"},
        {e_special_str, "added_tokens[0].special is not true or false"},
        {e_norm_text, "\"abc\" is normalized but not a run of 2 or more spaces"},
        {e_norm_one, "is normalized but not a run of 2 or more spaces"},
        {e_norm_gap, "the run of 3 is missing"},
        {e_added_dupid, "added_tokens[1] and [4] both have id 300"},
        {e_added_dupc, "added_tokens[4] and [5] are both \"<x>\""},
        {e_added_vocab_id, "\"he\" has id 303 but the vocab gives it id 257"},
        {e_added_taken, "has id 257, which the vocab gives to another token"},
        {e_added_fffd, "U+FFFD"},
        {e_added_many, "4101 added tokens (at most 4096)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *root = base();
        bad[i].edit(root);
        rwkv_tokenizer *t = (rwkv_tokenizer *)1;
        rwkv_error err = {{0}};
        int rc = parse_json(root, &t, &err);
        json_decref(root);
        if (rc == 0)
            rwkv_tokenizer_free(t);
        CHECKF(rc == -1 && t == NULL, "edit %zu (%s) was accepted", i, bad[i].want);
        CHECKF(strstr(err.msg, bad[i].want) != NULL && strncmp(err.msg, LABEL ": ", 8) == 0,
               "edit %zu: message \"%s\", expected \"%s\"", i, err.msg, bad[i].want);
    }
}

static void expect_text_fails(const char *text, size_t n, const char *want)
{
    rwkv_tokenizer *t = (rwkv_tokenizer *)1;
    rwkv_error err = {{0}};
    int rc = rwkv_tokenizer_parse(LABEL, text, n, &t, &err);
    if (rc == 0)
        rwkv_tokenizer_free(t);
    CHECKF(rc == -1 && t == NULL, "accepted: %.40s", text);
    CHECKF(strstr(err.msg, want) != NULL, "message \"%s\", expected \"%s\"", err.msg, want);
}

/* Broken JSON: the byte offset is named. */
static void test_broken_json(void)
{
#define EXPECT(text, want) expect_text_fails(text, sizeof text - 1, want)
    EXPECT("{", "invalid JSON");
    EXPECT("[1]", "unrecognised vocabulary format");
    EXPECT("{\"model\": }", "byte 11");
    EXPECT("{\"a\":1,\"a\":2}", "duplicate object key");
    EXPECT("{\"model\":{\"vocab\":{\"a\":99999999999999999999999}}}", "too big integer");
    EXPECT("{\"x\":1e99999}", "real number overflow");
    EXPECT("{\"k\\u0000\":1}", "NUL byte in object key");
    EXPECT("{\"k\":\"a\\u0000\"}", "\\u0000 is not allowed");
    EXPECT("{\"k\":\"\xFF\"}", "invalid JSON");
    EXPECT("{\"k\":1} trailing", "end of file expected");
#undef EXPECT
    /* deep nesting: jansson stops at depth 2048; no stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    CHECK(deep);
    size_t k = (size_t)sprintf(deep, "{\"model\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    expect_text_fails(deep, k, "maximum parsing depth");
    free(deep);
}

static void test_every_truncation_fails(void)
{
    json_t *root = base();
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t n = strlen(s);
    int accepted = -1;
    for (size_t k = 1; k < n; k++) {
        rwkv_tokenizer *t = NULL;
        rwkv_error err = {{0}};
        if (rwkv_tokenizer_parse(LABEL, s, k, &t, &err) == 0) {
            rwkv_tokenizer_free(t);
            accepted = (int)k;
            break;
        }
        if (strstr(err.msg, LABEL) != err.msg) {
            accepted = -(int)k - 2;
            break;
        }
    }
    free(s);
    CHECKF(accepted == -1, "truncation to %d bytes", accepted);
}

static void test_kind_recognition(void)
{
    expect_text_fails("", 0, "empty vocabulary file");
    expect_text_fails("hello", 5, "tokenizer.json");
    expect_text_fails("   [1,2]", 8, "unrecognised vocabulary format");
    /* leading whitespace before the object is fine */
    json_t *root = base();
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t n = strlen(s);
    char *ws = malloc(n + 4);
    memcpy(ws, " \n\t", 3);
    memcpy(ws + 3, s, n);
    rwkv_tokenizer *t = NULL;
    rwkv_error err = {{0}};
    int rc = rwkv_tokenizer_parse(LABEL, ws, n + 3, &t, &err);
    rwkv_tokenizer_free(t);
    free(ws);
    free(s);
    CHECKF(rc == 0, "%s", err.msg);
    /* too large: refused before parsing */
    size_t huge = ((size_t)64 << 20) + 1;
    char *big = malloc(huge);
    CHECK(big);
    memset(big, ' ', huge);
    big[0] = '{';
    t = NULL;
    rc = rwkv_tokenizer_parse(LABEL, big, huge, &t, &err);
    free(big);
    CHECK(rc == -1 && t == NULL);
    CHECKF(strstr(err.msg, "too large") != NULL, "%s", err.msg);
}

static void test_accepted_variations(void)
{
    rwkv_error err = {{0}};
    rwkv_tokenizer *t = NULL;
    static const uint32_t hello[] = {259, B('o'), 260, B('o'), B('r'), B('l'), B('d')};
    /* merges as ["A", "B"] pairs */
    json_t *root = base();
    json_t *m = merges_of(root);
    for (size_t i = 0; i < json_array_size(m); i++) {
        char *pair = strdup(json_string_value(json_array_get(m, i)));
        char *sp = strchr(pair, ' ');
        *sp = 0;
        json_array_set_new(m, i, json_pack("[s, s]", pair, sp + 1));
        free(pair);
    }
    CHECKF(parse_json(root, &t, &err) == 0, "%s", err.msg);
    json_decref(root);
    int ok = encodes_to(t, "hello world", hello, 7);
    rwkv_tokenizer_free(t);
    CHECK(ok);
    /* no normalizer: decomposed text stays decomposed */
    root = base();
    json_object_set_new(root, "normalizer", json_null());
    CHECKF(parse_json(root, &t, &err) == 0, "%s", err.msg);
    json_decref(root);
    static const uint32_t nfd[] = {B('e'), B(0xCC), B(0x81)};
    ok = encodes_to(t, "e\xCC\x81", nfd, 3);
    rwkv_tokenizer_free(t);
    CHECK(ok);
    /* no added tokens, ignored fields set */
    root = base();
    json_object_del(root, "added_tokens");
    json_object_set_new(model_of(root), "unk_token", json_string("<unk>"));
    json_object_set_new(model_of(root), "byte_fallback", json_true());
    json_object_set_new(model_of(root), "fuse_unk", json_true());
    json_object_set_new(root, "truncation", json_pack("{s:i}", "max_length", 4));
    json_object_set_new(root, "post_processor", json_pack("{s:s}", "type", "TemplateProcessing"));
    json_object_set_new(json_object_get(root, "pre_tokenizer"), "use_regex", json_true());
    json_object_set_new(vocab_of(root), "a b", json_integer(262)); /* not byte-level text */
    CHECKF(parse_json(root, &t, &err) == 0, "%s", err.msg);
    json_decref(root);
    ok = encodes_to(t, "hello world", hello, 7);
    static const uint32_t sp[] = {B('a'), B(' '), B(' '), B('b')}; /* no space tokens now */
    ok = ok && encodes_to(t, "a  b", sp, 4) && rwkv_tokenizer_vocab_size(t) == 263;
    const uint8_t *b;
    size_t n;
    ok = ok && rwkv_tokenizer_token_bytes(t, 262, &b, &n) == 0 && n == 3 &&
         memcmp(b, "a b", 3) == 0;
    rwkv_tokenizer_free(t);
    CHECK(ok);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_base_file_works);
    RUN(test_one_bad_field_each);
    RUN(test_broken_json);
    RUN(test_every_truncation_fails);
    RUN(test_kind_recognition);
    RUN(test_accepted_variations);
    return test_summary();
}
