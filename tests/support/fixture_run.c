/* fixture_run.c — see fixture_run.h. */
#include "tests/support/fixture_run.h"

#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

void fixture_run_free(fixture_run *o)
{
    free(o->logits);
    free(o->hidden);
    free(o->surprisal);
    free(o->state);
    free(o->hsum);
    for (int i = 0; i < 3; i++)
        free(o->states_at[i]);
    memset(o, 0, sizeof *o);
}

int fixture_run_blocks(const fixture_model *fm, const rwkv_model *m, rwkv_engine *e,
                       const float *init, size_t from, size_t to, const int *sizes, int n_sizes,
                       int cut_at_thousands, fixture_run *o)
{
    const rwkv_model_info *mi = rwkv_model_get_info(m);
    size_t V = (size_t)mi->vocab_size, C = (size_t)mi->n_embd, T = to - from;
    memset(o, 0, sizeof *o);
    o->logits = malloc(T * V * sizeof(float));
    o->hidden = malloc(T * C * sizeof(float));
    o->surprisal = malloc(T * sizeof(float));
    o->hsum = calloc(C, sizeof(double));
    o->state = malloc(mi->state_floats * sizeof(float));
    rwkv_state *st = rwkv_state_new(m);
    rwkv_error err = {{0}};
    if (init && rwkv_state_import(st, init, mi->state_floats, &err) != 0) {
        test_fail_at(__FILE__, __LINE__, "import: %s", err.msg);
        rwkv_state_free(st);
        return -1;
    }
    size_t pos = 0;
    for (int k = 0; pos < T; k++) {
        size_t n = (size_t)sizes[k % n_sizes];
        size_t abs = from + pos, next = (abs / 1000 + 1) * 1000;
        if (n > T - pos)
            n = T - pos;
        if (cut_at_thousands && next <= 3000 && abs + n > next)
            n = next - abs;
        rwkv_request q = {
            .state = st,
            .tokens = fm->tokens + abs,
            .n_tokens = (int)n,
            .logits = RWKV_LOGITS_ALL,
            .logits_out = o->logits + pos * V,
            .hidden = RWKV_HIDDEN_ALL,
            .hidden_out = o->hidden + pos * C,
            .hidden_sum = o->hsum,
            .surprisal_out = o->surprisal + pos,
            .next_token = abs + n < to ? (int64_t)fm->tokens[abs + n] : -1,
        };
        if (rwkv_forward(e, &q, 1, &err) != 0) {
            test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
            rwkv_state_free(st);
            return -1;
        }
        pos += n;
        size_t now = from + pos;
        if (cut_at_thousands && from == 0 && now % 1000 == 0 && now >= 1000 && now <= 3000) {
            float *s = malloc(mi->state_floats * sizeof(float));
            rwkv_state_export(st, s, NULL);
            o->states_at[now / 1000 - 1] = s;
        }
    }
    rwkv_state_export(st, o->state, NULL);
    rwkv_state_free(st);
    return 0;
}

int fixture_check_logits(const fixture_model *fm, const float *got, const float *ref, size_t rows,
                         const char *what, double *measured)
{
    size_t V = (size_t)fm->vocab, w;
    double bound = fm->logits_tol * fm->logits_std;
    double d = max_abs_diff(got, ref, rows * V, &w);
    if (measured)
        *measured = d / fm->logits_std;
    if (!(d <= bound)) {
        test_fail_at(__FILE__, __LINE__,
                     "%s %s: logits differ by %.3g (%.3g x std) at position %zu token %zu "
                     "(got %.7g, reference %.7g); bound %.3g",
                     fm->dir, what, d, d / fm->logits_std, w / V, w % V, got[w], ref[w], bound);
        return -1;
    }
    return 0;
}
