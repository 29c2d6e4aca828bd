/* partition.c — see partition.h. */
#include "daemon/cluster/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint32_t rwkvd_fnv1a32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

size_t rwkvd_doc_hex(const uint8_t *doc, size_t len, char out[RWKVD_DOC_HEX_MAX])
{
    static const char digits[] = "0123456789abcdef";
    if (len > (RWKVD_DOC_HEX_MAX - 1) / 2)
        len = (RWKVD_DOC_HEX_MAX - 1) / 2;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[doc[i] >> 4];
        out[2 * i + 1] = digits[doc[i] & 15];
    }
    out[2 * len] = '\0';
    return 2 * len;
}

uint32_t rwkvd_doc_partition(const uint8_t *doc, size_t len, uint32_t p)
{
    char hex[RWKVD_DOC_HEX_MAX];
    size_t n = rwkvd_doc_hex(doc, len, hex);
    return rwkvd_fnv1a32(hex, n) % (p ? p : 1);
}

void rwkvd_in_subject(const uint8_t *doc, size_t len, uint32_t p, char out[RWKVD_SUBJECT_MAX])
{
    char hex[RWKVD_DOC_HEX_MAX];
    rwkvd_doc_hex(doc, len, hex);
    snprintf(out, RWKVD_SUBJECT_MAX, "rwkvd.in.%u.%s", rwkvd_doc_partition(doc, len, p), hex);
}

bool rwkvd_in_subject_partition(const char *subject, uint32_t *part)
{
    static const char prefix[] = "rwkvd.in.";
    if (strncmp(subject, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *s = subject + sizeof prefix - 1;
    uint32_t n = 0;
    size_t digits = 0;
    for (; *s >= '0' && *s <= '9' && digits < 6; s++, digits++)
        n = n * 10 + (uint32_t)(*s - '0');
    if (!digits || *s != '.' || !s[1])
        return false;
    *part = n;
    return true;
}

bool rwkvd_worker_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > RWKVD_WORKER_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void rwkvd_worker_id_default(char out[RWKVD_WORKER_ID_MAX + 1])
{
    char host[256] = "host";
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "host");
    host[sizeof host - 1] = '\0';
    char buf[300];
    snprintf(buf, sizeof buf, "%.40s-%ld", host, (long)getpid());
    size_t n = strlen(buf);
    if (n > RWKVD_WORKER_ID_MAX)
        n = RWKVD_WORKER_ID_MAX;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[n] = '\0';
}
