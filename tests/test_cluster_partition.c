/* test_cluster_partition.c — the pure parts of the NATS mapping
 * (daemon/cluster/partition.h, PROTOCOL.md §12.1): FNV-1a 32 against its
 * published test vectors, the documented examples of partition(doc), hex
 * subjects for ids of every byte value and the longest id, subject parsing
 * of hostile subjects, worker-id rules; and the output-key reader
 * (out_key.h) on real encodings and on garbage. */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "daemon/cluster/out_key.h"
#include "daemon/cluster/partition.h"
#include "tests/testutil.h"

static void test_fnv1a32_vectors(void)
{
    /* the FNV authors' test vectors */
    CHECK(rwkvd_fnv1a32("", 0) == 0x811c9dc5u);
    CHECK(rwkvd_fnv1a32("a", 1) == 0xe40c292cu);
    CHECK(rwkvd_fnv1a32("foobar", 6) == 0xbf9cf968u);
}

static void test_partition_examples(void)
{
    /* PROTOCOL.md §12.1, also checked against nats-server 2.9.10 by
     * test_cluster_nats.py */
    CHECK(rwkvd_doc_partition((const uint8_t *)"abcd", 4, 16) == 9);
    CHECK(rwkvd_doc_partition((const uint8_t *)"doc-1", 5, 16) == 2);
    CHECK(rwkvd_doc_partition((const uint8_t *)"\0", 1, 16) == 13);
    CHECK(rwkvd_doc_partition((const uint8_t *)"abcd", 4, 1) == 0);
}

static void test_subjects(void)
{
    uint8_t doc[256];
    for (int i = 0; i < 256; i++)
        doc[i] = (uint8_t)i;
    char subj[RWKVD_SUBJECT_MAX];
    rwkvd_in_subject(doc, 256, 4096, subj);
    uint32_t part = 99999;
    CHECK(rwkvd_in_subject_partition(subj, &part));
    CHECK(part == rwkvd_doc_partition(doc, 256, 4096));
    const char *tail = strrchr(subj, '.') + 1;
    CHECK(strlen(tail) == 512);
    CHECK(strncmp(tail, "000102", 6) == 0 && strcmp(tail + 506, "fdfeff") == 0);
    for (const char *p = tail; *p; p++)
        CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    static const char *bad[] = {"", "rwkvd.in.", "rwkvd.in.x.ab", "rwkvd.in.3", "rwkvd.in.3.",
                                "rwkvd.out.3.ab", "rwkvd.in.1234567.ab", "rwkvd.in..ab"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(!rwkvd_in_subject_partition(bad[i], &part), "%s", bad[i]);
}

static void test_worker_ids(void)
{
    CHECK(rwkvd_worker_id_valid("w1"));
    CHECK(rwkvd_worker_id_valid("host-a_B9"));
    CHECK(!rwkvd_worker_id_valid(""));
    CHECK(!rwkvd_worker_id_valid("a.b"));
    CHECK(!rwkvd_worker_id_valid("a b"));
    CHECK(!rwkvd_worker_id_valid("a*"));
    char id[RWKVD_WORKER_ID_MAX + 2];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    CHECK(!rwkvd_worker_id_valid(id)); /* 65 characters */
    char def[RWKVD_WORKER_ID_MAX + 1];
    rwkvd_worker_id_default(def);
    CHECKF(rwkvd_worker_id_valid(def), "%s", def);
}

/* A block output; inc > 0 adds the incarnation field as the daemon does. */
static size_t pack_block_inc(char *buf, size_t cap, const char *doc, uint64_t block,
                             bool bin_doc, uint64_t inc)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4 + (inc > 0));
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "block", 5);
    msgpack_pack_str_with_body(&pk, "doc", 3);
    if (bin_doc)
        msgpack_pack_bin_with_body(&pk, doc, strlen(doc));
    else
        msgpack_pack_str_with_body(&pk, doc, strlen(doc));
    if (inc > 0) {
        msgpack_pack_str_with_body(&pk, "inc", 3);
        msgpack_pack_uint64(&pk, inc);
    }
    msgpack_pack_str_with_body(&pk, "block", 5);
    msgpack_pack_uint64(&pk, block);
    size_t n = sb.size < cap ? sb.size : cap;
    memcpy(buf, sb.data, n);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static size_t pack_block(char *buf, size_t cap, const char *doc, uint64_t block, bool bin_doc)
{
    return pack_block_inc(buf, cap, doc, block, bin_doc, 0);
}

static void test_out_key(void)
{
    char buf[256];
    rwkvd_out_key k;
    size_t n = pack_block(buf, sizeof buf, "doc-7", 123456789012ull, false);
    CHECK(rwkvd_out_key_read(buf, n, &k) == 0);
    CHECK(k.type == RWKVD_OUTK_BLOCK && k.have_doc && k.doc_len == 5 &&
          memcmp(k.doc, "doc-7", 5) == 0 && k.block == 123456789012ull);
    n = pack_block(buf, sizeof buf, "\xff\xfe", 0, true);
    CHECK(rwkvd_out_key_read(buf, n, &k) == 0 && k.have_doc && k.doc_len == 2);
    /* every cut of a good encoding, and garbage, is refused or read safely */
    n = pack_block(buf, sizeof buf, "doc-7", 5, false);
    for (size_t cut = 0; cut < n; cut++)
        CHECK(rwkvd_out_key_read(buf, cut, &k) != 0 || !k.have_doc || k.doc_len <= 5);
    CHECK(k.inc == 0);
    /* the incarnation, when present, is read (it goes into the msg id) */
    n = pack_block_inc(buf, sizeof buf, "doc-7", 9, false, 300);
    CHECK(rwkvd_out_key_read(buf, n, &k) == 0 && k.block == 9 && k.inc == 300);
    CHECK(rwkvd_out_key_read("\x93\x01\x02\x03", 4, &k) != 0); /* not a map */
    CHECK(rwkvd_out_key_read("\xc1", 1, &k) != 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_fnv1a32_vectors);
    RUN(test_partition_examples);
    RUN(test_subjects);
    RUN(test_worker_ids);
    RUN(test_out_key);
    return test_summary();
}
