/*
 * rpc_client.h: the JSON-RPC client of Trace's chain operators.
 *
 * Workers never call chain providers themselves: every request goes to
 * trace-rpc-gateway as POST <gateway>/rpc/<provider>, which forwards it
 * (rate limits, failover, allow-list) and answers with the upstream
 * response, or with HTTP 502/503/504 and a JSON-RPC error body when the
 * upstream failed.  One client is one reused HTTP connection (http_client.c) and
 * belongs to one thread.
 *
 * Calls go out as one JSON-RPC batch per rpc_client_batch() call; responses are
 * matched to calls by id (jsonrpc.h's one matcher), and a response that is
 * not JSON, not a batch of the right ids, or too large is a failure of the
 * whole request.  Failures
 * of the whole request that may pass (transport errors, 429, 5xx, garbage)
 * are retried a few times with jittered exponential backoff, honouring
 * Retry-After, and giving up early when the caller's stop() says so.
 */
#ifndef TRACE_RPC_CLIENT_H
#define TRACE_RPC_CLIENT_H

#include "jdoc.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpc_client rpc_client;

/* One call of a batch.  The caller sets method and params (a JSON array,
 * stolen: the batch call releases it).  After rpc_client_batch returned 0
 * each call has either result (owned by the call, may be JSON null) or a
 * JSON-RPC error (code, message); after rpc_client_batch_doc, result_tok
 * (a value of the reply's document) or the error. */
typedef struct rpc_call {
    const char *method;
    json_t     *params;
    json_t     *result;
    int         result_tok;
    int         has_error;
    int64_t     code;
    char        message[256];
} rpc_call;

typedef struct rpc_stats {
    int64_t requests;       /* HTTP requests sent */
    int64_t calls;          /* JSON-RPC calls in them */
    int64_t retries;
    int64_t bytes_in;
} rpc_stats;

/* A client for <gateway>/rpc/<provider>: gateway is an http:// or https://
 * base URL, or unix:/path for a gateway listening on a Unix socket.
 * provider is 1-100 characters of [A-Za-z0-9_.-].  NULL with err filled on
 * a bad name or URL. */
rpc_client *rpc_client_new(const char *gateway, const char *provider, char *err, size_t errlen);
void rpc_client_free(rpc_client *c);

/* Sends the calls as one batch (retrying the whole request as above).
 * Returns 0 when every call got its response; -1 when the request failed
 * (err says why; worth trying again later); -2 when it cannot succeed
 * (the gateway refused the request: unknown provider, method not allowed,
 * a 4xx other than 408/429), or -3 when stop() asked to stop. */
int rpc_client_batch(rpc_client *c, rpc_call *calls, size_t n, int (*stop)(void *), void *arg,
              char *err, size_t errlen);

/* A reply kept as text and read in place (jdoc.h): for large results
 * (blocks, receipts) that would cost more as a jansson tree than the rest
 * of the work on them. */
typedef struct rpc_doc {
    char  *body;
    size_t len;
    jdoc   doc;
} rpc_doc;

/* rpc_client_batch, leaving the reply in *reply (an rpc_doc zeroed once;
 * its previous text is released first and its token array reused, so one
 * rpc_doc serves many calls); the results are calls[i].result_tok. */
int rpc_client_batch_doc(rpc_client *c, rpc_call *calls, size_t n, rpc_doc *reply,
                         int (*stop)(void *), void *arg, char *err, size_t errlen);
/* Releases the reply's text (the tokens stay for the next call). */
void rpc_doc_release_text(rpc_doc *reply);
void rpc_doc_free(rpc_doc *reply);

/* Releases the results (and any unsent params) of calls[0..n). */
void rpc_client_calls_clear(rpc_call *calls, size_t n);

const rpc_stats *rpc_client_stats(const rpc_client *c);

/* For tests: parses a response body to calls already sent with ids
 * 1..n.  0 or -1 with err filled. */
int rpc_client_parse_response(const char *body, size_t len, rpc_call *calls, size_t n,
                       char *err, size_t errlen);

#endif
