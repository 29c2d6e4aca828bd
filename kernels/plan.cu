/* plan.cu — host-side bookkeeping of a forward call: cutting the requests
 * into passes and deciding which rows need the final norm and the head.
 * Pure host code (no CUDA call), so tests check it on machines without a
 * GPU; the rules are the CPU engine's (core/engine/forward.c), so both engines
 * compute the same rows and fill the same outputs. */
#include "kernels/rwkv_cuda.h"

extern "C" int rwkv_cuda_plan_pass(const rwkv_request *reqs, int n_reqs, int max_rows, int *req,
                                   int *tok, rwkv_cuda_segment *segs, int *rows)
{
    *rows = 0;
    if (max_rows < 1)
        return -1;
    int n_seg = 0;
    while (*req < n_reqs) {
        const rwkv_request *q = &reqs[*req];
        if (q->n_tokens < 1)
            return -1;
        int left = q->n_tokens - *tok;
        if (n_seg > 0 && *rows + left > max_rows)
            break;
        int take = left < max_rows ? left : max_rows;
        segs[n_seg] = rwkv_cuda_segment{*req, *tok, *tok + take, *rows};
        n_seg++;
        *rows += take;
        *tok += take;
        if (*tok < q->n_tokens)
            break; /* a long request continues alone in the next pass */
        (*req)++;
        *tok = 0;
    }
    return n_seg;
}

extern "C" int rwkv_cuda_wants_hidden_at(const rwkv_request *q, int t)
{
    int last = t == q->n_tokens - 1;
    if (q->hidden == RWKV_HIDDEN_ALL || q->hidden == RWKV_HIDDEN_MEAN || q->hidden_sum ||
        q->logits == RWKV_LOGITS_ALL || q->surprisal_out)
        return 1;
    return last && (q->hidden == RWKV_HIDDEN_LAST || q->logits == RWKV_LOGITS_LAST);
}

extern "C" int rwkv_cuda_wants_logits_at(const rwkv_request *q, int t)
{
    int last = t == q->n_tokens - 1;
    if (q->logits == RWKV_LOGITS_ALL)
        return 1;
    if (last && q->logits == RWKV_LOGITS_LAST)
        return 1;
    return q->surprisal_out && (!last || q->next_token >= 0);
}
