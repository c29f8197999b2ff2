/*
 * json_scan.h: a validating JSON scanner that builds no tree.
 *
 * The gateway must check every upstream response before a byte of it
 * reaches a client, and responses are large (a mainnet block with its
 * receipts is hundreds of kB).  Building a jansson tree costs ~20 ns per
 * byte here; this scanner checks the same grammar an order of magnitude
 * faster and reports where values start and end, so the gateway can match
 * ids, reorder a batch and merge eth_getLogs results by splicing bytes.
 *
 * Accepted: RFC 8259 JSON, as strict as jansson: UTF-8 only (no overlong
 * forms, no surrogates, nothing above U+10FFFF), no control characters in
 * strings, escapes checked (\u surrogate pairs must pair; \u0000 refused
 * as jansson refuses it), no leading zeros, nesting at most
 * JSON_SCAN_MAX_DEPTH.  Unlike jansson it does not refuse integers beyond
 * 64 bits or reals beyond double range: they are valid JSON.
 * Duplicate keys are not looked for here (chain/jsonrpc_response.c
 * refuses them where they matter: the members of a JSON-RPC response).
 */
#ifndef TRACE_JSON_SCAN_H
#define TRACE_JSON_SCAN_H

#include <stddef.h>

#define JSON_SCAN_MAX_DEPTH 2048

/* The first position at or after pos that is not JSON whitespace. */
size_t json_scan_ws(const char *s, size_t n, size_t pos);

/* Checks the JSON value at *pos (leading whitespace skipped) and moves
 * *pos just past it.  0, or -1 with *pos at the offending byte and *why
 * saying what is wrong (static text). */
int json_scan_value(const char *s, size_t n, size_t *pos, const char **why);

/* Checks the string at *pos (which must be at its opening quote) and moves
 * *pos past it.  When out is not NULL the decoded string goes there:
 * *outn is its length, or (size_t) -1 when it did not fit in outlen bytes
 * (out is not NUL-terminated).  0 or -1 as above. */
int json_scan_string(const char *s, size_t n, size_t *pos, char *out, size_t outlen,
                    size_t *outn, const char **why);

/* Checks the string at *pos like json_scan_string without decoding it;
 * *escaped says whether it holds backslash escapes (if not, its bytes
 * between the quotes are its value). */
int json_scan_string_span(const char *s, size_t n, size_t *pos, int *escaped, const char **why);

/* Checks the number at *pos (RFC 8259 grammar) and moves *pos past it. */
int json_scan_number(const char *s, size_t n, size_t *pos, const char **why);

/* Whether s[0..n) is one JSON value with only whitespace around it.  0, or
 * -1 with *errpos and *why. */
int json_scan_document(const char *s, size_t n, size_t *errpos, const char **why);

#endif
