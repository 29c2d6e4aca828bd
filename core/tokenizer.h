/* tokenizer.h — text bytes <-> token ids, with a streaming encoder.
 *
 * Kinds: the RWKV World tokenizer (rwkv_vocab_v20230424.txt: greedy longest
 * match over bytes), the byte-level tokenizer of the tiny models (vocab 256,
 * id = byte), and the byte-level BPE of the RWKV-4 Pile models read from a
 * Hugging Face tokenizer.json (20B_tokenizer.json: NFC, the GPT-2 split
 * pattern, ranked merges, added tokens).  A tokenizer is immutable after
 * loading and may be shared by any number of threads and encoders.
 *
 * The streaming encoder promises: text fed in pieces split at ANY byte (even
 * inside a UTF-8 character) yields exactly the ids the whole text would.
 * Bytes whose token is not yet settled (they could still grow into a longer
 * match) are held until more input arrives or finish() is called.
 *
 * BPE specifics: ids equal the Hugging Face reference's except where a
 * stretch of about 1000 bytes has no place where the text may be cut
 * independently (a word, a run of punctuation or whitespace, or a base
 * character with marks, that long); such a stretch is cut by force, the same
 * way by the whole-text and the streaming encoder (bpe_internal.h).  Invalid
 * UTF-8 is encoded as Rust's from_utf8_lossy would turn it into text: each
 * maximal invalid subpart as U+FFFD.
 *
 * Implementation map: tokenizer.c (this API, kind recognition, the byte
 * tokenizer, decode), world_tokenizer.c + world_vocab.c + world_literal.c
 * (the World vocabulary and its greedy longest match), token_trie.c (the
 * double-array trie), bpe*.c (the tokenizer.json BPE), token_encoder.c
 * (streaming), token_ids.c (rwkv_ids).  Kinds sit behind an ops table
 * (tokenizer_internal.h), so callers need no change per kind.
 */
#ifndef RWKV_TOKENIZER_H
#define RWKV_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* A growable array of token ids. Zero-initialise before first use; free with
 * rwkv_ids_free. */
typedef struct rwkv_ids {
    uint32_t *v;
    size_t n, cap;
} rwkv_ids;

/* Appends one id; -1 (with err set) only when memory runs out. */
int rwkv_ids_push(rwkv_ids *ids, uint32_t id, rwkv_error *err);
void rwkv_ids_free(rwkv_ids *ids);

typedef enum rwkv_tokenizer_kind {
    RWKV_TOKENIZER_BYTES = 0, /* id = byte value, vocab 256 */
    RWKV_TOKENIZER_WORLD = 1, /* RWKV World trie tokenizer */
    RWKV_TOKENIZER_BPE = 2,   /* byte-level BPE from a tokenizer.json (GPT-NeoX 20B) */
} rwkv_tokenizer_kind;

typedef struct rwkv_tokenizer rwkv_tokenizer;

/* Loads a vocabulary file; the kind is recognised from its content (a digit
 * first: World; a JSON object: tokenizer.json, whose rules are in
 * bpe_json.c: only the byte-level BPE pipeline of the 20B file is accepted,
 * anything else is refused naming the field).  For World, every
 * entry is checked (ids, literal syntax, the byte-length column); a bad file
 * gives one error naming the file, line and byte offset.  The exact rules of
 * the World format (CRLF and a missing final newline accepted; empty files,
 * empty lines, stray bytes, NUL, unknown escapes, surrogates, wrong length
 * columns, duplicate/missing/out-of-range ids, duplicate tokens, a missing
 * single-byte token all rejected) are in world_vocab.h and world_literal.h.
 * On success *out owns the tokenizer (free with rwkv_tokenizer_free); on
 * failure *out is NULL.  Files above 256 MiB are refused. */
int rwkv_tokenizer_load(const char *path, rwkv_tokenizer **out, rwkv_error *err);

/* Same from memory (fuzzing, tests); label names the input in messages. */
int rwkv_tokenizer_parse(const char *label, const void *buf, size_t len,
                         rwkv_tokenizer **out, rwkv_error *err);

/* The byte-level tokenizer. NULL only when out of memory. */
rwkv_tokenizer *rwkv_tokenizer_bytes(void);

void rwkv_tokenizer_free(rwkv_tokenizer *t); /* accepts NULL */

rwkv_tokenizer_kind rwkv_tokenizer_get_kind(const rwkv_tokenizer *t);
const char *rwkv_tokenizer_kind_name(const rwkv_tokenizer *t); /* "bytes", "world", "bpe" */

/* One more than the largest id (256 for bytes, 65530 for World, 50277 for
 * the 20B tokenizer.json). */
uint32_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer *t);

/* The most bytes a streaming encoder of this tokenizer ever holds (0 for
 * bytes, longest token - 1 = 127 for the World vocabulary, 1024 for BPE). */
size_t rwkv_tokenizer_max_pending(const rwkv_tokenizer *t);

/* True when the bytes of the tokens of any encoding, concatenated, are
 * exactly the input bytes (bytes and World kinds; not BPE, which normalises
 * to NFC and replaces invalid UTF-8).  Then a token's first byte sits at the
 * sum of the byte lengths of the tokens before it, whatever the split of the
 * input into pieces: the byte spans segments need (core/segments.h). */
bool rwkv_tokenizer_spells_input(const rwkv_tokenizer *t);

/* The bytes of one token.  Returns 0 and sets *bytes and *len (owned by the
 * tokenizer, valid while it lives), or -1 for an id that has no bytes (out
 * of range, or World id 0 = end of document); err is not touched. */
int rwkv_tokenizer_token_bytes(const rwkv_tokenizer *t, uint32_t id,
                               const uint8_t **bytes, size_t *len);

/* Whole-text encode: appends the ids of buf[0..len) to out.  Never fails on
 * any input bytes (every byte is a token); -1 only when memory runs out, and
 * then some ids may have been appended. */
int rwkv_tokenizer_encode(const rwkv_tokenizer *t, const void *buf, size_t len,
                          rwkv_ids *out, rwkv_error *err);

/* Decode: the concatenated token bytes in a new malloc'ed buffer (*out,
 * *out_len; *out is NUL-terminated for convenience; the caller frees it).
 * The bytes are returned raw, valid UTF-8 or not (a token can be part of a
 * character): the official decode() would turn a whole invalid string into
 * one U+FFFD; how to show invalid bytes is the caller's choice (the
 * Hugging Face BPE decode applies from_utf8_lossy).  BPE added tokens give
 * their text (<|endoftext|>, runs of spaces).  An id without bytes (World id
 * 0, id >= vocab size) is an error naming its position, and then *out is
 * NULL (the Hugging Face decode skips unknown ids silently). */
int rwkv_tokenizer_decode(const rwkv_tokenizer *t, const uint32_t *ids, size_t n,
                          uint8_t **out, size_t *out_len, rwkv_error *err);

/* ---- streaming encoder ---- */
typedef struct rwkv_encoder rwkv_encoder;

/* The tokenizer must outlive the encoder.  NULL only when out of memory.
 * An encoder is used by one thread at a time; encoders of one tokenizer are
 * independent.  After any error from feed/finish the encoder's state is
 * unspecified: free it. */
rwkv_encoder *rwkv_encoder_new(const rwkv_tokenizer *t);
void rwkv_encoder_free(rwkv_encoder *e); /* accepts NULL */

/* Feeds bytes; appends every id that is settled to out. */
int rwkv_encoder_feed(rwkv_encoder *e, const void *buf, size_t len, rwkv_ids *out,
                      rwkv_error *err);

/* End of input: appends the ids of the held bytes and empties the encoder
 * (it can then start a new text). */
int rwkv_encoder_finish(rwkv_encoder *e, rwkv_ids *out, rwkv_error *err);

/* The held bytes (for checkpoints): pointer valid until the next call. */
size_t rwkv_encoder_pending(const rwkv_encoder *e, const uint8_t **bytes);

/* Replaces the held bytes (restoring a checkpoint).  The bytes are untrusted:
 * fails (encoder unchanged) if n exceeds rwkv_tokenizer_max_pending, or if
 * the bytes are not a state this encoder can be in (World: they must be a
 * proper prefix of some token, i.e. a match that could still grow; BPE: no
 * cut point the encoder would take lies in them; bytes: nothing is ever
 * held).  Every state the encoder can reach is accepted. */
int rwkv_encoder_restore(rwkv_encoder *e, const uint8_t *bytes, size_t n, rwkv_error *err);

#endif
