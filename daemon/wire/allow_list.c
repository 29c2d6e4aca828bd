/* allow_list.c — see allow_list.h. */
#include "daemon/wire/allow_list.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rwkvd_allow_list {
    size_t n;
    uint8_t (*keys)[RWKV_CURVE_KEY_BYTES];
};

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, RWKV_CURVE_KEY_BYTES);
}

int rwkvd_allow_list_load(const char *dir, rwkvd_allow_list **out, rwkv_error *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return rwkv_fail(err, "allow-list directory %s: %s", dir, strerror(errno));
    rwkvd_allow_list *l = calloc(1, sizeof *l);
    size_t cap = 0;
    int rc = l ? 0 : rwkv_fail(err, "out of memory");
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096 + 256 + 2];
        int k = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof path) {
            rc = rwkv_fail(err, "allow-list directory %s: a path is too long", dir);
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = rwkv_fail(err, "allow-list file %s: %s", path, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (l->n == RWKVD_ALLOW_LIST_MAX) {
            rc = rwkv_fail(err, "allow-list directory %s: more than %d key files", dir,
                           RWKVD_ALLOW_LIST_MAX);
            break;
        }
        rwkv_curve_keyfile kf;
        if (rwkv_curve_keyfile_load(path, false, &kf, err) != 0) {
            rc = -1;
            break;
        }
        memset(kf.secret_key, 0, sizeof kf.secret_key);
        if (l->n == cap) {
            cap = cap ? cap * 2 : 16;
            void *nk = realloc(l->keys, cap * sizeof *l->keys);
            if (!nk) {
                rc = rwkv_fail(err, "out of memory");
                break;
            }
            l->keys = nk;
        }
        memcpy(l->keys[l->n++], kf.public_key, RWKV_CURVE_KEY_BYTES);
    }
    if (rc == 0 && errno != 0)
        rc = rwkv_fail(err, "allow-list directory %s: %s", dir, strerror(errno));
    closedir(d);
    if (rc != 0) {
        rwkvd_allow_list_free(l);
        return -1;
    }
    if (l->n) {
        qsort(l->keys, l->n, sizeof *l->keys, cmp_key);
        size_t w = 1; /* the same key in two files counts once */
        for (size_t r = 1; r < l->n; r++)
            if (memcmp(l->keys[r], l->keys[w - 1], RWKV_CURVE_KEY_BYTES) != 0)
                memcpy(l->keys[w++], l->keys[r], RWKV_CURVE_KEY_BYTES);
        l->n = w;
    }
    *out = l;
    return 0;
}

size_t rwkvd_allow_list_count(const rwkvd_allow_list *l)
{
    return l ? l->n : 0;
}

bool rwkvd_allow_list_has(const rwkvd_allow_list *l, const uint8_t key[RWKV_CURVE_KEY_BYTES])
{
    return l && l->n && bsearch(key, l->keys, l->n, sizeof *l->keys, cmp_key) != NULL;
}

void rwkvd_allow_list_free(rwkvd_allow_list *l)
{
    if (!l)
        return;
    free(l->keys);
    free(l);
}
