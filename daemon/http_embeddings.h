/* http_embeddings.h — the OpenAI-compatible POST /v1/embeddings of a daemon
 * serving an EmbeddingRWKV model, on its own libmicrohttpd listener
 * (--http-port, --http-bind 127.0.0.1 by default; off when the port is 0).
 *
 * Request (OpenAI shapes): {"input": str | [str] | [int] | [[int]], "model":
 * str (echoed), "encoding_format": "float" | "base64", "dimensions": n_embd
 * (optional), "user": ignored}, plus two rwkvd extensions: "task"
 * ("retrieval" default, "similarity", "classification") and "normalize"
 * (default true, like the ZeroMQ path).  A string gets EOS appended (the
 * model's add_eos); a token array gets EOS appended unless it ends with one.
 * An input over --http-max-tokens is refused, pointing to the streaming
 * ingest socket; a body over --http-max-body is refused with 413.
 * The response is OpenAI's ({"object": "list", "data", "model", "usage"})
 * plus "precision" beside "model": the arithmetic the embeddings were
 * computed in (--precision; "fp32", "bf16" or "int8").
 *
 * Batching: every request's inputs go to one worker thread with an engine
 * of its own; whatever has queued while it ran is taken together into the
 * next rwkv_forward call, so concurrent clients share passes.  The ZeroMQ
 * path's engine is untouched, so HTTP requests and streamed documents run
 * side by side. */
#ifndef RWKVD_HTTP_EMBEDDINGS_H
#define RWKVD_HTTP_EMBEDDINGS_H

#include "core/error.h"
#include "daemon/server.h"

/* Starts the listener and the worker (nothing when http_port is 0).  -1
 * with err when the model is not EmbeddingRWKV, the address cannot be used
 * or memory runs out. */
int rwkvd_http_embeddings_start(rwkvd_server *srv, rwkv_error *err);
/* Stops the listener, then the worker; accepts a server that never started
 * one. */
void rwkvd_http_embeddings_stop(rwkvd_server *srv);

#endif
