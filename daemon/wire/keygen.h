/* keygen.h — `rwkvd keygen OUT`: a new CURVE key pair for the daemon or a
 * client (core/curve_key.h format). */
#ifndef RWKVD_KEYGEN_H
#define RWKVD_KEYGEN_H

/* Writes the key pair to OUT (mode 0600, public line then secret line) and
 * the public key alone to OUT.pub (mode 0644); refuses to overwrite either.
 * argv[0] is "keygen".  Prints what it did (or why not) and returns the
 * process exit status: 0, 1 on failure, 2 on a usage error. */
int rwkvd_keygen_main(int argc, char **argv);

#endif
