/* fuzz_pth.c — libFuzzer target for the .pth path (zip + restricted pickle
 * + storage views) of rwkv_tensor_file_parse.  On success every tensor's
 * bytes are read so ASan checks that each lies inside the input or an owned
 * copy.
 *
 * Two helps for the fuzzer: inputs that do not start with the zip magic get
 * it prepended, and when the zip directory parses, every CRC-32 in it is
 * rewritten to match the (mutated) data, so that mutations of data.pkl reach
 * the unpickler instead of dying at the CRC check.  (The CRC check itself is
 * covered by tests/test_pth_hostile.c.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/tensor_file.h"
#include "core/io/zip_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void touch_all(const rwkv_tensor_file *f)
{
    unsigned acc = 0;
    for (size_t i = 0; i < rwkv_tensor_file_count(f); i++) {
        const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
        const unsigned char *p = t->data;
        size_t n = t->numel * rwkv_dtype_size(t->dtype);
        for (size_t k = 0; k < n; k++)
            acc += p[k];
        acc += (unsigned)strlen(t->name);
        if (rwkv_tensor_file_find(f, t->name) != t)
            abort();
    }
    sink = acc;
}

static void fix_crcs(uint8_t *buf, size_t size)
{
    rwkv_zip z;
    if (rwkv_zip_open(&z, "fuzz", buf, size, NULL) != 0)
        return;
    for (size_t i = 0; i < z.count; i++) {
        const rwkv_zip_entry *e = &z.entries[i];
        uint32_t c = rwkv_crc32(0, e->data, (size_t)e->size);
        uint8_t *p = buf + e->central_offset + 16;
        for (int k = 0; k < 4; k++)
            p[k] = (uint8_t)(c >> (8 * k));
    }
    rwkv_zip_close(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int add = size < 4 || memcmp(data, "PK\3\4", 4) != 0;
    uint8_t *in = malloc(size + 4);
    if (!in)
        return 0;
    if (add)
        memcpy(in, "PK\3\4", 4);
    if (size)
        memcpy(in + (add ? 4 : 0), data, size);
    size += add ? 4 : 0;
    fix_crcs(in, size);
    rwkv_tensor_file *f = NULL;
    rwkv_error err;
    if (rwkv_tensor_file_parse("fuzz.pth", in, size, &f, &err) == 0) {
        touch_all(f);
        rwkv_tensor_file_close(f);
    } else if (f != NULL || strstr(err.msg, "fuzz.pth") == NULL) {
        abort(); /* failure must leave no object and name the input */
    }
    free(in);
    return 0;
}
