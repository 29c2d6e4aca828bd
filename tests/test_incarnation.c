/* test_incarnation.c — incarnation files and the journal replay filter
 * (daemon/wire/incarnation.h, journal_filter.h).
 *
 * The .inc parser on one bad file per failure mode (with offsets); get/bump
 * in a temp state directory (no file = 0, bump writes n+1, a damaged file is
 * an error naming it, not a guess); the identity reader and the keep rule on
 * encoded outputs: another model's record and a lower incarnation's record
 * are left out, the current one and unreadable ones are kept. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/msg_encode.h"
#include "core/sha256.h"
#include "daemon/wire/incarnation.h"
#include "daemon/wire/journal_filter.h"
#include "tests/testutil.h"

static int parse(const char *s, uint64_t *v, rwkv_error *err)
{
    return rwkvd_incarnation_parse("f", (const uint8_t *)s, strlen(s), v, err);
}

static void test_parse(void)
{
    uint64_t v;
    rwkv_error err;
    CHECK(parse("0\n", &v, &err) == 0 && v == 0);
    CHECK(parse("17\n", &v, &err) == 0 && v == 17);
    CHECK(parse("9007199254740991\n", &v, &err) == 0 && v == 9007199254740991ull);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "f: offset 0: expected a decimal number"},
        {"\n", "f: offset 0: expected a decimal number"},
        {"-1\n", "f: offset 0: expected a decimal number"},
        {"01\n", "f: offset 0: a leading zero"},
        {"12", "f: offset 2: expected a newline"},
        {"12 \n", "f: offset 2: expected a newline"},
        {"12\n\n", "f: offset 3: bytes after the newline"},
        {"9007199254740992\n", "f: offset 15: above 2^53-1"},
        {"123456789012345678901\n", "f: offset 16: above 2^53-1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        CHECKF(parse(bad[i].text, &v, &err) == -1 && strncmp(err.msg, bad[i].want,
                                                             strlen(bad[i].want)) == 0,
               "%zu: %s", i, err.msg);
    }
}

static void test_get_bump(void)
{
    char dir[] = "/tmp/rwkvd-inc-XXXXXX";
    CHECK(mkdtemp(dir));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    const uint8_t doc[] = "doc";
    uint64_t v = 99, n;
    rwkv_error err;
    CHECK(rwkvd_incarnation_get(fd, dir, doc, 3, &v, &err) == 0 && v == 0);
    CHECK(rwkvd_incarnation_bump(fd, dir, doc, 3, &n, &err) == 0 && n == 1);
    CHECK(rwkvd_incarnation_bump(fd, dir, doc, 3, &n, &err) == 0 && n == 2);
    CHECK(rwkvd_incarnation_get(fd, dir, doc, 3, &v, &err) == 0 && v == 2);
    char path[256];
    snprintf(path, sizeof path, "%s/d-646f63.inc", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    char text[16] = "";
    CHECK(fgets(text, sizeof text, f) != NULL);
    fclose(f);
    CHECK(strcmp(text, "2\n") == 0);
    f = fopen(path, "w");
    CHECK(f);
    fputs("2x\n", f);
    fclose(f);
    CHECKF(rwkvd_incarnation_get(fd, dir, doc, 3, &v, &err) == -1 && strstr(err.msg, "d-646f63.inc") &&
               strstr(err.msg, "offset 1"),
           "%s", err.msg);
    CHECK(rwkvd_incarnation_bump(fd, dir, doc, 3, &n, &err) == -1);
    close(fd);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static size_t block_record(uint64_t inc, uint8_t model_byte, uint8_t *out, size_t cap)
{
    float emb[4] = {1, 2, 3, 4}, sur[2] = {0, 1};
    rwkvd_out_head h = {.doc = (const uint8_t *)"X", .doc_len = 1, .incarnation = inc, .dim = 4,
                        .precision = "fp32"};
    memset(h.model_sha256, model_byte, 32);
    rwkvd_block_out b = {.block = 5, .tok_start = 10, .tok_end = 12,
                         .outputs = RWKVD_OUT_EMBEDDING | RWKVD_OUT_SURPRISAL,
                         .embedding = emb, .surprisal = sur};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rwkv_error err;
    size_t n = 0;
    if (rwkvd_encode_block(&sb, &h, &b, &err) == 0 && sb.size <= cap) {
        memcpy(out, sb.data, sb.size);
        n = sb.size;
    }
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static void test_journal_keep(void)
{
    char dir[] = "/tmp/rwkvd-jf-XXXXXX";
    CHECK(mkdtemp(dir));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    uint8_t rec[512];
    uint8_t sha[32];
    memset(sha, 0x11, 32);
    char hex[65];
    rwkvd_sha256_hex(sha, hex);
    size_t n0 = block_record(0, 0x11, rec, sizeof rec);
    CHECK(n0 > 0);
    rwkvd_output_id id;
    CHECK(rwkvd_output_identity(rec, n0, &id) == 0 && id.have_doc && id.doc_len == 1 &&
          id.doc[0] == 'X' && id.inc == 0 && id.have_model && strcmp(id.model_hex, hex) == 0);
    const char *why = NULL;
    CHECK(rwkvd_journal_keep(fd, dir, hex, rec, n0, &why));
    rwkv_error err;
    uint64_t next;
    CHECK(rwkvd_incarnation_bump(fd, dir, (const uint8_t *)"X", 1, &next, &err) == 0 && next == 1);
    CHECK(!rwkvd_journal_keep(fd, dir, hex, rec, n0, &why) && strcmp(why, "a dropped incarnation") == 0);
    size_t n1 = block_record(1, 0x11, rec, sizeof rec);
    CHECK(rwkvd_output_identity(rec, n1, &id) == 0 && id.inc == 1);
    CHECK(rwkvd_journal_keep(fd, dir, hex, rec, n1, &why));
    size_t n2 = block_record(1, 0x22, rec, sizeof rec);
    CHECK(!rwkvd_journal_keep(fd, dir, hex, rec, n2, &why) && strcmp(why, "another model") == 0);
    /* every cut of a record: never a crash, kept when unreadable */
    n1 = block_record(1, 0x11, rec, sizeof rec);
    for (size_t k = 0; k < n1; k++)
        (void)rwkvd_journal_keep(fd, dir, hex, rec, k, &why);
    CHECK(rwkvd_journal_keep(fd, dir, hex, "\xc1", 1, &why));
    close(fd);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_parse);
    RUN(test_get_bump);
    RUN(test_journal_keep);
    return test_summary();
}
