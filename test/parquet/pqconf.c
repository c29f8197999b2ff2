/*
 * pqconf.c: the conformance generator and Trace's own reader check.
 *
 *   pqconf write DIR    writes every file kind: DIR/<kind>.parquet, the
 *                       source rows DIR/<kind>.jsonl and DIR/<kind>.schema.json
 *   pqconf verify DIR   for each kind, rebuilds the rows, reads DIR/<kind>.parquet
 *                       back with the tpq reader (every value, every row
 *                       group's statistics, key-values) and checks that
 *                       writing again gives the same bytes (determinism)
 *
 * Prints "ok - ..." / "not ok - ..." per kind; exits 1 when anything failed.
 */
#include <stdlib.h>
#include <string.h>

#include "tables.h"

static int
read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
    {
        if (f)
            fclose(f);
        return -1;
    }
    *out = malloc((size_t) n + 1);
    *len = (size_t) n;
    if (*out == NULL || fread(*out, 1, (size_t) n, f) != (size_t) n)
    {
        fclose(f);
        free(*out);
        return -1;
    }
    fclose(f);
    return 0;
}

static int
write_kind(const char *dir, const char *kind)
{
    tbl t;
    tpq_err err;
    char path[1024];
    FILE *f;
    int rc = 0;

    tbl_build(&t, kind);
    snprintf(path, sizeof(path), "%s/%s.parquet", dir, kind);
    if (tbl_write_file(&t, path, &err) < 0)
    {
        printf("not ok - write %s: %s\n", kind, err.msg);
        rc = -1;
    }
    snprintf(path, sizeof(path), "%s/%s.jsonl", dir, kind);
    if ((f = fopen(path, "w")) == NULL || tbl_write_jsonl(&t, f) < 0 || fclose(f) != 0)
        rc = -1;
    snprintf(path, sizeof(path), "%s/%s.schema.json", dir, kind);
    if ((f = fopen(path, "w")) == NULL)
        rc = -1;
    else
    {
        tbl_write_schema_json(&t, f);
        if (fclose(f) != 0)
            rc = -1;
    }
    tbl_free(&t);
    return rc;
}

static int
verify_kind(const char *dir, const char *kind)
{
    tbl t;
    tpq_err err;
    char path[1024], msg[1536];
    uint8_t *file = NULL, *again = NULL;
    size_t len, len2;
    int rc = -1;

    tbl_build(&t, kind);
    snprintf(path, sizeof(path), "%s/%s.parquet", dir, kind);
    if (read_file(path, &file, &len) < 0)
        snprintf(msg, sizeof(msg), "cannot read %s", path);
    else if (tbl_verify(&t, file, len, msg, sizeof(msg)) < 0)
        ;
    else if (tbl_write_mem(&t, &again, &len2, &err) < 0)
        snprintf(msg, sizeof(msg), "rewrite: %s", err.msg);
    else if (len2 != len || memcmp(file, again, len) != 0)
        snprintf(msg, sizeof(msg), "writing the same rows again gave different bytes");
    else
        rc = 0;
    if (rc == 0)
        printf("ok - tpq reader: %s (%zu rows, %zu bytes, byte-identical on rewrite)\n", kind, t.nrows, len);
    else
        printf("not ok - tpq reader: %s: %s\n", kind, msg);
    free(file);
    free(again);
    tbl_free(&t);
    return rc;
}

int
main(int argc, char **argv)
{
    int failed = 0;

    if (argc != 3 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "verify") != 0))
    {
        fprintf(stderr, "usage: pqconf write|verify DIR\n");
        return 2;
    }
    for (const char *const *k = tbl_kinds; *k; k++)
    {
        if (strcmp(argv[1], "write") == 0)
            failed |= write_kind(argv[2], *k) < 0;
        else
            failed |= verify_kind(argv[2], *k) < 0;
    }
    return failed ? 1 : 0;
}
