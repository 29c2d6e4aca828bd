/* pth_reader.c — glue between the zip directory, the restricted unpickler
 * and the tensor set for torch.save archives (see pth_reader.h).
 *
 * torch.save puts every record under one top-level directory whose name is
 * arbitrary (the file stem, "archive", "no_rosa5", ...), so the archive is
 * located by its single "<dir>/data.pkl".  Storages are the records
 * "<dir>/data/<key>"; several tensors may view one storage, which is checked
 * (size, CRC) once and must be referenced with one dtype throughout.
 */
#include "core/io/pth_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quote.h"
#include "core/io/torch_pickle.h"
#include "core/io/zip_reader.h"

/* Per zip entry: which dtype the first tensor used it with. */
enum { UNSEEN = -1 };

static int find_pickle(const rwkv_zip *z, const rwkv_zip_entry **pkl, rwkv_error *err)
{
    static const char suffix[] = "data.pkl";
    const size_t sl = sizeof suffix - 1;
    *pkl = NULL;
    for (size_t i = 0; i < z->count; i++) {
        const rwkv_zip_entry *e = &z->entries[i];
        if (e->name_len < sl || memcmp(e->name + e->name_len - sl, suffix, sl) != 0)
            continue;
        const char *slash = memchr(e->name, '/', e->name_len);
        /* "data.pkl" or "<dir>/data.pkl" with no further '/' */
        if (e->name_len != sl && (!slash || slash != e->name + e->name_len - sl - 1))
            continue;
        if (*pkl) {
            rwkv_quoted a, b;
            return rwkv_fail(err, "%s: two pickles in one archive ('%s' and '%s')", z->label,
                             rwkv_quote(&a, (*pkl)->name, (*pkl)->name_len),
                             rwkv_quote(&b, e->name, e->name_len));
        }
        *pkl = e;
    }
    if (!*pkl)
        return rwkv_fail(err, "%s: zip archive has no <dir>/data.pkl record; not a torch.save "
                              "checkpoint",
                         z->label);
    return 0;
}

/* Looks up "<prefix><mid><tail>" in the archive. */
static const rwkv_zip_entry *find3(const rwkv_zip *z, const char *prefix, size_t pl,
                                   const char *mid, const char *tail, size_t tl)
{
    char name[1024];
    size_t ml = strlen(mid);
    if (pl + ml + tl > sizeof name)
        return NULL;
    memcpy(name, prefix, pl);
    memcpy(name + pl, mid, ml);
    memcpy(name + pl + ml, tail, tl);
    return rwkv_zip_find(z, name, pl + ml + tl);
}

static int add_tensor(const rwkv_zip *z, const char *prefix, size_t pl, const char *pkl_label,
                      const rwkv_pickle_tensor *t, signed char *seen, rwkv_tensor_set *s,
                      rwkv_error *err)
{
    rwkv_quoted qn, qk;
    rwkv_quote(&qn, t->name, t->name_len);
    rwkv_quote(&qk, t->key, t->key_len);
    const rwkv_zip_entry *e = find3(z, prefix, pl, "data/", t->key, t->key_len);
    if (!e)
        return rwkv_fail(err, "%s byte %zu: tensor '%s': storage '%s' has no record %.*sdata/%s",
                         pkl_label, t->pickle_offset, qn.s, qk.s, (int)pl, prefix, qk.s);
    size_t esz = rwkv_dtype_size(t->dtype), idx = (size_t)(e - z->entries);
    if (t->storage_numel > e->size / esz || t->storage_numel * esz != e->size)
        return rwkv_fail(err,
                         "%s byte %zu: tensor '%s': storage '%s' declares %llu %s elements but "
                         "its record holds %llu bytes",
                         pkl_label, t->pickle_offset, qn.s, qk.s,
                         (unsigned long long)t->storage_numel, rwkv_dtype_name(t->dtype),
                         (unsigned long long)e->size);
    if (seen[idx] == UNSEEN) {
        if (rwkv_zip_check_crc(z, e, err) != 0)
            return -1;
        seen[idx] = (signed char)t->dtype;
    } else if (seen[idx] != (signed char)t->dtype) {
        return rwkv_fail(err, "%s byte %zu: tensor '%s': storage '%s' is used with two dtypes",
                         pkl_label, t->pickle_offset, qn.s, qk.s);
    }
    size_t numel;
    char what[RWKV_ERROR_MAX];
    if (snprintf(what, sizeof what, "%s byte %zu: tensor '%s'", pkl_label, t->pickle_offset, qn.s) < 0)
        what[0] = '\0';
    if (rwkv_shape_numel(t->ndim, t->shape, &numel, what, err) != 0)
        return -1;
    if (t->offset > t->storage_numel || numel > t->storage_numel - t->offset)
        return rwkv_fail(err,
                         "%s: %zu elements at storage offset %llu do not fit in storage '%s' of "
                         "%llu elements",
                         what, numel, (unsigned long long)t->offset, qk.s,
                         (unsigned long long)t->storage_numel);
    size_t avail = (size_t)(t->storage_numel - t->offset) * esz;
    return rwkv_tensor_set_add(s, t->name, t->name_len, t->dtype, t->ndim, t->shape, t->stride,
                               e->data + t->offset * esz, avail, err);
}

static int check_byteorder(const rwkv_zip *z, const char *prefix, size_t pl, rwkv_error *err)
{
    const rwkv_zip_entry *bo = find3(z, prefix, pl, "byteorder", "", 0);
    if (!bo)
        return 0; /* torch < 2.1 wrote no byteorder record: always little-endian */
    if (bo->size == 6 && memcmp(bo->data, "little", 6) == 0)
        return 0;
    rwkv_quoted q;
    return rwkv_fail(err, "%s: byteorder record says '%s'; only little-endian checkpoints are "
                          "supported",
                     z->label, rwkv_quote(&q, bo->data, (size_t)bo->size));
}

int rwkv_pth_read(const char *label, const void *buf, size_t len, rwkv_tensor_set *s,
                  rwkv_error *err)
{
    rwkv_zip z;
    if (rwkv_zip_open(&z, label, buf, len, err) != 0)
        return -1;
    rwkv_pickle_result pr = {0};
    signed char *seen = NULL;
    int rc = -1;
    const rwkv_zip_entry *pkl;
    if (find_pickle(&z, &pkl, err) != 0)
        goto out;
    const char *prefix = pkl->name;
    size_t pl = pkl->name_len - (sizeof "data.pkl" - 1);
    if (check_byteorder(&z, prefix, pl, err) != 0 || rwkv_zip_check_crc(&z, pkl, err) != 0)
        goto out;
    rwkv_quoted qp;
    char pkl_label[RWKV_ERROR_MAX];
    if (snprintf(pkl_label, sizeof pkl_label, "%s: %s", label,
                 rwkv_quote(&qp, pkl->name, pkl->name_len)) < 0)
        pkl_label[0] = '\0';
    if (rwkv_torch_pickle_load(pkl_label, pkl->data, (size_t)pkl->size, &pr, err) != 0)
        goto out;
    seen = malloc(z.count ? z.count : 1);
    if (!seen) {
        rwkv_fail(err, "%s: out of memory", label);
        goto out;
    }
    memset(seen, UNSEEN, z.count ? z.count : 1);
    for (size_t i = 0; i < pr.count; i++)
        if (add_tensor(&z, prefix, pl, pkl_label, &pr.tensors[i], seen, s, err) != 0)
            goto out;
    rc = 0;
out:
    free(seen);
    rwkv_pickle_result_free(&pr);
    rwkv_zip_close(&z);
    return rc;
}
