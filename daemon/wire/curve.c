/* curve.c — the daemon's key pair, the allow-lists' loading and reload, and
 * each socket's CURVE options (see curve.h; the handler is zap_handler.c). */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon/log.h"
#include "daemon/wire/curve_internal.h"

static const char *const role_names[RWKVD_ROLE_COUNT] = {"producer", "consumer", "operator"};

const char *rwkvd_role_name(rwkvd_role r)
{
    return (unsigned)r < RWKVD_ROLE_COUNT ? role_names[r] : "?";
}

const char *rwkvd_curve_dir(const rwkvd_config *cfg, rwkvd_role r)
{
    return r == RWKVD_ROLE_PRODUCER   ? cfg->curve_producers
           : r == RWKVD_ROLE_CONSUMER ? cfg->curve_consumers
                                      : cfg->curve_operators;
}

/* The three lists named by cfg, all or none. */
static int load_lists(const rwkvd_config *cfg, rwkvd_allow_list *out[RWKVD_ROLE_COUNT],
                      rwkv_error *err)
{
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++)
        out[r] = NULL;
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++) {
        const char *dir = rwkvd_curve_dir(cfg, (rwkvd_role)r);
        if (dir[0] && rwkvd_allow_list_load(dir, &out[r], err) != 0) {
            for (int i = 0; i < r; i++)
                rwkvd_allow_list_free(out[i]);
            return -1;
        }
    }
    return 0;
}

static void log_lists(rwkvd_allow_list *const lists[RWKVD_ROLE_COUNT], const char *when)
{
    LOG_INFO("CURVE %s: %zu producer, %zu consumer, %zu operator keys allowed", when,
             rwkvd_allow_list_count(lists[RWKVD_ROLE_PRODUCER]),
             rwkvd_allow_list_count(lists[RWKVD_ROLE_CONSUMER]),
             rwkvd_allow_list_count(lists[RWKVD_ROLE_OPERATOR]));
}

/* The daemon's key pair: both lines, and the public one must be the secret
 * one's (a pair file assembled from two different keys would hand clients a
 * server key that never works). */
static int load_pair(const char *path, uint8_t secret[RWKV_CURVE_KEY_BYTES], rwkv_error *err)
{
    rwkv_curve_keyfile kf;
    if (rwkv_curve_keyfile_load(path, true, &kf, err) != 0)
        return -1;
    char sec_z85[RWKV_CURVE_Z85_LEN + 1], pub_z85[RWKV_CURVE_Z85_LEN + 1], derived[41];
    rwkv_z85_encode_key(kf.secret_key, sec_z85);
    rwkv_z85_encode_key(kf.public_key, pub_z85);
    int rc = 0;
    if (zmq_curve_public(derived, sec_z85) != 0)
        rc = rwkv_fail(err, "key file %s: zmq_curve_public: %s", path, zmq_strerror(zmq_errno()));
    else if (strcmp(derived, pub_z85) != 0)
        rc = rwkv_fail(err, "key file %s: the public key on line 1 does not belong to the secret "
                            "key on line 2", path);
    else
        memcpy(secret, kf.secret_key, RWKV_CURVE_KEY_BYTES);
    memset(&kf, 0, sizeof kf);
    memset(sec_z85, 0, sizeof sec_z85);
    return rc;
}

int rwkvd_curve_start(void *zctx, const rwkvd_config *cfg, rwkvd_curve **out, rwkv_error *err)
{
    *out = NULL;
    if (!cfg->curve_secret_key[0]) {
        for (int r = 0; r < RWKVD_ROLE_COUNT; r++)
            if (rwkvd_curve_dir(cfg, (rwkvd_role)r)[0])
                return rwkv_fail(err, "--curve-%ss is set but not --curve-secret-key: CURVE "
                                      "needs the daemon's key pair",
                                 rwkvd_role_name((rwkvd_role)r));
        return 0;
    }
    if (!zmq_has("curve"))
        return rwkv_fail(err, "--curve-secret-key: this libzmq is built without CURVE");
    rwkvd_curve *c = calloc(1, sizeof *c);
    if (!c)
        return rwkv_fail(err, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->zctx = zctx;
    if (load_pair(cfg->curve_secret_key, c->secret_key, err) != 0 ||
        load_lists(cfg, c->lists, err) != 0) {
        rwkvd_curve_stop(c);
        return -1;
    }
    c->zap = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (!c->zap || zmq_setsockopt(c->zap, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(c->zap, "inproc://zeromq.zap.01") != 0) {
        rwkv_fail(err, "ZAP handler socket: %s", zmq_strerror(zmq_errno()));
        rwkvd_curve_stop(c);
        return -1;
    }
    if (pthread_create(&c->thread, NULL, rwkvd_zap_thread, c) != 0) {
        rwkv_fail(err, "ZAP handler thread: cannot start");
        rwkvd_curve_stop(c);
        return -1;
    }
    c->thread_started = true;
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++)
        if (!rwkvd_curve_dir(cfg, (rwkvd_role)r)[0])
            LOG_WARN("CURVE: no --curve-%ss directory: no %s is admitted",
                     rwkvd_role_name((rwkvd_role)r), rwkvd_role_name((rwkvd_role)r));
    log_lists(c->lists, "on");
    *out = c;
    return 0;
}

int rwkvd_curve_secure(const rwkvd_curve *c, void *socket, rwkvd_role role, rwkv_error *err)
{
    if (!c)
        return 0;
    int one = 1;
    const char *domain = rwkvd_role_name(role);
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, c->secret_key, RWKV_CURVE_KEY_BYTES) != 0 ||
        zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0)
        return rwkv_fail(err, "CURVE options for the %s socket: %s", domain,
                         zmq_strerror(zmq_errno()));
    return 0;
}

int rwkvd_curve_reload(rwkvd_curve *c, const rwkvd_config *cfg, rwkv_error *err)
{
    if (!c)
        return 0;
    rwkvd_allow_list *next[RWKVD_ROLE_COUNT];
    if (load_lists(cfg, next, err) != 0)
        return -1;
    pthread_mutex_lock(&c->mu);
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++) {
        rwkvd_allow_list_free(c->lists[r]);
        c->lists[r] = next[r];
    }
    c->n_seen = 0; /* a key still refused after the reload is worth a line again */
    c->seen_full_logged = false;
    pthread_mutex_unlock(&c->mu);
    log_lists(next, "allow-lists reloaded");
    return 0;
}

void rwkvd_curve_refused(const rwkvd_curve *c, uint64_t out[RWKVD_ROLE_COUNT])
{
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++)
        out[r] = c ? (uint64_t)atomic_load(&((rwkvd_curve *)c)->refused[r]) : 0;
}

void rwkvd_curve_stop(rwkvd_curve *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        atomic_store(&c->stop, true);
        pthread_join(c->thread, NULL);
    } else if (c->zap) {
        zmq_close(c->zap);
    }
    for (int r = 0; r < RWKVD_ROLE_COUNT; r++)
        rwkvd_allow_list_free(c->lists[r]);
    pthread_mutex_destroy(&c->mu);
    memset(c->secret_key, 0, sizeof c->secret_key);
    free(c);
}
