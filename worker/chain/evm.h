/*
 * evm.h: decoding Ethereum JSON-RPC values, and the binary COPY encoder
 * the chain operators write rows with.
 *
 * JSON-RPC gives every number as a hex "quantity" ("0x1b4", no leading
 * zeros, though some nodes send them and they are accepted) and every hash,
 * address and byte string as hex "data" ("0x" + two digits per byte).
 * Quantities can exceed 64 bits (wei values), so those that go to numeric
 * columns are converted digit by digit, never through a machine integer.
 *
 * The encoder writes PostgreSQL's binary COPY format (header, tuples of
 * length-prefixed big-endian fields, trailer) into a growing buffer.  It
 * never fails half-way: an allocation failure or a bad value sets
 * cb->failed (with cb->error) and later calls do nothing; the caller checks
 * once at the end.
 */
#ifndef TRACE_EVM_H
#define TRACE_EVM_H

#include <stddef.h>
#include <stdint.h>

/* "0x1b4" -> 436.  0, or -1 when not a 0x-prefixed hex number of at most
 * 16 digits. */
int hex_to_u64(const char *s, uint64_t *out);
int hex_to_u64_n(const char *s, size_t len, uint64_t *out);

/* "0xab..." of exactly n bytes -> out[n].  0 or -1. */
int hex_to_fixed(const char *s, uint8_t *out, size_t n);
int hex_to_fixed_n(const char *s, size_t len, uint8_t *out, size_t n);

/* Checks "0x" + an even number of hex digits; *nbytes gets the byte count.
 * 0 or -1. */
int hex_data_len(const char *s, size_t *nbytes);

/* Lower-case "0x..." of n bytes into out (2n + 3 bytes). */
void bytes_to_hex(const uint8_t *in, size_t n, char *out);

/* A quantity of up to 78 hex digits (beyond 256 bits) as a decimal string:
 * "0x3e8" -> "1000".  For tests and messages.  0 or -1. */
int hex_to_decimal(const char *s, char *out, size_t outlen);

typedef struct copybuf {
    uint8_t *data;
    size_t   len;
    size_t   cap;
    int      failed;
    char     error[160];
    size_t   tuple_start;   /* where the open tuple begins (for its field count check) */
    int      rows;
} copybuf;

void cb_init(copybuf *cb);
void cb_free(copybuf *cb);
/* Empties the buffer (keeps its memory) and writes the COPY header. */
void cb_reset(copybuf *cb);
/* Starts a tuple of nfields fields. */
void cb_tuple(copybuf *cb, int nfields);
void cb_null(copybuf *cb);
void cb_int2(copybuf *cb, int16_t v);
void cb_int4(copybuf *cb, int32_t v);
void cb_int8(copybuf *cb, int64_t v);
/* bytea or text: the raw bytes. */
void cb_bytes(copybuf *cb, const void *p, size_t n);
/* bytea from hex data ("0x..."); a bad value fails the buffer. */
void cb_bytea_hex(copybuf *cb, const char *hex, const char *what);
void cb_bytea_hex_n(copybuf *cb, const char *hex, size_t len, const char *what);
/* numeric from a hex quantity of any size; a bad value fails the buffer. */
void cb_numeric_hex(copybuf *cb, const char *hex, const char *what);
void cb_numeric_hex_n(copybuf *cb, const char *hex, size_t len, const char *what);
/* timestamptz from seconds since the Unix epoch. */
void cb_timestamptz_unix(copybuf *cb, int64_t secs);
/* Appends the trailer; the buffer is then one complete COPY stream. */
void cb_finish(copybuf *cb);

#endif
