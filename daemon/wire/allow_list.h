/* allow_list.h — one role's CURVE allow-list: the public keys found in a
 * directory of key files (core/curve_key.h), sorted for binary search.
 *
 * Every regular file in the directory whose name does not start with '.'
 * is a key file; one that does not parse fails the whole load (a typo must
 * not silently lock a client out, or half-apply a reload).  Sub-directories
 * are ignored.  Immutable once loaded: a reload builds a new list and the
 * ZAP handler swaps it in, so readers need no lock on the list itself.
 */
#ifndef RWKVD_ALLOW_LIST_H
#define RWKVD_ALLOW_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/curve_key.h"
#include "core/error.h"

#define RWKVD_ALLOW_LIST_MAX 65536 /* files in one allow-list directory */

typedef struct rwkvd_allow_list rwkvd_allow_list;

/* Loads the directory.  Returns 0 with *out (free with rwkvd_allow_list_free),
 * or -1 with err naming the directory or the bad file; *out is then NULL. */
int rwkvd_allow_list_load(const char *dir, rwkvd_allow_list **out, rwkv_error *err);

/* Number of distinct keys (0 for NULL). */
size_t rwkvd_allow_list_count(const rwkvd_allow_list *l);

/* Whether key is in the list (false for NULL).  Thread safe. */
bool rwkvd_allow_list_has(const rwkvd_allow_list *l, const uint8_t key[RWKV_CURVE_KEY_BYTES]);

/* Accepts NULL. */
void rwkvd_allow_list_free(rwkvd_allow_list *l);

#endif
