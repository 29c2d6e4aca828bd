/* fixture_model.c — see fixture_model.h. */
#include "tests/support/fixture_model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static json_t *file_entry(json_t *manifest, const char *file)
{
    json_t *files = json_object_get(manifest, "files");
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "file"));
        if (name && strcmp(name, file) == 0)
            return f;
    }
    return NULL;
}

static int tolerance(json_t *manifest, const char *file, double *max, double *std)
{
    json_t *f = file_entry(manifest, file);
    json_t *tol = f ? json_object_get(f, "tolerance") : NULL;
    json_t *mx = tol ? json_object_get(tol, "max") : NULL;
    if (!json_is_number(mx)) {
        test_fail_at(__FILE__, __LINE__, "manifest: no tolerance for %s", file);
        return -1;
    }
    *max = json_number_value(mx);
    if (std) {
        json_t *s = json_object_get(tol, "reference_std");
        if (!json_is_number(s)) {
            test_fail_at(__FILE__, __LINE__, "manifest: no reference_std for %s", file);
            return -1;
        }
        *std = json_number_value(s);
    }
    return 0;
}

static void *read_sized(const char *dir, const char *file, size_t want_bytes)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", dir, file);
    size_t len = 0;
    void *p = fixture_read(rel, &len);
    if (p && want_bytes && len != want_bytes) {
        test_fail_at(__FILE__, __LINE__, "fixture %s has %zu bytes, expected %zu", rel, len,
                     want_bytes);
        free(p);
        return NULL;
    }
    return p;
}

int fixture_model_load(fixture_model *fm, const char *dir)
{
    memset(fm, 0, sizeof *fm);
    snprintf(fm->dir, sizeof fm->dir, "%s", dir);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/manifest.json", dir);
    size_t len;
    char *text = fixture_read(rel, &len);
    if (!text)
        return -1;
    json_error_t jerr;
    json_t *man = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!man) {
        test_fail_at(__FILE__, __LINE__, "%s: %s", rel, jerr.text);
        return -1;
    }
    int rc = -1;
    json_t *arch = json_object_get(man, "architecture");
    fm->n_layer = (int)json_integer_value(json_object_get(arch, "n_layer"));
    fm->n_embd = (int)json_integer_value(json_object_get(arch, "n_embd"));
    fm->vocab = (int)json_integer_value(json_object_get(arch, "vocab_size"));
    json_t *layout = json_object_get(man, "state_layout");
    fm->state_floats = (size_t)json_integer_value(json_object_get(layout, "floats_total"));
    json_t *tensors = json_object_get(layout, "tensors");
    fm->n_state_tensors = json_array_size(tensors);
    if (!fm->n_layer || !fm->n_embd || !fm->vocab || !fm->state_floats || !fm->n_state_tensors) {
        test_fail_at(__FILE__, __LINE__, "%s: architecture/state_layout incomplete", rel);
        goto out;
    }
    fm->state_tensors = calloc(fm->n_state_tensors, sizeof *fm->state_tensors);
    for (size_t i = 0; i < fm->n_state_tensors; i++) {
        json_t *t = json_array_get(tensors, i);
        snprintf(fm->state_tensors[i].name, sizeof fm->state_tensors[i].name, "L%d.%s",
                 (int)json_integer_value(json_object_get(t, "layer")),
                 json_string_value(json_object_get(t, "name")));
        fm->state_tensors[i].offset = (size_t)json_integer_value(json_object_get(t, "offset_floats"));
        fm->state_tensors[i].count = (size_t)json_integer_value(json_object_get(t, "count"));
    }
    if (tolerance(man, "logits.f32", &fm->logits_tol, &fm->logits_std) ||
        tolerance(man, "probe_in_logits.f32", &fm->probe_tol, NULL) ||
        tolerance(man, "hidden_at_positions.f32", &fm->hidden_tol, &fm->hidden_std) ||
        tolerance(man, "surprisal.f32", &fm->surprisal_tol, NULL) ||
        tolerance(man, "state_final.f32", &fm->state_tol, NULL))
        goto out;

    size_t n_in = 0;
    unsigned char *in = fixture_read("inputs/gpl-3.first4096.bin", &n_in);
    if (!in)
        goto out;
    fm->n_tokens = n_in;
    fm->tokens = malloc(n_in * sizeof *fm->tokens);
    for (size_t i = 0; i < n_in; i++)
        fm->tokens[i] = in[i];
    free(in);
    size_t V = (size_t)fm->vocab, C = (size_t)fm->n_embd, S = fm->state_floats;
    size_t np = 0;
    fm->hidden_pos = fixture_read((snprintf(rel, sizeof rel, "%s/hidden_positions.i32", dir), rel),
                                  &np);
    fm->n_hidden_pos = np / 4;
    if (!(fm->logits = read_sized(dir, "logits.f32", fm->n_tokens * V * 4)) ||
        !(fm->probe = read_sized(dir, "probe_in_logits.f32", V * 4)) ||
        !(fm->surprisal = read_sized(dir, "surprisal.f32", (fm->n_tokens - 1) * 4)) ||
        !fm->hidden_pos ||
        !(fm->hidden_at = read_sized(dir, "hidden_at_positions.f32", fm->n_hidden_pos * C * 4)) ||
        !(fm->hidden_last = read_sized(dir, "hidden_last.f32", C * 4)) ||
        !(fm->hidden_mean = read_sized(dir, "hidden_mean.f32", C * 4)) ||
        !(fm->state_final = read_sized(dir, "state_final.f32", S * 4)) ||
        !(fm->state_after[0] = read_sized(dir, "state_after_1000.f32", S * 4)) ||
        !(fm->state_after[1] = read_sized(dir, "state_after_2000.f32", S * 4)) ||
        !(fm->state_after[2] = read_sized(dir, "state_after_3000.f32", S * 4)))
        goto out;
    rc = 0;
out:
    json_decref(man);
    return rc;
}

void fixture_model_free(fixture_model *fm)
{
    free(fm->state_tensors);
    free(fm->tokens);
    free(fm->logits);
    free(fm->probe);
    free(fm->surprisal);
    free(fm->hidden_at);
    free(fm->hidden_pos);
    free(fm->hidden_last);
    free(fm->hidden_mean);
    free(fm->state_final);
    for (int i = 0; i < 3; i++)
        free(fm->state_after[i]);
    memset(fm, 0, sizeof *fm);
}

int fixture_check_state(const fixture_model *fm, const float *got, const float *ref,
                        const char *what)
{
    for (size_t i = 0; i < fm->n_state_tensors; i++) {
        const fixture_state_tensor *t = &fm->state_tensors[i];
        double scale = max_abs_f32(ref + t->offset, t->count);
        if (scale < 1)
            scale = 1;
        size_t w;
        double d = max_abs_diff(got + t->offset, ref + t->offset, t->count, &w);
        if (!(d <= fm->state_tol * scale)) {
            test_fail_at(__FILE__, __LINE__,
                         "%s: state tensor %s differs by %.3g at element %zu (got %.9g, "
                         "reference %.9g); bound %.3g",
                         what, t->name, d, w, got[t->offset + w], ref[t->offset + w],
                         fm->state_tol * scale);
            return -1;
        }
    }
    return 0;
}
