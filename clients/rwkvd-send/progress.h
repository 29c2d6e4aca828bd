/* progress.h — rwkvd-send's one-line progress display on a terminal:
 * bytes handed to ZeroMQ out of the total, the document's tokens as the
 * daemon reports them (`resume`), the token rate over the last ~10 s, and
 * an ETA.  The line is redrawn in place ("\r", erase to end of line) at most
 * a few times a second.  Pure formatting plus a small ring of samples; the
 * caller decides whether stderr is a terminal.  Not thread safe.
 */
#ifndef RWKVD_SEND_PROGRESS_H
#define RWKVD_SEND_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_SAMPLES 32

typedef struct progress {
    FILE *to;                    /* NULL: display off (every call is a no-op) */
    const char *label;           /* the document id as printed */
    int64_t total;               /* input bytes, -1 unknown (stream) */
    double last_draw;            /* time of the last redraw */
    bool drawn;                  /* a line is on screen */
    /* (time, tokens, bytes processed) samples for the rates */
    double t[PROGRESS_SAMPLES];
    uint64_t tok[PROGRESS_SAMPLES];
    uint64_t done[PROGRESS_SAMPLES];
    size_t n, head;
} progress;

/* to = NULL disables the display.  label is borrowed. */
void progress_init(progress *p, FILE *to, const char *label, int64_t total);

/* Records what the daemon reported at time `now` (seconds, monotonic):
 * tokens of the document, bytes it has processed (next_seq * chunk). */
void progress_sample(progress *p, double now, uint64_t tokens, uint64_t bytes_done);

/* Redraws the line when `force` or when 0.25 s have passed since the last
 * redraw.  `sent` is the number of bytes handed to ZeroMQ so far. */
void progress_draw(progress *p, double now, uint64_t sent, bool force);

/* Ends the line (newline) if one is on screen; call before printing
 * anything else on the terminal. */
void progress_clear(progress *p);

/* Formats n bytes as "12.3 MiB" into buf (cap >= 16).  Exposed for the
 * final summary. */
void progress_bytes(char *buf, size_t cap, uint64_t n);

#endif
