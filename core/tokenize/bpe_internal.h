/* bpe_internal.h — the parts of the byte-level BPE tokenizer (a Hugging Face
 * tokenizer.json of the GPT-NeoX "20B" kind), shared by its files.  Internal
 * to core/ (tests include it to reach the pieces one at a time).
 *
 * Encoding runs the reference pipeline (see ../shared/fixtures/tokenizer-20b/
 * README.md): added tokens matched on the raw text (bpe.c), NFC (bpe_text.c),
 * runs of spaces as added tokens and the ByteLevel split pattern
 * (bpe_pretok.c), rank-ordered merges per word (bpe_merge.c).  The file is
 * read and checked by bpe_json.c.
 *
 * Streaming (bpe_cut.c, bpe.c): the text is cut into CHUNKS that are encoded
 * independently.  A natural cut point P is one where, for ANY text before and
 * after, encode(A ++ B) == encode(A) ++ encode(B); the cut finder recognises
 * them from a few bytes around P (rules in bpe_cut.c), so the streaming and the
 * whole-text encoder find the same ones.  A stretch of BPE_SPAN bytes with no
 * natural cut point is cut by force at its last character boundary: that is
 * the only place where the ids can differ from the reference (a word, run of
 * punctuation or whitespace, or NFC unit longer than ~1000 bytes), and both
 * encoders force the same cuts, so streamed ids always equal whole-text ids.
 * The held bytes are therefore at most BPE_MAX_PENDING.
 */
#ifndef RWKV_BPE_INTERNAL_H
#define RWKV_BPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tokenizer.h"

#define BPE_NONE UINT32_MAX

/* Most bytes a streaming encoder holds; equal to the daemon's checkpoint
 * limit on pending tokenizer bytes (RWKVD_CKPT_PENDING_BYTES_MAX). */
#define BPE_MAX_PENDING 1024
/* Longest content of an added token we accept (bytes).  It bounds the
 * lookahead of the cut finder. */
#define BPE_MAX_ADDED_BYTES 64
/* Largest tokenizer.json we parse (the 20B one is 2.4 MB). */
#define BPE_MAX_JSON ((size_t)64 << 20)
/* Ids are below this, and tokens at most this long (bytes). */
#define BPE_MAX_ID (1u << 22)
#define BPE_MAX_TOKEN_BYTES 65536

/* ---------------------------------------------------------------- model */

typedef struct bpe_added {
    uint32_t id;
    uint32_t off, len; /* content bytes in bpe_model.added_pool */
} bpe_added;

/* Everything tokenizer.json says, checked (bpe_json.c). */
typedef struct bpe_model {
    uint32_t vocab_size;    /* one more than the largest id */
    uint8_t *pool;          /* token bytes (what decode gives) */
    uint32_t *off, *len;    /* per id; len 0 = no such id */
    uint8_t *is_symbol;     /* per id: 1 when the vocab key is byte-level text */
    uint32_t n_model;       /* entries of model.vocab */
    uint32_t byte_id[256];  /* the single-byte symbols, BPE_NONE where none */
    uint32_t n_merges;      /* rank = index */
    uint32_t *merge_left, *merge_right, *merge_id;
    /* added tokens matched on the raw text (normalized: false), sorted by
     * content bytes; raw_first marks their first bytes */
    uint32_t n_raw;
    bpe_added *raw;
    uint8_t *added_pool;
    size_t raw_max_len;
    uint8_t raw_first[32];
    /* added tokens of 2..space_max spaces (normalized: true) */
    uint32_t space_max; /* 0 = none */
    uint32_t space_id[BPE_MAX_ADDED_BYTES + 1];
    bool nfc; /* normalizer NFC (else none) */
} bpe_model;

/* Reads tokenizer.json buf[0..len).  On failure m is left empty (free it
 * anyway) and err names label and, where the JSON is malformed, the byte. */
int bpe_json_read(const char *label, const uint8_t *buf, size_t len, bpe_model *m,
                  rwkv_error *err);
void bpe_model_free(bpe_model *m); /* accepts a zeroed model */

/* GPT-2's bytes_to_unicode: the code point byte b is written as, and back
 * (-1 when cp is not in the table). */
uint32_t bpe_byte_to_cp(uint8_t b);
int bpe_cp_to_byte(uint32_t cp);

/* ---------------------------------------------------------------- text (bpe_text.c) */

enum { BPE_L = 0, BPE_N = 1, BPE_S = 2, BPE_P = 3 }; /* \p{L}, \p{N}, \s, the rest */

/* Decodes one character of s[0..n) (n > 0) as Rust's from_utf8_lossy does:
 * a maximal invalid subpart becomes one U+FFFD.  Returns its byte length. */
size_t bpe_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);
size_t bpe_utf8_put(uint32_t cp, uint8_t *dst); /* 1..4 bytes */

int bpe_class(uint32_t cp);
extern const uint8_t bpe_ascii_class[128]; /* bpe_class of ASCII */
/* Whether NFC never looks across the boundary before cp: cp is a starter that
 * combines with nothing before it, and so does its decomposition's first
 * code point.  Then NFC(x ++ y) = NFC(x) ++ NFC(y) when y starts with cp. */
bool bpe_nfc_boundary(uint32_t cp);

/* Growable buffers for per-call scratch. */
typedef struct bpe_buf {
    uint8_t *b;
    size_t n, cap;
} bpe_buf;
typedef struct bpe_u32 {
    uint32_t *v;
    size_t n, cap;
} bpe_u32;
int bpe_buf_reserve(bpe_buf *b, size_t extra, rwkv_error *err);
int bpe_u32_reserve(bpe_u32 *b, size_t extra, rwkv_error *err);

/* Whether cp alone is already NFC and has no canonical decomposition. */
bool bpe_nfc_inert(uint32_t cp);

/* Per-call scratch of the text steps (never shared between threads). */
typedef struct bpe_scratch {
    bpe_u32 cps, tmp;
    bpe_buf norm, ccc;
} bpe_scratch;
void bpe_scratch_free(bpe_scratch *sc);

/* Appends the NFC of the code points cps[0..n) to out as UTF-8.  tmp and ccc
 * are scratch.  -1 only when memory runs out. */
int bpe_nfc(const uint32_t *cps, size_t n, bpe_buf *out, bpe_u32 *tmp, bpe_buf *ccc,
            rwkv_error *err);

/* ---------------------------------------------------------------- merges (bpe_merge.c) */

typedef struct bpe_merges {
    const bpe_model *m;
    uint64_t *pair_key; /* (left << 32 | right), UINT64_MAX = empty */
    uint32_t *pair_rank;
    size_t pair_mask;
    uint32_t *word_id;  /* tokens whose own bytes merge to themselves (+1, 0 = empty) */
    size_t word_mask;
    uint64_t seed;      /* of both hashes */
} bpe_merges;

/* Builds the pair table and the table of whole-word tokens; -1 on OOM. */
int bpe_merges_build(bpe_merges *bm, const bpe_model *m, rwkv_error *err);
void bpe_merges_free(bpe_merges *bm);

/* Per-call scratch of the merge loop. */
typedef struct bpe_work {
    uint32_t *id, *rank, *prev, *next;
    struct bpe_heap_item *heap;
    size_t cap, heap_cap;
} bpe_work;
void bpe_work_free(bpe_work *w);

/* Appends the ids of one word (its UTF-8 bytes w[0..n), n > 0).
 * mode: 0 = automatic, 1 = force the quadratic loop, 2 = force the heap,
 * 3 = no whole-word table (tests compare them).  -1 only on OOM or on a byte
 * with no symbol (the loader makes sure valid UTF-8 never has one). */
int bpe_merge_word(const bpe_merges *bm, const uint8_t *w, size_t n, int mode, bpe_work *wk,
                   rwkv_ids *out, rwkv_error *err);

/* ---------------------------------------------------------------- split (bpe_pretok.c) */

typedef struct bpe_sink {
    int (*word)(void *ctx, const uint8_t *w, size_t n);
    int (*token)(void *ctx, uint32_t id);
    void *ctx;
} bpe_sink;

/* Splits normalized text s[0..n) (valid UTF-8) into space-run added tokens
 * and the ByteLevel pattern's words, in order.  Returns what a sink call
 * returned when not 0. */
int bpe_pretokenize(const bpe_model *m, const uint8_t *s, size_t n, const bpe_sink *sink);

/* ---------------------------------------------------------------- raw added tokens, cuts */

/* The leftmost-longest added token (normalized: false) starting at s[0]
 * within s[0..n): its index in m->raw, or -1. */
int bpe_match_raw(const bpe_model *m, const uint8_t *s, size_t n);

/* Bytes after a candidate cut point that the cut finder reads. */
size_t bpe_lookahead(const bpe_model *m);
/* The longest stretch without a cut: cuts are forced after this many bytes. */
size_t bpe_span(const bpe_model *m);

/* Looks for natural cut points in (0, lim] of a chunk s[0..n) that starts at
 * s[0] (lim < n; n is the text's end as far as this call knows, which is
 * only right when lim + bpe_lookahead <= n or the text really ends at n).
 * Sets *cut to the last one, or 0, and then *boundary to the last character
 * boundary in (0, lim] (the forced cut).  -1 only when memory runs out. */
int bpe_find_cut(const bpe_model *m, const uint8_t *s, size_t n, size_t lim, size_t *cut,
                 size_t *boundary, bpe_scratch *sc, rwkv_error *err);
/* The same by a forward scan of the whole range, which bpe_find_cut uses when
 * its backward look near lim cannot decide (tests compare the two). */
int bpe_find_cut_scan(const bpe_model *m, const uint8_t *s, size_t n, size_t lim, size_t *cut,
                      size_t *boundary, bpe_scratch *sc, rwkv_error *err);

#endif
