/* tensor_file.c — the public face of the checkpoint readers (see
 * tensor_file.h): format detection by content, ownership of the mapping and
 * of the tensor set, lookups.
 *
 * A zip local-header magic "PK\3\4" means a torch.save archive; a u64 header
 * length followed by '{' means safetensors.  Anything else is refused
 * without guessing from the file name.
 */
#include "core/tensor_file.h"

#include <stdlib.h>
#include <string.h>

#include "core/io/mapped_file.h"
#include "core/io/pth_reader.h"
#include "core/io/safetensors_reader.h"
#include "core/io/tensor_set.h"

struct rwkv_tensor_file {
    char *label;
    const char *format;
    rwkv_mapped_file map; /* empty for rwkv_tensor_file_parse */
    rwkv_tensor_set set;
};

size_t rwkv_dtype_size(rwkv_dtype t)
{
    return t == RWKV_F32 ? 4 : t == RWKV_I8 ? 1 : 2;
}

const char *rwkv_dtype_name(rwkv_dtype t)
{
    switch (t) {
    case RWKV_F32:
        return "f32";
    case RWKV_F16:
        return "f16";
    case RWKV_BF16:
        return "bf16";
    case RWKV_I8:
        return "i8";
    }
    return "?";
}

static int parse_into(rwkv_tensor_file *f, const unsigned char *b, size_t len, rwkv_error *err)
{
    rwkv_tensor_set_init(&f->set, f->label, len);
    if (len >= 4 && memcmp(b, "PK\3\4", 4) == 0) {
        f->format = "pth";
        return rwkv_pth_read(f->label, b, len, &f->set, err);
    }
    if (len >= 9 && b[8] == '{') {
        f->format = "safetensors";
        return rwkv_safetensors_read(f->label, b, len, &f->set, err);
    }
    /* torch < 1.6 (or _use_new_zipfile_serialization=False) wrote a bare
     * pickle stream starting with a pickled magic number */
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9};
    if (len >= sizeof legacy && memcmp(b, legacy, sizeof legacy) == 0)
        return rwkv_fail(err, "%s: legacy torch.save format (torch < 1.6, not a zip archive) is "
                              "not supported; re-save it with a current torch or convert it to "
                              "safetensors",
                         f->label);
    if (len >= 4 && memcmp(b, "PK", 2) == 0)
        return rwkv_fail(err, "%s: zip archive does not start with a local file header; not a "
                              "torch.save checkpoint",
                         f->label);
    return rwkv_fail(err, "%s: neither a .pth (zip) nor a .safetensors file (%zu bytes, no "
                          "zip magic, no JSON header at byte 8)",
                     f->label, len);
}

static rwkv_tensor_file *new_file(const char *label, rwkv_error *err)
{
    rwkv_tensor_file *f = calloc(1, sizeof *f);
    if (f)
        f->label = strdup(label ? label : "(unnamed)");
    if (!f || !f->label) {
        free(f);
        rwkv_fail(err, "%s: out of memory", label ? label : "(unnamed)");
        return NULL;
    }
    return f;
}

int rwkv_tensor_file_open(const char *path, rwkv_tensor_file **out, rwkv_error *err)
{
    *out = NULL;
    rwkv_tensor_file *f = new_file(path, err);
    if (!f)
        return -1;
    if (rwkv_mapped_file_open(path, &f->map, err) != 0 ||
        parse_into(f, f->map.data, f->map.len, err) != 0) {
        rwkv_tensor_file_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

int rwkv_tensor_file_parse(const char *label, const void *buf, size_t len,
                           rwkv_tensor_file **out, rwkv_error *err)
{
    *out = NULL;
    rwkv_tensor_file *f = new_file(label, err);
    if (!f)
        return -1;
    if (parse_into(f, buf, len, err) != 0) {
        rwkv_tensor_file_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void rwkv_tensor_file_close(rwkv_tensor_file *f)
{
    if (!f)
        return;
    rwkv_tensor_set_free(&f->set);
    rwkv_mapped_file_close(&f->map);
    free(f->label);
    free(f);
}

const char *rwkv_tensor_file_format(const rwkv_tensor_file *f)
{
    return f->format;
}

const char *rwkv_tensor_file_path(const rwkv_tensor_file *f)
{
    return f->label;
}

size_t rwkv_tensor_file_count(const rwkv_tensor_file *f)
{
    return f->set.count;
}

const rwkv_tensor *rwkv_tensor_file_at(const rwkv_tensor_file *f, size_t i)
{
    return i < f->set.count ? &f->set.tensors[i] : NULL;
}

const rwkv_tensor *rwkv_tensor_file_find(const rwkv_tensor_file *f, const char *name)
{
    return rwkv_tensor_set_find(&f->set, name);
}

const char *rwkv_tensor_file_meta(const rwkv_tensor_file *f, const char *key)
{
    for (size_t i = 0; i < f->set.n_meta; i++)
        if (strcmp(f->set.meta[2 * i], key) == 0)
            return f->set.meta[2 * i + 1];
    return NULL;
}

size_t rwkv_tensor_file_copied_bytes(const rwkv_tensor_file *f)
{
    return f->set.copied_bytes;
}
