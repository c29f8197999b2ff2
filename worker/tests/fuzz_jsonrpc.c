/*
 * fuzz_rpc.c: libFuzzer target for the gateway's JSON-RPC code, built with
 * ASan and UBSan by test/gateway/run.sh.  Each input is
 *   - scanned by rpc_scan.c and parsed by jansson: they must agree on
 *     whether it is JSON (differential: jansson is the oracle), except
 *     where jansson refuses numbers beyond int64/double, which are JSON,
 *     and where it takes a NUL byte after the value for the end;
 *   - tried as a client body (rpc_parse_request);
 *   - tried as an upstream answer to a single request and to a batch: what
 *     is accepted must answer exactly the ids asked, and be JSON.
 * Nothing may crash, leak or hang.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* jansson refuses numbers beyond int64/double, which are JSON. */
static int
refused_number_range(const json_error_t *je)
{
    return strstr(je->text, "too big") != NULL || strstr(je->text, "overflow") != NULL;
}

static void
differential(const char *s, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &je);
    size_t ep;
    const char *why;
    int ours = json_scan_document(s, n, &ep, &why) == 0;

    /* jansson stops at a NUL byte after the value; JSON does not allow it. */
    if (j != NULL && !ours && !(ep < n && s[ep] == '\0')) {
        fprintf(stderr, "scanner refused what jansson accepts: %s at %zu\n", why, ep);
        abort();
    }
    if (j == NULL && ours && !refused_number_range(&je)) {
        fprintf(stderr, "scanner accepted what jansson refuses: %s\n", je.text);
        abort();
    }
    json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ids[3];
    rpc_reply answers[3];
    rpc_request req;
    char err[256];
    int code, in_order;
    const char *s = (const char *) data;

    if (ids[0] == NULL) {
        json_object_seed(1);
        ids[0] = json_integer(1);
        ids[1] = json_string("a");
        ids[2] = json_integer(3);
    }
    differential(s, size);

    if (rpc_parse_request(s, size, 50, &req, &code, err, sizeof err) == 0) {
        for (int i = 0; i < req.n; i++) {
            uint64_t from, to;
            json_t *sub;

            if (req.items[i].done)
                continue;
            if (rpc_getlogs_range(req.items[i].params, &from, &to) == 0 && from < to) {
                sub = rpc_getlogs_with_range(req.items[i].params, from, from + (to - from) / 2);
                if (sub == NULL || rpc_getlogs_range(sub, &from, &to) != 0)
                    abort();
                json_decref(sub);
            }
            if (rpc_error_reply(&req.items[i].resp, req.items[i].id, RPC_METHOD_NOT_FOUND, "x") < 0)
                abort();
        }
        {
            size_t len, ep;
            const char *why;
            char *out = rpc_dump_response(&req, &len);

            if (out == NULL || json_scan_document(out, len, &ep, &why) != 0)
                abort();
            free(out);
        }
        rpc_request_free(&req);
    } else if (code != RPC_PARSE_ERROR && code != RPC_INVALID_REQUEST)
        abort();

    for (int as_batch = 0; as_batch < 2; as_batch++) {
        int n = as_batch ? 3 : 1;

        memset(answers, 0, sizeof answers);
        if (rpc_match_response(s, size, ids, n, as_batch, answers, &in_order, err, sizeof err) ==
            RPC_MATCH_OK) {
            for (int k = 0; k < n; k++) {
                json_error_t je;
                json_t *a = json_loadb(answers[k].text, answers[k].len, 0, &je);

                /* Each answer is a response object for exactly its id
                 * (jansson cannot check one holding an out-of-range number). */
                if (a == NULL && refused_number_range(&je)) {
                    size_t ep;
                    const char *why;

                    if (json_scan_document(answers[k].text, answers[k].len, &ep, &why) != 0)
                        abort();
                    rpc_reply_free(&answers[k]);
                    continue;
                }
                if (a == NULL || !json_equal(json_object_get(a, "id"), ids[k]) ||
                    (answers[k].error == NULL) == (json_object_get(a, "result") == NULL))
                    abort();
                json_decref(a);
                (void) rpc_classify_answer("eth_getLogs", NULL, &answers[k]);
                rpc_reply_free(&answers[k]);
            }
        }
    }
    return 0;
}
