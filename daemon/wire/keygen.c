/* keygen.c — see keygen.h.  The files are created with O_EXCL, so an
 * existing key is never replaced by accident, and chmod'ed after creation
 * so the umask cannot loosen the secret file's mode. */
#include "daemon/wire/keygen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "core/curve_key.h"

static int write_new(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "rwkvd keygen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), done = 0;
    int rc = fchmod(fd, mode);
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -1;
        else
            done += (size_t)w;
    }
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        fprintf(stderr, "rwkvd keygen: %s: %s\n", path, strerror(e));
        unlink(path);
    }
    return rc;
}

int rwkvd_keygen_main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        fprintf(stderr, "usage: rwkvd keygen OUT\n"
                        "  writes a CURVE key pair to OUT (mode 0600: public key line, secret "
                        "key line)\n  and the public key to OUT.pub\n");
        return 2;
    }
    if (!zmq_has("curve")) {
        fprintf(stderr, "rwkvd keygen: this libzmq is built without CURVE\n");
        return 1;
    }
    char pub[RWKV_CURVE_Z85_LEN + 1], sec[RWKV_CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "rwkvd keygen: zmq_curve_keypair: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    const char *out = argv[1];
    size_t n = strlen(out);
    char *pub_path = malloc(n + 5);
    if (!pub_path) {
        fprintf(stderr, "rwkvd keygen: out of memory\n");
        return 1;
    }
    memcpy(pub_path, out, n);
    memcpy(pub_path + n, ".pub", 5);
    char pair[2 * (RWKV_CURVE_Z85_LEN + 1) + 1], pub_line[RWKV_CURVE_Z85_LEN + 2];
    snprintf(pair, sizeof pair, "%s\n%s\n", pub, sec);
    snprintf(pub_line, sizeof pub_line, "%s\n", pub);
    int rc = 1;
    if (access(pub_path, F_OK) == 0) {
        fprintf(stderr, "rwkvd keygen: %s: already exists\n", pub_path);
    } else if (write_new(out, 0600, pair) == 0) {
        if (write_new(pub_path, 0644, pub_line) == 0) {
            printf("key pair written to %s (mode 0600), public key %s to %s\n", out, pub,
                   pub_path);
            rc = 0;
        } else {
            unlink(out);
        }
    }
    memset(pair, 0, sizeof pair);
    memset(sec, 0, sizeof sec);
    free(pub_path);
    return rc;
}
