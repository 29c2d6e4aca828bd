/* eval_segments.h — `rwkv eval --segments line|DELIM --out-segments F`:
 * the daemon's segment records (core/segments.h) as JSON lines, so a file
 * can be scored without the daemon.  One object per line with the keys
 * seg, byte_start, byte_end, tok_start, tok_end, surprisal_sum,
 * surprisal_max, surprisal_max_pos, score, anomalous (null for figures that
 * do not exist, as in the daemon's messages), and with --segment-text N
 * "text": the segment's first N bytes as a JSON string, or {"hex": ...}
 * when they are not valid UTF-8. */
#ifndef RWKV_CLI_EVAL_SEGMENTS_H
#define RWKV_CLI_EVAL_SEGMENTS_H

#include <stdint.h>

#include "clients/rwkv/cli.h"
#include "core/segments.h"
#include "core/tokenizer.h"

/* "line" or a delimiter with the escapes \n \r \t \\ \xHH, 1..16 bytes.
 * 0, or -1 after printing a usage error. */
int eval_segments_parse(const char *cmd, const char *arg, rwkv_seg_config *cfg);

typedef struct eval_segments {
    rwkv_segmenter seg;
    const rwkv_tokenizer *tok;
    cli_out *out;
    float carry;      /* surprisal of the next block's first token (NaN: none) */
    uint64_t written;
} eval_segments;

/* 0, or -1 after printing why (a tokenizer without exact byte offsets). */
int eval_segments_init(const char *cmd, eval_segments *es, const rwkv_seg_config *cfg,
                       const rwkv_tokenizer *tok, cli_out *out);

/* One block's tokens and the engine's surprisal row (sur[i] predicts the
 * token after tokens[i]; the last entry is unused when final).  Writes the
 * finished segments; at final, also the last one.  CLI_OK or CLI_FAIL. */
int eval_segments_block(const char *cmd, eval_segments *es, const uint32_t *tokens, int n,
                        const float *sur, int final);

#endif
