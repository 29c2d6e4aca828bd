/* config_load.c — reading the configuration sources: INI text, the
 * environment, the command line, in precedence order, and SIGHUP reload
 * (see config.h).  The INI file is outside input like any other: bounded
 * file and line sizes, no control bytes, every problem named by file:line.
 */
#include "daemon/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/quote.h"

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

int rwkvd_config_parse_ini(rwkvd_config *c, const char *label, const char *buf, size_t len,
                           rwkv_error *err)
{
    size_t n_opts;
    const rwkvd_option *opts = rwkvd_config_options(&n_opts);
    int seen_line[64] = {0}; /* line where each option was set (duplicates) */
    if (n_opts > 64)
        return rwkv_fail(err, "%s: internal: option table too large", label);
    if (len > RWKVD_INI_FILE_MAX)
        return rwkv_fail(err, "%s: %zu bytes, at most %d", label, len, RWKVD_INI_FILE_MAX);
    size_t pos = 0;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        pos = 3; /* UTF-8 byte order mark */
    bool in_section = true; /* before any section header: the [rwkvd] section */
    for (int line = 1; pos < len; line++) {
        const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        const char *e = nl ? nl : buf + len;
        pos = (size_t)(e - buf) + (nl ? 1 : 0);
        if (e - s > RWKVD_INI_LINE_MAX)
            return rwkv_fail(err, "%s:%d: line longer than %d bytes", label, line,
                             RWKVD_INI_LINE_MAX);
        for (const char *p = s; p < e; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t' && *p != '\r') || *p == 0x7f)
                return rwkv_fail(err, "%s:%d: control byte 0x%02x at column %d", label, line,
                                 (unsigned char)*p, (int)(p - s) + 1);
        trim(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        rwkv_quoted q;
        if (*s == '[') {
            if (e[-1] != ']')
                return rwkv_fail(err, "%s:%d: section header without ']'", label, line);
            const char *a = s + 1, *b = e - 1;
            trim(&a, &b);
            in_section = (size_t)(b - a) == 5 && memcmp(a, "rwkvd", 5) == 0;
            if (!in_section)
                return rwkv_fail(err, "%s:%d: unknown section [%s] (only [rwkvd])", label, line,
                                 rwkv_quote(&q, a, (size_t)(b - a)));
            continue;
        }
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq)
            return rwkv_fail(err, "%s:%d: expected 'name = value'", label, line);
        const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"')
            vs++, ve--;
        char key[64], value[RWKVD_INI_LINE_MAX + 1];
        if (ke == ks || (size_t)(ke - ks) >= sizeof key)
            return rwkv_fail(err, "%s:%d: unknown key '%s'", label, line,
                             rwkv_quote(&q, ks, (size_t)(ke - ks)));
        memcpy(key, ks, (size_t)(ke - ks));
        key[ke - ks] = '\0';
        memcpy(value, vs, (size_t)(ve - vs));
        value[ve - vs] = '\0';
        const rwkvd_option *o = rwkvd_config_find(key);
        if (!o)
            return rwkv_fail(err, "%s:%d: unknown key '%s'", label, line, rwkv_quote(&q, key, strlen(key)));
        if (o->not_in_ini)
            return rwkv_fail(err, "%s:%d: '%s' cannot be set in a config file", label, line, o->name);
        size_t idx = (size_t)(o - opts);
        if (seen_line[idx])
            return rwkv_fail(err, "%s:%d: '%s' already set on line %d", label, line, o->name,
                             seen_line[idx]);
        seen_line[idx] = line;
        if (rwkvd_config_set(c, key, value, err) != 0)
            return rwkv_fail_prefix(err, "%s:%d", label, line);
    }
    return 0;
}

int rwkvd_config_load_ini(rwkvd_config *c, const char *path, rwkv_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rwkv_fail(err, "%s: cannot open config file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return rwkv_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size > RWKVD_INI_FILE_MAX) {
        fclose(f);
        return rwkv_fail(err, "%s: %lld bytes, at most %d", path, (long long)st.st_size,
                         RWKVD_INI_FILE_MAX);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return rwkv_fail(err, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, (size_t)st.st_size + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = bad ? rwkv_fail(err, "%s: read error", path)
                 : rwkvd_config_parse_ini(c, path, buf, n, err);
    free(buf);
    return rc;
}

/* The value of NAME in envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static void env_name(const rwkvd_option *o, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "RWKVD_");
    for (const char *p = o->name; *p && k < len - 1; p++)
        buf[k++] = (char)toupper((unsigned char)*p);
    buf[k] = '\0';
}

int rwkvd_config_load_env(rwkvd_config *c, char *const *envp, rwkv_error *err)
{
    size_t n;
    const rwkvd_option *opts = rwkvd_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char name[80];
        env_name(&opts[i], name, sizeof name);
        const char *v = env_get(envp, name);
        if (v && rwkvd_config_set(c, opts[i].name, v, err) != 0)
            return rwkv_fail_prefix(err, "environment %s", name);
    }
    return 0;
}

/* One pass over argv: --help/--version, the --config value, and every
 * "--name value" pair checked for syntax; apply != 0 also sets them. */
static int scan_cli(rwkvd_config *c, int argc, char *const *argv, bool apply,
                    rwkvd_config_action *action, const char **config, rwkv_error *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *action = RWKVD_CONFIG_HELP;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            if (*action == RWKVD_CONFIG_RUN)
                *action = RWKVD_CONFIG_VERSION;
            continue;
        }
        rwkv_quoted q;
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            return rwkv_fail(err, "command line: unexpected argument '%s' (options are --name value; "
                                  "see --help)", rwkv_quote(&q, a, strlen(a)));
        char name[64];
        const char *eq = strchr(a + 2, '='), *value;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof name)
            return rwkv_fail(err, "command line: unknown option '%s' (see --help)",
                             rwkv_quote(&q, a, strlen(a)));
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        const rwkvd_option *o = rwkvd_config_find(name);
        if (!o)
            return rwkv_fail(err, "command line: unknown option '--%s' (see --help)",
                             rwkv_quote(&q, name, nl));
        if (eq) {
            value = eq + 1;
        } else if (o->type == RWKVD_OPT_BOOL) {
            value = "true"; /* a flag: --name alone turns it on */
        } else {
            if (i + 1 >= argc)
                return rwkv_fail(err, "command line: --%s needs a value", name);
            value = argv[++i];
        }
        if (o->not_in_ini && config)
            *config = value;
        if (apply && rwkvd_config_set(c, o->name, value, err) != 0)
            return rwkv_fail_prefix(err, "command line --%s", name);
    }
    return 0;
}

int rwkvd_config_load(rwkvd_config *c, int argc, char *const *argv, char *const *envp,
                      rwkvd_config_action *action, rwkv_error *err)
{
    const char *config = NULL;
    *action = RWKVD_CONFIG_RUN;
    rwkvd_config_defaults(c);
    if (scan_cli(c, argc, argv, false, action, &config, err) != 0)
        return -1;
    if (*action != RWKVD_CONFIG_RUN)
        return 0;
    const char *sd = env_get(envp, "STATE_DIRECTORY");
    if (sd && *sd) {
        /* systemd may list several directories separated by ':'; ours is the first */
        char first[RWKVD_CFG_PATH_MAX];
        size_t n = strcspn(sd, ":");
        if (n >= sizeof first)
            return rwkv_fail(err, "environment STATE_DIRECTORY: path too long");
        memcpy(first, sd, n);
        first[n] = '\0';
        if (rwkvd_config_set(c, "state_dir", first, err) != 0)
            return rwkv_fail_prefix(err, "environment STATE_DIRECTORY");
    }
    if (!config)
        config = env_get(envp, "RWKVD_CONFIG");
    if (config && *config) {
        if (rwkvd_config_load_ini(c, config, err) != 0)
            return -1;
    }
    if (rwkvd_config_load_env(c, envp, err) != 0)
        return -1;
    if (scan_cli(c, argc, argv, true, action, NULL, err) != 0)
        return -1;
    if (config && rwkvd_config_set(c, "config", config, err) != 0)
        return -1;
    if (!c->model[0])
        return rwkv_fail(err, "no model: give --model PATH (or RWKVD_MODEL, or model = in the "
                              "config file); see --help");
    return 0;
}

int rwkvd_config_reload(const rwkvd_config *cur, rwkvd_config *next, int argc,
                        char *const *argv, char *const *envp, char *kept, size_t kept_len,
                        rwkv_error *err)
{
    rwkvd_config_action action;
    if (kept_len)
        kept[0] = '\0';
    if (rwkvd_config_load(next, argc, argv, envp, &action, err) != 0)
        return -1;
    size_t n, used = 0;
    const rwkvd_option *opts = rwkvd_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        const rwkvd_option *o = &opts[i];
        char a[RWKVD_CFG_PATH_MAX], b[RWKVD_CFG_PATH_MAX];
        rwkvd_config_value(cur, o, a, sizeof a);
        rwkvd_config_value(next, o, b, sizeof b);
        if (o->reloadable || strcmp(a, b) == 0)
            continue;
        memcpy((char *)next + o->offset, (const char *)cur + o->offset, o->size);
        if (o->type == RWKVD_OPT_DEVICE) {
            next->device_kind = cur->device_kind;
            next->device_index = cur->device_index;
        }
        if (o->type == RWKVD_OPT_PRECISION)
            next->precision_code = cur->precision_code;
        if (kept_len > used + 1) {
            int k = snprintf(kept + used, kept_len - used, "%s%s", used ? ", " : "", o->name);
            used = k > 0 && (size_t)k < kept_len - used ? used + (size_t)k : kept_len - 1;
        }
    }
    return 0;
}
