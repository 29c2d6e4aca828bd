/* test_doc_containers.c — the daemon's containers alone: the document
 * table (daemon/doc_table.h: hash by id + LRU) and the ready FIFO
 * (daemon/ready_fifo.h), against simple models of what they must hold
 * (arrays searched by brute force) over long random operation sequences:
 * lookups by id bytes (colliding hashes included), growth, removal, the
 * LRU order after touches, FIFO order across ring wrap-around and
 * removal from the middle, and at most one entry per session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/doc_table.h"
#include "daemon/ready_fifo.h"
#include "daemon/session.h"
#include "tests/testutil.h"

#define N 600

static rwkvd_session *new_session(int i, uint64_t *seed)
{
    rwkvd_session *s = calloc(1, sizeof *s);
    /* ids of varied length, many sharing a prefix; id 0 is empty */
    int len = i == 0 ? 0 : snprintf((char *)s->doc, sizeof s->doc, "doc-%d-%llu", i,
                                    (unsigned long long)(test_rand(seed) % 3));
    s->doc_len = (size_t)len;
    s->hash = rwkvd_doc_hash(s->doc, s->doc_len);
    return s;
}

/* The LRU list both ways equals model[0..n) (most recent first). */
static int lru_matches(const rwkvd_doc_table *t, rwkvd_session **model, size_t n)
{
    size_t k = 0;
    for (rwkvd_session *s = t->lru_head; s; s = s->lnext, k++)
        if (k >= n || s != model[k])
            return 0;
    if (k != n)
        return 0;
    for (rwkvd_session *s = t->lru_tail; s; s = s->lprev)
        if (k == 0 || s != model[--k])
            return 0;
    return k == 0;
}

static void move_front(rwkvd_session **model, size_t n, rwkvd_session *s)
{
    size_t i = 0;
    while (i < n && model[i] != s)
        i++;
    memmove(model + 1, model, i * sizeof *model);
    model[0] = s;
}

static void test_table_against_model(void)
{
    uint64_t seed = 3;
    rwkvd_doc_table t = {0};
    rwkvd_session *all[N], *lru[N];
    int in[N] = {0};
    size_t n_in = 0;
    rwkv_error err;
    for (int i = 0; i < N; i++)
        all[i] = new_session(i, &seed);
    for (int step = 0; step < 20000 && !test_current_failed; step++) {
        int i = (int)(test_rand(&seed) % N);
        int op = (int)(test_rand(&seed) % 4);
        rwkvd_session *s = all[i];
        if (op == 0 && !in[i]) {
            CHECK(rwkvd_doc_table_insert(&t, s, &err) == 0);
            memmove(lru + 1, lru, n_in * sizeof *lru);
            lru[0] = s;
            in[i] = 1, n_in++;
        } else if (op == 1 && in[i]) {
            rwkvd_doc_table_remove(&t, s);
            size_t k = 0;
            while (lru[k] != s)
                k++;
            memmove(lru + k, lru + k + 1, (n_in - k - 1) * sizeof *lru);
            in[i] = 0, n_in--;
        } else if (op == 2 && in[i]) {
            rwkvd_doc_table_touch(&t, s);
            move_front(lru, n_in, s);
        }
        /* every lookup by bytes (a fresh copy of the id) agrees */
        int j = (int)(test_rand(&seed) % N);
        uint8_t id[RWKVD_DOC_MAX];
        memcpy(id, all[j]->doc, all[j]->doc_len);
        CHECKF(rwkvd_doc_table_find(&t, id, all[j]->doc_len) == (in[j] ? all[j] : NULL),
               "step %d: find of doc %d (in: %d)", step, j, in[j]);
        CHECK(t.count == n_in);
        if (step % 97 == 0)
            CHECKF(lru_matches(&t, lru, n_in), "step %d: LRU order", step);
    }
    CHECK(lru_matches(&t, lru, n_in));
    rwkvd_doc_table_free(&t);
    for (int i = 0; i < N; i++)
        free(all[i]);
}

/* Same hash, different ids: the bytes decide. */
static void test_table_hash_collisions(void)
{
    uint64_t seed = 1;
    rwkvd_doc_table t = {0};
    rwkvd_session *s[8];
    rwkv_error err;
    for (int i = 0; i < 8; i++) {
        s[i] = new_session(i + 1, &seed);
        s[i]->hash = 42; /* forced collision */
        CHECK(rwkvd_doc_table_insert(&t, s[i], &err) == 0);
    }
    /* lookups hash the bytes, so build the colliding table's view directly */
    for (int i = 0; i < 8; i++) {
        rwkvd_session *found = NULL;
        for (rwkvd_session *x = t.buckets[42 & (t.n_buckets - 1)]; x; x = x->hnext)
            if (x->doc_len == s[i]->doc_len && !memcmp(x->doc, s[i]->doc, x->doc_len))
                found = x;
        CHECK(found == s[i]);
    }
    rwkvd_doc_table_remove(&t, s[3]);
    int chain = 0;
    for (rwkvd_session *x = t.buckets[42 & (t.n_buckets - 1)]; x; x = x->hnext)
        chain += x == s[3] ? 100 : 1;
    CHECK(chain == 7 && t.count == 7);
    rwkvd_doc_table_free(&t);
    for (int i = 0; i < 8; i++)
        free(s[i]);
}

static void test_fifo_against_model(void)
{
    uint64_t seed = 5;
    rwkvd_ready_fifo f = {0};
    rwkvd_session *all[N], *model[N];
    size_t n_model = 0;
    for (int i = 0; i < N; i++)
        all[i] = calloc(1, sizeof(rwkvd_session));
    for (int step = 0; step < 30000 && !test_current_failed; step++) {
        int op = (int)(test_rand(&seed) % 5);
        rwkvd_session *s = all[test_rand(&seed) % N];
        if (op <= 1) { /* push (twice as likely: the ring grows and wraps) */
            int was = s->queued;
            CHECK(rwkvd_ready_fifo_push(&f, s) == 0 && s->queued);
            if (!was)
                model[n_model++] = s;
        } else if (op == 2) {
            rwkvd_session *p = rwkvd_ready_fifo_pop(&f);
            CHECKF(p == (n_model ? model[0] : NULL), "step %d: pop", step);
            if (p) {
                CHECK(!p->queued);
                memmove(model, model + 1, --n_model * sizeof *model);
            }
        } else if (op == 3) {
            int was = s->queued;
            rwkvd_ready_fifo_remove(&f, s);
            CHECK(!s->queued);
            if (was) {
                size_t k = 0;
                while (model[k] != s)
                    k++;
                memmove(model + k, model + k + 1, (n_model - k - 1) * sizeof *model);
                n_model--;
            }
        }
        CHECK(f.len == n_model);
    }
    /* drain: exactly the model's order */
    for (size_t k = 0; k < n_model; k++)
        CHECK(rwkvd_ready_fifo_pop(&f) == model[k]);
    CHECK(rwkvd_ready_fifo_pop(&f) == NULL);
    rwkvd_ready_fifo_free(&f);
    for (int i = 0; i < N; i++)
        free(all[i]);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_table_against_model);
    RUN(test_table_hash_collisions);
    RUN(test_fifo_against_model);
    return test_summary();
}
