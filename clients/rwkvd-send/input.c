/* input.c — numbered fixed-size chunks of a file or a stream (see input.h). */
#include "clients/rwkvd-send/input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct send_input {
    int fd;
    bool own_fd;
    bool regular;
    int64_t size;       /* regular files */
    const char *label;  /* for messages: the path, or "stdin" */
    size_t chunk;
    uint8_t *buf;       /* chunk bytes + 1 look-ahead byte */
    uint64_t seq;       /* chunk the next input_read returns */
    bool have_ahead;    /* streams: buf[chunk] holds the first byte of `seq` */
    bool stream_end;    /* streams: end of input seen */
};

send_input *input_open(const char *path, size_t chunk_size, rwkv_error *err)
{
    send_input *in = calloc(1, sizeof *in);
    if (!in || !(in->buf = malloc(chunk_size + 1))) {
        free(in);
        rwkv_fail(err, "out of memory for a chunk of %zu bytes", chunk_size);
        return NULL;
    }
    in->chunk = chunk_size;
    if (strcmp(path, "-") == 0) {
        in->fd = STDIN_FILENO;
        in->label = "stdin";
    } else {
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        in->own_fd = true;
        in->label = path;
        if (in->fd < 0) {
            rwkv_fail(err, "%s: %s", path, strerror(errno));
            input_close(in);
            return NULL;
        }
    }
    struct stat st;
    if (fstat(in->fd, &st) != 0) {
        rwkv_fail(err, "%s: %s", in->label, strerror(errno));
        input_close(in);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        rwkv_fail(err, "%s: is a directory", in->label);
        input_close(in);
        return NULL;
    }
    in->regular = S_ISREG(st.st_mode);
    in->size = in->regular ? (int64_t)st.st_size : -1;
    return in;
}

void input_close(send_input *in)
{
    if (!in)
        return;
    if (in->own_fd && in->fd >= 0)
        close(in->fd);
    free(in->buf);
    free(in);
}

bool input_seekable(const send_input *in) { return in->regular; }
int64_t input_size(const send_input *in) { return in->size; }

/* Reads up to n bytes (fewer only at the end of the input). */
static int read_full(send_input *in, uint8_t *p, size_t n, size_t *got, rwkv_error *err)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(in->fd, p + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return rwkv_fail(err, "%s: read: %s", in->label, strerror(errno));
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int input_seek(send_input *in, uint64_t seq, rwkv_error *err)
{
    if (seq > UINT64_MAX / in->chunk)
        return rwkv_fail(err, "%s: chunk %llu is beyond any input", in->label,
                         (unsigned long long)seq);
    uint64_t off = seq * in->chunk;
    if (in->regular) {
        if (off > (uint64_t)in->size)
            return rwkv_fail(err, "%s: %lld bytes, but the daemon already has %llu chunks of %zu "
                             "bytes (%llu bytes): a different file or --chunk-size?",
                             in->label, (long long)in->size, (unsigned long long)seq, in->chunk,
                             (unsigned long long)off);
        in->seq = seq;
        return 0;
    }
    if (seq < in->seq)
        return rwkv_fail(err, "%s: cannot go back to chunk %llu of a stream", in->label,
                         (unsigned long long)seq);
    /* Discard whole chunks up to `seq`, looking one byte ahead after each. */
    while (in->seq < seq) {
        size_t got = 0;
        uint8_t *p = in->buf;
        size_t want = in->chunk;
        if (in->have_ahead) {
            p++;
            want--;
            got = 1;
        }
        size_t more;
        if (in->stream_end)
            more = 0;
        else if (read_full(in, p, want, &more, err) != 0)
            return -1;
        got += more;
        in->have_ahead = false;
        if (got < in->chunk)
            return rwkv_fail(err, "%s: ended after %llu bytes, but the daemon already has %llu "
                             "chunks of %zu bytes: a different input or --chunk-size?",
                             in->label, (unsigned long long)(in->seq * in->chunk + got),
                             (unsigned long long)seq, in->chunk);
        in->seq++;
    }
    return 0;
}

int input_read(send_input *in, const uint8_t **data, size_t *len, bool *last, rwkv_error *err)
{
    if (in->regular) {
        uint64_t off = in->seq * in->chunk;
        uint64_t size = (uint64_t)in->size;
        size_t n = off >= size ? 0 : (size - off < in->chunk ? (size_t)(size - off) : in->chunk);
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(in->fd, in->buf + got, n - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return rwkv_fail(err, "%s: read at byte %llu: %s", in->label,
                                 (unsigned long long)(off + got), strerror(errno));
            if (r == 0)
                return rwkv_fail(err, "%s: shrank while it was being sent (ended at byte %llu "
                                 "of %lld)", in->label, (unsigned long long)(off + got),
                                 (long long)in->size);
            got += (size_t)r;
        }
        *data = in->buf;
        *len = n;
        *last = off + n >= size;
        in->seq++;
        return 0;
    }
    size_t got = 0;
    if (in->have_ahead) {
        in->buf[0] = in->buf[in->chunk];
        got = 1;
        in->have_ahead = false;
    }
    if (!in->stream_end) {
        size_t more;
        if (read_full(in, in->buf + got, in->chunk - got, &more, err) != 0)
            return -1;
        got += more;
        if (got < in->chunk)
            in->stream_end = true;
    }
    /* One byte of look-ahead decides whether this chunk is the last. */
    if (!in->stream_end) {
        size_t one;
        if (read_full(in, in->buf + in->chunk, 1, &one, err) != 0)
            return -1;
        if (one == 1)
            in->have_ahead = true;
        else
            in->stream_end = true;
    }
    *data = in->buf;
    *len = got;
    *last = !in->have_ahead;
    in->seq++;
    return 0;
}
