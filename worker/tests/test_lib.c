/*
 * test_lib.c: unit tests of lib/ on its own: the settings engine with a
 * table of its own (every row type, bounds, defaults, secrets, the
 * sources, reload comparison, --help=markdown), the one backoff, the
 * metrics text builder.  The programs' own tables are tested in
 * test_worker.c and test_gateway.c.
 */
#define _GNU_SOURCE
#include "backoff.h"
#include "log.h"
#include "metrics.h"
#include "settings.h"
#include "util.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct demo {
    char   *name;
    char   *secret;
    int     on;
    int     n;
    int64_t big;
    double  ratio;
    int64_t wait_ms;
    int64_t bytes;
    int     mode;
    int     level;
} demo;

#define D(f) offsetof(demo, f)

static const setting rows[] = {
    {"name", SET_STRING, D(name), 0, 0, "x", SET_RELOADABLE, "a name"},
    {"secret", SET_STRING, D(secret), 0, 0, "", SET_SECRET, "a password"},
    {"on", SET_BOOL, D(on), 0, 1, "off", SET_RELOADABLE, "a switch"},
    {"n", SET_INT, D(n), 1, 10, "3", 0, "a count"},
    {"big", SET_INT64, D(big), 0, 9007199254740991.0, "5", SET_RELOADABLE, "a big one"},
    {"ratio", SET_DOUBLE, D(ratio), 0, 1, "0.5", SET_RELOADABLE, "a fraction"},
    {"wait", SET_DURATION, D(wait_ms), 10, 60000, "1s", SET_RELOADABLE | SET_NO_ENV, "a wait"},
    {"bytes", SET_SIZE, D(bytes), 1024, 1048576, "64kB", SET_RELOADABLE, "a size"},
    {"mode", SET_MODE, D(mode), 0, 0777, "0640", 0, "permissions"},
    {"level", SET_ENUM, D(level), 0, 0, "info", SET_RELOADABLE, "a level", settings_log_levels},
};

static const settings_table table = {
    .program = "demo", .rows = rows, .n = ARRAY_LEN(rows), .env_prefix = "DEMO_",
    .config_env = "DEMO_CONFIG",
};

static int
set_by_name(void *ctx, const char *name, size_t len, const char *value, const char *where,
            char *err, size_t errlen)
{
    return settings_table_setter(&table, ctx, name, len, value, where, err, errlen);
}

static char *
dump(const demo *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    settings_dump(&table, d, 0, "", f);
    fclose(f);
    return buf;
}

static void
test_values(void)
{
    demo d = {0};
    char err[300], *text;

    CHECK(settings_defaults(&table, &d, 0, err, sizeof err) == 0 && strcmp(d.name, "x") == 0 &&
              d.on == 0 && d.n == 3 && d.big == 5 && d.ratio == 0.5 && d.wait_ms == 1000 &&
              d.bytes == 65536 && d.mode == 0640 && d.level == LOG_INFO,
          "settings: every row type takes its default");
    CHECK(settings_set(settings_find(&table, "N", 1), &d, "11", "t", err, sizeof err) < 0 &&
              contains(err, "out of range (1 to 10)") && d.n == 3,
          "settings: out of range names the range and keeps the value");
    CHECK(settings_set(settings_find(&table, "wait", 4), &d, "5", "t", err, sizeof err) < 0 &&
              contains(err, "needs a unit"),
          "settings: a duration needs a unit");
    CHECK(settings_set(settings_find(&table, "wait", 4), &d, "5ms", "t", err, sizeof err) < 0 &&
              contains(err, "10 to 60000 ms"),
          "settings: a duration's range is in ms");
    CHECK(settings_set(settings_find(&table, "level", 5), &d, "warning", "t", err, sizeof err) == 0 &&
              d.level == LOG_WARN &&
              settings_set(settings_find(&table, "level", 5), &d, "loud", "t", err, sizeof err) < 0 &&
              contains(err, "(debug, info, warn, error)"),
          "settings: an enum takes hidden names but lists only the others");
    CHECK(settings_set(settings_find(&table, "mode", 4), &d, "0600", "t", err, sizeof err) == 0 &&
              d.mode == 0600 &&
              settings_set(settings_find(&table, "mode", 4), &d, "9", "t", err, sizeof err) < 0,
          "settings: a mode is octal");
    CHECK(settings_set(settings_find(&table, "on", 2), &d, "yes", "t", err, sizeof err) == 0 && d.on,
          "settings: a bool takes yes");
    settings_set(settings_find(&table, "secret", 6), &d, "hunter2", "t", err, sizeof err);
    text = dump(&d);
    CHECK(contains(text, "secret = '********'") && !contains(text, "hunter2") &&
              contains(text, "wait = 1000ms") && contains(text, "bytes = 65536B") &&
              contains(text, "mode = 0600") && contains(text, "level = warn"),
          "settings: the dump masks the secret, shows units");
    free(text);
    settings_free(&table, &d, 0);
}

static void
test_sources(void)
{
    demo d = {0};
    char err[300], *file = NULL;
    char *env[] = {"DEMO_N=7", "DEMO_WAIT=9s", "DEMO_NAME=", NULL};
    char *argv[] = {"demo", "--big=42", "--ratio", "0.25", "rest", NULL};
    settings_source src = {.table = &table, .set = set_by_name, .ctx = &d, .value_max = 1024};
    int rest = 0;

    settings_defaults(&table, &d, 0, err, sizeof err);
    CHECK(settings_load(&src, 5, argv, env, &rest, &file, err, sizeof err) == 0 && d.n == 7 &&
              d.big == 42 && d.ratio == 0.25 && rest == 4 && file == NULL,
          "settings: environment and flags; parsing stops at the first operand");
    CHECK(d.wait_ms == 1000 && strcmp(d.name, "x") == 0,
          "settings: SET_NO_ENV rows and empty variables are left alone");
    {
        char *bad[] = {"demo", "--nope=1", NULL};

        CHECK(settings_load(&src, 2, bad, NULL, NULL, &file, err, sizeof err) < 0 &&
                  contains(err, "unknown option --nope (see --help)"),
              "settings: an unknown flag is named");
    }
    CHECK(settings_parse_text("n = 2\nbig = 'q'\n", "f.conf", 0, 64, set_by_name, &d, err,
                              sizeof err) < 0 && contains(err, "f.conf:2") && d.n == 2,
          "settings: a file line's error names file:line");
    settings_free(&table, &d, 0);
}

static void
test_reload(void)
{
    demo a = {0}, b = {0};
    char err[300], changed[200] = "", *md = NULL;
    size_t len = 0;
    FILE *f;

    settings_defaults(&table, &a, 0, err, sizeof err);
    settings_defaults(&table, &b, 0, err, sizeof err);
    settings_set(settings_find(&table, "n", 1), &b, "9", "t", err, sizeof err);
    settings_set(settings_find(&table, "secret", 6), &b, "pw", "t", err, sizeof err);
    settings_set(settings_find(&table, "name", 4), &b, "y", "t", err, sizeof err);
    settings_restart_changes(&table, 0, &a, &b, "", changed, sizeof changed);
    CHECK(strcmp(changed, "secret, n") == 0, "settings: restart-only changes are named, not reloadable ones");
    settings_keep_restart_only(&table, 0, &b, &a);
    CHECK(b.n == 3 && strcmp(b.secret, "") == 0 && strcmp(b.name, "y") == 0 && a.n == 9,
          "settings: a reload keeps the running restart-only values, takes the rest");
    f = open_memstream(&md, &len);
    settings_markdown(&table, 0, NULL, f);
    fclose(f);
    CHECK(contains(md, "| `wait` | `1s` | 10 to 60000 ms | reloaded | a wait |") &&
              contains(md, "| `n` | `3` | 1 to 10 | restart | a count |") &&
              contains(md, "(secret: never printed)"),
          "settings: --help=markdown lists default, range and reload");
    free(md);
    settings_free(&table, &a, 0);
    settings_free(&table, &b, 0);
}

static void
test_backoff(void)
{
    backoff_policy p = {100, 5000, 0}, j = {100, 5000, 0.2}, big = {100, 5000, 0.5};

    CHECK(backoff_ms(&p, 1, 0.5) == 100 && backoff_ms(&p, 2, 0.5) == 200 &&
              backoff_ms(&p, 4, 0.5) == 800 && backoff_ms(&p, 30, 0.5) == 5000,
          "backoff: doubles up to its cap");
    CHECK(backoff_ms(&j, 3, 0.0) == 320 && backoff_ms(&j, 3, 0.999999) == 479,
          "backoff: jitter spans [1 - j, 1 + j]");
    CHECK(backoff_ms(&big, 30, 0.999) == 5000, "backoff: jitter never passes the cap");
}

static void
test_metrics(void)
{
    metrics_buf b = {0};
    http_server_counters c = {0};
    size_t len = 0;
    char *text;

    c.responses[0] = 3;
    c.responses[HTTP_NSTATUS] = 1;
    c.active = 2;
    metrics_family(&b, "trace_demo_things_total", "counter", "Things.");
    for (int i = 0; i < 2000; i++)      /* past the first buffer */
        metrics_put(&b, "trace_demo_things_total{n=\"%d\"} %d\n", i, i);
    metrics_http_server(&b, "trace_demo", &c);
    text = metrics_finish(&b, &len);
    CHECK(text != NULL && strlen(text) == len &&
              contains(text, "# TYPE trace_demo_things_total counter\n") &&
              contains(text, "trace_demo_things_total{n=\"1999\"} 1999\n") &&
              contains(text, "trace_demo_http_responses_total{code=\"200\"} 3\n") &&
              contains(text, "trace_demo_http_responses_total{code=\"other\"} 1\n") &&
              contains(text, "trace_demo_active_requests 2\n"),
          "metrics: families, growth, the HTTP server's counters");
    free(text);
}

int
main(void)
{
    log_configure(LOG_ERROR, LOG_TEXT, "test");
    test_values();
    test_sources();
    test_reload();
    test_backoff();
    test_metrics();
    return tap_done();
}
