/* metrics_http.h — GET /metrics over HTTP (Prometheus text format), served
 * by libmicrohttpd on its own thread from a snapshot the main loop refreshes
 * (rwkvd_stats_refresh), so scraping never touches live sessions. */
#ifndef RWKVD_METRICS_HTTP_H
#define RWKVD_METRICS_HTTP_H

#include "core/error.h"
#include "daemon/server.h"

/* Starts the endpoint on cfg.metrics_bind:cfg.metrics_port (nothing when the
 * port is 0).  -1 with err when the address cannot be used. */
int rwkvd_metrics_http_start(rwkvd_server *srv, rwkv_error *err);
void rwkvd_metrics_http_stop(rwkvd_server *srv);

#endif
