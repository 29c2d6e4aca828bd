/* replay_main.c — runs a libFuzzer target over its seed corpus without
 * libFuzzer, so `make test` (gcc, ASan+UBSan) replays every corpus file.
 *
 * Usage: replay_<name> [DIR|FILE...]; with no argument it replays
 * tests/fuzz/corpus/<name>/, where <name> comes from argv[0].  Prints one
 * PASS line per corpus; a crash or sanitizer report aborts the program, which
 * the test runner counts as a failure.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    size_t n = 0;
    uint8_t *buf = file_read_all(path, &n);
    if (!buf) {
        printf("FAIL: replay: cannot read %s\n", path);
        return -1;
    }
    /* exact-size copy so ASan sees reads past the end of the input */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("FAIL: replay: corpus directory %s missing\n", dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (replay_file(path) != 0)
            rc = -1;
        (*count)++;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    const char *name = strncmp(base, "replay_", 7) == 0 ? base + 7 : base;
    char def[1024];
    int count = 0, rc = 0;
    if (argc < 2) {
        snprintf(def, sizeof def, "tests/fuzz/corpus/%s", name);
        rc = replay_dir(def, &count);
    } else {
        for (int i = 1; i < argc; i++) {
            struct stat st;
            if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                rc |= replay_dir(argv[i], &count);
            else
                rc |= replay_file(argv[i]), count++;
        }
    }
    if (rc == 0 && count == 0) {
        printf("FAIL: replay %s: empty corpus\n", name);
        return 1;
    }
    if (rc == 0)
        printf("PASS: replay %s (%d inputs)\n", name, count);
    return rc ? 1 : 0;
}
