/* test_cluster_fence.c — the fencing token in checkpoints (PROTOCOL.md
 * §12.6, daemon/checkpoint.h format v2): a checkpoint written under a lease
 * carries the lease revision; without one the file is format v1 exactly as
 * before; and in a state directory the generation with the higher token
 * wins, so a worker that lost its lease and still wrote (rotating the new
 * owner's file to .prev) is never continued from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32.h"
#include "daemon/checkpoint.h"
#include "daemon/ckpt_store.h"
#include "tests/testutil.h"

#define C 8
#define V 16
#define S 64

static rwkvd_model_id model;
static float state[S];

static void make_ckpt(rwkvd_ckpt *ck, const char *doc, uint64_t next_seq, uint64_t fence)
{
    memset(&model, 0, sizeof model);
    memset(model.model_sha256, 0xAB, 32);
    model.generation = 70;
    model.n_layer = 1;
    model.n_embd = C;
    model.vocab = V;
    model.state_floats = S;
    for (int i = 0; i < S; i++)
        state[i] = (float)(i + (int)next_seq) / 7.0f;
    memset(ck, 0, sizeof *ck);
    ck->model = model;
    ck->doc_len = strlen(doc);
    memcpy(ck->doc, doc, ck->doc_len);
    ck->next_seq = next_seq;
    ck->block_size = 256;
    ck->input = RWKVD_INPUT_TOKENS;
    rwkvd_doc_opts_default(&ck->opts);
    ck->state = state;
    ck->fence = fence;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_formats(void)
{
    rwkvd_ckpt ck, back;
    uint8_t *b = NULL;
    size_t n = 0;
    rwkv_error err;
    rwkvd_ckpt_status st;
    /* no token: v1, 204 + doc_len header */
    make_ckpt(&ck, "doc", 3, 0);
    CHECK(rwkvd_ckpt_encode(&ck, 1, &b, &n, &err) == 0);
    CHECK(get32(b + 8) == 1 && get32(b + 12) == 204 + 3);
    CHECK(rwkvd_ckpt_decode("v1", b, n, &model, 0, &back, &st, &err) == 0 && back.fence == 0);
    rwkvd_ckpt_release(&back);
    free(b);
    /* a token: v2, 212 + doc_len, read back */
    make_ckpt(&ck, "doc", 3, UINT64_C(0x1122334455667788));
    CHECK(rwkvd_ckpt_encode(&ck, 1, &b, &n, &err) == 0);
    CHECK(get32(b + 8) == 2 && get32(b + 12) == 212 + 3);
    CHECKF(rwkvd_ckpt_decode("v2", b, n, &model, 0, &back, &st, &err) == 0, "%s", err.msg);
    CHECK(back.fence == UINT64_C(0x1122334455667788) && back.next_seq == 3 &&
          back.doc_len == 3 && memcmp(back.doc, "doc", 3) == 0);
    rwkvd_ckpt_release(&back);
    rwkvd_ckpt_info info;
    CHECK(rwkvd_ckpt_read_header("v2", b, n, NULL, &info, &st, &err) == 0);
    CHECK(info.fence == UINT64_C(0x1122334455667788) && info.header_size == 215);
    /* every cut of a v2 file is refused, never read past its end */
    for (size_t cut = 0; cut < n; cut += cut < 260 ? 1 : 97)
        CHECK(rwkvd_ckpt_decode("cut", b, cut, &model, 0, &back, &st, &err) != 0);
    /* token 0 in a v2 header (resealed): refused */
    memset(b + 200, 0, 8);
    uint32_t crc = rwkv_crc32(0, b, 208 + 3);
    for (int i = 0; i < 4; i++)
        b[208 + 3 + i] = (uint8_t)(crc >> (8 * i));
    CHECK(rwkvd_ckpt_decode("zero", b, n, &model, 0, &back, &st, &err) != 0);
    CHECKF(strstr(err.msg, "fencing token 0") != NULL, "%s", err.msg);
    free(b);
}

static void test_store_prefers_higher_token(void)
{
    char dir[] = "/tmp/rwkvd-test-fence-XXXXXX";
    CHECK(mkdtemp(dir));
    rwkvd_ckpt_store *st = NULL;
    rwkv_error err;
    CHECK(rwkvd_ckpt_store_open_shared(dir, &st, &err) == 0);
    rwkvd_ckpt ck, back;
    rwkvd_ckpt_load_result res;
    /* the new owner (token 50) saves; then a worker that lost the lease
     * (token 20) still saves older progress */
    make_ckpt(&ck, "d", 9, 50);
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    make_ckpt(&ck, "d", 4, 20);
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    CHECK(rwkvd_ckpt_store_load(st, (const uint8_t *)"d", 1, &model, 0, &back, &res, &err) == 0);
    CHECKF(back.fence == 50 && back.next_seq == 9 && res.from_prev, "fence %llu seq %llu",
           (unsigned long long)back.fence, (unsigned long long)back.next_seq);
    CHECK(strstr(res.newest_error.msg, "older lease") != NULL);
    rwkvd_ckpt_release(&back);
    /* the owner saves again (token 51): the newest wins again */
    make_ckpt(&ck, "d", 11, 51);
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    CHECK(rwkvd_ckpt_store_load(st, (const uint8_t *)"d", 1, &model, 0, &back, &res, &err) == 0);
    CHECK(back.fence == 51 && back.next_seq == 11 && !res.from_prev);
    rwkvd_ckpt_release(&back);
    /* the shared store takes no lock: two may be open on one directory */
    rwkvd_ckpt_store *st2 = NULL;
    CHECK(rwkvd_ckpt_store_open_shared(dir, &st2, &err) == 0);
    rwkvd_ckpt_store_close(st2);
    bool existed;
    CHECK(rwkvd_ckpt_store_remove(st, (const uint8_t *)"d", 1, &existed, &err) == 0 && existed);
    rwkvd_ckpt_store_close(st);
    rmdir(dir);
}

static bool doc_is_d(void *ctx, const uint8_t *doc, size_t len)
{
    (void)ctx;
    return len == 1 && doc[0] == 'd';
}

static void test_sweep_tmp(void)
{
    char dir[] = "/tmp/rwkvd-test-sweep-XXXXXX";
    CHECK(mkdtemp(dir));
    rwkvd_ckpt_store *st = NULL;
    rwkv_error err;
    CHECK(rwkvd_ckpt_store_open_shared(dir, &st, &err) == 0);
    static const char *names[] = {"d-64.ckpt.tmp.999.1",  /* doc "d": swept */
                                  "d-64.ckpt.tmp.1000.7", /* doc "d": swept */
                                  "d-65.ckpt.tmp.999.1",  /* doc "e": kept */
                                  "d-64.ckpt",            /* not a temp file: kept */
                                  "d-6.ckpt.tmp.1.1",     /* odd hex: kept */
                                  "h-00.ckpt.tmp.1.1"};   /* hashed name: kept */
    char path[256];
    for (size_t i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        CHECK(f);
        fclose(f);
    }
    CHECK(rwkvd_ckpt_store_sweep_tmp(st, doc_is_d, NULL) == 2);
    for (size_t i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CHECKF((access(path, F_OK) == 0) == (i >= 2), "%s", names[i]);
        unlink(path);
    }
    rwkvd_ckpt_store_close(st);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_formats);
    RUN(test_store_prefers_higher_token);
    RUN(test_sweep_tmp);
    return test_summary();
}
