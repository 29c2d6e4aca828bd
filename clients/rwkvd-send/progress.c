/* progress.c — the terminal progress line of rwkvd-send (see progress.h). */
#include "clients/rwkvd-send/progress.h"

#include <string.h>

/* The rate is measured over the samples of the last RATE_WINDOW seconds. */
#define RATE_WINDOW 10.0

void progress_init(progress *p, FILE *to, const char *label, int64_t total)
{
    memset(p, 0, sizeof *p);
    p->to = to;
    p->label = label;
    p->total = total;
    p->last_draw = -1e9;
}

void progress_sample(progress *p, double now, uint64_t tokens, uint64_t bytes_done)
{
    size_t i;
    if (p->n == PROGRESS_SAMPLES) { /* full: the newest replaces the oldest */
        i = p->head;
        p->head = (p->head + 1) % PROGRESS_SAMPLES;
    } else {
        i = (p->head + p->n) % PROGRESS_SAMPLES;
        p->n++;
    }
    p->t[i] = now;
    p->tok[i] = tokens;
    p->done[i] = bytes_done;
    /* Forget samples older than the window, keeping at least two. */
    while (p->n > 2 && now - p->t[p->head] > RATE_WINDOW) {
        p->head = (p->head + 1) % PROGRESS_SAMPLES;
        p->n--;
    }
}

void progress_bytes(char *buf, size_t cap, uint64_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

static void duration(char *buf, size_t cap, double s)
{
    if (s < 0 || s > 1e8) {
        snprintf(buf, cap, "?");
        return;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%luh%02lum", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%lum%02lus", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lus", t);
}

void progress_draw(progress *p, double now, uint64_t sent, bool force)
{
    if (!p->to || (!force && now - p->last_draw < 0.25))
        return;
    p->last_draw = now;
    char sent_s[32], total_s[32], line[256];
    progress_bytes(sent_s, sizeof sent_s, sent);
    int w;
    if (p->total >= 0) {
        progress_bytes(total_s, sizeof total_s, (uint64_t)p->total);
        double pct = p->total > 0 ? 100.0 * (double)sent / (double)p->total : 100.0;
        w = snprintf(line, sizeof line, "%s: %s / %s sent (%.0f%%)", p->label, sent_s, total_s,
                     pct);
    } else {
        w = snprintf(line, sizeof line, "%s: %s sent", p->label, sent_s);
    }
    if (p->n > 0 && w > 0 && (size_t)w < sizeof line) {
        size_t last = (p->head + p->n - 1) % PROGRESS_SAMPLES;
        size_t first = p->head;
        double dt = p->t[last] - p->t[first];
        uint64_t tok = p->tok[last];
        double rate = dt > 0 && tok >= p->tok[first] ? (double)(tok - p->tok[first]) / dt : 0.0;
        w += snprintf(line + w, sizeof line - (size_t)w, ", %llu tokens, %.0f tok/s",
                      (unsigned long long)tok, rate);
        /* ETA: tokens still to come (extrapolated from tokens per byte so
         * far) over the current token rate. */
        uint64_t done = p->done[last];
        if (p->total >= 0 && done > 0 && rate > 0 && (size_t)w < sizeof line) {
            double left = (double)p->total - (double)done;
            if (left < 0)
                left = 0;
            double eta = left * ((double)tok / (double)done) / rate;
            char eta_s[32];
            duration(eta_s, sizeof eta_s, eta);
            snprintf(line + w, sizeof line - (size_t)w, ", ETA %s", eta_s);
        }
    }
    fprintf(p->to, "\r%s\033[K", line);
    fflush(p->to);
    p->drawn = true;
}

void progress_clear(progress *p)
{
    if (p->to && p->drawn) {
        fputc('\n', p->to);
        fflush(p->to);
        p->drawn = false;
    }
}
