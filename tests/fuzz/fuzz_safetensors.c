/* fuzz_safetensors.c — libFuzzer target for the .safetensors path of
 * rwkv_tensor_file_parse.  On success every tensor's bytes are read so ASan
 * checks that each lies inside the input or an owned copy.  Inputs that
 * would not reach the safetensors reader (zip magic, no '{' at byte 8) are
 * patched so that they do. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    if (size >= 9) {
        in[8] = '{';
        if (in[0] == 'P')
            in[0] = 'Q';
    }
    rwkv_tensor_file *f = NULL;
    rwkv_error err;
    if (rwkv_tensor_file_parse("fuzz.st", in, size, &f, &err) == 0) {
        unsigned acc = 0;
        for (size_t i = 0; i < rwkv_tensor_file_count(f); i++) {
            const rwkv_tensor *t = rwkv_tensor_file_at(f, i);
            const unsigned char *p = t->data;
            size_t n = t->numel * rwkv_dtype_size(t->dtype);
            for (size_t k = 0; k < n; k++)
                acc += p[k];
            if (rwkv_tensor_file_find(f, t->name) != t)
                abort();
        }
        sink = acc;
        rwkv_tensor_file_close(f);
    } else if (f != NULL || strstr(err.msg, "fuzz.st") == NULL) {
        abort();
    }
    free(in);
    return 0;
}
