/* input.h — the document as numbered chunks: chunk k is bytes
 * [k*size, (k+1)*size) of the input, the last one shorter (or empty for an
 * empty input).  This fixed mapping from seq to bytes is what lets a re-run
 * continue exactly where the daemon stopped (PROTOCOL.md §8.2).
 *
 * Two kinds of input behind one interface:
 *   - a regular file (also stdin redirected from one): read with pread at
 *     k*size, so any chunk can be read again (needed when the daemon
 *     restarts mid-send and the sender rewinds); its size is known up front;
 *   - a stream (pipe, terminal, socket): read forward only.  Skipping to a
 *     chunk reads and discards the bytes before it; whether a chunk is the
 *     last is learned by reading one byte ahead, so the eof flag goes on the
 *     message that carries the final bytes.
 * Not thread safe.
 */
#ifndef RWKVD_SEND_INPUT_H
#define RWKVD_SEND_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct send_input send_input;

/* Opens path ("-" = stdin, not closed at the end) for chunks of chunk_size
 * bytes.  NULL with err naming the path on failure. */
send_input *input_open(const char *path, size_t chunk_size, rwkv_error *err);
/* Closes the file and frees the buffer; accepts NULL. */
void input_close(send_input *in);

/* True when chunks can be read in any order (a regular file). */
bool input_seekable(const send_input *in);
/* Total size in bytes, or -1 for a stream. */
int64_t input_size(const send_input *in);

/* Positions the input so that the next input_read returns chunk `seq`.
 * A stream can only move forward (it reads and discards).  -1 with err when
 * the input ends before byte seq*chunk_size, or on a read error. */
int input_seek(send_input *in, uint64_t seq, rwkv_error *err);

/* Reads the current chunk: *data points into the input's own buffer (valid
 * until the next call), *len bytes, *last true when no byte follows it.
 * Advances to the next chunk.  -1 with err on a read error, or when a
 * regular file changed size while it was being read. */
int input_read(send_input *in, const uint8_t **data, size_t *len, bool *last, rwkv_error *err);

#endif
