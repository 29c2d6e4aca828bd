/* plan.h — how a forward call is cut into passes, and which rows of a pass
 * need the final norm (ln_out) and the head.  Every backend (the CPU engine,
 * kernels/ for CUDA) plans with these functions, so all of them compute the
 * same rows, fill the same outputs and keep the same batch invariance
 * (forward.h): the rules exist once.  Pure functions of the requests.
 *
 * Passes: a pass holds whole requests while they fit in max_rows token rows;
 * a request longer than max_rows runs alone, cut at multiples of max_rows
 * from its own start.  So where a request's rows fall never depends on the
 * other requests of the call. */
#ifndef RWKV_PLAN_H
#define RWKV_PLAN_H

#include "core/forward.h"

typedef struct rwkv_plan_segment {
    int req;    /* request index */
    int t0, t1; /* its token range [t0, t1) in this pass */
    int row0;   /* first row of the segment within the pass */
} rwkv_plan_segment;

/* Where the next pass starts: request req, token tok (start at {0, 0}). */
typedef struct rwkv_plan_cursor {
    int req, tok;
} rwkv_plan_cursor;

/* Plans the next pass from the cursor: writes up to n_reqs segments,
 * advances the cursor, sets *rows to the pass's row count and returns the
 * number of segments: 0 when every token has been planned, -1 when
 * max_rows < 1 or a request has no tokens. */
int rwkv_plan_pass(const rwkv_request *reqs, int n_reqs, int max_rows, rwkv_plan_cursor *cur,
                   rwkv_plan_segment *segs, int *rows);

/* Does request q need the ln_out output at its token t?  Hidden ALL/MEAN,
 * a hidden sum, logits ALL, top-k and surprisal need every row; the LAST
 * modes the last row only; an EOS sum the rows whose token is eos_id. */
int rwkv_plan_wants_hidden(const rwkv_request *q, int t);

/* Does request q need the head (logits) at its token t?  Logits ALL, top-k
 * and surprisal need every row, except that surprisal needs the last row
 * only when next_token is known; logits LAST the last row. */
int rwkv_plan_wants_logits(const rwkv_request *q, int t);

/* The rows of tokens [t0, t1) of q that need the head form one contiguous
 * run; it is [*a, *b) (empty: *a >= *b). */
void rwkv_plan_head_span(const rwkv_request *q, int t0, int t1, int *a, int *b);

#endif
