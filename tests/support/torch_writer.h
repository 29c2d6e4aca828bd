/* torch_writer.h — test-only builders of torch.save-like archives: a byte
 * buffer, pickle opcode emitters, a stored-entry zip writer (optionally with
 * torch's 64-byte data alignment and zip64 end records), and a one-call
 * "state dict -> .pth bytes" helper.  The tests use them to make valid files
 * and, by changing one thing at a time, hostile ones.
 */
#ifndef RWKV_TEST_TORCH_WRITER_H
#define RWKV_TEST_TORCH_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ bytes */
typedef struct tw_buf {
    unsigned char *p;
    size_t n, cap;
} tw_buf;

void tw_put(tw_buf *b, const void *p, size_t n);
void tw_u8(tw_buf *b, unsigned v);
void tw_u16(tw_buf *b, unsigned v);
void tw_u32(tw_buf *b, uint32_t v);
void tw_u64(tw_buf *b, uint64_t v);
void tw_free(tw_buf *b);

/* ------------------------------------------------------------ pickle */
void pk_op(tw_buf *b, unsigned char op);            /* one raw opcode byte */
void pk_proto(tw_buf *b, int v);                    /* PROTO v */
void pk_global(tw_buf *b, const char *mod, const char *name); /* GLOBAL */
void pk_str(tw_buf *b, const char *s);              /* BINUNICODE */
void pk_int(tw_buf *b, int64_t v);                  /* BININT1/2, BININT or LONG1 */
void pk_put(tw_buf *b, uint32_t idx);               /* BINPUT / LONG_BINPUT */
void pk_get(tw_buf *b, uint32_t idx);               /* BINGET / LONG_BINGET */

typedef struct tw_tensor {
    const char *name;
    const char *storage_class; /* "FloatStorage", "HalfStorage", "BFloat16Storage", ... */
    const char *key;           /* storage key */
    int64_t storage_numel;
    int64_t offset;
    int ndim;
    int64_t shape[9];
    int64_t stride[9];         /* all 0: row-major contiguous is written */
    int parameter;             /* wrap in torch._utils._rebuild_parameter */
} tw_tensor;

/* The pickle torch.save writes for an OrderedDict of these tensors: globals
 * memoized and reused by BINGET as torch does, SETITEMS, then BUILD with a
 * {'_metadata': {}} state. */
void pk_state_dict(tw_buf *b, const tw_tensor *t, size_t n);

/* ------------------------------------------------------------ zip */
typedef struct tw_entry {
    const char *name;
    const void *data;
    size_t len;
    int method;       /* compression method written (data stays raw); 0 = stored */
    int bad_crc;      /* write a wrong CRC */
} tw_entry;

typedef struct tw_zip_opts {
    int zip64;        /* zip64 end record + locator, as torch writes */
    int align;        /* pad local extra fields so data starts at a multiple of 64 */
    int zip64_extra;  /* sizes/offsets as 0xFFFFFFFF + zip64 extra field per entry */
} tw_zip_opts;

void tw_zip(tw_buf *out, const tw_entry *e, size_t n, const tw_zip_opts *o);

typedef struct tw_storage {
    const char *key;
    const void *data;
    size_t len;
} tw_storage;

/* A whole .pth: <prefix>/data.pkl, <prefix>/data/<key>..., <prefix>/version. */
void tw_pth(tw_buf *out, const char *prefix, const tw_buf *pickle, const tw_storage *s,
            size_t ns, const tw_zip_opts *o);

/* ------------------------------------------------------------ numbers */
uint16_t tw_f32_to_bf16(float f); /* truncation; tests use exactly representable values */
float tw_bf16_to_f32(uint16_t h);
float tw_f16_to_f32(uint16_t h);

#endif
