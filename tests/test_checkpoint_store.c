/* test_checkpoint_store.c — the state directory (daemon/ckpt_store.h):
 * save/load, two generations and the fallback to the previous one when the
 * newest is damaged, clean refusals naming the files, no temp files left
 * behind on success or failure, a write that fails half-way, directories
 * that cannot be used, the lock against a second daemon, listing, drop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/atomic_file.h"
#include "daemon/ckpt_store.h"
#include "tests/testutil.h"

#define C 8
#define V 16
#define S 4096 /* big enough that a write can fail half-way */

static rwkvd_model_id model;
static float state[S];
static char root[64];

static void make_ckpt(rwkvd_ckpt *ck, const char *doc, uint64_t next_seq)
{
    memset(&model, 0, sizeof model);
    memset(model.model_sha256, 0xAB, 32);
    model.generation = 70;
    model.n_layer = 1;
    model.n_embd = C;
    model.vocab = V;
    model.state_floats = S;
    uint64_t seed = next_seq + 1;
    for (int i = 0; i < S; i++)
        state[i] = (float)(int32_t)test_rand(&seed) / 3e9f;
    memset(ck, 0, sizeof *ck);
    ck->model = model;
    ck->doc_len = strlen(doc);
    memcpy(ck->doc, doc, ck->doc_len);
    ck->next_seq = next_seq;
    ck->block_size = 256;
    ck->input = RWKVD_INPUT_TOKENS;
    rwkvd_doc_opts_default(&ck->opts);
    ck->state = state;
}

/* A fresh empty directory under /tmp for one test. */
static const char *fresh_dir(const char *name)
{
    static char path[256];
    if (!root[0]) {
        strcpy(root, "/tmp/rwkvd-test-store-XXXXXX");
        if (!mkdtemp(root))
            return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", root, name);
    return path;
}

/* Number of entries in dir whose name contains `part`. */
static int count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

static int flip_byte(const char *path, long at)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    unsigned char c;
    int ok = pread(fd, &c, 1, at) == 1;
    c ^= 0x40;
    ok = ok && pwrite(fd, &c, 1, at) == 1;
    close(fd);
    return ok ? 0 : -1;
}

static void test_names_are_safe(void)
{
    char name[RWKVD_CKPT_NAME_MAX];
    rwkvd_ckpt_file_name((const uint8_t *)"../x", 4, name);
    CHECKF(strcmp(name, "d-2e2e2f78.ckpt") == 0, "%s", name);
    uint8_t nul[3] = {0, '/', 0xff};
    rwkvd_ckpt_file_name(nul, 3, name);
    CHECKF(strcmp(name, "d-002fff.ckpt") == 0, "%s", name);
    uint8_t long_id[RWKVD_DOC_MAX];
    memset(long_id, 'a', sizeof long_id);
    rwkvd_ckpt_file_name(long_id, sizeof long_id, name);
    CHECKF(strncmp(name, "h-", 2) == 0 && strlen(name) == 2 + 64 + 5, "%s", name);
    rwkvd_ckpt_file_name(long_id, RWKVD_CKPT_HEX_MAX, name);
    CHECK(name[0] == 'd' && strlen(name) == 2 + 128 + 5);
    char other[RWKVD_CKPT_NAME_MAX];
    rwkvd_ckpt_file_name(long_id, RWKVD_CKPT_HEX_MAX + 1, other);
    CHECK(other[0] == 'h' && strcmp(name, other) != 0);
}

static void test_save_load_generations(void)
{
    const char *dir = fresh_dir("gen");
    rwkvd_ckpt_store *st;
    rwkv_error err;
    CHECKF(rwkvd_ckpt_store_open(dir, &st, &err) == 0, "%s", err.msg);
    rwkvd_ckpt ck, back;
    rwkvd_ckpt_load_result res;
    /* nothing yet */
    CHECK(rwkvd_ckpt_store_load(st, (const uint8_t *)"doc-1", 5, &model, 0, &back, &res, &err) == -1);
    CHECK(res.status == RWKVD_CKPT_NOT_FOUND);
    make_ckpt(&ck, "doc-1", 3);
    CHECKF(rwkvd_ckpt_store_save(st, &ck, 3, &err) == 0, "%s", err.msg);
    make_ckpt(&ck, "doc-1", 7);
    CHECKF(rwkvd_ckpt_store_save(st, &ck, 3, &err) == 0, "%s", err.msg);
    CHECK(count_files(dir, ".ckpt") == 2 && count_files(dir, ".prev") == 1);
    CHECK(count_files(dir, ".tmp.") == 0);
    int rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"doc-1", 5, &model, 0, &back, &res, &err);
    CHECKF(rc == 0 && res.status == RWKVD_CKPT_OK && !res.from_prev, "%s", err.msg);
    CHECK(back.next_seq == 7 && memcmp(back.state, state, sizeof state) == 0);
    rwkvd_ckpt_release(&back);

    /* damage the newest: the previous generation is used, and we hear why */
    char path[512];
    snprintf(path, sizeof path, "%s/d-646f632d31.ckpt", dir);
    CHECK(flip_byte(path, 300) == 0);
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"doc-1", 5, &model, 0, &back, &res, &err);
    CHECKF(rc == 0 && res.from_prev && back.next_seq == 3, "%s", err.msg);
    CHECKF(strstr(res.newest_error.msg, path) && strstr(res.newest_error.msg, "checksum mismatch"),
           "%s", res.newest_error.msg);
    rwkvd_ckpt_release(&back);

    /* damage both: a clean refusal naming both files */
    char prev[600];
    snprintf(prev, sizeof prev, "%s.prev", path);
    CHECK(truncate(prev, 100) == 0);
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"doc-1", 5, &model, 0, &back, &res, &err);
    CHECK(rc == -1 && res.status == RWKVD_CKPT_CORRUPT && back.owned == NULL);
    CHECKF(strstr(err.msg, "d-646f632d31.ckpt:") && strstr(err.msg, "previous generation") &&
           strstr(err.msg, ".prev: offset 100: truncated"), "%s", err.msg);

    /* a newer save over damaged files works again */
    make_ckpt(&ck, "doc-1", 9);
    CHECKF(rwkvd_ckpt_store_save(st, &ck, 3, &err) == 0, "%s", err.msg);
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"doc-1", 5, &model, 0, &back, &res, &err);
    CHECKF(rc == 0 && !res.from_prev && back.next_seq == 9, "%s", err.msg);
    rwkvd_ckpt_release(&back);
    rwkvd_ckpt_store_close(st);
}

static void test_other_model_and_wrong_doc(void)
{
    const char *dir = fresh_dir("other");
    rwkvd_ckpt_store *st;
    rwkv_error err;
    CHECKF(rwkvd_ckpt_store_open(dir, &st, &err) == 0, "%s", err.msg);
    rwkvd_ckpt ck, back;
    rwkvd_ckpt_load_result res;
    make_ckpt(&ck, "x", 1);
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    rwkvd_model_id other = model;
    other.model_sha256[5] = 0;
    int rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"x", 1, &other, 0, &back, &res, &err);
    CHECKF(rc == -1 && res.status == RWKVD_CKPT_OTHER_MODEL && strstr(err.msg, "d-78.ckpt"),
           "%s", err.msg);
    /* a file renamed to another document's name is not that document */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/d-78.ckpt", dir);
    snprintf(b, sizeof b, "%s/d-79.ckpt", dir);
    CHECK(rename(a, b) == 0);
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"y", 1, &model, 0, &back, &res, &err);
    CHECKF(rc == -1 && res.status == RWKVD_CKPT_CORRUPT && strstr(err.msg, "another document"),
           "%s", err.msg);
    rwkvd_ckpt_store_close(st);
}

/* An intact newest of another precision is not passed over for a .prev
 * that matches: the document has left that state (a bf16 document
 * continued as mixed must not silently go back to its bf16 generation). */
static void test_newest_of_other_precision_kept(void)
{
    const char *dir = fresh_dir("prec");
    rwkvd_ckpt_store *st;
    rwkv_error err;
    CHECKF(rwkvd_ckpt_store_open(dir, &st, &err) == 0, "%s", err.msg);
    rwkvd_ckpt ck, back;
    rwkvd_ckpt_load_result res;
    int rc;
    make_ckpt(&ck, "x", 1);
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    make_ckpt(&ck, "x", 2);
    ck.blocks_done = 1; /* mixed needs a computed block */
    ck.tokens_done = 256;
    ck.model.precision = RWKVD_CKPT_PRECISION_MIXED;
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0); /* .prev: the fp32 one */
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"x", 1, &model, 0, &back, &res, &err);
    CHECKF(rc == -1 && res.status == RWKVD_CKPT_OTHER_MODEL && !res.from_prev &&
               strstr(err.msg, "mixed precisions") && !strstr(err.msg, ".prev"),
           "%s", err.msg);
    rwkvd_model_id any = model;
    any.precision = RWKVD_CKPT_PRECISION_ANY; /* --allow-precision-change: the newest */
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"x", 1, &any, 0, &back, &res, &err);
    CHECKF(rc == 0 && !res.from_prev && back.model.precision == RWKVD_CKPT_PRECISION_MIXED &&
               back.next_seq == ck.next_seq,
           "%s", err.msg);
    rwkvd_ckpt_release(&back);
    /* a damaged newest still falls back to the previous generation */
    char newest[512];
    snprintf(newest, sizeof newest, "%s/d-78.ckpt", dir);
    FILE *f = fopen(newest, "r+b");
    CHECK(f && fseek(f, 0, SEEK_SET) == 0 && fputc('X', f) != EOF);
    fclose(f);
    rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"x", 1, &model, 0, &back, &res, &err);
    CHECKF(rc == 0 && res.from_prev && back.model.precision == 0, "%s", err.msg);
    rwkvd_ckpt_release(&back);
    rwkvd_ckpt_store_close(st);
}

static void test_failed_write_leaves_no_trace(void)
{
    const char *dir = fresh_dir("fail");
    rwkvd_ckpt_store *st;
    rwkv_error err;
    CHECKF(rwkvd_ckpt_store_open(dir, &st, &err) == 0, "%s", err.msg);
    rwkvd_ckpt ck, back;
    make_ckpt(&ck, "big", 1);
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    /* a child whose file size limit stops the next write half-way (EFBIG,
     * root or not) */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        make_ckpt(&ck, "big", 2);
        rwkv_error e;
        int rc = rwkvd_ckpt_store_save(st, &ck, 1, &e);
        int ok = rc == -1 && strstr(e.msg, "d-626967.ckpt: write:") != NULL;
        _exit(ok ? 0 : 1);
    }
    int stt = 0;
    CHECK(waitpid(pid, &stt, 0) == pid);
    CHECKF(WIFEXITED(stt) && WEXITSTATUS(stt) == 0, "child status 0x%x", stt);
    CHECK(count_files(dir, ".tmp.") == 0);
    CHECK(count_files(dir, ".prev") == 0); /* the old file was not rotated away */
    rwkvd_ckpt_load_result res;
    int rc = rwkvd_ckpt_store_load(st, (const uint8_t *)"big", 3, &model, 0, &back, &res, &err);
    CHECKF(rc == 0 && !res.from_prev && back.next_seq == 1, "%s", err.msg);
    rwkvd_ckpt_release(&back);
    /* the writer refuses an invalid snapshot before touching the disk */
    make_ckpt(&ck, "big", 4);
    ck.state = NULL;
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == -1);
    CHECKF(strstr(err.msg, "recurrent state"), "%s", err.msg);
    CHECK(count_files(dir, ".tmp.") == 0 && count_files(dir, ".prev") == 0);
    rwkvd_ckpt_store_close(st);
}

static void test_unusable_directories(void)
{
    rwkvd_ckpt_store *st;
    rwkv_error err;
    /* a path whose parent is a regular file */
    const char *f = fresh_dir("plainfile");
    FILE *fp = fopen(f, "w");
    CHECK(fp);
    fclose(fp);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/state", f);
    CHECK(rwkvd_ckpt_store_open(sub, &st, &err) == -1 && st == NULL);
    CHECKF(strstr(err.msg, "cannot create directory") && strstr(err.msg, "Not a directory"), "%s",
           err.msg);
    CHECK(rwkvd_ckpt_store_open(f, &st, &err) == -1);
    CHECKF(strstr(err.msg, "plainfile"), "%s", err.msg);
    /* a directory without write permission; root ignores permissions, so
     * as root the attempt runs in a child that has become "nobody" */
    const char *ro = fresh_dir("readonly");
    CHECK(mkdir(ro, 0555) == 0 && chmod(ro, 0555) == 0);
    if (geteuid() != 0) {
        int rc = rwkvd_ckpt_store_open(ro, &st, &err);
        CHECKF(rc == -1 && strstr(err.msg, "lock: cannot create"), "%s", err.msg);
        return;
    }
    CHECK(chmod(root, 0711) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        rwkv_error e;
        int rc = rwkvd_ckpt_store_open(ro, &st, &e);
        _exit(rc == -1 && strstr(e.msg, "lock: cannot create") && strstr(e.msg, "ermission") ? 0 : 1);
    }
    int stt = 0;
    CHECK(waitpid(pid, &stt, 0) == pid);
    chmod(root, 0700);
    if (WIFEXITED(stt) && WEXITSTATUS(stt) == 2) {
        test_skip("test_unusable_directories/read-only-dir",
                  "running as root and cannot drop privileges; the other cases ran");
        return;
    }
    CHECKF(WIFEXITED(stt) && WEXITSTATUS(stt) == 0, "child status 0x%x", stt);
}

static void test_lock_and_debris(void)
{
    const char *dir = fresh_dir("lock");
    rwkvd_ckpt_store *a, *b;
    rwkv_error err;
    CHECKF(rwkvd_ckpt_store_open(dir, &a, &err) == 0, "%s", err.msg);
    CHECK(rwkvd_ckpt_store_open(dir, &b, &err) == -1);
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    CHECKF(strstr(err.msg, "in use by another rwkvd") && strstr(err.msg, pid), "%s", err.msg);
    rwkvd_ckpt_store_close(a);
    /* debris of a crashed write is removed at open, other files are not */
    char path[512];
    snprintf(path, sizeof path, "%s/d-61.ckpt" RWKVD_TMP_MARK "123.4", dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    fp = fopen(path, "w");
    CHECK(fp);
    fclose(fp);
    CHECKF(rwkvd_ckpt_store_open(dir, &b, &err) == 0, "%s", err.msg);
    CHECK(count_files(dir, ".tmp.") == 0 && count_files(dir, "notes.txt") == 1);
    rwkvd_ckpt_store_close(b);
    rwkvd_ckpt_store_close(NULL);
}

typedef struct {
    int n, n_prev;
    uint64_t seq_sum;
} list_acc;

static int on_doc(void *ctx, const rwkvd_ckpt_info *info, bool from_prev)
{
    list_acc *acc = ctx;
    acc->n++;
    acc->n_prev += from_prev;
    acc->seq_sum += info->next_seq;
    return 0;
}

static void test_list_and_remove(void)
{
    const char *dir = fresh_dir("list");
    rwkvd_ckpt_store *st;
    rwkv_error err;
    CHECKF(rwkvd_ckpt_store_open(dir, &st, &err) == 0, "%s", err.msg);
    rwkvd_ckpt ck;
    char id[RWKVD_DOC_MAX + 1];
    for (int i = 0; i < 5; i++) {
        /* short and long (hashed) ids alike */
        memset(id, 'a' + i, sizeof id);
        id[i == 4 ? RWKVD_DOC_MAX : 3] = '\0';
        make_ckpt(&ck, id, (uint64_t)i + 1);
        CHECKF(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0, "%s", err.msg);
    }
    make_ckpt(&ck, "aaa", 10); /* a second generation: still one document */
    CHECK(rwkvd_ckpt_store_save(st, &ck, 1, &err) == 0);
    list_acc acc = {0};
    size_t bad = 99;
    CHECK(rwkvd_ckpt_store_list(st, on_doc, &acc, &bad, &err) == 0);
    CHECKF(acc.n == 5 && acc.n_prev == 0 && bad == 0 && acc.seq_sum == 10 + 2 + 3 + 4 + 5,
           "n %d prev %d bad %zu sum %llu", acc.n, acc.n_prev, bad,
           (unsigned long long)acc.seq_sum);
    /* damaged newest of "bbb": listed from .prev?  it has none: counted bad */
    char path[512];
    snprintf(path, sizeof path, "%s/d-626262.ckpt", dir);
    CHECK(flip_byte(path, 20) == 0);
    /* "aaa" with only its .prev left (crash between the two renames) */
    char prev[512];
    snprintf(path, sizeof path, "%s/d-616161.ckpt", dir);
    snprintf(prev, sizeof prev, "%s/d-616161.ckpt.prev", dir);
    CHECK(unlink(path) == 0);
    acc = (list_acc){0};
    CHECK(rwkvd_ckpt_store_list(st, on_doc, &acc, &bad, &err) == 0);
    CHECKF(acc.n == 4 && acc.n_prev == 1 && bad == 1, "n %d prev %d bad %zu", acc.n, acc.n_prev,
           bad);
    /* drop removes both generations */
    bool existed = false;
    CHECK(rwkvd_ckpt_store_remove(st, (const uint8_t *)"aaa", 3, &existed, &err) == 0 && existed);
    CHECK(access(prev, F_OK) != 0);
    CHECK(rwkvd_ckpt_store_remove(st, (const uint8_t *)"aaa", 3, &existed, &err) == 0 && !existed);
    rwkvd_ckpt_store_close(st);
}

static void test_atomic_write_directly(void)
{
    const char *dir = fresh_dir("atomic");
    CHECK(mkdir(dir, 0700) == 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    rwkv_error err;
    CHECK(rwkvd_atomic_write(dfd, dir, "f", NULL, "one", 3, &err) == 0);
    CHECK(rwkvd_atomic_write(dfd, dir, "f", "f.old", "two", 3, &err) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    size_t n;
    char *got = file_read_all(path, &n);
    CHECK(got && n == 3 && memcmp(got, "two", 3) == 0);
    free(got);
    snprintf(path, sizeof path, "%s/f.old", dir);
    got = file_read_all(path, &n);
    CHECK(got && n == 3 && memcmp(got, "one", 3) == 0);
    free(got);
    /* a rename that cannot happen (target is a non-empty directory) fails
     * cleanly and leaves no temp file */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/d", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(path, sizeof path, "%s/d/x", dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp);
    fclose(fp);
    CHECK(rwkvd_atomic_write(dfd, dir, "d", NULL, "x", 1, &err) == -1);
    CHECKF(strstr(err.msg, "/d: rename:"), "%s", err.msg);
    CHECK(count_files(dir, ".tmp.") == 0);
    close(dfd);
}

static void cleanup(void)
{
    if (root[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            printf("note: could not remove %s\n", root);
    }
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_names_are_safe);
    RUN(test_save_load_generations);
    RUN(test_other_model_and_wrong_doc);
    RUN(test_newest_of_other_precision_kept);
    RUN(test_failed_write_leaves_no_trace);
    RUN(test_unusable_directories);
    RUN(test_lock_and_debris);
    RUN(test_list_and_remove);
    RUN(test_atomic_write_directly);
    cleanup();
    return test_summary();
}
