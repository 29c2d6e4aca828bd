/* test_curve_key.c — CURVE key files and allow-list directories.
 *
 * Z85 against libzmq's own encoder (zmq_z85_encode/decode) on random keys;
 * the key-file parser on one hand-made bad file per failure mode, each
 * refused with its byte offset; the secret-key permission rule (any group or
 * other bit refuses a file holding a secret, a public key file may be 0644);
 * allow-list directories: hidden files and sub-directories skipped, the same
 * key in two files counted once, a bad file failing the whole load with its
 * name in the error. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "core/curve_key.h"
#include "daemon/wire/allow_list.h"
#include "tests/testutil.h"

static const char PUB[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
static const char SEC[] = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

static void test_z85_matches_libzmq(void)
{
    uint64_t s = 42;
    for (int i = 0; i < 2000; i++) {
        uint8_t key[32], back[32];
        for (int j = 0; j < 32; j++)
            key[j] = (uint8_t)test_rand(&s);
        if (i == 0)
            memset(key, 0xff, 32);
        char ours[41], theirs[41];
        rwkv_z85_encode_key(key, ours);
        CHECK(zmq_z85_encode(theirs, key, 32) != NULL);
        CHECKF(strcmp(ours, theirs) == 0, "key %d: %s vs libzmq %s", i, ours, theirs);
        size_t bad;
        CHECK(rwkv_z85_decode_key(ours, back, &bad) == 0 && memcmp(back, key, 32) == 0);
    }
}

static int parse(const char *text, rwkv_curve_keyfile *kf, rwkv_error *err)
{
    return rwkv_curve_keyfile_parse("k", (const uint8_t *)text, strlen(text), kf, err);
}

static void test_good_files(void)
{
    char buf[256];
    rwkv_curve_keyfile kf;
    rwkv_error err;
    const char *forms[] = {"%s\n", "%s", "%s\r\n"};
    for (int f = 0; f < 3; f++) {
        snprintf(buf, sizeof buf, forms[f], PUB);
        CHECKF(parse(buf, &kf, &err) == 0 && !kf.has_secret, "%d: %s", f, err.msg);
        uint8_t want[32];
        CHECK(zmq_z85_decode(want, PUB) && memcmp(want, kf.public_key, 32) == 0);
    }
    snprintf(buf, sizeof buf, "%s\n%s\n", PUB, SEC);
    CHECKF(parse(buf, &kf, &err) == 0 && kf.has_secret, "%s", err.msg);
    uint8_t want[32];
    CHECK(zmq_z85_decode(want, SEC) && memcmp(want, kf.secret_key, 32) == 0);
    snprintf(buf, sizeof buf, "%s\r\n%s", PUB, SEC);
    CHECKF(parse(buf, &kf, &err) == 0 && kf.has_secret, "%s", err.msg);
}

static void test_bad_files(void)
{
    char p39[40], over[41];
    memcpy(p39, PUB, 39);
    p39[39] = 0;
    memcpy(over, "#####", 5); /* 84 * (85^4 + ... + 1) > 2^32 - 1 */
    memcpy(over + 5, PUB + 5, 36);
    struct {
        char text[256];
        const char *want;
    } cases[8];
    int n = 0;
#define CASE(want_, ...)                                                                  \
    do {                                                                                  \
        snprintf(cases[n].text, sizeof cases[n].text, __VA_ARGS__);                       \
        cases[n++].want = want_;                                                          \
    } while (0)
    CASE("k: offset 0: the public key line has 39 characters", "%s\n", p39);
    CASE("k: offset 39: the public key is not valid Z85", "%s~\n", p39);
    CASE("k: offset 0: the public key is not valid Z85", "%s\n", over);
    CASE("k: offset 82: unexpected bytes", "%s\n%s\n%s\n", PUB, SEC, PUB);
    CASE("k: offset 41: a lone carriage return", "%s\rx", PUB);
    CASE("k: offset 41: the secret key line has 0 characters", "%s\n\n", PUB);
    CASE("k: offset 41: the secret key line has 41 characters", "%s\n%s ", PUB, SEC);
    CASE("k: empty", "%s", "");
#undef CASE
    for (int i = 0; i < n; i++) {
        rwkv_curve_keyfile kf;
        rwkv_error err = {{0}};
        CHECKF(parse(cases[i].text, &kf, &err) == -1, "case %d accepted", i);
        CHECKF(strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0, "case %d: %s", i,
               err.msg);
        static const uint8_t zero[32];
        CHECK(!kf.has_secret && memcmp(kf.secret_key, zero, 32) == 0);
    }
    /* a NUL inside a key is not Z85 (no strchr on the terminator) */
    uint8_t nul[41];
    memcpy(nul, PUB, 40);
    nul[7] = 0;
    nul[40] = '\n';
    rwkv_curve_keyfile kf;
    rwkv_error err;
    CHECK(rwkv_curve_keyfile_parse("k", nul, 41, &kf, &err) == -1 && strstr(err.msg, "offset 7"));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
}

static void test_file_modes(void)
{
    char dir[] = "/tmp/rwkvd-curve-XXXXXX";
    CHECK(mkdtemp(dir));
    char pair[256], pub[256], text[128];
    snprintf(pair, sizeof pair, "%s/pair", dir);
    snprintf(pub, sizeof pub, "%s/pub", dir);
    snprintf(text, sizeof text, "%s\n%s\n", PUB, SEC);
    rwkv_curve_keyfile kf;
    rwkv_error err;
    static const mode_t refused[] = {0644, 0640, 0604, 0602, 0620, 0601, 0610, 0666};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        write_file(pair, text, refused[i]);
        CHECKF(rwkv_curve_keyfile_load(pair, false, &kf, &err) == -1 && strstr(err.msg, "chmod 600"),
               "mode %o: %s", (unsigned)refused[i], err.msg);
    }
    write_file(pair, text, 0600);
    CHECKF(rwkv_curve_keyfile_load(pair, true, &kf, &err) == 0 && kf.has_secret, "%s", err.msg);
    write_file(pair, text, 0400);
    CHECKF(rwkv_curve_keyfile_load(pair, true, &kf, &err) == 0, "%s", err.msg);
    snprintf(text, sizeof text, "%s\n", PUB);
    write_file(pub, text, 0644);
    CHECKF(rwkv_curve_keyfile_load(pub, false, &kf, &err) == 0 && !kf.has_secret, "%s", err.msg);
    CHECK(rwkv_curve_keyfile_load(pub, true, &kf, &err) == -1 && strstr(err.msg, "no secret"));
    CHECK(rwkv_curve_keyfile_load(dir, false, &kf, &err) == -1 && strstr(err.msg, "regular"));
    unlink(pair);
    unlink(pub);
    rmdir(dir);
}

static void test_allow_list_dir(void)
{
    char dir[] = "/tmp/rwkvd-allow-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[512], line[64];
    char z[41];
    uint8_t keys[3][32];
    uint64_t s = 7;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 32; j++)
            keys[i][j] = (uint8_t)test_rand(&s);
        rwkv_z85_encode_key(keys[i], z);
        snprintf(line, sizeof line, "%s\n", z);
        snprintf(path, sizeof path, "%s/%s", dir, i == 2 ? ".hidden.pub" : i ? "b.pub" : "a.pub");
        write_file(path, line, 0644);
    }
    rwkv_z85_encode_key(keys[0], z); /* the same key again, under another name */
    snprintf(line, sizeof line, "%s\n", z);
    snprintf(path, sizeof path, "%s/a-copy.pub", dir);
    write_file(path, line, 0644);
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0755);
    rwkvd_allow_list *l;
    rwkv_error err;
    CHECKF(rwkvd_allow_list_load(dir, &l, &err) == 0, "%s", err.msg);
    CHECK(rwkvd_allow_list_count(l) == 2);
    CHECK(rwkvd_allow_list_has(l, keys[0]) && rwkvd_allow_list_has(l, keys[1]));
    CHECK(!rwkvd_allow_list_has(l, keys[2])); /* hidden file skipped */
    rwkvd_allow_list_free(l);
    CHECK(!rwkvd_allow_list_has(NULL, keys[0]) && rwkvd_allow_list_count(NULL) == 0);
    snprintf(path, sizeof path, "%s/zz-bad.pub", dir);
    write_file(path, "not a key\n", 0644);
    CHECK(rwkvd_allow_list_load(dir, &l, &err) == -1 && l == NULL && strstr(err.msg, "zz-bad.pub"));
    CHECK(rwkvd_allow_list_load("/nonexistent-rwkvd-dir", &l, &err) == -1 && strstr(err.msg,
                                                                                     "nonexistent"));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_z85_matches_libzmq);
    RUN(test_good_files);
    RUN(test_bad_files);
    RUN(test_file_modes);
    RUN(test_allow_list_dir);
    return test_summary();
}
