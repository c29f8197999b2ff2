/*
 * protocol.c: validation and accumulation of a UDF's JSON-lines output.
 * See protocol.h for the format.  Memory is bounded by the output cap: the
 * stream keeps at most max_output_bytes of input (plus jansson's overhead)
 * and refuses the rest.
 */
#define _GNU_SOURCE
#include "protocol.h"

#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
check_keys(json_t *o, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *v;

    json_object_foreach(o, key, v) {
        int ok = 0;

        (void) v;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = 1;
        if (!ok) {
            set_err(err, errlen, "unknown key \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

static int
get_string(json_t *o, const char *key, size_t minlen, size_t maxlen, const char **out,
           char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    size_t len;

    if (v == NULL) {
        set_err(err, errlen, "missing \"%s\"", key);
        return -1;
    }
    if (!json_is_string(v)) {
        set_err(err, errlen, "\"%s\" must be a string", key);
        return -1;
    }
    len = json_string_length(v);
    if (len < minlen || len > maxlen) {
        set_err(err, errlen, "\"%s\" must be %zu to %zu bytes long, not %zu", key, minlen,
                maxlen, len);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int
udf_parse_line(const char *line, size_t len, udf_msg *out, char *err, size_t errlen)
{
    static const char *const row_keys[] = {"type", "dataset", "partition_key", "row", NULL};
    static const char *const event_keys[] = {"type", "dataset", "partition_key", "payload", NULL};
    static const char *const log_keys[] = {"type", "level", "message", NULL};
    static const char *const result_keys[] = {"type", "ok", "result", "error", "retryable", NULL};
    json_error_t jerr;
    json_t *o, *t;
    const char *type;

    memset(out, 0, sizeof *out);
    /* JSON_REJECT_DUPLICATES: {"ok":false,"ok":true} is refused, not guessed.
     * Without JSON_ALLOW_NUL, "\u0000" (which jsonb cannot store) is refused. */
    o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        set_err(err, errlen, "not valid JSON: %s at column %d", jerr.text, jerr.column);
        return -1;
    }
    out->json = o;
    if (!json_is_object(o)) {
        set_err(err, errlen, "a line must be a JSON object");
        goto fail;
    }
    t = json_object_get(o, "type");
    if (t == NULL || !json_is_string(t)) {
        set_err(err, errlen, "missing string \"type\" (row, event, log or result)");
        goto fail;
    }
    type = json_string_value(t);
    if (strcmp(type, "row") == 0 || strcmp(type, "event") == 0) {
        int is_row = type[0] == 'r';
        const char *vkey = is_row ? "row" : "payload";

        out->type = is_row ? UDF_ROW : UDF_EVENT;
        if (check_keys(o, is_row ? row_keys : event_keys, err, errlen) < 0 ||
            get_string(o, "dataset", 1, UDF_MAX_DATASET_LEN, &out->dataset, err, errlen) < 0 ||
            get_string(o, "partition_key", 0, UDF_MAX_PARTITION_KEY_LEN, &out->partition_key,
                       err, errlen) < 0)
            goto fail;
        out->value = json_object_get(o, vkey);
        if (out->value == NULL && !is_row) {
            out->value = json_object();     /* an event's payload defaults to {} */
            if (out->value == NULL || json_object_set_new(o, "payload", out->value) < 0) {
                set_err(err, errlen, "out of memory");
                goto fail;
            }
        }
        if (out->value == NULL || !json_is_object(out->value)) {
            set_err(err, errlen, "\"%s\" must be a JSON object", vkey);
            goto fail;
        }
        return 0;
    }
    if (strcmp(type, "log") == 0) {
        const char *level;

        out->type = UDF_LOG;
        if (check_keys(o, log_keys, err, errlen) < 0 ||
            get_string(o, "level", 1, 16, &level, err, errlen) < 0 ||
            get_string(o, "message", 0, 65536, &out->message, err, errlen) < 0)
            goto fail;
        out->level = log_level_parse(level);
        if (out->level < 0) {
            set_err(err, errlen, "\"level\" must be debug, info, warn or error");
            goto fail;
        }
        return 0;
    }
    if (strcmp(type, "result") == 0) {
        json_t *ok = json_object_get(o, "ok");

        out->type = UDF_RESULT;
        if (check_keys(o, result_keys, err, errlen) < 0)
            goto fail;
        if (ok == NULL || !json_is_boolean(ok)) {
            set_err(err, errlen, "\"ok\" must be true or false");
            goto fail;
        }
        out->ok = json_is_true(ok);
        if (out->ok) {
            if (json_object_get(o, "error") || json_object_get(o, "retryable")) {
                set_err(err, errlen, "\"error\" and \"retryable\" belong to ok:false results");
                goto fail;
            }
            out->value = json_object_get(o, "result");
            if (out->value && json_is_null(out->value))
                out->value = NULL;
        } else {
            json_t *r = json_object_get(o, "retryable");

            if (json_object_get(o, "result")) {
                set_err(err, errlen, "\"result\" belongs to ok:true results");
                goto fail;
            }
            if (get_string(o, "error", 1, 65536, &out->message, err, errlen) < 0)
                goto fail;
            if (r && !json_is_boolean(r)) {
                set_err(err, errlen, "\"retryable\" must be true or false");
                goto fail;
            }
            out->retryable = r ? json_is_true(r) : 1;
        }
        return 0;
    }
    set_err(err, errlen, "unknown type \"%.32s\" (row, event, log or result)", type);
fail:
    json_decref(o);
    out->json = NULL;
    return -1;
}

void
udf_msg_clear(udf_msg *m)
{
    json_decref(m->json);
    memset(m, 0, sizeof *m);
}

int
udf_stream_init(udf_stream *s, const udf_limits *limits)
{
    memset(s, 0, sizeof *s);
    s->limits = *limits;
    s->partitions = json_array();
    s->partition_index = json_object();
    s->events = json_array();
    s->event_index = json_object();
    if (!s->partitions || !s->partition_index || !s->events || !s->event_index) {
        udf_stream_free(s);
        return -1;
    }
    return 0;
}

void
udf_stream_free(udf_stream *s)
{
    free(s->buf);
    json_decref(s->partitions);
    json_decref(s->partition_index);
    json_decref(s->events);
    json_decref(s->event_index);
    json_decref(s->result);
    free(s->error);
    memset(s, 0, sizeof *s);
}

/* Stops the stream with the first problem: its kind and its message. */
__attribute__((format(printf, 3, 4))) static int
stream_fail(udf_stream *s, udf_problem kind, const char *fmt, ...)
{
    va_list ap;

    if (!s->failed) {
        va_start(ap, fmt);
        vsnprintf(s->problem, sizeof s->problem, fmt, ap);
        va_end(ap);
        s->failed = 1;
        s->problem_kind = kind;
    }
    return -1;
}

/* A key naming (dataset, partition_key) unambiguously: JSON of the pair. */
static char *
pair_key(const char *dataset, const char *partition_key)
{
    json_t *pair = json_pack("[ss]", dataset, partition_key);
    char *k = pair ? json_dumps(pair, JSON_COMPACT) : NULL;

    json_decref(pair);
    return k;
}

static int
oom_on_line(udf_stream *s)
{
    return stream_fail(s, UDF_PROBLEM_NO_MEMORY, "out of memory on line %lld", (long long) s->lineno);
}

/* A row: kept with the other rows of its (dataset, partition_key). */
static int
take_row(udf_stream *s, const udf_msg *m)
{
    json_t *idx, *part;
    char *key;
    int rc = -1;

    if (++s->nrows > s->limits.max_rows)
        return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error on line %lld: more than %lld rows (udf_max_rows)",
                           (long long) s->lineno, (long long) s->limits.max_rows);
    if ((key = pair_key(m->dataset, m->partition_key)) == NULL)
        return oom_on_line(s);
    idx = json_object_get(s->partition_index, key);
    if (idx)
        part = json_array_get(s->partitions, (size_t) json_integer_value(idx));
    else {
        part = json_pack("{s:s,s:s,s:[]}", "dataset", m->dataset, "partition_key",
                         m->partition_key, "rows");
        if (part == NULL ||
            json_object_set_new(s->partition_index, key,
                                json_integer((json_int_t) json_array_size(s->partitions))) < 0 ||
            json_array_append_new(s->partitions, part) < 0)
            part = NULL;
    }
    if (part != NULL && json_array_append(json_object_get(part, "rows"), m->value) == 0)
        rc = 0;
    free(key);
    return rc == 0 ? 0 : oom_on_line(s);
}

/* An event: at most one per (dataset, partition_key), kept in order. */
static int
take_event(udf_stream *s, const udf_msg *m)
{
    json_t *prev, *ev;
    char *key;
    int rc;

    if (++s->nevents > s->limits.max_events)
        return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error on line %lld: more than %lld events (udf_max_events)",
                           (long long) s->lineno, (long long) s->limits.max_events);
    if ((key = pair_key(m->dataset, m->partition_key)) == NULL)
        return oom_on_line(s);
    prev = json_object_get(s->event_index, key);
    if (prev) {
        free(key);
        return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error on line %lld: an event for dataset \"%s\" partition "
                           "\"%s\" was already emitted on line %lld",
                           (long long) s->lineno, m->dataset, m->partition_key,
                           (long long) json_integer_value(prev));
    }
    ev = json_pack("{s:s,s:s,s:O,s:I}", "dataset", m->dataset, "partition_key",
                   m->partition_key, "payload", m->value, "line", (json_int_t) s->lineno);
    rc = ev == NULL || json_array_append_new(s->events, ev) < 0 ||
         json_object_set_new(s->event_index, key, json_integer((json_int_t) s->lineno)) < 0;
    free(key);
    return rc ? oom_on_line(s) : 0;
}

/* The result line: the last one. */
static int
take_result(udf_stream *s, const udf_msg *m)
{
    s->have_result = 1;
    s->ok = m->ok;
    s->retryable = m->retryable;
    if (m->ok) {
        s->result = m->value ? json_incref(m->value) : NULL;
        return 0;
    }
    s->error = strdup(m->message);
    return s->error ? 0 : oom_on_line(s);
}

static int
take_line(udf_stream *s, const char *line, size_t len)
{
    udf_msg m;
    char err[512];
    size_t i = 0;
    int rc = 0;

    s->lineno++;
    /* Blank lines (a stray newline) carry nothing; skip them. */
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return 0;
    if (s->have_result)
        return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error on line %lld: output after the result line",
                           (long long) s->lineno);
    if (udf_parse_line(line, len, &m, err, sizeof err) < 0)
        return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error on line %lld: %s", (long long) s->lineno, err);
    switch (m.type) {
    case UDF_LOG:
        if (s->on_log)
            s->on_log(s->log_arg, m.level, m.message);
        break;
    case UDF_ROW:
        rc = take_row(s, &m);
        break;
    case UDF_EVENT:
        rc = take_event(s, &m);
        break;
    case UDF_RESULT:
        rc = take_result(s, &m);
        break;
    }
    udf_msg_clear(&m);
    return rc;
}

int
udf_stream_feed(udf_stream *s, const char *data, size_t n)
{
    if (s->failed)
        return -1;
    s->total_bytes += (int64_t) n;
    if (s->total_bytes > s->limits.max_output_bytes)
        return stream_fail(s, UDF_PROBLEM_OUTPUT_LIMIT, "output limit hit: the UDF wrote more than %lld bytes "
                           "(udf_max_output)", (long long) s->limits.max_output_bytes);
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t) (nl - data) : n;

        if ((int64_t) (s->len + take) > s->limits.max_line_bytes)
            return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error on line %lld: line longer than %lld bytes "
                               "(udf_max_line)", (long long) s->lineno + 1,
                               (long long) s->limits.max_line_bytes);
        if (nl && s->len == 0) {
            /* The whole line is in this chunk: no copy. */
            if (take_line(s, data, take) < 0)
                return -1;
        } else {
            if (buf_reserve(&s->buf, &s->cap, s->len + take + 1, 4096) < 0)
                return stream_fail(s, UDF_PROBLEM_NO_MEMORY, "out of memory");
            memcpy(s->buf + s->len, data, take);
            s->len += take;
            if (nl) {
                if (take_line(s, s->buf, s->len) < 0)
                    return -1;
                s->len = 0;
            }
        }
        if (!nl)
            break;
        data += take + 1;
        n -= take + 1;
    }
    return 0;
}

int
udf_stream_finish(udf_stream *s)
{
    if (s->failed)
        return -1;
    if (s->len > 0) {
        if (take_line(s, s->buf, s->len) < 0)
            return -1;
        s->len = 0;
    }
    if (!s->have_result)
        return stream_fail(s, UDF_PROBLEM_PROTOCOL, "protocol error: the UDF ended without a result line "
                           "(after %lld lines)", (long long) s->lineno);
    return 0;
}
