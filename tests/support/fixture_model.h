/* fixture_model.h — reading the golden outputs of one fixture model
 * directory (../shared/fixtures/tiny-rwkv-<ver>/) together with the
 * tolerances its manifest states, so tests never carry their own numbers. */
#ifndef RWKV_FIXTURE_MODEL_H
#define RWKV_FIXTURE_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct fixture_state_tensor {
    char name[32];
    size_t offset, count;
} fixture_state_tensor;

typedef struct fixture_model {
    char dir[64];               /* e.g. "tiny-rwkv-7v0-834K" */
    int n_layer, n_embd, vocab;
    /* tolerances and reference statistics from manifest.json */
    double logits_tol, logits_std;       /* bound = tol * std */
    double probe_tol;                    /* absolute */
    double hidden_tol, hidden_std;
    double surprisal_tol;                /* absolute, nats */
    double state_tol;                    /* × max(1, max|ref tensor|) */
    size_t state_floats;
    fixture_state_tensor *state_tensors;
    size_t n_state_tensors;
    /* data */
    uint32_t *tokens; size_t n_tokens;   /* the 4096-byte input, id = byte */
    float *logits;                       /* [n_tokens][vocab] */
    float *probe;                        /* [vocab] */
    float *surprisal;                    /* [n_tokens-1] */
    float *hidden_at; int32_t *hidden_pos; size_t n_hidden_pos;
    float *hidden_last, *hidden_mean;
    float *state_final;
    float *state_after[3];               /* after 1000, 2000, 3000 tokens */
} fixture_model;

/* Loads everything; on any missing file or manifest field the current test
 * FAILS (returns -1). */
int fixture_model_load(fixture_model *fm, const char *dir);
void fixture_model_free(fixture_model *fm);

/* Compares a state against a reference tensor by tensor with the
 * manifest's rule; on failure marks the current test failed with the worst
 * tensor named and returns -1. */
int fixture_check_state(const fixture_model *fm, const float *got, const float *ref,
                        const char *what);

#endif
