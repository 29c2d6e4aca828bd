/* top.c — see top.h. */
#include "clients/rwkvd-sink/top.h"

#include <stdlib.h>
#include <string.h>

#include "clients/rwkvd-sink/render.h"

typedef struct entry {
    double score, mean;
    uint64_t order;              /* arrival, for a stable tie-break */
    uint64_t seg, byte_start, byte_end, tok_start, tok_end;
    uint8_t *doc;
    size_t doc_len;
    const uint8_t *text;         /* while reading: into the message; kept: in doc's allocation */
    size_t text_len;             /* at most TEXT_MAX kept */
} entry;

#define TEXT_MAX 256

struct seg_top {
    entry *heap;                 /* min-heap by better() */
    size_t n, cap;
    uint64_t seen;
};

/* a ranks above b */
static bool better(const entry *a, const entry *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    if (a->mean != b->mean)
        return a->mean > b->mean;
    return a->order < b->order;
}

seg_top *seg_top_new(size_t n)
{
    seg_top *t = calloc(1, sizeof *t);
    if (!t || !(t->heap = calloc(n, sizeof *t->heap))) {
        free(t);
        return NULL;
    }
    t->cap = n;
    return t;
}

void seg_top_free(seg_top *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->heap[i].doc);
    free(t->heap);
    free(t);
}

static void swap(entry *a, entry *b)
{
    entry x = *a;
    *a = *b;
    *b = x;
}

static void sift_down(seg_top *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && better(&t->heap[m], &t->heap[l]))
            m = l;
        if (r < t->n && better(&t->heap[m], &t->heap[r]))
            m = r;
        if (m == i)
            return;
        swap(&t->heap[i], &t->heap[m]);
        i = m;
    }
}

static void sift_up(seg_top *t, size_t i)
{
    while (i > 0 && better(&t->heap[(i - 1) / 2], &t->heap[i])) {
        swap(&t->heap[i], &t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static bool key_eq(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

static bool as_u64(const msgpack_object *v, uint64_t *out)
{
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = v->via.u64;
    return true;
}

static bool as_f64(const msgpack_object *v, double *out)
{
    if (v->type != MSGPACK_OBJECT_FLOAT32 && v->type != MSGPACK_OBJECT_FLOAT64)
        return false;
    *out = v->via.f64;
    return *out == *out;
}

/* One segment map -> entry (doc not set).  false when it has no score. */
static bool read_segment(const msgpack_object *m, entry *e)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return false;
    int got = 0;
    double sum = 0;
    bool has_sum = false;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (key_eq(k, "seg"))
            got += as_u64(v, &e->seg);
        else if (key_eq(k, "byte_start"))
            got += as_u64(v, &e->byte_start);
        else if (key_eq(k, "byte_end"))
            got += as_u64(v, &e->byte_end);
        else if (key_eq(k, "tok_start"))
            got += as_u64(v, &e->tok_start);
        else if (key_eq(k, "tok_end"))
            got += as_u64(v, &e->tok_end);
        else if (key_eq(k, "score"))
            got += as_f64(v, &e->score);
        else if (key_eq(k, "surprisal_sum"))
            has_sum = as_f64(v, &sum);
        else if (key_eq(k, "text") && v->type == MSGPACK_OBJECT_BIN) {
            e->text = (const uint8_t *)v->via.bin.ptr;
            e->text_len = v->via.bin.size < TEXT_MAX ? v->via.bin.size : TEXT_MAX;
        }
    }
    uint64_t n = e->tok_end > e->tok_start ? e->tok_end - e->tok_start : 0;
    if (n > 1 && e->tok_start == 0)
        n--; /* the document's token 0 has no surprisal */
    e->mean = has_sum && n ? sum / (double)n : 0;
    return got == 6;
}

int seg_top_offer(seg_top *t, const uint8_t *doc, size_t doc_len, const msgpack_object *root)
{
    const msgpack_object *arr = NULL;
    for (uint32_t i = 0; i < root->via.map.size; i++)
        if (key_eq(&root->via.map.ptr[i].key, "segments"))
            arr = &root->via.map.ptr[i].val;
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        entry e;
        memset(&e, 0, sizeof e);
        if (!read_segment(&arr->via.array.ptr[i], &e))
            continue;
        e.order = t->seen++;
        if (t->n == t->cap && !better(&e, &t->heap[0]))
            continue;
        /* the doc id and the text in one allocation */
        e.doc = malloc(doc_len + e.text_len + 1);
        if (!e.doc)
            return -1;
        memcpy(e.doc, doc, doc_len);
        if (e.text_len)
            memcpy(e.doc + doc_len, e.text, e.text_len);
        e.text = e.doc + doc_len;
        e.doc_len = doc_len;
        if (t->n == t->cap) { /* replace the weakest */
            free(t->heap[0].doc);
            t->heap[0] = e;
            sift_down(t, 0);
        } else {
            t->heap[t->n] = e;
            sift_up(t, t->n++);
        }
    }
    return 0;
}

static int by_rank(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

void seg_top_print(const seg_top *t, FILE *f)
{
    entry *v = malloc((t->n ? t->n : 1) * sizeof *v);
    if (!v)
        return;
    memcpy(v, t->heap, t->n * sizeof *v);
    qsort(v, t->n, sizeof *v, by_rank);
    tbuf line = {0};
    for (size_t i = 0; i < t->n; i++) {
        char num[256];
        line.len = 0;
        snprintf(num, sizeof num, "rwkvd-sink: top %zu: score %.6f, mean %.3f nats: doc \"", i + 1,
                 v[i].score, v[i].mean);
        tbuf_puts(&line, num);
        render_printable(&line, v[i].doc, v[i].doc_len, 80);
        snprintf(num, sizeof num, "\" seg %llu bytes [%llu, %llu) tokens [%llu, %llu)",
                 (unsigned long long)v[i].seg, (unsigned long long)v[i].byte_start,
                 (unsigned long long)v[i].byte_end, (unsigned long long)v[i].tok_start,
                 (unsigned long long)v[i].tok_end);
        tbuf_puts(&line, num);
        if (v[i].text_len) {
            tbuf_puts(&line, ": ");
            render_printable(&line, v[i].text, v[i].text_len, 120);
        }
        tbuf_puts(&line, "\n");
        if (!line.oom)
            fputs(line.p, f);
    }
    tbuf_free(&line);
    free(v);
}
