/* tokenize.c — `rwkv tokenize`: the token ids of a text file.
 *
 * Streams like eval: 64 KiB chunks through the streaming encoder, ids
 * written as soon as they are settled, so any input size works in constant
 * memory.  Text output is the ids separated by single spaces with one final
 * newline; --ids-out writes int32 little-endian instead (the layout of
 * the .i32 files in fixtures/tokenizer/) and prints nothing on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "clients/rwkv/cli.h"
#include "clients/rwkv/commands.h"

static const char *const CMD = "tokenize";

static void help(void)
{
    printf("usage: rwkv tokenize (--vocab FILE | --bytes) [--ids-out FILE] INPUT\n"
           "\n"
           "Prints the token ids of INPUT (text bytes; '-' reads stdin), space separated.\n"
           "\n"
           "      --vocab FILE     World vocabulary .txt or GPT-NeoX tokenizer.json\n"
           "      --bytes          byte-level tokens (id = byte)\n"
           "  -o, --ids-out FILE   write int32 little-endian ids to FILE instead\n"
           "  -h, --help           this text\n");
}

typedef struct sink {
    cli_out *out; /* binary, or NULL for text on stdout */
    int32_t *buf;
    int first;
    size_t count;
} sink;

static int emit(sink *s, const rwkv_ids *ids)
{
    if (s->out) {
        for (size_t i = 0; i < ids->n; i++)
            s->buf[i] = (int32_t)ids->v[i];
        return cli_out_write(CMD, s->out, s->buf, ids->n * sizeof *s->buf);
    }
    for (size_t i = 0; i < ids->n; i++) {
        if (!s->first)
            putchar(' ');
        s->first = 0;
        printf("%u", ids->v[i]);
    }
    return CLI_OK;
}

int cmd_tokenize(int argc, char **argv)
{
    enum { O_VOCAB = 256, O_BYTES };
    static const struct option longs[] = {
        {"vocab", required_argument, NULL, O_VOCAB},
        {"bytes", no_argument, NULL, O_BYTES},
        {"ids-out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *vocab = NULL;
    int bytes = 0;
    cli_out out = {NULL, NULL};
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longs, NULL)) != -1) {
        switch (c) {
        case O_VOCAB: vocab = optarg; break;
        case O_BYTES: bytes = 1; break;
        case 'o': out.path = optarg; break;
        case 'h': help(); return CLI_OK;
        default: return cli_bad_option(CMD, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage(CMD, "an INPUT file is required ('-' for stdin)");
    if (optind + 1 < argc)
        return cli_usage(CMD, "one INPUT only (got '%s' and '%s')", argv[optind], argv[optind + 1]);
    const char *input = argv[optind];
    if (out.path && (strcmp(out.path, input) == 0 || (vocab && strcmp(out.path, vocab) == 0)))
        return cli_usage(CMD, "--ids-out would overwrite an input ('%s')", out.path);

    rwkv_tokenizer *tok = NULL;
    int status = cli_load_tokenizer(CMD, vocab, bytes, &tok);
    if (status != CLI_OK)
        return status;
    status = CLI_FAIL;
    enum { CHUNK = 1 << 16 };
    unsigned char *chunk = malloc(CHUNK);
    int32_t *buf = malloc(CHUNK * sizeof *buf); /* a chunk settles at most CHUNK + 127 ids */
    rwkv_encoder *enc = rwkv_encoder_new(tok);
    rwkv_ids ids = {0};
    rwkv_error err;
    rwkv_error_clear(&err);
    FILE *in = NULL;
    sink s = {out.path ? &out : NULL, NULL, 1, 0};
    if (!chunk || !buf || !enc) {
        cli_fail(CMD, "out of memory");
        goto done;
    }
    if (!(in = cli_open_input(CMD, input)) || cli_out_open(CMD, &out) != CLI_OK)
        goto done;
    for (int eof = 0; !eof;) {
        size_t got = fread(chunk, 1, CHUNK, in);
        if (got < CHUNK) {
            if (ferror(in)) {
                cli_fail(CMD, "%s: read error: %s", input, strerror(errno));
                goto done;
            }
            eof = 1;
        }
        ids.n = 0;
        if (rwkv_encoder_feed(enc, chunk, got, &ids, &err) != 0 ||
            (eof && rwkv_encoder_finish(enc, &ids, &err) != 0)) {
            cli_fail(CMD, "%s: %s", input, err.msg);
            goto done;
        }
        if (ids.n > CHUNK) { /* held-back bytes settled now: grow the buffer */
            int32_t *nb = realloc(buf, ids.n * sizeof *buf);
            if (!nb) {
                cli_fail(CMD, "out of memory");
                goto done;
            }
            buf = nb;
        }
        s.buf = buf;
        if (emit(&s, &ids) != CLI_OK)
            goto done;
        s.count += ids.n;
    }
    if (!out.path) {
        putchar('\n');
        if (fflush(stdout) != 0 || ferror(stdout)) {
            cli_fail(CMD, "stdout: write failed: %s", strerror(errno));
            goto done;
        }
    }
    if (cli_out_close(CMD, &out) != CLI_OK)
        goto done;
    status = CLI_OK;
done:
    cli_out_discard(&out);
    cli_close_input(in);
    rwkv_ids_free(&ids);
    rwkv_encoder_free(enc);
    free(buf);
    free(chunk);
    rwkv_tokenizer_free(tok);
    return status;
}
