/*
 * tpq_rle.c: Parquet's RLE / bit-packed hybrid encoding (Encodings.md), used
 * for definition levels (bit width 1) and dictionary indexes.
 *
 * A run header is a ULEB128: (count << 1) for a repeated run, followed by
 * the value in ceil(w/8) little-endian bytes; (groups << 1) | 1 for a
 * bit-packed run of groups * 8 values packed LSB first.  The encoder emits a
 * repeated run for 8 or more equal values starting at a group boundary,
 * bit-packed groups otherwise (at most 63 groups per header, so a header is
 * one byte); only the last group of the data is padded.
 */
#include <string.h>

#include "tpq_int.h"

int
bit_width(uint32_t max_value)
{
    int w = 0;

    while (max_value)
    {
        w++;
        max_value >>= 1;
    }
    return w;
}

size_t
rle_bound(size_t n, int w)
{
    /* worst case: all bit-packed, one header byte per 63 groups, padding */
    size_t groups = (n + 7) / 8;

    return groups * (size_t) w + groups / 63 + 2 + 8;
}

static size_t
run_length(const uint32_t *v, size_t i, size_t n)
{
    size_t j = i + 1;

    while (j < n && v[j] == v[i])
        j++;
    return j - i;
}

/* Packs 8 * groups values (zero past n) of width w, LSB first. */
static int
pack(tpq_buf *out, const uint32_t *v, size_t start, size_t n, size_t groups, int w)
{
    size_t count = groups * 8, nbytes = groups * (size_t) w, i;
    uint64_t acc = 0;
    int bits = 0;
    uint8_t *p;

    if (tpq_buf_reserve(out, nbytes) < 0)
        return -1;
    p = out->data + out->len;
    for (i = 0; i < count; i++)
    {
        uint64_t x = start + i < n ? v[start + i] : 0;

        acc |= x << bits;
        bits += w;
        while (bits >= 8)
        {
            *p++ = (uint8_t) acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    out->len += nbytes;
    return 0;
}

int
rle_encode(tpq_buf *out, const uint32_t *v, size_t n, int w)
{
    size_t i = 0, vbytes = ((size_t) w + 7) / 8;

    while (i < n)
    {
        size_t r = run_length(v, i, n);

        if (r >= 8 || (r == n - i && w == 0))
        {
            uint8_t val[4];
            size_t k;

            for (k = 0; k < vbytes; k++)
                val[k] = (uint8_t) (v[i] >> (8 * k));
            if (tpq_buf_put_varint(out, (uint64_t) r << 1) < 0 || tpq_buf_put(out, val, vbytes) < 0)
                return -1;
            i += r;
        }
        else
        {
            size_t start = i, groups = 0;

            while (i < n && groups < 63)
            {
                if (groups > 0 && run_length(v, i, n) >= 8)
                    break;
                i += 8;
                groups++;
            }
            if (i > n)
                i = n;
            if (tpq_buf_put_varint(out, (uint64_t) groups << 1 | 1) < 0 ||
                pack(out, v, start, n, groups, w) < 0)
                return -1;
        }
    }
    return 0;
}

/* Decodes exactly n values; values of width w are < 2^w by construction
 * except repeated values, which are checked. */
int
rle_decode(const uint8_t *p, size_t len, int w, uint32_t *out, size_t n,
           uint64_t base, tpq_err *err)
{
    const uint8_t *start = p, *end = p + len;
    size_t got = 0, vbytes = ((size_t) w + 7) / 8;
    uint32_t mask = w >= 32 ? 0xFFFFFFFFu : (1u << w) - 1;

    if (w < 0 || w > 32)
    {
        tpq_seterr(err, "bit width %d out of range 0..32 at offset %llu", w, (unsigned long long) base);
        return -1;
    }
    while (got < n)
    {
        uint64_t hdr = 0;
        int shift = 0;

        for (;;)
        {
            uint8_t c;

            if (p >= end)
            {
                tpq_seterr(err, "RLE/bit-packed data ends after %zu of %zu values at offset %llu",
                           got, n, (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            c = *p++;
            if (shift > 56)
            {
                tpq_seterr(err, "RLE run header too long at offset %llu",
                           (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            hdr |= (uint64_t) (c & 0x7F) << shift;
            if (!(c & 0x80))
                break;
            shift += 7;
        }
        if (hdr & 1)
        {
            uint64_t groups = hdr >> 1, count = groups * 8;
            size_t take = count < n - got ? (size_t) count : n - got;
            size_t need = (take * (size_t) w + 7) / 8, i;
            uint64_t acc = 0;
            int bits = 0;
            const uint8_t *q = p;

            if (groups == 0 || groups > (uint64_t) 1 << 40)
            {
                tpq_seterr(err, "bit-packed run of %llu groups at offset %llu",
                           (unsigned long long) groups, (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            if (need > (size_t) (end - p))
            {
                tpq_seterr(err, "bit-packed run needs %zu bytes, %zu left at offset %llu",
                           need, (size_t) (end - p), (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            for (i = 0; i < take; i++)
            {
                while (bits < w)
                {
                    acc |= (uint64_t) *q++ << bits;
                    bits += 8;
                }
                out[got++] = (uint32_t) (acc & mask);
                acc >>= w;
                bits -= w;
            }
            /* skip the run's padding when present (the last run may omit it) */
            {
                uint64_t full = groups * (uint64_t) w;

                p += full <= (uint64_t) (end - p) ? (size_t) full : (size_t) (end - p);
            }
        }
        else
        {
            uint64_t count = hdr >> 1;
            uint32_t val = 0;
            size_t k, take;

            if (count == 0)
            {
                tpq_seterr(err, "RLE run of zero values at offset %llu",
                           (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            if (vbytes > (size_t) (end - p))
            {
                tpq_seterr(err, "RLE run value runs past the end at offset %llu",
                           (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            for (k = 0; k < vbytes; k++)
                val |= (uint32_t) p[k] << (8 * k);
            p += vbytes;
            if (val & ~mask)
            {
                tpq_seterr(err, "RLE run value %u wider than %d bits at offset %llu",
                           val, w, (unsigned long long) (base + (uint64_t) (p - start)));
                return -1;
            }
            take = count < n - got ? (size_t) count : n - got;
            for (k = 0; k < take; k++)
                out[got++] = val;
        }
    }
    return 0;
}
