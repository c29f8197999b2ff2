/*
 * protocol.h: the UDF protocol "trace-udf/1", the worker's side.
 *
 * The worker writes one line to the UDF's stdin and closes it:
 *   {"type":"task","protocol":"trace-udf/1","task":{...}}
 * The UDF writes JSON lines to stdout, each one object with a "type":
 *   {"type":"row","dataset":D,"partition_key":K,"row":{...}}
 *   {"type":"event","dataset":D,"partition_key":K,"payload":{...}}
 *   {"type":"log","level":"debug|info|warn|error","message":"..."}
 *   {"type":"result","ok":true,"result":{...}}
 *   {"type":"result","ok":false,"error":"...","retryable":true|false}
 * and exits 0.  The result line is the last line; blank lines are ignored.
 *
 * udf_stream validates every line as it arrives (size caps, UTF-8, types,
 * unknown keys) and accumulates rows per (dataset, partition_key) and
 * events in order, so the worker writes nothing until the UDF finished
 * with ok:true.  The first violation stops the stream; its message names
 * the line number and the problem.  Pure code: no I/O, unit-tested.
 */
#ifndef TRACE_PROTOCOL_H
#define TRACE_PROTOCOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define UDF_PROTOCOL "trace-udf/1"
#define UDF_MAX_DATASET_LEN 200
#define UDF_MAX_PARTITION_KEY_LEN 1000

typedef enum { UDF_ROW, UDF_EVENT, UDF_LOG, UDF_RESULT } udf_msg_type;

/* One parsed and validated line.  Pointers borrow from json. */
typedef struct udf_msg {
    udf_msg_type type;
    json_t     *json;           /* the whole line; owned (udf_msg_clear) */
    const char *dataset;        /* row, event */
    const char *partition_key;  /* row, event */
    json_t     *value;          /* row: the row; event: payload; result: result (or NULL) */
    int         level;          /* log: enum log_level */
    const char *message;        /* log: message; result: error */
    int         ok;             /* result */
    int         retryable;      /* result when !ok (default true) */
} udf_msg;

/* Parses and validates one line (without its newline).  0, or -1 with err
 * filled with the problem (without the line number). */
int udf_parse_line(const char *line, size_t len, udf_msg *out, char *err, size_t errlen);
void udf_msg_clear(udf_msg *m);

typedef struct udf_limits {
    int64_t max_line_bytes;
    int64_t max_output_bytes;
    int64_t max_rows;
    int64_t max_events;
} udf_limits;

/* What stopped a stream: the UDF broke the protocol (its bug: a retry on
 * the same input repeats it), or it wrote more than udf_max_output, or the
 * worker ran out of memory (both may pass: worth a retry). */
typedef enum udf_problem {
    UDF_PROBLEM_NONE = 0,
    UDF_PROBLEM_PROTOCOL,
    UDF_PROBLEM_OUTPUT_LIMIT,
    UDF_PROBLEM_NO_MEMORY
} udf_problem;

typedef struct udf_stream {
    udf_limits limits;
    char      *buf;             /* the partial line */
    size_t     len, cap;
    int64_t    lineno;          /* lines seen so far */
    int64_t    total_bytes;
    int64_t    nrows;
    int64_t    nevents;
    json_t    *partitions;      /* array of {"dataset","partition_key","rows":[...]} */
    json_t    *partition_index; /* object: key -> index into partitions */
    json_t    *events;          /* array of {"dataset","partition_key","payload","line"} */
    json_t    *event_index;     /* object: key -> line where it was emitted */
    int        have_result;
    int        ok;
    int        retryable;
    char      *error;           /* the UDF's error (result ok:false); owned */
    json_t    *result;          /* the UDF's result (ok:true); owned, may be NULL */
    int        failed;          /* a violation stopped the stream */
    udf_problem problem_kind;   /* what kind of problem */
    char       problem[1024];   /* the violation, naming the line */
    /* Called for each log line, in order; may be NULL. */
    void     (*on_log)(void *arg, int level, const char *message);
    void      *log_arg;
} udf_stream;

/* 0 or -1 (out of memory). */
int udf_stream_init(udf_stream *s, const udf_limits *limits);
/* Feeds bytes of stdout.  0, or -1 once the stream failed (see problem). */
int udf_stream_feed(udf_stream *s, const char *data, size_t n);
/* End of stdout: a last line without newline is taken as a line; then the
 * result line must have been seen.  0 or -1 (see problem). */
int udf_stream_finish(udf_stream *s);
void udf_stream_free(udf_stream *s);

#endif
