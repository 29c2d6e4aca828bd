/* metrics_http.c — see metrics_http.h. */
#include "daemon/metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/metrics.h"

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    rwkvd_server *srv = cls;
    unsigned status = MHD_HTTP_OK;
    char *body;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = strdup("only GET /metrics\n");
    } else if (strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        body = strdup("not found: try /metrics\n");
    } else {
        rwkvd_status_info snap;
        pthread_mutex_lock(&srv->snap_mu);
        snap = srv->snap;
        pthread_mutex_unlock(&srv->snap_mu);
        rwkvd_curve_refused(srv->curve, snap.auth_refused);
        body = rwkvd_metrics_render(&snap);
    }
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

int rwkvd_metrics_http_start(rwkvd_server *srv, rwkv_error *err)
{
    if (srv->cfg.metrics_port <= 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv->cfg.metrics_port);
    if (inet_pton(AF_INET, srv->cfg.metrics_bind, &sa.sin_addr) != 1)
        return rwkv_fail(err, "metrics_bind '%s' is not an IPv4 address", srv->cfg.metrics_bind);
    srv->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                                 (uint16_t)srv->cfg.metrics_port, NULL, NULL, handle, srv,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_LIMIT, 16u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!srv->http)
        return rwkv_fail(err, "metrics: cannot listen on %s:%d", srv->cfg.metrics_bind,
                         srv->cfg.metrics_port);
    return 0;
}

void rwkvd_metrics_http_stop(rwkvd_server *srv)
{
    if (srv->http)
        MHD_stop_daemon(srv->http);
    srv->http = NULL;
}
