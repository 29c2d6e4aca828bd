/* test_config.c — daemon/config.h: defaults from the table, every value
 * type and range, the INI parser on good and hostile files, environment and
 * command line, precedence, --help completeness, the effective-config dump
 * reading back to the same struct, and SIGHUP reload keeping what it must.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "tests/testutil.h"

static rwkvd_config c;
static rwkv_error err;

static int ini(const char *text) { return rwkvd_config_parse_ini(&c, "t.ini", text, strlen(text), &err); }

static void test_defaults(void)
{
    size_t n;
    const rwkvd_option *o = rwkvd_config_options(&n);
    /* every default parses through the same setter as user input */
    for (size_t i = 0; i < n; i++) {
        rwkvd_config tmp;
        memset(&tmp, 0, sizeof tmp);
        CHECKF(rwkvd_config_set(&tmp, o[i].name, o[i].def, &err) == 0, "default of %s: %s",
               o[i].name, err.msg);
        CHECKF(o[i].help && strlen(o[i].help) > 10 && o[i].metavar, "%s has no help", o[i].name);
    }
    rwkvd_config_defaults(&c);
    CHECK(c.block_size == 256);
    CHECK(strcmp(c.ingest, "tcp://127.0.0.1:5555") == 0 && strcmp(c.emit, "tcp://127.0.0.1:5556") == 0 &&
          strcmp(c.control, "tcp://127.0.0.1:5557") == 0);
    CHECK(strcmp(c.state_dir, "./var/rwkvd") == 0);
    CHECK(c.device_kind == RWKVD_DEVICE_CPU && strcmp(c.device, "cpu") == 0);
    CHECK(c.metrics_port == 0 && c.zstd_level == 1 && c.log_level == RWKVD_LOG_INFO);
    CHECK(c.max_message_size == 8u << 20 && c.checkpoint_seconds == 30 && c.checkpoint_blocks == 16);
    CHECK(c.max_active_docs > 0 && c.ingest_hwm > 0 && c.emit_hwm > 0 && c.max_held_msgs >= 0);
}

static void test_value_types(void)
{
    rwkvd_config_defaults(&c);
    CHECK(rwkvd_config_set(&c, "block-size", "512", &err) == 0 && c.block_size == 512);
    CHECK(rwkvd_config_set(&c, "block_size", "0", &err) == -1);
    CHECKF(strstr(err.msg, "block_size: 0 is not in 1..65536"), "%s", err.msg);
    CHECK(rwkvd_config_set(&c, "block_size", "65537", &err) == -1);
    CHECK(rwkvd_config_set(&c, "block_size", "12x", &err) == -1);
    CHECK(rwkvd_config_set(&c, "block_size", " 12", &err) == -1);
    CHECK(rwkvd_config_set(&c, "block_size", "", &err) == -1);
    CHECK(rwkvd_config_set(&c, "block_size", "99999999999999999999999", &err) == -1);
    CHECK(c.block_size == 512); /* failures change nothing */
    CHECK(rwkvd_config_set(&c, "max_message_size", "16M", &err) == 0 && c.max_message_size == 16u << 20);
    CHECK(rwkvd_config_set(&c, "max_message_size", "2048", &err) == 0 && c.max_message_size == 2048);
    CHECK(rwkvd_config_set(&c, "max_message_size", "1k", &err) == 0 && c.max_message_size == 1024);
    CHECK(rwkvd_config_set(&c, "max_message_size", "2G", &err) == -1);
    CHECK(rwkvd_config_set(&c, "max_message_size", "-1", &err) == -1);
    CHECK(rwkvd_config_set(&c, "max_message_size", "M", &err) == -1);
    CHECK(rwkvd_config_set(&c, "max_message_size", "9223372036854775807G", &err) == -1);
    CHECK(rwkvd_config_set(&c, "checkpoint_seconds", "2.5", &err) == 0 && c.checkpoint_seconds == 2.5);
    CHECK(rwkvd_config_set(&c, "checkpoint_seconds", "nan", &err) == -1);
    CHECK(rwkvd_config_set(&c, "checkpoint_seconds", "inf", &err) == -1);
    CHECK(rwkvd_config_set(&c, "checkpoint_seconds", "-1", &err) == -1);
    CHECK(rwkvd_config_set(&c, "log_level", "debug", &err) == 0 && c.log_level == RWKVD_LOG_DEBUG);
    CHECK(rwkvd_config_set(&c, "log_level", "verbose", &err) == -1);
    CHECK(rwkvd_config_set(&c, "device", "cuda:3", &err) == 0 && c.device_kind == RWKVD_DEVICE_CUDA &&
          c.device_index == 3 && strcmp(c.device, "cuda:3") == 0);
    CHECK(rwkvd_config_set(&c, "device", "cuda", &err) == 0 && c.device_index == 0);
    CHECK(rwkvd_config_set(&c, "device", "cpu", &err) == 0 && c.device_kind == RWKVD_DEVICE_CPU);
    CHECK(rwkvd_config_set(&c, "device", "cuda:64", &err) == -1);
    CHECK(rwkvd_config_set(&c, "device", "cuda:-1", &err) == -1);
    CHECK(rwkvd_config_set(&c, "device", "cuda:", &err) == -1);
    CHECK(rwkvd_config_set(&c, "device", "gpu", &err) == -1);
    CHECK(rwkvd_config_set(&c, "ingest", "ipc:///run/rwkvd/in", &err) == 0);
    CHECK(rwkvd_config_set(&c, "ingest", "inproc://x", &err) == 0);
    CHECK(rwkvd_config_set(&c, "ingest", "udp://1.2.3.4:5", &err) == -1);
    CHECK(rwkvd_config_set(&c, "ingest", "tcp://a b", &err) == -1);
    CHECK(rwkvd_config_set(&c, "model", "/m/with\x01ctl", &err) == -1);
    char longp[RWKVD_CFG_PATH_MAX + 10];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CHECK(rwkvd_config_set(&c, "model", longp, &err) == -1);
    CHECK(rwkvd_config_set(&c, "zstd_level", "-7", &err) == 0 && c.zstd_level == -7);
    CHECK(rwkvd_config_set(&c, "no_such_thing", "1", &err) == -1);
    CHECKF(strstr(err.msg, "unknown option"), "%s", err.msg);
}

static void test_ini_good(void)
{
    rwkvd_config_defaults(&c);
    const char *text = "\xef\xbb\xbf# comment\n"
                       "; another\n"
                       "\n"
                       "[rwkvd]\n"
                       "  model = /models/rwkv7.pth  \r\n"
                       "block-size=128\n"
                       "state_dir = \"/var/lib/rwkvd with space\"\n"
                       "log_file =\n"
                       "metrics_port\t=\t9100";
    CHECKF(ini(text) == 0, "%s", err.msg);
    CHECK(strcmp(c.model, "/models/rwkv7.pth") == 0 && c.block_size == 128);
    CHECK(strcmp(c.state_dir, "/var/lib/rwkvd with space") == 0);
    CHECK(c.log_file[0] == '\0' && c.metrics_port == 9100);
}

static void test_ini_hostile(void)
{
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        {"blok_size = 3\n", "t.ini:1: unknown key 'blok_size'"},
        {"\n\nmodel = a\nmodel = b\n", "t.ini:4: 'model' already set on line 3"},
        {"[server]\nport = 1\n", "t.ini:1: unknown section"},
        {"[rwkvd\n", "t.ini:1: section header without ']'"},
        {"just words\n", "t.ini:1: expected 'name = value'"},
        {"= 5\n", "t.ini:1: unknown key"},
        {"block_size = lots\n", "t.ini:1: block_size: 'lots' is not an integer"},
        {"config = other.ini\n", "cannot be set in a config file"},
        {"model = a\x01" "b\n", "t.ini:1: control byte 0x01"},
        {"model = a\x00" "b\n", "control byte 0x00"},
        {"# fine\n\x1b[31m\n", "t.ini:2: control byte 0x1b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rwkvd_config_defaults(&c);
        size_t len = strlen(cases[i].text);
        if (i == 9)
            len = 12; /* the embedded NUL case */
        int rc = rwkvd_config_parse_ini(&c, "t.ini", cases[i].text, len, &err);
        CHECKF(rc == -1 && strstr(err.msg, cases[i].expect), "case %zu: %s", i, err.msg);
    }
    /* a line longer than the limit */
    size_t n = RWKVD_INI_LINE_MAX + 20;
    char *big = malloc(n + 1);
    memcpy(big, "model = ", 8);
    memset(big + 8, 'x', n - 8);
    big[n] = '\0';
    CHECK(rwkvd_config_parse_ini(&c, "t.ini", big, n, &err) == -1);
    free(big);
    CHECKF(strstr(err.msg, "t.ini:1: line longer than"), "%s", err.msg);
    /* a file over the size limit is refused before parsing */
    CHECK(rwkvd_config_parse_ini(&c, "t.ini", "", (size_t)RWKVD_INI_FILE_MAX + 1, &err) == -1);
}

static char *argv_[32];
static int argc_;
static char *envp_[32];

static void args(const char *a0, ...)
{
    va_list ap;
    va_start(ap, a0);
    argc_ = 0;
    argv_[argc_++] = (char *)"rwkvd";
    for (const char *a = a0; a; a = va_arg(ap, const char *))
        argv_[argc_++] = (char *)a;
    argv_[argc_] = NULL;
    va_end(ap);
}
static void env(const char *e0, ...)
{
    va_list ap;
    va_start(ap, e0);
    int n = 0;
    for (const char *e = e0; e; e = va_arg(ap, const char *))
        envp_[n++] = (char *)e;
    envp_[n] = NULL;
    va_end(ap);
}

static char ini_path[64];

static void write_ini(const char *text)
{
    strcpy(ini_path, "/tmp/rwkvd-test-config-XXXXXX");
    int fd = mkstemp(ini_path);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0)
            ini_path[0] = '\0';
        close(fd);
    }
}

static void test_precedence(void)
{
    write_ini("model = /ini/model\nblock_size = 64\nthreads = 3\nemit_hwm = 7\n");
    CHECK(ini_path[0]);
    char cfg_env[128];
    snprintf(cfg_env, sizeof cfg_env, "RWKVD_CONFIG=%s", ini_path);
    rwkvd_config_action act;
    /* INI over defaults, env over INI, command line over env */
    args("--block-size", "128", "--threads=5", NULL);
    env(cfg_env, "RWKVD_BLOCK_SIZE=32", "RWKVD_THREADS=4", "RWKVD_FIXTURES=/elsewhere",
        "STATE_DIRECTORY=/var/lib/rwkvd:/var/lib/other", "PATH=/bin", NULL);
    int rc = rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err);
    CHECKF(rc == 0 && act == RWKVD_CONFIG_RUN, "%s", err.msg);
    CHECK(c.block_size == 128 && c.threads == 5 && c.emit_hwm == 7);
    CHECK(strcmp(c.model, "/ini/model") == 0 && strcmp(c.config_file, ini_path) == 0);
    CHECK(strcmp(c.state_dir, "/var/lib/rwkvd") == 0); /* systemd's, first of the list */
    /* --config on the command line beats RWKVD_CONFIG; a missing file is an error */
    args("--config", "/nonexistent/rwkvd.ini", NULL);
    rc = rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err);
    CHECKF(rc == -1 && strstr(err.msg, "/nonexistent/rwkvd.ini: cannot open"), "%s", err.msg);
    /* explicit state_dir beats $STATE_DIRECTORY */
    args("--model", "m", "--state-dir", "/explicit", NULL);
    env("STATE_DIRECTORY=/var/lib/rwkvd", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0);
    CHECK(strcmp(c.state_dir, "/explicit") == 0 && c.config_file[0] == '\0');
    /* errors name their source */
    args("--model", "m", NULL);
    env("RWKVD_BLOCK_SIZE=big", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "environment RWKVD_BLOCK_SIZE: block_size:"), "%s", err.msg);
    env(NULL);
    args("--model", "m", "--block-size", "0", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "command line --block-size:"), "%s", err.msg);
    unlink(ini_path);
}

static void test_command_line_forms(void)
{
    rwkvd_config_action act;
    env(NULL);
    args("--help", "--bogus-is-not-checked-after-help", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1); /* syntax first */
    args("--model", "m", "-h", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0 && act == RWKVD_CONFIG_HELP);
    args("--version", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0 && act == RWKVD_CONFIG_VERSION);
    args("--model", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "--model needs a value"), "%s", err.msg);
    args("--model", "m", "extra", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "unexpected argument 'extra'"), "%s", err.msg);
    args("--model", "m", "--blok-size", "5", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "unknown option '--blok-size'"), "%s", err.msg);
    args("--model", "m", "-v", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    args(NULL); /* nothing: the model is required */
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "no model"), "%s", err.msg);
    args("--model=/a=b", "--metrics_port=9", NULL); /* '=' inside a value, '_' in a flag */
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0);
    CHECK(strcmp(c.model, "/a=b") == 0 && c.metrics_port == 9);
}

/* A bool option (--allow-precision-change): a flag on the command line
 * (alone = true, =false off), a word in the environment and the INI file,
 * off by default, reloadable, and it reads back from the dump. */
static void test_bool_option(void)
{
    rwkvd_config_action act;
    rwkvd_config_defaults(&c);
    CHECK(!c.allow_precision_change);
    const rwkvd_option *o = rwkvd_config_find("allow-precision-change");
    CHECK(o && o->type == RWKVD_OPT_BOOL && o->reloadable);
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        CHECK(rwkvd_config_set(&c, "allow_precision_change", yes[i], &err) == 0 &&
              c.allow_precision_change);
        CHECK(rwkvd_config_set(&c, "allow_precision_change", no[i], &err) == 0 &&
              !c.allow_precision_change);
    }
    CHECK(rwkvd_config_set(&c, "allow_precision_change", "True", &err) == -1);
    CHECKF(strstr(err.msg, "allow_precision_change: 'True' is not true or false"), "%s", err.msg);
    CHECK(rwkvd_config_set(&c, "allow_precision_change", "", &err) == -1);
    CHECK(!c.allow_precision_change); /* failures change nothing */
    env(NULL);
    args("--model", "m", "--allow-precision-change", "--block-size", "64", NULL);
    CHECKF(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0, "%s", err.msg);
    CHECK(c.allow_precision_change && c.block_size == 64); /* the flag took no value */
    args("--model", "m", "--allow-precision-change=false", NULL);
    env("RWKVD_ALLOW_PRECISION_CHANGE=yes", NULL); /* the command line wins */
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0 && !c.allow_precision_change);
    args("--model", "m", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == 0 && c.allow_precision_change);
    args("--model", "m", "--allow-precision-change", "false", NULL); /* a flag, not a pair */
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "unexpected argument 'false'"), "%s", err.msg);
    env("RWKVD_ALLOW_PRECISION_CHANGE=maybe", NULL);
    args("--model", "m", NULL);
    CHECK(rwkvd_config_load(&c, argc_, argv_, envp_, &act, &err) == -1);
    CHECKF(strstr(err.msg, "environment RWKVD_ALLOW_PRECISION_CHANGE"), "%s", err.msg);
    rwkvd_config_defaults(&c);
    CHECK(ini("allow_precision_change = on\n") == 0 && c.allow_precision_change);
    char *text = rwkvd_config_format(&c);
    CHECK(text && strstr(text, "allow_precision_change = \"true\""));
    rwkvd_config back;
    rwkvd_config_defaults(&back);
    int rc = rwkvd_config_parse_ini(&back, "dump", text, strlen(text), &err);
    free(text);
    CHECKF(rc == 0 && back.allow_precision_change, "%s", err.msg);
    /* --help shows it as a flag, without a value */
    char *h = rwkvd_config_help("rwkvd");
    int flag = h && strstr(h, "  --allow-precision-change ") &&
               strstr(h, "RWKVD_ALLOW_PRECISION_CHANGE") && !strstr(h, "--allow-precision-change  BOOL");
    free(h);
    CHECK(flag);
}

static void test_help_is_complete(void)
{
    char *h = rwkvd_config_help("rwkvd");
    CHECK(h);
    size_t n;
    const rwkvd_option *o = rwkvd_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char flag[80], envn[80];
        snprintf(flag, sizeof flag, "--%s ", o[i].name);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        snprintf(envn, sizeof envn, "RWKVD_%s", o[i].name);
        for (char *p = envn; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        int ok = strstr(h, flag) && strstr(h, envn);
        if (!ok) {
            free(h);
            CHECKF(0, "--help lacks %s or %s", flag, envn);
        }
    }
    int ok = strstr(h, "Usage: rwkvd") && strstr(h, "--help") && strstr(h, "--version") &&
             strstr(h, "[reload]") && strstr(h, "(default: 256; 1..65536;");
    /* no line wider than 78 columns except unbreakable words */
    int widest = 0;
    for (const char *p = h; *p;) {
        const char *e = strchr(p, '\n');
        int w = e ? (int)(e - p) : (int)strlen(p);
        if (w > widest)
            widest = w;
        p = e ? e + 1 : p + w;
    }
    free(h);
    CHECK(ok);
    CHECKF(widest <= 80, "a help line is %d columns", widest);
}

static void test_format_reads_back(void)
{
    rwkvd_config_defaults(&c);
    rwkvd_config_set(&c, "model", "/m \"quoted\" path", &err);
    rwkvd_config_set(&c, "checkpoint_seconds", "0.1", &err);
    rwkvd_config_set(&c, "device", "cuda:2", &err);
    rwkvd_config_set(&c, "log_level", "warn", &err);
    rwkvd_config_set(&c, "max_message_size", "3M", &err);
    char *text = rwkvd_config_format(&c);
    CHECK(text);
    rwkvd_config back;
    rwkvd_config_defaults(&back);
    int rc = rwkvd_config_parse_ini(&back, "dump", text, strlen(text), &err);
    free(text);
    CHECKF(rc == 0, "%s", err.msg);
    CHECK(memcmp(&back, &c, sizeof c) == 0);
}

static void test_reload(void)
{
    write_ini("model = /m1\nblock_size = 64\nzstd_level = 3\n");
    CHECK(ini_path[0]);
    rwkvd_config_action act;
    args("--config", ini_path, NULL);
    env(NULL);
    rwkvd_config cur, next;
    CHECK(rwkvd_config_load(&cur, argc_, argv_, envp_, &act, &err) == 0);
    /* the file changes: a reloadable and two fixed options */
    FILE *f = fopen(ini_path, "w");
    CHECK(f);
    fputs("model = /m2\nblock_size = 128\nzstd_level = 9\n", f);
    fclose(f);
    char kept[256];
    CHECK(rwkvd_config_reload(&cur, &next, argc_, argv_, envp_, kept, sizeof kept, &err) == 0);
    CHECK(next.zstd_level == 9);
    CHECK(strcmp(next.model, "/m1") == 0 && next.block_size == 64);
    CHECKF(strcmp(kept, "model, block_size") == 0, "kept '%s'", kept);
    /* a broken file: reload fails, the caller keeps cur */
    f = fopen(ini_path, "w");
    fputs("model = /m2\nbogus = 1\n", f);
    fclose(f);
    CHECK(rwkvd_config_reload(&cur, &next, argc_, argv_, envp_, kept, sizeof kept, &err) == -1);
    CHECKF(strstr(err.msg, ":2: unknown key 'bogus'"), "%s", err.msg);
    unlink(ini_path);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_defaults);
    RUN(test_value_types);
    RUN(test_ini_good);
    RUN(test_ini_hostile);
    RUN(test_precedence);
    RUN(test_command_line_forms);
    RUN(test_bool_option);
    RUN(test_help_is_complete);
    RUN(test_format_reads_back);
    RUN(test_reload);
    return test_summary();
}
