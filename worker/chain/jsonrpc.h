/*
 * jsonrpc.h: JSON-RPC 2.0 for every Trace program: parsing and validating
 * what clients send (jsonrpc.c, the gateway's side), the one matcher of
 * responses to the requests they answer (jsonrpc_response.c, used by the
 * gateway on upstream answers and by the worker's client, rpc_client.c, on
 * the gateway's), what an answer means (rate limit, range hint) and the
 * eth_getLogs range helpers.  Pure functions; no I/O, no globals.
 *
 * What the gateway accepts from a client: one request object or a batch
 * array (1..max_batch) of them; each with "jsonrpc": "2.0", a method name
 * of [A-Za-z0-9_] (1..128), params absent or an array/object, and an id
 * that is a string (<= 256 bytes) or an integer.  Notifications (no id)
 * and null ids are refused: every request must be answerable and matched.
 * A batch must not repeat an id.  Duplicate object keys are refused
 * everywhere (a smuggled second "id" must not pass).
 *
 * What it accepts from an upstream, as the answer to the requests it
 * forwarded: well-formed JSON (checked in full, but parsed only at its
 * top: responses are large); for a single request one response object,
 * for a batch an array answering every id exactly once and nothing else;
 * each response with "jsonrpc": "2.0", the id, and exactly one of "result"
 * or an "error" object with an integer code and a string message.
 */
#ifndef TRACE_JSONRPC_H
#define TRACE_JSONRPC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jdoc.h"
#include "json_scan.h"

#define RPC_PARSE_ERROR      (-32700)
#define RPC_INVALID_REQUEST  (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INTERNAL_ERROR   (-32603)

#define RPC_MAX_METHOD_LEN   128
#define RPC_MAX_ID_LEN       256

/* An answer to one request: the response object's text (owned), as the
 * upstream wrote it or as the gateway built it. */
typedef struct rpc_reply {
    char       *text;
    size_t      len;
    size_t      result_off;     /* the result value inside text ... */
    size_t      result_len;     /* ... (0 when the answer is an error) */
    json_t     *error;          /* the error object, parsed (owned); NULL for a result */
} rpc_reply;

void rpc_reply_free(rpc_reply *r);

/* One request of a client body.  id/method/params borrow from the parsed
 * tree (rpc_request.root); resp is owned. */
typedef struct rpc_item {
    json_t     *id;             /* NULL when the request was invalid */
    const char *method;         /* NULL when the request was invalid */
    json_t     *params;         /* NULL when absent */
    int         method_idx;     /* the caller's: allow-list index, -1 = refused */
    rpc_reply   resp;           /* the answer once known (done) */
    int         outcome;        /* the caller's, once answered */
    int         done;
} rpc_item;

typedef struct rpc_request {
    json_t   *root;
    int       is_batch;
    int       n;
    rpc_item *items;
} rpc_request;

/* Parses a client body.  0: req filled; a request of a batch that is not a
 * valid request gets resp = a -32600 error and done = 1.  -1: the whole
 * body is refused, *code = -32700 (not JSON) or -32600 (not a request,
 * empty or too big a batch, duplicate ids), err says why; req is empty. */
int rpc_parse_request(const char *body, size_t len, int max_batch, rpc_request *req,
                      int *code, char *err, size_t errlen);
void rpc_request_free(rpc_request *req);

/* A fresh request object {"jsonrpc","id","method"[,"params"]} (new ref). */
json_t *rpc_make_request(json_t *id, const char *method, json_t *params);

/* The upstream body for the given request objects: an array when as_batch,
 * else reqs[0].  malloc'd, NUL-terminated, length in *len; NULL on OOM. */
char *rpc_dump_requests(json_t *const *reqs, int n, int as_batch, size_t *len);

/* One response of a body, matched to the request it answers: where it is
 * in the document the body was parsed into. */
typedef struct rpc_answer {
    int     tok;            /* the response object; -1 when none */
    int     result;         /* its "result" value; -1 for an error */
    json_t *error;          /* its "error" object, parsed (owned); NULL for a result */
} rpc_answer;

/* Releases the error objects of a[0..n). */
void rpc_answers_clear(rpc_answer *a, int n);

enum rpc_match_fail {
    RPC_MATCH_OK = 0,
    RPC_MATCH_BAD_JSON,         /* not JSON, or not a JSON-RPC 2.0 response */
    RPC_MATCH_BAD_IDS,          /* ids missing, extra, repeated or wrong */
    RPC_MATCH_LIMITED           /* one rate-limit error for the whole call */
};

/* The one response matcher: parses body into d (a document reused across
 * calls) and matches it against the ids[0..n-1] it answers (as_batch:
 * whether an array was sent).  On success out[k] is the response to
 * ids[k], *in_order whether a batch came back in request order, and
 * RPC_MATCH_OK is returned; otherwise a rpc_match_fail with err saying why
 * (never quoting the body) and no error object left in out.  rpc_match
 * tokenizes the whole document (for readers of the results);
 * rpc_match_shallow only the responses and their members, deeper values
 * being checked but kept as bytes (for passing results on). */
int rpc_match(jdoc *d, const char *body, size_t len, json_t *const *ids, int n, int as_batch,
              rpc_answer *out, int *in_order, char *err, size_t errlen);
int rpc_match_shallow(jdoc *d, const char *body, size_t len, json_t *const *ids, int n,
                      int as_batch, rpc_answer *out, int *in_order, char *err, size_t errlen);

/* rpc_match for the gateway: answers[k] gets the response to ids[k] as
 * bytes (copied) with its error object. */
int rpc_match_response(const char *body, size_t len, json_t *const *ids, int n, int as_batch,
                       rpc_reply *answers, int *in_order, char *err, size_t errlen);

enum rpc_answer_kind {
    RPC_ANSWER_RESULT = 0,
    RPC_ANSWER_ERROR,           /* pass it through */
    RPC_ANSWER_LIMIT,           /* a rate-limit error: retry later */
    RPC_ANSWER_RANGE            /* eth_getLogs range too large: split */
};

/* What an (already validated) answer to method means.  RANGE only when
 * params hold a splittable range (rpc_getlogs_range). */
int rpc_classify_answer(const char *method, const json_t *params, const rpc_reply *answer);

/* Whether an error object reads as a rate limit / as a range hint. */
int rpc_error_is_limit(const json_t *error);
int rpc_error_is_range_hint(const json_t *error);

/* The numeric block range of eth_getLogs params: params[0].fromBlock and
 * .toBlock both hex quantities, no blockHash, from <= to.  0 or -1. */
int rpc_getlogs_range(const json_t *params, uint64_t *from, uint64_t *to);
/* A copy of params with the range replaced (new ref; NULL on OOM). */
json_t *rpc_getlogs_with_range(const json_t *params, uint64_t from, uint64_t to);

/* {"jsonrpc":"2.0","id":id|null,"error":{"code":code,"message":message}},
 * serialized (malloc'd; NULL on OOM). */
char *rpc_error_body(json_t *id, int code, const char *message, size_t *len);
/* The same as a reply.  0 or -1 (OOM). */
int rpc_error_reply(rpc_reply *r, json_t *id, int code, const char *message);

/* A reply {"jsonrpc":"2.0","id":id,<member>:<value>} where value is JSON
 * text of value_len bytes (member "result" or "error").  0 or -1 (OOM). */
int rpc_build_reply(rpc_reply *r, json_t *id, const char *member, const char *value,
                    size_t value_len);

/* The result of a reply as a (small) jansson value: new ref, or NULL. */
json_t *rpc_reply_result(const rpc_reply *r);

/* The client's answer built from every item's resp: one object, or an
 * array in request order.  malloc'd; NULL on OOM. */
char *rpc_dump_response(const rpc_request *req, size_t *len);

#endif
