/* zip_reader.h — the subset of zip that torch.save writes: one archive of
 * STORED (uncompressed) records, found through the central directory, with
 * zip64 records where sizes or offsets need them.
 *
 * The archive bytes are hostile: every offset and size in the end-of-central-
 * directory record, the zip64 records, each central entry, its zip64 extra
 * field and each local header is checked against the buffer before use; the
 * entry table is sized from the bytes the central directory really occupies.
 * Compressed or encrypted records, multi-disk archives and duplicate names are
 * refused with a message naming the record.  Nothing is copied: entries point
 * into the caller's buffer.
 */
#ifndef RWKV_ZIP_READER_H
#define RWKV_ZIP_READER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct rwkv_zip_entry {
    const char *name;          /* into the central directory; NOT NUL-terminated */
    size_t name_len;
    const unsigned char *data; /* the stored bytes, `size` of them, inside the buffer */
    uint64_t size;
    uint64_t data_offset;      /* byte offset of data in the archive (for messages) */
    uint64_t central_offset;   /* byte offset of its central directory record */
    uint32_t crc;              /* CRC-32 from the central directory */
} rwkv_zip_entry;

typedef struct rwkv_zip {
    const char *label;         /* borrowed; used in every message */
    const unsigned char *buf;
    size_t len;
    rwkv_zip_entry *entries;   /* central-directory order */
    size_t count;
    size_t *sorted;            /* entry indices sorted by name, for lookup */
} rwkv_zip;

/* Reads the directory of the archive in buf[0..len).  Returns 0 and fills *z
 * (free with rwkv_zip_close), or -1 with one line "label: zip: ..." in err and
 * *z left empty.  `label` and buf must outlive *z.  Does not check CRCs. */
int rwkv_zip_open(rwkv_zip *z, const char *label, const void *buf, size_t len, rwkv_error *err);

/* Frees the tables; accepts NULL and an empty struct. */
void rwkv_zip_close(rwkv_zip *z);

/* The entry with exactly this name, or NULL.  O(log n). */
const rwkv_zip_entry *rwkv_zip_find(const rwkv_zip *z, const char *name, size_t name_len);

/* Recomputes the CRC-32 of an entry's bytes: 0 when it matches the central
 * directory, -1 with a message naming the entry otherwise. */
int rwkv_zip_check_crc(const rwkv_zip *z, const rwkv_zip_entry *e, rwkv_error *err);

#endif
