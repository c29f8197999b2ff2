/*
 * test_worker.c: unit tests for trace-worker's config parsing (config.c,
 * util.c) and its UDF protocol validator (protocol.c).  No database, no
 * sandbox: pure functions.  Prints TAP-style "ok N - name" lines and a
 * closing "N passed, N failed"; exits non-zero on any failure.
 */
#define _GNU_SOURCE
#include "config.h"
#include "log.h"
#include "protocol.h"
#include "util.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- durations and sizes --------------------------------------------- */

static void
test_units(void)
{
    int64_t v;
    char err[256];

    CHECK(parse_duration_ms("250ms", 0, &v, err, sizeof err) == 0 && v == 250, "duration 250ms");
    CHECK(parse_duration_ms("5s", 0, &v, err, sizeof err) == 0 && v == 5000, "duration 5s");
    CHECK(parse_duration_ms(" 1.5 min ", 0, &v, err, sizeof err) == 0 && v == 90000, "duration 1.5 min");
    CHECK(parse_duration_ms("2h", 0, &v, err, sizeof err) == 0 && v == 7200000, "duration 2h");
    CHECK(parse_duration_ms("30", 0, &v, err, sizeof err) < 0 && contains(err, "needs a unit"),
          "a bare duration needs a unit");
    CHECK(parse_duration_ms("30", 1, &v, err, sizeof err) == 0 && v == 30, "a bare duration with a default unit");
    CHECK(parse_duration_ms("5 parsecs", 0, &v, err, sizeof err) < 0 && contains(err, "unknown unit"),
          "unknown duration unit");
    CHECK(parse_duration_ms("-5s", 0, &v, err, sizeof err) < 0, "negative duration refused");
    CHECK(parse_duration_ms("5s x", 0, &v, err, sizeof err) < 0, "trailing junk refused");
    CHECK(parse_duration_ms("", 0, &v, err, sizeof err) < 0, "empty duration refused");
    CHECK(parse_duration_ms("1e300s", 0, &v, err, sizeof err) < 0 && contains(err, "too large"),
          "huge duration refused");
    CHECK(parse_size_bytes("512", 1, &v, err, sizeof err) == 0 && v == 512, "size 512");
    CHECK(parse_size_bytes("64kB", 1, &v, err, sizeof err) == 0 && v == 65536, "size 64kB");
    CHECK(parse_size_bytes("256MB", 1, &v, err, sizeof err) == 0 && v == 268435456, "size 256MB");
    CHECK(parse_size_bytes("1GB", 1, &v, err, sizeof err) == 0 && v == 1073741824, "size 1GB");
    CHECK(parse_size_bytes("3 furlongs", 1, &v, err, sizeof err) < 0, "unknown size unit");
}

/* ---- config -------------------------------------------------------------- */

static void
test_config(void)
{
    worker_config c;
    char err[512];

    CHECK(config_defaults(&c, err, sizeof err) == 0, "defaults load");
    CHECK(c.concurrency == 4 && c.poll_interval_ms == 5000 && c.lease_ms == 0 &&
          c.drain_timeout_ms == 30000 && c.log_level == LOG_INFO && c.log_format == LOG_TEXT &&
          strcmp(c.runtimes, "ecs_platform,lambda") == 0 && c.udf_memory_bytes == 512LL << 20,
          "default values");
    CHECK(strcmp(c.pg_options, "-c search_path=pg_catalog") == 0, "search_path pinned by default");

    CHECK(config_parse_text(&c,
                            "# comment\n"
                            "\n"
                            "conninfo = 'host=db user=w password=''se#cret'''   # trailing comment\n"
                            "concurrency=8\n"
                            "  poll-interval = 250ms\n"
                            "log_level = debug\n"
                            "log_format = \"json\"\n"
                            "udf_memory = 128MB\n",
                            "t.conf", err, sizeof err) == 0,
          "a config file parses");
    CHECK(strcmp(c.conninfo, "host=db user=w password='se#cret'") == 0,
          "quoted value keeps # and doubled quotes");
    CHECK(c.concurrency == 8 && c.poll_interval_ms == 250 && c.log_level == LOG_DEBUG &&
          c.log_format == LOG_JSON && c.udf_memory_bytes == 128LL << 20,
          "file values applied (dashes or underscores)");

    CHECK(config_parse_text(&c, "concurency = 3\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "t.conf:1: unknown setting \"concurency\""),
          "unknown setting named with file:line");
    CHECK(config_parse_text(&c, "\n\nconcurrency = 0\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "t.conf:3") && contains(err, "out of range (1 to 256)"),
          "out of range names the range");
    CHECK(config_parse_text(&c, "concurrency = many\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "invalid integer"), "a non-integer is refused");
    CHECK(config_parse_text(&c, "poll_interval = 5\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "needs a unit"), "a duration without unit is refused");
    CHECK(config_parse_text(&c, "log_level = loud\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "debug, info, warn, error"), "a bad log level lists the choices");
    CHECK(config_parse_text(&c, "conninfo = 'open\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "unterminated"), "an unterminated quote is refused");
    CHECK(config_parse_text(&c, "concurrency = 2 3\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "invalid integer"), "junk after a bare value is refused");
    CHECK(config_parse_text(&c, "conninfo = 'a' b\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "unexpected text"), "text after a quoted value is refused");
    CHECK(config_parse_text(&c, "= 3\n", "t.conf", err, sizeof err) < 0 &&
          contains(err, "expected \"name = value\""), "a line without a name is refused");
    config_free(&c);
}

/* Sources: file < environment < flags. */
static void
test_config_sources(void)
{
    worker_config c;
    char err[512];
    char *noenv[] = {NULL};

    {
        char path[] = "/tmp/trace-worker-test-XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        char flag_conf[512];
        char *env[] = {"TRACE_CONCURRENCY=6", "TRACE_LOG_LEVEL=warn", "TRACE_RUNTIMES=",
                       "PATH=/bin", NULL};
        int rest = -1;

        fputs("concurrency = 2\nlog_level = error\npoll_interval = 1s\nruntimes = lambda\n", f);
        fclose(f);
        snprintf(flag_conf, sizeof flag_conf, "--config=%s", path);
        {
            char *argv[] = {"trace-worker", flag_conf, "--log-level", "debug", "--lease=45s", NULL};

            CHECK(config_load(&c, 5, argv, env, &rest, err, sizeof err) == 0, "config_load with all sources");
            CHECK(c.poll_interval_ms == 1000, "the file sets what nothing overrides");
            CHECK(c.concurrency == 6, "the environment overrides the file");
            CHECK(c.log_level == LOG_DEBUG, "a flag overrides the environment");
            CHECK(strcmp(c.runtimes, "lambda") == 0, "an empty variable counts as unset");
            CHECK(c.lease_ms == 45000 && rest == 5, "--name=value form, all arguments used");
            CHECK(c.config_file && strcmp(c.config_file, path) == 0, "the file's name is kept");
            config_free(&c);
        }
        {
            char *argv[] = {"trace-worker", "--concurrency", "999", NULL};

            CHECK(config_load(&c, 3, argv, noenv, NULL, err, sizeof err) < 0 &&
                  contains(err, "option --concurrency") && contains(err, "out of range"),
                  "a bad flag names the flag");
        }
        {
            char *argv[] = {"trace-worker", "--no-such-thing=1", NULL};

            CHECK(config_load(&c, 2, argv, noenv, NULL, err, sizeof err) < 0 &&
                  contains(err, "unknown option --no-such-thing"), "an unknown flag is refused");
        }
        {
            char *argv[] = {"trace-worker", "--concurrency", NULL};

            CHECK(config_load(&c, 2, argv, noenv, NULL, err, sizeof err) < 0 &&
                  contains(err, "needs a value"), "a flag without its value is refused");
        }
        {
            char *env2[] = {"TRACE_POLL_INTERVAL=fast", NULL};
            char *argv[] = {"trace-worker", NULL};

            CHECK(config_load(&c, 1, argv, env2, NULL, err, sizeof err) < 0 &&
                  contains(err, "TRACE_POLL_INTERVAL"), "a bad variable names the variable");
        }
        {
            char *argv[] = {"trace-worker", "-c", "/nonexistent/trace.conf", NULL};

            CHECK(config_load(&c, 3, argv, noenv, NULL, err, sizeof err) < 0 &&
                  contains(err, "cannot open config file"), "a missing file is an error");
        }
        {
            char *argv[] = {"trace-worker", "--concurrency=3", "extra", NULL};

            CHECK(config_load(&c, 3, argv, noenv, &rest, err, sizeof err) == 0 && rest == 2,
                  "parsing stops at the first non-option");
            config_free(&c);
        }
        unlink(path);
    }
}

/* Dump masks secrets; restart-only changes are found. */
static void
test_config_dump(void)
{
    char err[512];

    {
        worker_config a, b;
        char *buf = NULL;
        size_t len = 0;
        FILE *mem;
        char changed[256];

        config_defaults(&a, err, sizeof err);
        config_defaults(&b, err, sizeof err);
        config_set(&a, "conninfo", "host=x password=hunter2", "test", err, sizeof err);
        mem = open_memstream(&buf, &len);
        config_dump(&a, mem);
        fclose(mem);
        CHECK(!contains(buf, "hunter2") && contains(buf, "conninfo = '********'"),
              "config_dump masks the conninfo");
        free(buf);
        config_set(&b, "concurrency", "9", "test", err, sizeof err);
        config_set(&b, "log_level", "debug", "test", err, sizeof err);
        config_restart_only_changes(&a, &b, changed, sizeof changed);
        CHECK(strcmp(changed, "conninfo, concurrency") == 0,
              "restart-only changes: conninfo and concurrency, not log_level");
        config_free(&a);
        config_free(&b);
    }
}

/* ---- protocol: single lines -------------------------------------------- */

static int
parse(const char *line, udf_msg *m, char *err, size_t errlen)
{
    return udf_parse_line(line, strlen(line), m, err, errlen);
}

static void
test_lines(void)
{
    udf_msg m;
    char err[512];

    CHECK(parse("{\"type\":\"row\",\"dataset\":\"d\",\"partition_key\":\"p\",\"row\":{\"a\":1}}",
                &m, err, sizeof err) == 0 && m.type == UDF_ROW && strcmp(m.dataset, "d") == 0 &&
          json_integer_value(json_object_get(m.value, "a")) == 1,
          "a row line");
    udf_msg_clear(&m);
    CHECK(parse("{\"type\":\"event\",\"dataset\":\"d\",\"partition_key\":\"\"}", &m, err, sizeof err) == 0 &&
          m.type == UDF_EVENT && json_is_object(m.value) && json_object_size(m.value) == 0,
          "an event line; the payload defaults to {} and the key may be empty");
    udf_msg_clear(&m);
    CHECK(parse("{\"type\":\"log\",\"level\":\"warn\",\"message\":\"hi\"}", &m, err, sizeof err) == 0 &&
          m.type == UDF_LOG && m.level == LOG_WARN, "a log line");
    udf_msg_clear(&m);
    CHECK(parse("{\"type\":\"result\",\"ok\":true,\"result\":{\"n\":2}}", &m, err, sizeof err) == 0 &&
          m.type == UDF_RESULT && m.ok && json_is_object(m.value), "an ok result");
    udf_msg_clear(&m);
    CHECK(parse("{\"type\":\"result\",\"ok\":false,\"error\":\"boom\"}", &m, err, sizeof err) == 0 &&
          !m.ok && m.retryable && strcmp(m.message, "boom") == 0,
          "a failed result is retryable by default");
    udf_msg_clear(&m);
    CHECK(parse("{\"type\":\"result\",\"ok\":false,\"error\":\"bad input\",\"retryable\":false}",
                &m, err, sizeof err) == 0 && !m.retryable, "a failed result may forbid retries");
    udf_msg_clear(&m);

    static const struct { const char *line, *problem, *name; } bad[] = {
        {"not json", "not valid JSON", "not JSON"},
        {"[1,2]", "must be a JSON object", "an array"},
        {"{\"type\":\"row\"} trailing", "not valid JSON", "trailing garbage"},
        {"{\"dataset\":\"d\"}", "missing string \"type\"", "no type"},
        {"{\"type\":7}", "missing string \"type\"", "a non-string type"},
        {"{\"type\":\"rows\"}", "unknown type \"rows\"", "an unknown type"},
        {"{\"type\":\"row\",\"dataset\":\"d\",\"partition_key\":\"p\",\"row\":[1]}",
         "\"row\" must be a JSON object", "a row that is not an object"},
        {"{\"type\":\"row\",\"dataset\":\"d\",\"partition_key\":\"p\"}",
         "\"row\" must be a JSON object", "a row line without a row"},
        {"{\"type\":\"row\",\"dataset\":\"\",\"partition_key\":\"p\",\"row\":{}}",
         "\"dataset\" must be 1 to 200 bytes long", "an empty dataset"},
        {"{\"type\":\"row\",\"partition_key\":\"p\",\"row\":{}}", "missing \"dataset\"", "no dataset"},
        {"{\"type\":\"row\",\"dataset\":5,\"partition_key\":\"p\",\"row\":{}}",
         "\"dataset\" must be a string", "a numeric dataset"},
        {"{\"type\":\"row\",\"dataset\":\"d\",\"row\":{}}", "missing \"partition_key\"", "no partition key"},
        {"{\"type\":\"row\",\"dataset\":\"d\",\"partition_key\":\"p\",\"row\":{},\"extra\":1}",
         "unknown key \"extra\"", "an unknown key"},
        {"{\"type\":\"log\",\"level\":\"loud\",\"message\":\"x\"}", "\"level\" must be debug",
         "a bad log level"},
        {"{\"type\":\"result\"}", "\"ok\" must be true or false", "a result without ok"},
        {"{\"type\":\"result\",\"ok\":\"yes\"}", "\"ok\" must be true or false", "a string ok"},
        {"{\"type\":\"result\",\"ok\":false}", "missing \"error\"", "a failure without error"},
        {"{\"type\":\"result\",\"ok\":false,\"error\":\"\"}", "\"error\" must be 1 to",
         "an empty error"},
        {"{\"type\":\"result\",\"ok\":true,\"error\":\"x\"}", "belong to ok:false",
         "an error on an ok result"},
        {"{\"type\":\"result\",\"ok\":false,\"error\":\"x\",\"retryable\":1}",
         "\"retryable\" must be true or false", "a numeric retryable"},
        {"{\"type\":\"result\",\"ok\":true,\"ok\":false}", "not valid JSON", "duplicate keys"},
        {"{\"type\":\"log\",\"level\":\"info\",\"message\":\"a\\u0000b\"}", "not valid JSON",
         "a NUL escape (jsonb cannot store it)"},
        {"{\"type\":\"log\",\"level\":\"info\",\"message\":\"\xff\xfe\"}", "not valid JSON",
         "invalid UTF-8"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char name[256];
        int rc = parse(bad[i].line, &m, err, sizeof err);

        snprintf(name, sizeof name, "refused: %s", bad[i].name);
        CHECK(rc < 0 && contains(err, bad[i].problem), name);
        if (rc < 0 && !contains(err, bad[i].problem))
            printf("#   got: %s\n", err);
        if (rc == 0)
            udf_msg_clear(&m);
    }
}

/* ---- protocol: the stream ------------------------------------------------ */

static int logs_seen;

static void
count_log(void *arg, int level, const char *message)
{
    (void) arg;
    (void) level;
    (void) message;
    logs_seen++;
}

static void
stream_new(udf_stream *s, int64_t max_line, int64_t max_output, int64_t max_rows)
{
    udf_limits l = {max_line, max_output, max_rows, 100};

    udf_stream_init(s, &l);
    s->on_log = count_log;
}

static int
feed(udf_stream *s, const char *text)
{
    return udf_stream_feed(s, text, strlen(text));
}

static void
test_stream(void)
{
    udf_stream s;
    const char *row1 = "{\"type\":\"row\",\"dataset\":\"d\",\"partition_key\":\"p1\",\"row\":{\"i\":1}}\n";
    const char *row2 = "{\"type\":\"row\",\"dataset\":\"d\",\"partition_key\":\"p2\",\"row\":{\"i\":2}}\n";
    const char *ok = "{\"type\":\"result\",\"ok\":true,\"result\":{\"n\":3}}\n";

    /* Rows grouped by partition, lines split across chunks, logs passed on. */
    stream_new(&s, 1024, 1 << 20, 100);
    logs_seen = 0;
    CHECK(feed(&s, row1) == 0 && feed(&s, row2) == 0, "rows accepted");
    CHECK(feed(&s, "{\"type\":\"row\",\"dataset\":\"d\",\"part") == 0 &&
          feed(&s, "ition_key\":\"p1\",\"row\":{\"i\":3}}\n\n") == 0,
          "a line split across two reads, then a blank line");
    CHECK(feed(&s, "{\"type\":\"log\",\"level\":\"info\",\"message\":\"m\"}\n") == 0 && logs_seen == 1,
          "log lines reach the callback");
    CHECK(feed(&s, "{\"type\":\"event\",\"dataset\":\"d\",\"partition_key\":\"p1\",\"payload\":{\"n\":2}}\n") == 0,
          "an event accepted");
    CHECK(feed(&s, ok) == 0 && udf_stream_finish(&s) == 0, "the result ends the stream");
    CHECK(json_array_size(s.partitions) == 2 &&
          json_array_size(json_object_get(json_array_get(s.partitions, 0), "rows")) == 2 &&
          json_array_size(s.events) == 1 && s.nrows == 3 && s.ok &&
          json_integer_value(json_object_get(s.result, "n")) == 3,
          "rows per partition (p1: 2, p2: 1), events and result kept");
    udf_stream_free(&s);

    /* A last line without a newline still counts. */
    stream_new(&s, 1024, 1 << 20, 100);
    CHECK(feed(&s, "{\"type\":\"result\",\"ok\":true}") == 0 && udf_stream_finish(&s) == 0 && s.ok,
          "a final line without newline");
    udf_stream_free(&s);

    /* Violations name the line. */
    stream_new(&s, 1024, 1 << 20, 100);
    feed(&s, row1);
    CHECK(feed(&s, "oops\n") < 0 && contains(s.problem, "protocol error on line 2: not valid JSON"),
          "a bad line fails the stream naming line 2");
    CHECK(feed(&s, row2) < 0, "nothing is accepted after a violation");
    udf_stream_free(&s);

    stream_new(&s, 1024, 1 << 20, 100);
    CHECK(feed(&s, ok) == 0 && feed(&s, row1) < 0 &&
          contains(s.problem, "line 2: output after the result line"), "output after the result");
    udf_stream_free(&s);

    stream_new(&s, 1024, 1 << 20, 100);
    feed(&s, row1);
    CHECK(udf_stream_finish(&s) < 0 && contains(s.problem, "without a result line"),
          "no result line");
    udf_stream_free(&s);

    stream_new(&s, 1024, 1 << 20, 100);
    feed(&s, "{\"type\":\"event\",\"dataset\":\"d\",\"partition_key\":\"k\"}\n");
    CHECK(feed(&s, "{\"type\":\"event\",\"dataset\":\"d\",\"partition_key\":\"k\"}\n") < 0 &&
          contains(s.problem, "line 2") && contains(s.problem, "already emitted on line 1"),
          "the same event twice");
    udf_stream_free(&s);

    /* Limits. */
    {
        char big[300];

        memset(big, 'x', sizeof big);
        stream_new(&s, 256, 1 << 20, 100);
        feed(&s, row1);
        CHECK(udf_stream_feed(&s, big, sizeof big) < 0 &&
              contains(s.problem, "line 2: line longer than 256 bytes"),
              "the line cap, even before the newline arrives");
        udf_stream_free(&s);
    }
    stream_new(&s, 1024, 150, 100);
    feed(&s, row1);
    feed(&s, row2);
    CHECK(feed(&s, row1) < 0 && contains(s.problem, "output limit hit") &&
          contains(s.problem, "150 bytes"), "the output cap");
    udf_stream_free(&s);
    stream_new(&s, 1024, 1 << 20, 2);
    feed(&s, row1);
    feed(&s, row2);
    CHECK(feed(&s, row1) < 0 && contains(s.problem, "line 3: more than 2 rows"), "the row cap");
    udf_stream_free(&s);
}

int
main(void)
{
    log_configure(LOG_ERROR, LOG_TEXT, "test");
    test_units();
    test_config();
    test_config_sources();
    test_config_dump();
    test_lines();
    test_stream();
    return tap_done();
}
