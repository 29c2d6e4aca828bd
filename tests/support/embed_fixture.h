/* embed_fixture.h — the EmbeddingRWKV golden set
 * (../shared/fixtures/embedding-rwkv/): every input's files with the
 * bounds its manifest states, so tests never carry their own numbers. */
#ifndef RWKV_EMBED_FIXTURE_H
#define RWKV_EMBED_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/embedding.h"

#define EMBED_FIXTURE_DIR "embedding-rwkv"
#define EMBED_FIXTURE_MODEL "embedding-rwkv/embedding-rwkv7-L4-D64-random.pth"

typedef struct embed_input {
    char name[48];
    char text_file[96]; /* relative to fixtures_dir(); "" for the id-only inputs */
    uint32_t *tokens;
    size_t T;
    int32_t *eos_pos;
    size_t E;
    float *hidden_eos;             /* [E][C] */
    float *pooled;                 /* [C] */
    float *emb[RWKV_TASK_COUNT];   /* by rwkv_embed_task */
    float *state_final;
    double bound_hidden, bound_pooled, bound_emb[RWKV_TASK_COUNT]; /* absolute */
    size_t split[2];               /* chunk_split_points */
} embed_input;

typedef struct embed_fixture {
    embed_input *in;
    size_t n;
    int C;
    uint32_t eos;
    double state_tol;              /* × max(1, max|ref tensor|) */
    size_t state_floats;
    size_t n_tensors;
    size_t t_off[64], t_count[64]; /* the state's tensors */
} embed_fixture;

/* Loads the manifest and every input's files; -1 with the current test
 * failed on anything missing. */
int embed_fixture_load(embed_fixture *f);
void embed_fixture_free(embed_fixture *f);

/* max|got-ref| <= bound over n floats; else the test fails naming what and
 * -1.  *ratio (may be NULL) receives max|diff| / bound. */
int embed_check(const float *got, const float *ref, size_t n, double bound, const char *what,
                double *ratio);
/* The manifest's per-tensor state rule. */
int embed_check_state(const embed_fixture *f, const float *got, const float *ref,
                      const char *what);

#endif
