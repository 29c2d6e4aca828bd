/* plan.c — the pass planner and the per-row output rules (core/plan.h). */
#include "core/plan.h"

int rwkv_plan_pass(const rwkv_request *reqs, int n_reqs, int max_rows, rwkv_plan_cursor *cur,
                   rwkv_plan_segment *segs, int *rows)
{
    *rows = 0;
    if (max_rows < 1)
        return -1;
    int n_seg = 0;
    while (cur->req < n_reqs) {
        const rwkv_request *q = &reqs[cur->req];
        if (q->n_tokens < 1)
            return -1;
        int left = q->n_tokens - cur->tok;
        if (n_seg > 0 && *rows + left > max_rows)
            break;
        int take = left < max_rows ? left : max_rows;
        segs[n_seg++] = (rwkv_plan_segment){cur->req, cur->tok, cur->tok + take, *rows};
        *rows += take;
        cur->tok += take;
        if (cur->tok < q->n_tokens)
            break; /* a long request continues alone in the next pass */
        cur->req++;
        cur->tok = 0;
    }
    return n_seg;
}

int rwkv_plan_wants_hidden(const rwkv_request *q, int t)
{
    int last = t == q->n_tokens - 1;
    if (q->hidden == RWKV_HIDDEN_ALL || q->hidden == RWKV_HIDDEN_MEAN || q->hidden_sum ||
        q->logits == RWKV_LOGITS_ALL || q->topk > 0 || q->surprisal_out)
        return 1;
    if (q->eos_sum && q->tokens[t] == q->eos_id)
        return 1;
    return last && (q->hidden == RWKV_HIDDEN_LAST || q->logits == RWKV_LOGITS_LAST);
}

int rwkv_plan_wants_logits(const rwkv_request *q, int t)
{
    int last = t == q->n_tokens - 1;
    if (q->logits == RWKV_LOGITS_ALL || q->topk > 0)
        return 1;
    if (last && q->logits == RWKV_LOGITS_LAST)
        return 1;
    return q->surprisal_out && (!last || q->next_token >= 0);
}

void rwkv_plan_head_span(const rwkv_request *q, int t0, int t1, int *a, int *b)
{
    *a = t1;
    *b = t0;
    for (int t = t0; t < t1; t++)
        if (rwkv_plan_wants_logits(q, t)) {
            *a = t < *a ? t : *a;
            *b = t + 1;
        }
}
