/* embed_fixture.c — see embed_fixture.h. */
#include "tests/support/embed_fixture.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static void *read_file(const char *file, size_t want)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", EMBED_FIXTURE_DIR, file);
    size_t len = 0;
    void *p = fixture_read(rel, &len);
    if (p && len != want) {
        test_fail_at(__FILE__, __LINE__, "fixture %s has %zu bytes, expected %zu", rel, len,
                     want);
        free(p);
        return NULL;
    }
    return p;
}

/* The bound (max × reference_std) of a file entry of the input. */
static int bound_of(json_t *files, const char *file, double *bound)
{
    size_t i;
    json_t *e;
    json_array_foreach(files, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "file"));
        if (!name || strcmp(name, file) != 0)
            continue;
        json_t *tol = json_object_get(e, "tolerance");
        json_t *mx = json_object_get(tol, "max"), *sd = json_object_get(tol, "reference_std");
        if (!json_is_number(mx) || !json_is_number(sd))
            break;
        *bound = json_number_value(mx) * json_number_value(sd);
        return 0;
    }
    test_fail_at(__FILE__, __LINE__, "manifest: no tolerance with reference_std for %s", file);
    return -1;
}

static int load_input(embed_fixture *f, json_t *in, embed_input *x)
{
    const char *name = json_string_value(json_object_get(in, "name"));
    json_t *files = json_object_get(in, "files"), *split = json_object_get(in, "chunk_split_points");
    if (!name || !json_is_array(files) || json_array_size(split) != 2) {
        test_fail_at(__FILE__, __LINE__, "manifest: an input without name/files/split points");
        return -1;
    }
    snprintf(x->name, sizeof x->name, "%s", name);
    const char *text = json_string_value(json_object_get(in, "text_file"));
    if (text)
        snprintf(x->text_file, sizeof x->text_file, "%s/%s", EMBED_FIXTURE_DIR, text);
    x->T = (size_t)json_integer_value(json_object_get(in, "T"));
    x->E = (size_t)json_integer_value(json_object_get(in, "n_eos"));
    x->split[0] = (size_t)json_integer_value(json_array_get(split, 0));
    x->split[1] = (size_t)json_integer_value(json_array_get(split, 1));
    size_t C = (size_t)f->C;
    char file[128];
    static const char *const emb_name[RWKV_TASK_COUNT] = {"emb_retr", "emb_sts", "emb_cls"};
#define LOAD(field, fname, bytes)                                                     \
    snprintf(file, sizeof file, "%s/%s", name, fname);                                 \
    if (!(x->field = read_file(file, bytes)))                                          \
        return -1;
    LOAD(tokens, "tokens.i32", x->T * 4)
    LOAD(eos_pos, "eos_positions.i32", x->E * 4)
    LOAD(hidden_eos, "hidden_eos.f32", x->E * C * 4)
    LOAD(pooled, "pooled.f32", C * 4)
    LOAD(state_final, "state_final.f32", f->state_floats * 4)
    for (int t = 0; t < RWKV_TASK_COUNT; t++) {
        char fn[32];
        snprintf(fn, sizeof fn, "%s.f32", emb_name[t]);
        LOAD(emb[t], fn, C * 4)
        snprintf(file, sizeof file, "%s/%s.f32", name, emb_name[t]);
        if (bound_of(files, file, &x->bound_emb[t]) != 0)
            return -1;
    }
#undef LOAD
    snprintf(file, sizeof file, "%s/hidden_eos.f32", name);
    if (bound_of(files, file, &x->bound_hidden) != 0)
        return -1;
    snprintf(file, sizeof file, "%s/pooled.f32", name);
    return bound_of(files, file, &x->bound_pooled);
}

int embed_fixture_load(embed_fixture *f)
{
    memset(f, 0, sizeof *f);
    size_t len;
    char *text = fixture_read(EMBED_FIXTURE_DIR "/manifest.json", &len);
    if (!text)
        return -1;
    json_error_t jerr;
    json_t *man = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!man) {
        test_fail_at(__FILE__, __LINE__, "embedding manifest: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    json_t *model = json_object_get(man, "model"), *conv = json_object_get(man, "conventions");
    json_t *layout = json_object_get(json_object_get(man, "state_layout"), "tensors");
    json_t *inputs = json_object_get(man, "inputs");
    f->C = (int)json_integer_value(json_object_get(model, "n_embd"));
    f->eos = (uint32_t)json_integer_value(json_object_get(conv, "eos_token_id"));
    f->state_floats =
        (size_t)json_integer_value(json_object_get(json_object_get(man, "state_layout"),
                                                   "floats_total"));
    f->state_tol = 1e-4; /* the manifest states it in prose: checked below */
    const char *st = json_string_value(
        json_object_get(json_object_get(man, "tolerances"), "state_final"));
    if (f->C < 1 || f->C > 4096 || !json_is_array(layout) || json_array_size(layout) > 64 ||
        !json_is_array(inputs) || !st || !strstr(st, "1e-4")) {
        test_fail_at(__FILE__, __LINE__, "embedding manifest: model/state_layout/inputs/"
                                         "tolerances missing or changed");
        goto out;
    }
    f->n_tensors = json_array_size(layout);
    for (size_t i = 0; i < f->n_tensors; i++) {
        json_t *t = json_array_get(layout, i);
        f->t_off[i] = (size_t)json_integer_value(json_object_get(t, "offset_floats"));
        f->t_count[i] = (size_t)json_integer_value(json_object_get(t, "count"));
    }
    f->n = json_array_size(inputs);
    f->in = calloc(f->n, sizeof *f->in);
    if (!f->in)
        goto out;
    for (size_t i = 0; i < f->n; i++)
        if (load_input(f, json_array_get(inputs, i), &f->in[i]) != 0)
            goto out;
    rc = 0;
out:
    json_decref(man);
    return rc;
}

void embed_fixture_free(embed_fixture *f)
{
    for (size_t i = 0; f->in && i < f->n; i++) {
        embed_input *x = &f->in[i];
        free(x->tokens);
        free(x->eos_pos);
        free(x->hidden_eos);
        free(x->pooled);
        free(x->state_final);
        for (int t = 0; t < RWKV_TASK_COUNT; t++)
            free(x->emb[t]);
    }
    free(f->in);
    memset(f, 0, sizeof *f);
}

int embed_check(const float *got, const float *ref, size_t n, double bound, const char *what,
                double *ratio)
{
    size_t w = 0;
    double d = max_abs_diff(got, ref, n, &w);
    if (ratio)
        *ratio = d / bound;
    if (!(d <= bound)) {
        test_fail_at(__FILE__, __LINE__, "%s differs by %.3g at %zu (bound %.3g)", what, d, w,
                     bound);
        return -1;
    }
    return 0;
}

int embed_check_state(const embed_fixture *f, const float *got, const float *ref,
                      const char *what)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        const float *r = ref + f->t_off[i];
        double mx = max_abs_f32(r, f->t_count[i]);
        double bound = f->state_tol * (mx > 1 ? mx : 1);
        double d = max_abs_diff(got + f->t_off[i], r, f->t_count[i], NULL);
        if (!(d <= bound)) {
            test_fail_at(__FILE__, __LINE__, "%s: state tensor %zu differs by %.3g (bound %.3g)",
                         what, i, d, bound);
            return -1;
        }
    }
    return 0;
}
