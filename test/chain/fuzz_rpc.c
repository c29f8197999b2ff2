/*
 * fuzz_rpc.c: libFuzzer target for what block_follower and range_ingest
 * take from the RPC path: the JSON-RPC response matcher
 * (rpc_client_parse_response, for batches of 1-4 calls) and the hex
 * decoders and numeric encoder (evm.c) fed the same bytes.  Run for a
 * bounded time by test/chain/run.sh with ASan and UBSan.
 */
#include "evm.h"
#include "rpc_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_call calls[4];
    char err[512], dec[100], *s;
    size_t n = size ? (size_t) (data[0] % 4) + 1 : 1, len;
    uint64_t v;
    uint8_t fixed[32];
    copybuf cb;

    memset(calls, 0, sizeof calls);
    if (rpc_client_parse_response((const char *) data, size, calls, n, err, sizeof err) == 0)
        for (size_t i = 0; i < n; i++)
            if (calls[i].result == NULL && !calls[i].has_error)
                abort();        /* every call must be answered */
    rpc_client_calls_clear(calls, n);

    s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void) hex_to_u64(s, &v);
    (void) hex_to_fixed(s, fixed, 32);
    (void) hex_data_len(s, &len);
    (void) hex_to_decimal(s, dec, sizeof dec);
    cb_init(&cb);
    cb_reset(&cb);
    cb_numeric_hex(&cb, s, "fuzz");
    cb_bytea_hex(&cb, s, "fuzz");
    cb_free(&cb);
    free(s);
    return 0;
}
