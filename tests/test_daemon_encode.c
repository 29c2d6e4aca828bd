/* test_daemon_encode.c — the emit messages and control replies
 * (core/msg_encode.h), read back with msgpack-c: field order, types,
 * little-endian vectors, doc echo as str or bin, nil where PROTOCOL.md says
 * nil, byte-identical re-encoding, contract violations refused; the control
 * request decoder; the metrics rendering of the same status struct.
 */
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/metrics.h"
#include "core/msg_decode.h"
#include "core/msg_encode.h"
#include "tests/testutil.h"

static msgpack_sbuffer sb;
static msgpack_unpacked up;
static rwkv_error err;

/* Unpacks sb into up; returns the root map or NULL. */
static const msgpack_object *root(void)
{
    msgpack_unpacked_destroy(&up);
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS || off != sb.size ||
        up.data.type != MSGPACK_OBJECT_MAP)
        return NULL;
    return &up.data;
}

static const msgpack_object *get(const msgpack_object *m, const char *k)
{
    for (uint32_t i = 0; m && i < m->via.map.size; i++) {
        const msgpack_object *key = &m->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(k) &&
            memcmp(key->via.str.ptr, k, key->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static int is_str(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}
static int is_uint(const msgpack_object *o, uint64_t v)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == v;
}
/* The keys of map m, in order, joined by ',' */
static void keys(const msgpack_object *m, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < m->via.map.size && n + 40 < len; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        n += (size_t)snprintf(buf + n, len - n, "%s%.*s", i ? "," : "", (int)k->via.str.size,
                              k->via.str.ptr);
    }
}

static rwkvd_out_head make_head(const char *doc)
{
    rwkvd_out_head h;
    memset(&h, 0, sizeof h);
    h.doc = (const uint8_t *)doc;
    h.doc_len = strlen(doc);
    for (int i = 0; i < 32; i++)
        h.model_sha256[i] = (uint8_t)(i == 0 ? 0xab : i);
    h.dim = 3;
    h.pooling = RWKVD_POOL_MEAN;
    h.normalize = true;
    h.precision = "bf16";
    return h;
}

static void test_block_all_outputs(void)
{
    static const float emb[3] = {1.0f, -0.5f, 0.25f}, logits[4] = {0, 1, 2, 3};
    static const uint32_t ids[2 * 2] = {7, 3, 65535, 0};
    static const float lp[2 * 2] = {-0.1f, -2.5f, -0.01f, -9.0f}, sur[2] = {NAN, 1.5f};
    rwkvd_out_head h = make_head("doc-ü");
    rwkvd_block_out b = {.block = 4, .tok_start = 1024, .tok_end = 1026, .outputs = RWKVD_OUT_ALL,
                         .embedding = emb, .logits_last = logits, .vocab = 4, .topk_ids = ids,
                         .topk_logprobs = lp, .k = 2, .surprisal = sur};
    msgpack_sbuffer_clear(&sb);
    CHECKF(rwkvd_encode_block(&sb, &h, &b, &err) == 0, "%s", err.msg);
    const msgpack_object *m = root();
    CHECK(m);
    char k[512];
    keys(m, k, sizeof k);
    CHECKF(strcmp(k, "v,type,doc,block,tok_start,tok_end,model,dim,pooling,normalize,"
                     "precision,embedding,logits_last,topk,surprisal") == 0, "%s", k);
    CHECK(is_str(get(m, "precision"), "bf16"));
    CHECK(is_uint(get(m, "v"), 1) && is_str(get(m, "type"), "block") && is_str(get(m, "doc"), "doc-ü"));
    CHECK(is_uint(get(m, "block"), 4) && is_uint(get(m, "tok_start"), 1024) &&
          is_uint(get(m, "tok_end"), 1026) && is_uint(get(m, "dim"), 3));
    CHECK(is_str(get(m, "model"), "ab0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
    CHECK(is_str(get(m, "pooling"), "mean"));
    const msgpack_object *nz = get(m, "normalize");
    CHECK(nz && nz->type == MSGPACK_OBJECT_BOOLEAN && nz->via.boolean);
    const msgpack_object *e = get(m, "embedding");
    CHECK(e && e->type == MSGPACK_OBJECT_BIN && e->via.bin.size == 12);
    /* little-endian float32: 1.0f = 00 00 80 3f */
    CHECK(memcmp(e->via.bin.ptr, "\x00\x00\x80\x3f", 4) == 0);
    CHECK(memcmp(e->via.bin.ptr + 4, "\x00\x00\x00\xbf", 4) == 0);
    const msgpack_object *t = get(m, "topk");
    CHECK(t && t->type == MSGPACK_OBJECT_MAP && is_uint(get(t, "k"), 2));
    const msgpack_object *ti = get(t, "ids");
    CHECK(ti && ti->type == MSGPACK_OBJECT_BIN && ti->via.bin.size == 16);
    CHECK(memcmp(ti->via.bin.ptr + 8, "\xff\xff\x00\x00", 4) == 0);
    CHECK(get(t, "logprobs")->via.bin.size == 16);
    const msgpack_object *s = get(m, "surprisal");
    CHECK(s && s->via.bin.size == 8 && memcmp(s->via.bin.ptr + 4, "\x00\x00\xc0\x3f", 4) == 0);
    CHECK(get(m, "logits_last")->via.bin.size == 16);
    /* byte-identical when encoded again */
    size_t n1 = sb.size;
    char *first = malloc(n1);
    memcpy(first, sb.data, n1);
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == 0);
    int same = sb.size == n1 && memcmp(sb.data, first, n1) == 0;
    free(first);
    CHECK(same);
}

static void test_block_subsets_and_contract(void)
{
    static const float emb[3] = {1, 2, 3};
    rwkvd_out_head h = make_head("d");
    rwkvd_block_out b = {.block = 0, .tok_start = 0, .tok_end = 256,
                         .outputs = RWKVD_OUT_EMBEDDING, .embedding = emb};
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == 0);
    const msgpack_object *m = root();
    CHECK(m && m->via.map.size == 12 && get(m, "embedding") && !get(m, "surprisal") && !get(m, "topk"));
    /* the precision is always named: a head without one breaks the contract */
    h.precision = NULL;
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == -1);
    h.precision = "mixed";
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == 0 && is_str(get(root(), "precision"), "mixed"));
    b.outputs = RWKVD_OUT_SURPRISAL; /* asked but no pointer */
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == -1);
    b.outputs = 0;
    b.tok_end = 0; /* empty range */
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == -1);
    b.tok_end = 1;
    b.outputs = RWKVD_OUT_TOPK;
    b.topk_ids = (const uint32_t *)emb;
    b.topk_logprobs = emb;
    b.k = 0;
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == -1);
    b.outputs = 1u << 7;
    CHECK(rwkvd_encode_block(&sb, &h, &b, &err) == -1);
}

static void test_doc_echo_str_or_bin(void)
{
    rwkvd_out_head h = make_head("x");
    h.doc = (const uint8_t *)"\xff\x00id";
    h.doc_len = 4;
    rwkvd_final_out f = {.tokens = 0, .blocks = 0, .outputs = RWKVD_OUT_EMBEDDING | RWKVD_OUT_SURPRISAL};
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_final(&sb, &h, &f, &err) == 0);
    const msgpack_object *m = root();
    const msgpack_object *d = get(m, "doc");
    CHECK(d && d->type == MSGPACK_OBJECT_BIN && d->via.bin.size == 4 &&
          memcmp(d->via.bin.ptr, "\xff\x00id", 4) == 0);
    /* empty document: embedding and mean surprisal are nil */
    CHECK(get(m, "embedding")->type == MSGPACK_OBJECT_NIL);
    CHECK(get(m, "mean_surprisal")->type == MSGPACK_OBJECT_NIL);
    char k[256];
    keys(m, k, sizeof k);
    CHECKF(strcmp(k, "v,type,doc,tokens,blocks,model,dim,pooling,normalize,precision,embedding,"
                     "mean_surprisal") == 0,
           "%s", k);
    CHECK(is_str(get(m, "precision"), "bf16"));
}

static void test_final(void)
{
    static const float emb[3] = {0.5f, 0.5f, 0.70710677f};
    rwkvd_out_head h = make_head("doc");
    h.pooling = RWKVD_POOL_LAST;
    h.normalize = false;
    rwkvd_final_out f = {.tokens = 1000, .blocks = 4, .outputs = RWKVD_OUT_EMBEDDING,
                         .embedding = emb, .has_mean_surprisal = true, .mean_surprisal = 2.25};
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_final(&sb, &h, &f, &err) == 0);
    const msgpack_object *m = root();
    CHECK(is_str(get(m, "type"), "final") && is_uint(get(m, "tokens"), 1000) &&
          is_uint(get(m, "blocks"), 4) && is_str(get(m, "pooling"), "last"));
    CHECK(get(m, "embedding")->via.bin.size == 12 && !get(m, "mean_surprisal")); /* not asked */
    f.outputs = RWKVD_OUT_SURPRISAL;
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_final(&sb, &h, &f, &err) == 0);
    m = root();
    const msgpack_object *ms = get(m, "mean_surprisal");
    CHECK(ms && ms->type == MSGPACK_OBJECT_FLOAT64 && ms->via.f64 == 2.25 && !get(m, "embedding"));
    h.precision = "mixed";
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_final(&sb, &h, &f, &err) == 0 && is_str(get(root(), "precision"), "mixed"));
    h.precision = NULL; /* no precision: contract broken */
    CHECK(rwkvd_encode_final(&sb, &h, &f, &err) == -1);
    h.precision = "fp32";
    f.outputs = RWKVD_OUT_EMBEDDING; /* tokens but no embedding: contract broken */
    f.embedding = NULL;
    CHECK(rwkvd_encode_final(&sb, &h, &f, &err) == -1);
}

static void test_error_and_ack(void)
{
    rwkvd_error_out e = {.doc = (const uint8_t *)"d7", .doc_len = 2, .have_seq = true, .seq = 9,
                         .reason = RWKVD_R_SEQ_GAP, .message = "seq 9\nexpected 4\x01",
                         .have_expected_seq = true, .expected_seq = 4};
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_error(&sb, &e, &err) == 0);
    const msgpack_object *m = root();
    char k[256];
    keys(m, k, sizeof k);
    CHECKF(strcmp(k, "v,type,doc,seq,reason,message,expected_seq") == 0, "%s", k);
    CHECK(is_str(get(m, "type"), "error") && is_str(get(m, "reason"), "seq_gap") &&
          is_uint(get(m, "seq"), 9) && is_uint(get(m, "expected_seq"), 4));
    CHECK(is_str(get(m, "message"), "seq 9?expected 4?")); /* one printable line */
    rwkvd_error_out anon = {.reason = RWKVD_R_MALFORMED, .message = "offset 0: empty"};
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_error(&sb, &anon, &err) == 0);
    m = root();
    CHECK(get(m, "doc")->type == MSGPACK_OBJECT_NIL && get(m, "seq")->type == MSGPACK_OBJECT_NIL &&
          !get(m, "expected_seq"));
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_encode_ack(&sb, (const uint8_t *)"d7", 2, 3, 5, &err) == 0);
    m = root();
    CHECK(is_str(get(m, "type"), "ack") && is_uint(get(m, "seq"), 3) &&
          is_uint(get(m, "next_seq"), 5) && is_str(get(m, "status"), "duplicate"));
}

/* ---- control requests and replies ---- */

static rwkvd_ctl_request req;
static rwkvd_reason why;

static int ctl(void)
{
    return rwkvd_ctl_decode(sb.data, sb.size, &req, &why, &err);
}

static msgpack_packer pk;
static void start(size_t n)
{
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
}
static void s(const char *x) { msgpack_pack_str_with_body(&pk, x, strlen(x)); }

static void test_control_requests(void)
{
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("resume"), s("doc"), s("doc-1");
    CHECKF(ctl() == 0, "%s", err.msg);
    CHECK(req.cmd == RWKVD_CMD_RESUME && req.has_doc && req.doc_len == 5 && req.id.kind == RWKVD_ID_NONE);
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("status"), s("id"), msgpack_pack_uint64(&pk, 77);
    CHECK(ctl() == 0 && req.cmd == RWKVD_CMD_STATUS && req.id.kind == RWKVD_ID_UINT && req.id.u == 77);
    start(2);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("checkpoint");
    CHECK(ctl() == 0 && req.cmd == RWKVD_CMD_CHECKPOINT && !req.has_doc);
    start(2);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("health");
    CHECK(ctl() == 0 && req.cmd == RWKVD_CMD_HEALTH);
    /* refusals, with the id still echoed */
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("drop"), s("id"), s("r-1");
    CHECK(ctl() == -1 && why == RWKVD_R_MISSING_FIELD && req.have_cmd && req.cmd == RWKVD_CMD_DROP);
    CHECK(req.id.kind == RWKVD_ID_STR && req.id.len == 3 && memcmp(req.id.s, "r-1", 3) == 0);
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("status"), s("doc"), s("x");
    CHECK(ctl() == -1 && why == RWKVD_R_UNKNOWN_FIELD);
    start(2);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("reboot");
    CHECK(ctl() == -1 && why == RWKVD_R_UNKNOWN_CMD && !req.have_cmd);
    start(2);
    s("v"), msgpack_pack_uint64(&pk, 2), s("cmd"), s("status");
    CHECK(ctl() == -1 && why == RWKVD_R_BAD_VERSION);
    start(1);
    s("cmd"), s("status");
    CHECK(ctl() == -1 && why == RWKVD_R_MISSING_FIELD);
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("status"), s("id"), msgpack_pack_double(&pk, 1.5);
    CHECK(ctl() == -1 && why == RWKVD_R_WRONG_TYPE);
    char longid[RWKVD_CTL_ID_MAX + 2];
    memset(longid, 'i', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("status"), s("id"), s(longid);
    CHECK(ctl() == -1 && why == RWKVD_R_WRONG_TYPE && req.id.kind == RWKVD_ID_NONE);
    start(3);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), s("status"), s("x"), msgpack_pack_array(&pk, 0);
    CHECK(ctl() == -1 && why == RWKVD_R_TOO_DEEP);
    start(2);
    s("v"), msgpack_pack_uint64(&pk, 1), s("cmd"), msgpack_pack_uint64(&pk, 0);
    CHECK(ctl() == -1 && why == RWKVD_R_WRONG_TYPE);
    /* size limit and hostile bytes */
    uint8_t *big = calloc(RWKVD_CTL_MAX_BYTES + 1, 1);
    CHECK(rwkvd_ctl_decode(big, RWKVD_CTL_MAX_BYTES + 1, &req, &why, &err) == -1 && why == RWKVD_R_TOO_LARGE);
    free(big);
    CHECK(rwkvd_ctl_decode("\xdf\xff\xff\xff\xff", 5, &req, &why, &err) == -1 && why == RWKVD_R_MALFORMED);
    CHECK(rwkvd_ctl_decode("\x89", 1, &req, &why, &err) == -1 && why == RWKVD_R_MALFORMED);
}

static void test_replies(void)
{
    rwkvd_ctl_request r;
    memset(&r, 0, sizeof r);
    r.have_cmd = true;
    r.cmd = RWKVD_CMD_RESUME;
    r.id.kind = RWKVD_ID_STR;
    memcpy(r.id.s, "abc", 3);
    r.id.len = 3;
    rwkvd_resume_info ri = {.doc = (const uint8_t *)"d", .doc_len = 1, .known = true,
                            .where = "disk", .next_seq = 12, .tokens = 3000, .blocks = 11};
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_reply_resume(&sb, &r, &ri, &err) == 0);
    const msgpack_object *m = root();
    char k[512];
    keys(m, k, sizeof k);
    CHECKF(strcmp(k, "v,ok,cmd,id,doc,known,where,next_seq,tokens,blocks,finished") == 0, "%s", k);
    CHECK(is_str(get(m, "id"), "abc") && is_str(get(m, "cmd"), "resume") &&
          is_uint(get(m, "next_seq"), 12) && is_str(get(m, "where"), "disk"));
    CHECK(get(m, "ok")->via.boolean && !get(m, "finished")->via.boolean);

    r.id.kind = RWKVD_ID_UINT;
    r.id.u = 5;
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_reply_error(&sb, &r, RWKVD_R_UNKNOWN_DOC, "no such document\n", &err) == 0);
    m = root();
    CHECK(!get(m, "ok")->via.boolean && is_uint(get(m, "id"), 5) &&
          is_str(get(m, "reason"), "unknown_doc") && is_str(get(m, "message"), "no such document?"));
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_reply_error(&sb, NULL, RWKVD_R_MALFORMED, "x", &err) == 0); /* nothing readable */
    m = root();
    CHECK(m && m->via.map.size == 4 && !get(m, "cmd") && !get(m, "id"));

    rwkvd_status_info st;
    memset(&st, 0, sizeof st);
    st.generation = "RWKV-7 (x070)";
    st.device = "cpu";
    st.precision = "bf16";
    st.tokenizer = "bytes";
    st.dim = 64;
    st.docs_active = 3;
    st.rejected[RWKVD_R_BAD_UTF8] = 2;
    msgpack_sbuffer_clear(&sb);
    r.cmd = RWKVD_CMD_STATUS;
    CHECK(rwkvd_reply_status(&sb, &r, &st, &err) == 0);
    m = root();
    const msgpack_object *rej = get(m, "rejected");
    CHECK(rej && rej->via.map.size == RWKVD_REASON_COUNT - 1 && is_uint(get(rej, "bad_utf8"), 2) &&
          is_uint(get(rej, "seq_gap"), 0));
    CHECK(is_uint(get(get(m, "docs"), "active"), 3) && is_uint(get(get(m, "model"), "dim"), 64) &&
          is_str(get(get(m, "model"), "path"), ""));
    CHECK(is_str(get(m, "device"), "cpu") && is_str(get(m, "precision"), "bf16"));
    keys(m, k, sizeof k);
    CHECKF(strncmp(k, "v,ok,cmd,id,model,device,precision,block_size,", 46) == 0, "%s", k);
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_reply_health(&sb, &r, RWKVD_HEALTH_STOPPING, 12.5, &err) == 0);
    CHECK(is_str(get(root(), "status"), "stopping"));
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_reply_checkpoint(&sb, &r, 4, 1, 0.25, &err) == 0);
    m = root();
    CHECK(is_uint(get(m, "written"), 4) && is_uint(get(m, "failed"), 1));
    memcpy(r.doc, "zz", 2);
    r.doc_len = 2;
    msgpack_sbuffer_clear(&sb);
    CHECK(rwkvd_reply_drop(&sb, &r, true, &err) == 0);
    m = root();
    CHECK(is_str(get(m, "doc"), "zz") && get(m, "dropped")->via.boolean);
}

static void test_metrics_text(void)
{
    rwkvd_status_info st;
    memset(&st, 0, sizeof st);
    st.generation = "gen \"7\"\nx";
    st.device = "cuda:0";
    st.precision = "bf16";
    st.tokenizer = "world";
    st.tokens_total = 123456;
    st.blocks_total = 482;
    st.docs_active = 7;
    st.checkpoints_total = 3;
    st.checkpoint_seconds_sum = 0.5;
    st.rejected[RWKVD_R_SEQ_GAP] = 9;
    char *t = rwkvd_metrics_render(&st);
    CHECK(t);
    int ok = strstr(t, "\nrwkvd_tokens_total 123456\n") && strstr(t, "\nrwkvd_blocks_total 482\n") &&
             strstr(t, "\nrwkvd_docs_active 7\n") &&
             strstr(t, "# TYPE rwkvd_checkpoint_seconds summary\n") &&
             strstr(t, "\nrwkvd_checkpoint_seconds_count 3\n") &&
             strstr(t, "\nrwkvd_rejected_total{reason=\"seq_gap\"} 9\n") &&
             strstr(t, "\nrwkvd_rejected_total{reason=\"bad_utf8\"} 0\n") &&
             strstr(t, "generation=\"gen \\\"7\\\"\\nx\"") &&
             strstr(t, ",device=\"cuda:0\",precision=\"bf16\",");
    /* every line is a comment or "name{labels} value" */
    int lines_ok = 1;
    for (char *p = t; *p;) {
        char *e = strchr(p, '\n');
        if (!e) {
            lines_ok = 0;
            break;
        }
        if (*p != '#' && !(strncmp(p, "rwkvd_", 6) == 0 && memchr(p, ' ', (size_t)(e - p))))
            lines_ok = 0;
        p = e + 1;
    }
    free(t);
    CHECK(ok);
    CHECK(lines_ok);
}

static void test_reason_names(void)
{
    for (int r = 0; r < RWKVD_REASON_COUNT; r++) {
        const char *n = rwkvd_reason_name((rwkvd_reason)r);
        CHECKF(n && strcmp(n, "unknown") != 0 && rwkvd_reason_from_name(n) == (rwkvd_reason)r,
               "reason %d", r);
        for (const char *c = n; *c; c++)
            CHECKF((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_', "reason name %s", n);
        CHECK(strlen(rwkvd_reason_text((rwkvd_reason)r)) > 5);
    }
    CHECK(strcmp(rwkvd_reason_name(RWKVD_REASON_COUNT), "unknown") == 0);
    CHECK(rwkvd_reason_from_name("nope") == RWKVD_REASON_COUNT);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&up);
    RUN(test_block_all_outputs);
    RUN(test_block_subsets_and_contract);
    RUN(test_doc_echo_str_or_bin);
    RUN(test_final);
    RUN(test_error_and_ack);
    RUN(test_control_requests);
    RUN(test_replies);
    RUN(test_metrics_text);
    RUN(test_reason_names);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return test_summary();
}
