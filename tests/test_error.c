/* test_error.c — rwkv_error formatting and prefixing. */
#include <string.h>

#include "core/error.h"
#include "tests/testutil.h"

static void test_fail_formats_and_returns_minus_one(void)
{
    rwkv_error err;
    rwkv_error_clear(&err);
    CHECK(err.msg[0] == '\0');
    CHECK(rwkv_fail(&err, "%s: offset %zu: bad", "f.pth", (size_t)17) == -1);
    CHECKF(strcmp(err.msg, "f.pth: offset 17: bad") == 0, "got '%s'", err.msg);
    CHECK(rwkv_fail(NULL, "ignored") == -1);
}

static void test_prefix_keeps_message(void)
{
    rwkv_error err;
    rwkv_fail(&err, "offset 3: truncated");
    rwkv_fail_prefix(&err, "%s", "model.pth");
    CHECKF(strcmp(err.msg, "model.pth: offset 3: truncated") == 0, "got '%s'", err.msg);
}

static void test_long_message_is_truncated_not_overflowed(void)
{
    rwkv_error err;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    rwkv_fail(&err, "%s", big);
    CHECK(strlen(err.msg) == RWKV_ERROR_MAX - 1);
    rwkv_fail_prefix(&err, "p");
    CHECK(strlen(err.msg) == RWKV_ERROR_MAX - 1);
    CHECK(strncmp(err.msg, "p: x", 4) == 0);
}

int main(int argc, char **argv)
{
    test_init(argc, argv);
    RUN(test_fail_formats_and_returns_minus_one);
    RUN(test_prefix_keeps_message);
    RUN(test_long_message_is_truncated_not_overflowed);
    return test_summary();
}
