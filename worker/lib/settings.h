/*
 * settings.h: the one settings engine of every Trace program.
 *
 * A program describes each of its settings in one row of a table (as
 * Redis's standardConfig does): name, type, where the value lives in the
 * program's struct, bounds, default, flags (secret, reloadable, not from
 * the environment) and a line of help.  Parsing, range checks, defaults,
 * printing (--check-config, masking secrets), --help, the comparison a
 * reload needs and freeing are written here once for every row of every
 * program; a program writes only its table and whatever checks span
 * several settings.
 *
 * Sources, weakest first: the defaults, the config file (-c / --config,
 * else the program's <PREFIX>CONFIG variable), <PREFIX><NAME> environment
 * variables (an empty one counts as unset), --name=value / --name value
 * flags.  File syntax, as postgresql.conf:
 *     name = value   # comment
 * Values may be quoted with '...' or "..." (then # and spaces are
 * literal; a doubled quote stands for itself).  Names accept - or _.
 *
 * Nothing here exits or logs: functions return 0 / -1 and fill the
 * caller's err buffer with a message naming the setting and its source
 * ("file:line", the variable, "option --name").
 */
#ifndef TRACE_SETTINGS_H
#define TRACE_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum setting_type {
    SET_STRING,         /* char *, owned */
    SET_BOOL,           /* int: on/off, true/false, yes/no, 1/0 */
    SET_INT,            /* int in [min, max] */
    SET_INT64,          /* int64_t in [min, max] */
    SET_DOUBLE,         /* double in [min, max] */
    SET_DURATION,       /* int64_t milliseconds; the text needs a unit (250ms, 5s) */
    SET_SIZE,           /* int64_t bytes; a bare number is bytes (64kB, 256MB) */
    SET_MODE,           /* int: octal file permissions */
    SET_ENUM,           /* int: one of the row's choices */
    SET_CUSTOM          /* the row's own parse / format / copy / free */
} setting_type;

/* Row flags.  Bits from SET_PROGRAM_FLAG up are the program's own. */
#define SET_SECRET      0x01u   /* never printed: --check-config shows '********' */
#define SET_RELOADABLE  0x02u   /* a SIGHUP reload may change it; else restart to change */
#define SET_NO_ENV      0x04u   /* not read from the environment */
#define SET_PROGRAM_FLAG 0x100u

typedef struct setting setting;

/* One name of an enum setting; hidden names are accepted, never printed. */
typedef struct setting_choice {
    const char *name;
    int         value;
    int         hidden;
} setting_choice;

/* The operations of a SET_CUSTOM row (base: the struct the row's offset is
 * into).  parse gets the text of one occurrence (a custom setting may
 * accumulate, e.g. a repeatable URL); format prints the value for
 * --check-config (buf "" = print nothing); copy duplicates src's value
 * into dst (for settings inherited from a default); free releases it. */
typedef struct setting_ops {
    int  (*parse)(void *base, const setting *s, const char *value, const char *where,
                  char *err, size_t errlen);
    void (*format)(const void *base, const setting *s, char *buf, size_t n);
    int  (*copy)(void *dst, const void *src, const setting *s);
    void (*free)(void *base, const setting *s);
} setting_ops;

struct setting {
    const char            *name;        /* canonical: lower case with _ */
    setting_type           type;
    size_t                 offset;      /* into the program's struct */
    double                 min, max;    /* numeric bounds (ms, bytes for durations, sizes) */
    const char            *dflt;        /* parsed like any value; "" = no default */
    unsigned               flags;
    const char            *help;
    const setting_choice  *choices;     /* SET_ENUM: terminated by a NULL name */
    const setting_ops     *ops;         /* SET_CUSTOM */
};

/* A program's table. */
typedef struct settings_table {
    const char    *program;             /* "trace-worker": --help */
    const setting *rows;
    size_t         n;
    const char    *env_prefix;          /* "TRACE_": TRACE_<NAME> sets <name> */
    const char    *config_env;          /* "TRACE_CONFIG": the file when no -c */
} settings_table;

/* The log level and format choices every program shares. */
extern const setting_choice settings_log_levels[];
extern const setting_choice settings_log_formats[];

/* The row a name stands for ("log-level", "LOG_LEVEL" and "log_level" all
 * name log_level), or NULL. */
const setting *settings_find(const settings_table *t, const char *name, size_t len);

/* Parses value into row s of base.  where names the source in err. */
int settings_set(const setting *s, void *base, const char *value, const char *where,
                 char *err, size_t errlen);

/* Sets every row of t that has none of skip_flags to its default. */
int settings_defaults(const settings_table *t, void *base, unsigned skip_flags,
                      char *err, size_t errlen);

/* Frees what the rows of t without skip_flags own in base (strings,
 * custom values). */
void settings_free(const settings_table *t, void *base, unsigned skip_flags);

/* Copies row s from src to dst (strings duplicated).  0 or -1 (OOM). */
int settings_copy(const setting *s, void *dst, const void *src);

/* Whether row s holds the same value in a and b. */
int settings_equal(const setting *s, const void *a, const void *b);

/* The value of row s as --check-config prints it ('text', 250ms, 1024B,
 * on); a secret that is set prints as '********'. */
void settings_format(const setting *s, const void *base, char *buf, size_t n);

/* "name = value" for each row of t without skip_flags, prefixed by prefix
 * (e.g. "provider.main."). */
void settings_dump(const settings_table *t, const void *base, unsigned skip_flags,
                   const char *prefix, FILE *out);

/* One line per row: "  --name   help [default: x] (restart to change)";
 * rows with scoped_flag get scoped_prefix before their name. */
void settings_usage(const settings_table *t, unsigned scoped_flag, const char *scoped_prefix,
                    FILE *out);

/* The settings as a Markdown table (setting, default, range, reload,
 * description): what docs/<program>.md shows, from --help=markdown. */
void settings_markdown(const settings_table *t, unsigned scoped_flag, const char *scoped_prefix,
                       FILE *out);

/* Names of the rows without skip_flags that differ between cur and fresh
 * and cannot change without a restart, comma-separated, each prefixed by
 * prefix: appended to what buf holds. */
void settings_restart_changes(const settings_table *t, unsigned skip_flags, const void *cur,
                              const void *fresh, const char *prefix, char *buf, size_t n);

/* A reload keeps the running value of every row that needs a restart:
 * swaps those values of fresh and cur, so fresh (the new settings) holds
 * the running ones and cur what the file asked for (freed by the
 * caller). */
void settings_keep_restart_only(const settings_table *t, unsigned skip_flags, void *fresh,
                                void *cur);

/* ---- sources ------------------------------------------------------------ */

#define SETTINGS_UNKNOWN (-2)   /* a setter's answer for a name it does not know */

/* Sets one setting by name (len bytes, not NUL-terminated) from text;
 * where is "file:line", a variable or "option --x".  0, -1 (bad value), or
 * SETTINGS_UNKNOWN; err filled on failure. */
typedef int (*settings_setter)(void *ctx, const char *name, size_t len, const char *value,
                               const char *where, char *err, size_t errlen);

/* The setter of a plain table: rows of t in the struct ctx. */
int settings_table_setter(const settings_table *t, void *base, const char *name, size_t len,
                          const char *value, const char *where, char *err, size_t errlen);

/* A whole (small) config file, NUL-terminated, for the caller to free;
 * NULL with err filled. */
char *settings_read_file(const char *path, char *err, size_t errlen);

/* Every "name = value  # comment" line of text, in order, through set();
 * -1 with err filled ("file:line: ...") on the first bad line.  Names are
 * letters, digits, _ and -, and dots when allow_dots. */
int settings_parse_text(const char *text, const char *file, int allow_dots, size_t value_max,
                        settings_setter set, void *ctx, char *err, size_t errlen);

/* How a program's settings are loaded. */
typedef struct settings_source {
    const settings_table *table;        /* env names, the config variable */
    settings_setter       set;          /* every name of the file, env and flags */
    void                 *ctx;          /* set's */
    int                   allow_dots;   /* provider.<p>.<name> names */
    size_t                value_max;    /* longest value in the file */
} settings_source;

/* Loads the file, the environment and argv[1..] (over whatever defaults
 * the caller set).  Parsing stops at the first argument that is not an
 * option: its index goes to *optind_out.  -h/--help, --version and
 * --check-config are skipped (the daemon acts on them).  *config_file
 * gets a malloc'd copy of the file's name, or NULL.  0, or -1 with err. */
int settings_load(const settings_source *src, int argc, char **argv, char *const *envp,
                  int *optind_out, char **config_file, char *err, size_t errlen);

/* The value of NAME (n bytes) in an environment array, or NULL. */
const char *settings_env_getn(char *const *envp, const char *name, size_t n);

/* Whether a flag takes no value (help, version, check-config). */
int settings_is_bool_flag(const char *name);

#endif
