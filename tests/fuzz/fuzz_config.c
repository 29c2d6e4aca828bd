/* fuzz_config.c — libFuzzer target for the configuration readers
 * (daemon/config.h).  First byte even: the rest is an INI file; whatever is
 * accepted must dump (rwkvd_config_format) and read back to the identical
 * struct.  Odd: the rest is a command line, NUL-separated arguments.
 * Seeds in tests/fuzz/corpus/config/ are small hand-written files.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rwkvd_config c, back;
    rwkv_error err;
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (!(data[0] & 1)) {
        rwkvd_config_defaults(&c);
        if (rwkvd_config_parse_ini(&c, "fuzz.ini", p, n, &err) == 0) {
            char *text = rwkvd_config_format(&c);
            if (!text)
                abort();
            rwkvd_config_defaults(&back);
            if (rwkvd_config_parse_ini(&back, "dump", text, strlen(text), &err) != 0 ||
                memcmp(&c, &back, sizeof c) != 0)
                abort();
            free(text);
        } else if (!err.msg[0]) {
            abort();
        }
        return 0;
    }
    char *copy = malloc(n + 1);
    memcpy(copy, p, n);
    copy[n] = '\0';
    char *argv[34];
    int argc = 0;
    argv[argc++] = (char *)"rwkvd";
    for (size_t i = 0; i <= n && argc < 33;) {
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    argv[argc] = NULL;
    char *envp[] = {NULL};
    rwkvd_config_action act;
    if (rwkvd_config_load(&c, argc, argv, envp, &act, &err) != 0 && !err.msg[0])
        abort();
    free(copy);
    return 0;
}
