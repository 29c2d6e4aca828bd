/* fixture_run.h — running a fixture model's 4096 input tokens through the
 * engine in blocks, with every output, and comparing logits with the
 * fixture's bound: the step every golden test (each generation) repeats. */
#ifndef RWKV_FIXTURE_RUN_H
#define RWKV_FIXTURE_RUN_H

#include <stddef.h>

#include "core/forward.h"
#include "tests/support/fixture_model.h"

typedef struct fixture_run {
    float *logits;       /* [T][V] */
    float *hidden;       /* [T][C] */
    float *surprisal;    /* [T] (the last is NaN when no token follows) */
    double *hsum;        /* [C] */
    float *state;        /* final */
    float *states_at[3]; /* after 1000/2000/3000 tokens (cut_at_thousands, from 0) */
} fixture_run;

/* Runs fm's tokens[from..to) from `init` (NULL: the initial state) in blocks
 * of sizes[k % n_sizes] tokens, with all outputs.  cut_at_thousands: blocks
 * never straddle token 1000/2000/3000, so the states there are taken.
 * Returns 0, or -1 with the current test failed. */
int fixture_run_blocks(const fixture_model *fm, const rwkv_model *m, rwkv_engine *e,
                       const float *init, size_t from, size_t to, const int *sizes, int n_sizes,
                       int cut_at_thousands, fixture_run *o);
void fixture_run_free(fixture_run *o);

/* got vs ref over rows of logits, bound = manifest tol × std; *measured
 * (may be NULL) receives max|diff|/std.  -1 with the test failed. */
int fixture_check_logits(const fixture_model *fm, const float *got, const float *ref, size_t rows,
                         const char *what, double *measured);

#endif
