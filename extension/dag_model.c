/*-------------------------------------------------------------------------
 * dag_model.c
 *		From a YAML tree to a validated DagModel.
 *
 * The format is described by tables (FieldSpec) so the checks, the error
 * messages and the README's reference stay one thing: unknown keys, wrong
 * types, out-of-range numbers, unknown operators and runtimes, and each
 * operator's own config keys are all found by walking the tables.  Every
 * problem is reported with its dotted path (jobs.ranges.config.size) and its
 * line:column; loading goes on after a problem so that validate_dag can list
 * them all.  Checks that span jobs (duplicate producers, inputs nothing
 * produces, cycles, publish, SQL placeholders) live in dag_graph.c.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "common/int.h"
#include "pgtime.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "cron.h"
#include "dag_graph.h"
#include "dag_model.h"

typedef enum FieldType
{
	FT_NAME,					/* an identifier: [a-z_][a-z0-9_]{0,62} */
	FT_STRING,
	FT_DATASET,					/* a dataset id: 1-63 bytes, no control chars */
	FT_INT,
	FT_BOOL,
	FT_DURATION,				/* 500ms, 30s, 5m, 1h, 1d */
	FT_SIZE,					/* 256MB, 1GB, or a number of bytes */
	FT_ENUM,
	FT_ENUMS,					/* a list of FT_ENUM values */
	FT_ANY						/* any YAML value, kept as JSON */
} FieldType;

/* One key of a map in the format. */
typedef struct FieldSpec
{
	const char *key;
	FieldType	type;
	bool		required;
	int64		min;			/* FT_INT, FT_DURATION (ms), FT_SIZE (bytes) */
	int64		max;
	const char *const *choices; /* FT_ENUM, FT_ENUMS */
} FieldSpec;

/* One built-in operator: its runtimes and its config keys. */
typedef struct OperatorSpec
{
	const char *name;
	const char *const *runtimes;	/* first is the default */
	bool		source;			/* may be activation: source */
	const FieldSpec *config;	/* NULL: any map (noop) */
} OperatorSpec;

#define MS(n)		((int64) (n))
#define SECONDS(n)	((int64) (n) * 1000)
#define DAYS(n)		((int64) (n) * 86400 * 1000)
/* Rows of the FieldSpec tables; END_OF_FIELDS closes each table. */
#define FIELD(k, t, req) {.key = (k), .type = (t), .required = (req)}
#define RANGE(k, t, req, lo, hi) {.key = (k), .type = (t), .required = (req), .min = (lo), .max = (hi)}
#define CHOICE(k, t, req, c) {.key = (k), .type = (t), .required = (req), .choices = (c)}
#define END_OF_FIELDS {.key = NULL}

static const char *const rt_platform[] = {"ecs_platform", NULL};
static const char *const rt_dispatcher[] = {"dispatcher", NULL};
static const char *const rt_lambda[] = {"lambda", NULL};
static const char *const rt_any[] = {"ecs_platform", "dispatcher", "lambda", NULL};
static const char *const udf_languages[] = {"python", "typescript", "rust", NULL};
static const char *const storages[] = {"postgres", "parquet", NULL};
static const char *const activations[] = {"reactive", "source", NULL};
static const char *const runtimes[] = {"dispatcher", "ecs_platform", "lambda", "ecs_udf", NULL};
static const char *const catchups[] = {"last", "none", "all", NULL};
static const char *const strategies[] = {"per_event", "bulk", NULL};
static const char *const severities[] = {"info", "warning", "critical", NULL};
static const char *const integrity_checks[] = {
	"gaps", "hash_chain", "tx_counts", "log_counts", "duplicates", NULL
};

static const FieldSpec block_follower_config[] = {
	FIELD("rpc", FT_STRING, true),
	RANGE("chain_id", FT_INT, false, 1, INT64CONST(1) << 53),
	RANGE("start_block", FT_INT, false, 0, INT64CONST(1) << 53),
	RANGE("confirmations", FT_INT, false, 0, 10000),
	RANGE("max_reorg_depth", FT_INT, false, 1, 10000),
	RANGE("batch_size", FT_INT, false, 1, 10000),
	RANGE("poll_interval", FT_DURATION, false, MS(10), SECONDS(3600)),
	END_OF_FIELDS
};
static const FieldSpec range_ingest_config[] = {
	FIELD("rpc", FT_STRING, true),
	RANGE("chain_id", FT_INT, false, 1, INT64CONST(1) << 53),
	RANGE("from_block", FT_INT, false, 0, INT64CONST(1) << 53),
	RANGE("to_block", FT_INT, false, 0, INT64CONST(1) << 53),
	RANGE("range_size", FT_INT, false, 1, 1000000),
	END_OF_FIELDS
};
static const FieldSpec aggregator_config[] = {
	FIELD("cursor", FT_STRING, true),
	RANGE("size", FT_INT, true, 1, 100000000),
	RANGE("origin", FT_INT, false, 0, INT64CONST(1) << 53),
	END_OF_FIELDS
};
static const FieldSpec splitter_config[] = {
	FIELD("cursor", FT_STRING, true),
	RANGE("size", FT_INT, false, 1, 100000000),
	END_OF_FIELDS
};
static const FieldSpec sql_config[] = {
	FIELD("query", FT_STRING, true),
	END_OF_FIELDS
};
static const FieldSpec parquet_compact_config[] = {
	FIELD("source", FT_DATASET, true),
	FIELD("path", FT_STRING, false),
	END_OF_FIELDS
};
static const FieldSpec integrity_check_config[] = {
	CHOICE("checks", FT_ENUMS, false, integrity_checks),
	RANGE("window", FT_INT, false, 1, 100000000),
	END_OF_FIELDS
};
static const FieldSpec alert_evaluate_config[] = {
	FIELD("route", FT_STRING, true),
	FIELD("condition", FT_STRING, false),
	CHOICE("severity", FT_ENUM, false, severities),
	END_OF_FIELDS
};
static const FieldSpec alert_route_config[] = {
	FIELD("route", FT_STRING, true),
	END_OF_FIELDS
};
static const FieldSpec udf_config[] = {
	CHOICE("language", FT_ENUM, true, udf_languages),
	FIELD("entrypoint", FT_STRING, true),
	RANGE("timeout", FT_DURATION, false, MS(100), SECONDS(3600)),
	RANGE("memory", FT_SIZE, false, INT64CONST(16) << 20, INT64CONST(16) << 30),
	END_OF_FIELDS
};

static const OperatorSpec operators[] = {
	{"block_follower", rt_platform, true, block_follower_config},
	{"range_ingest", rt_platform, false, range_ingest_config},
	{"aggregator", rt_dispatcher, false, aggregator_config},
	{"splitter", rt_dispatcher, false, splitter_config},
	{"sql", rt_dispatcher, false, sql_config},
	{"parquet_compact", rt_platform, false, parquet_compact_config},
	{"integrity_check", rt_dispatcher, false, integrity_check_config},
	{"alert_evaluate", rt_platform, false, alert_evaluate_config},
	{"alert_route", rt_platform, false, alert_route_config},
	{"udf", rt_lambda, false, udf_config},
	{"noop", rt_any, true, NULL},
};

static const FieldSpec top_keys[] = {
	FIELD("dag", FT_NAME, true),
	FIELD("description", FT_STRING, false),
	FIELD("defaults", FT_ANY, false),
	FIELD("jobs", FT_ANY, true),
	FIELD("publish", FT_ANY, false),
	END_OF_FIELDS
};
static const FieldSpec retries_keys[] = {
	RANGE("max_attempts", FT_INT, false, 1, 1000),
	RANGE("backoff", FT_DURATION, false, MS(0), DAYS(1)),
	RANGE("max_backoff", FT_DURATION, false, MS(0), DAYS(7)),
	END_OF_FIELDS
};
static const FieldSpec defaults_keys[] = {
	FIELD("retries", FT_ANY, false),
	RANGE("lease", FT_DURATION, false, SECONDS(1), DAYS(1)),
	RANGE("timeout", FT_DURATION, false, SECONDS(1), DAYS(7)),
	RANGE("concurrency", FT_INT, false, 1, 10000),
	RANGE("priority", FT_INT, false, -1000, 1000),
	END_OF_FIELDS
};
static const FieldSpec job_keys[] = {
	FIELD("operator", FT_STRING, true),
	RANGE("version", FT_INT, false, 1, 1000000),
	FIELD("description", FT_STRING, false),
	CHOICE("activation", FT_ENUM, false, activations),
	CHOICE("runtime", FT_ENUM, false, runtimes),
	FIELD("inputs", FT_ANY, false),
	FIELD("outputs", FT_ANY, false),
	FIELD("config", FT_ANY, false),
	FIELD("trigger", FT_ANY, false),
	FIELD("retries", FT_ANY, false),
	RANGE("lease", FT_DURATION, false, SECONDS(1), DAYS(1)),
	RANGE("timeout", FT_DURATION, false, SECONDS(1), DAYS(7)),
	RANGE("concurrency", FT_INT, false, 1, 10000),
	RANGE("priority", FT_INT, false, -1000, 1000),
	FIELD("materialize", FT_BOOL, false),
	CHOICE("execution_strategy", FT_ENUM, false, strategies),
	END_OF_FIELDS
};
static const FieldSpec trigger_keys[] = {
	FIELD("cron", FT_STRING, true),
	FIELD("timezone", FT_STRING, false),
	CHOICE("catchup", FT_ENUM, false, catchups),
	END_OF_FIELDS
};
static const FieldSpec output_keys[] = {
	FIELD("dataset", FT_DATASET, true),
	CHOICE("storage", FT_ENUM, false, storages),
	END_OF_FIELDS
};

/* Loading state: the report and a scratch buffer for paths. */
typedef struct DagLoad
{
	DagReport  *report;
} DagLoad;

/* path + "." + key, in a new string. */
static char *
path_join(const char *path, const char *key)
{
	return path[0] ? psprintf("%s.%s", path, key) : pstrdup(key);
}

/* path + "[i]", in a new string. */
static char *
path_index(const char *path, int i)
{
	return psprintf("%s[%d]", path, i);
}

static const char *
kind_name(const YamlNode *node)
{
	switch (node->kind)
	{
		case YAML_MAP:
			return "a map";
		case YAML_SEQ:
			return "a list";
		default:
			return node->plain && node->value[0] == '\0' ? "null" : "a scalar";
	}
}

/* "a, b, c" from a NULL-terminated list. */
static char *
join_choices(const char *const *choices)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; choices[i] != NULL; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", choices[i]);
	return buf.data;
}

/* "a, b, c" from the keys of a spec. */
static char *
join_keys(const FieldSpec *spec)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; spec[i].key != NULL; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", spec[i].key);
	return buf.data;
}

/* Whether a plain scalar is YAML's null (empty, ~ or null). */
static bool
scalar_is_null(const YamlNode *node)
{
	return node->kind == YAML_SCALAR && node->plain &&
		(node->value[0] == '\0' || strcmp(node->value, "~") == 0 ||
		 pg_strcasecmp(node->value, "null") == 0);
}

/* Checks that node is a map, reporting what it is instead. */
static bool
expect_map(DagLoad *ld, const YamlNode *node, const char *path)
{
	if (node->kind == YAML_MAP)
		return true;
	dag_error(ld->report, path, node->line, node->col,
			  "%s must be a map, not %s", path[0] ? path : "the document", kind_name(node));
	return false;
}

/*
 * Reports every key of map that spec does not name, and every required key
 * it lacks.  Returns false when any was found.
 */
static bool
check_keys(DagLoad *ld, const YamlNode *map, const FieldSpec *spec, const char *path)
{
	bool		ok = true;

	for (int i = 0; i < map->count; i++)
	{
		bool		known = false;

		for (int k = 0; spec[k].key != NULL && !known; k++)
			known = (strcmp(map->keys[i]->value, spec[k].key) == 0);
		if (!known)
		{
			dag_error(ld->report, path_join(path, map->keys[i]->value),
					  map->keys[i]->line, map->keys[i]->col,
					  "unknown key \"%s\" in %s (expected one of: %s)",
					  map->keys[i]->value, path[0] ? path : "the document", join_keys(spec));
			ok = false;
		}
	}
	for (int k = 0; spec[k].key != NULL; k++)
	{
		if (spec[k].required && yaml_map_get(map, spec[k].key) == NULL)
		{
			dag_error(ld->report, path_join(path, spec[k].key), map->line, map->col,
					  "%s is missing required key \"%s\"",
					  path[0] ? path : "the document", spec[k].key);
			ok = false;
		}
	}
	return ok;
}

/* Reads a scalar as text; refuses maps, lists and null. */
static bool
read_text(DagLoad *ld, const YamlNode *node, const char *path, char **out)
{
	if (node->kind != YAML_SCALAR || scalar_is_null(node))
	{
		dag_error(ld->report, path, node->line, node->col,
				  "%s must be a string, not %s", path, kind_name(node));
		return false;
	}
	*out = node->value;
	return true;
}

/* Reads an identifier (DAG and job names). */
static bool
read_name(DagLoad *ld, const YamlNode *node, const char *path, char **out)
{
	const char *s;

	if (!read_text(ld, node, path, out))
		return false;
	s = *out;
	if (strlen(s) > 63 || !(islower((unsigned char) s[0]) || s[0] == '_'))
		goto bad;
	for (; *s; s++)
		if (!(islower((unsigned char) *s) || isdigit((unsigned char) *s) || *s == '_'))
			goto bad;
	return true;
bad:
	dag_error(ld->report, path, node->line, node->col,
			  "%s \"%s\" is not a valid name (1 to 63 characters of a-z, 0-9 and _, not starting with a digit)",
			  path, *out);
	return false;
}

/* Reads a dataset id: opaque, but 1-63 bytes without control characters. */
static bool
read_dataset(DagLoad *ld, const YamlNode *node, const char *path, char **out)
{
	size_t		len;

	if (!read_text(ld, node, path, out))
		return false;
	len = strlen(*out);
	if (len == 0 || len > 63)
	{
		dag_error(ld->report, path, node->line, node->col,
				  "dataset id \"%s\" must be 1 to 63 bytes long", *out);
		return false;
	}
	for (const char *s = *out; *s; s++)
	{
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
		{
			dag_error(ld->report, path, node->line, node->col,
					  "dataset id at %s contains a control character", path);
			return false;
		}
	}
	return true;
}

/* Reads an integer in [min, max]. */
static bool
read_int(DagLoad *ld, const YamlNode *node, const char *path, int64 min, int64 max, int64 *out)
{
	const char *s = node->value;
	char	   *end;
	long long	v;

	if (node->kind != YAML_SCALAR || !node->plain || s[0] == '\0')
		goto bad;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		goto bad;
	if (v < min || v > max)
	{
		dag_error(ld->report, path, node->line, node->col,
				  "%s must be between " INT64_FORMAT " and " INT64_FORMAT ", not %s",
				  path, min, max, s);
		return false;
	}
	*out = v;
	return true;
bad:
	dag_error(ld->report, path, node->line, node->col,
			  "%s must be an integer, not %s", path,
			  node->kind == YAML_SCALAR ? psprintf("\"%s\"", node->value) : kind_name(node));
	return false;
}

/* Reads true or false (YAML 1.2: yes/no/on/off are strings). */
static bool
read_bool(DagLoad *ld, const YamlNode *node, const char *path, bool *out)
{
	if (node->kind == YAML_SCALAR && node->plain)
	{
		if (pg_strcasecmp(node->value, "true") == 0)
		{
			*out = true;
			return true;
		}
		if (pg_strcasecmp(node->value, "false") == 0)
		{
			*out = false;
			return true;
		}
	}
	dag_error(ld->report, path, node->line, node->col,
			  "%s must be true or false", path);
	return false;
}

/* Reads a number with a unit suffix; returns false when the shape is wrong. */
static bool
parse_number_unit(const char *s, int64 *number, const char **unit)
{
	int64		v = 0;
	const char *p = s;

	if (!isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
	{
		if (v > INT64CONST(1) << 50)
			return false;
		v = v * 10 + (*p++ - '0');
	}
	*number = v;
	*unit = p;
	return true;
}

/* Reads a duration (500ms, 30s, 5m, 1h, 1d) in [min, max] milliseconds. */
static bool
read_duration(DagLoad *ld, const YamlNode *node, const char *path, int64 min, int64 max, int64 *out_ms)
{
	static const struct
	{
		const char *unit;
		int64		ms;
	}			units[] = {
		{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}
	};
	int64		n;
	const char *unit;

	if (node->kind == YAML_SCALAR && parse_number_unit(node->value, &n, &unit))
	{
		for (size_t i = 0; i < lengthof(units); i++)
		{
			if (strcmp(unit, units[i].unit) == 0)
			{
				int64		ms;

				if (pg_mul_s64_overflow(n, units[i].ms, &ms) || ms < min || ms > max)
				{
					dag_error(ld->report, path, node->line, node->col,
							  "%s must be between " INT64_FORMAT "ms and " INT64_FORMAT "ms, not %s",
							  path, min, max, node->value);
					return false;
				}
				*out_ms = ms;
				return true;
			}
		}
	}
	dag_error(ld->report, path, node->line, node->col,
			  "%s must be a duration such as 500ms, 30s, 5m, 1h or 1d, not %s", path,
			  node->kind == YAML_SCALAR ? psprintf("\"%s\"", node->value) : kind_name(node));
	return false;
}

/* Reads a size (256MB, 1GB, 512kB, or bytes) in [min, max] bytes. */
static bool
read_size(DagLoad *ld, const YamlNode *node, const char *path, int64 min, int64 max, int64 *out)
{
	int64		n;
	const char *unit;
	int64		mult = -1;
	int64		bytes;

	if (node->kind == YAML_SCALAR && parse_number_unit(node->value, &n, &unit))
	{
		if (unit[0] == '\0' || pg_strcasecmp(unit, "B") == 0)
			mult = 1;
		else if (pg_strcasecmp(unit, "kB") == 0 || pg_strcasecmp(unit, "k") == 0)
			mult = 1024;
		else if (pg_strcasecmp(unit, "MB") == 0 || pg_strcasecmp(unit, "M") == 0)
			mult = 1024 * 1024;
		else if (pg_strcasecmp(unit, "GB") == 0 || pg_strcasecmp(unit, "G") == 0)
			mult = 1024 * 1024 * 1024;
	}
	if (mult < 0)
	{
		dag_error(ld->report, path, node->line, node->col,
				  "%s must be a size such as 256MB or 1GB", path);
		return false;
	}
	if (pg_mul_s64_overflow(n, mult, &bytes) || bytes < min || bytes > max)
	{
		dag_error(ld->report, path, node->line, node->col,
				  "%s must be between " INT64_FORMAT " and " INT64_FORMAT " bytes, not %s",
				  path, min, max, node->value);
		return false;
	}
	*out = bytes;
	return true;
}

/* Reads one of a fixed set of words. */
static bool
read_enum(DagLoad *ld, const YamlNode *node, const char *path, const char *const *choices, char **out)
{
	if (!read_text(ld, node, path, out))
		return false;
	for (int i = 0; choices[i] != NULL; i++)
		if (strcmp(*out, choices[i]) == 0)
			return true;
	dag_error(ld->report, path, node->line, node->col,
			  "%s must be one of %s, not \"%s\"", path, join_choices(choices), *out);
	return false;
}

/* Appends any YAML value as JSON, typing plain scalars as YAML 1.2 does. */
static void
yaml_to_json(const YamlNode *node, StringInfo out)
{
	switch (node->kind)
	{
		case YAML_MAP:
			appendStringInfoChar(out, '{');
			for (int i = 0; i < node->count; i++)
			{
				if (i)
					appendStringInfoString(out, ", ");
				escape_json(out, node->keys[i]->value);
				appendStringInfoString(out, ": ");
				yaml_to_json(node->items[i], out);
			}
			appendStringInfoChar(out, '}');
			return;
		case YAML_SEQ:
			appendStringInfoChar(out, '[');
			for (int i = 0; i < node->count; i++)
			{
				if (i)
					appendStringInfoString(out, ", ");
				yaml_to_json(node->items[i], out);
			}
			appendStringInfoChar(out, ']');
			return;
		case YAML_SCALAR:
			if (scalar_is_null(node))
				appendStringInfoString(out, "null");
			else if (node->plain && (strcmp(node->value, "true") == 0 ||
									 strcmp(node->value, "false") == 0))
				appendStringInfoString(out, node->value);
			else if (node->plain && yaml_scalar_is_number(node->value))
				appendStringInfoString(out, node->value);
			else
				escape_json(out, node->value);
			return;
	}
}

/*
 * Checks a config map against an operator's spec and appends it to out as
 * JSON with typed values (durations in milliseconds, sizes in bytes).
 */
static void
load_config(DagLoad *ld, JobModel *job, const YamlNode *node, const FieldSpec *spec,
			const char *path, StringInfo out)
{
	bool		first = true;

	if (node == NULL)
	{
		appendStringInfoString(out, "{}");
		if (spec != NULL)
			for (int k = 0; spec[k].key != NULL; k++)
				if (spec[k].required)
					dag_error(ld->report, path_join(path, spec[k].key), job->line, job->col,
							  "job \"%s\" (operator %s) needs config key \"%s\"",
							  job->name, job->operator, spec[k].key);
		return;
	}
	if (!expect_map(ld, node, path))
	{
		appendStringInfoString(out, "{}");
		return;
	}
	if (spec == NULL)
	{
		yaml_to_json(node, out);
		return;
	}
	check_keys(ld, node, spec, path);
	appendStringInfoChar(out, '{');
	for (int k = 0; spec[k].key != NULL; k++)
	{
		const YamlNode *v = yaml_map_get(node, spec[k].key);
		char	   *vpath;
		char	   *text;
		int64		n;

		if (v == NULL)
			continue;
		vpath = path_join(path, spec[k].key);
		if (!first)
			appendStringInfoString(out, ", ");
		first = false;
		escape_json(out, spec[k].key);
		appendStringInfoString(out, ": ");
		switch (spec[k].type)
		{
			case FT_INT:
				if (read_int(ld, v, vpath, spec[k].min, spec[k].max, &n))
					appendStringInfo(out, INT64_FORMAT, n);
				else
					appendStringInfoString(out, "null");
				break;
			case FT_DURATION:
				if (read_duration(ld, v, vpath, spec[k].min, spec[k].max, &n))
					appendStringInfo(out, INT64_FORMAT, n);
				else
					appendStringInfoString(out, "null");
				break;
			case FT_SIZE:
				if (read_size(ld, v, vpath, spec[k].min, spec[k].max, &n))
					appendStringInfo(out, INT64_FORMAT, n);
				else
					appendStringInfoString(out, "null");
				break;
			case FT_ENUM:
				if (read_enum(ld, v, vpath, spec[k].choices, &text))
					escape_json(out, text);
				else
					appendStringInfoString(out, "null");
				break;
			case FT_ENUMS:
				appendStringInfoChar(out, '[');
				if (v->kind != YAML_SEQ)
					dag_error(ld->report, vpath, v->line, v->col, "%s must be a list", vpath);
				else
					for (int i = 0; i < v->count; i++)
						if (read_enum(ld, v->items[i], path_index(vpath, i), spec[k].choices, &text))
						{
							if (i)
								appendStringInfoString(out, ", ");
							escape_json(out, text);
						}
				appendStringInfoChar(out, ']');
				break;
			case FT_DATASET:
				if (read_dataset(ld, v, vpath, &text))
					escape_json(out, text);
				else
					appendStringInfoString(out, "null");
				break;
			default:
				if (read_text(ld, v, vpath, &text))
				{
					escape_json(out, text);
					if (strcmp(spec[k].key, "query") == 0)
					{
						job->query = text;
						job->query_line = v->line;
						job->query_col = v->col;
					}
				}
				else
					appendStringInfoString(out, "null");
				break;
		}
	}
	appendStringInfoChar(out, '}');
}

/* Reads a list of dataset ids (inputs), reporting each repeat once. */
static List *
load_inputs(DagLoad *ld, const YamlNode *node, const char *path)
{
	List	   *refs = NIL;
	HASHCTL		ctl;
	HTAB	   *seen;

	if (node == NULL || scalar_is_null(node))
		return NIL;
	if (node->kind != YAML_SEQ)
	{
		dag_error(ld->report, path, node->line, node->col,
				  "%s must be a list of dataset ids, not %s", path, kind_name(node));
		return NIL;
	}
	/* a hash, not a scan of the list: a list of n repeats costs O(n) */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 64;			/* read_dataset allows at most 63 bytes */
	ctl.entrysize = 64;
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("trace dag inputs", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int i = 0; i < node->count; i++)
	{
		DatasetRef *ref = palloc0(sizeof(DatasetRef));
		char	   *ipath = path_index(path, i);
		bool		found;

		if (!read_dataset(ld, node->items[i], ipath, &ref->dataset))
			continue;
		ref->line = node->items[i]->line;
		ref->col = node->items[i]->col;
		hash_search(seen, ref->dataset, HASH_ENTER, &found);
		if (found)
			dag_error(ld->report, ipath, ref->line, ref->col,
					  "dataset \"%s\" is listed twice in %s", ref->dataset, path);
		refs = lappend(refs, ref);
	}
	hash_destroy(seen);
	return refs;
}

/* Reads outputs: dataset ids, or maps {dataset, storage}. */
static List *
load_outputs(DagLoad *ld, const YamlNode *node, const char *path)
{
	List	   *refs = NIL;

	if (node == NULL || scalar_is_null(node))
		return NIL;
	if (node->kind != YAML_SEQ)
	{
		dag_error(ld->report, path, node->line, node->col,
				  "%s must be a list, not %s", path, kind_name(node));
		return NIL;
	}
	for (int i = 0; i < node->count; i++)
	{
		const YamlNode *item = node->items[i];
		DatasetRef *ref = palloc0(sizeof(DatasetRef));
		char	   *ipath = path_index(path, i);

		ref->storage = "postgres";
		ref->line = item->line;
		ref->col = item->col;
		if (item->kind == YAML_MAP)
		{
			const YamlNode *d = yaml_map_get(item, "dataset");
			const YamlNode *s = yaml_map_get(item, "storage");

			if (!check_keys(ld, item, output_keys, ipath))
				continue;
			if (!read_dataset(ld, d, path_join(ipath, "dataset"), &ref->dataset))
				continue;
			if (s != NULL && !read_enum(ld, s, path_join(ipath, "storage"), storages, &ref->storage))
				continue;
		}
		else if (!read_dataset(ld, item, ipath, &ref->dataset))
			continue;
		refs = lappend(refs, ref);
	}
	return refs;
}

/* Reads a trigger: {cron, timezone, catchup}, checking the cron and zone. */
static void
load_trigger(DagLoad *ld, JobModel *job, const YamlNode *node, const char *path)
{
	const YamlNode *cron;
	const YamlNode *tz;
	const YamlNode *catchup;
	CronSpec	spec;
	char		err[256];

	if (!expect_map(ld, node, path) || !check_keys(ld, node, trigger_keys, path))
		return;
	job->has_trigger = true;
	job->timezone = "UTC";
	job->catchup = "last";
	cron = yaml_map_get(node, "cron");
	if (read_text(ld, cron, path_join(path, "cron"), &job->cron))
	{
		if (!cron_parse(job->cron, &spec, err, sizeof(err)))
			dag_error(ld->report, path_join(path, "cron"), cron->line, cron->col, "%s", err);
		else if (TIMESTAMP_NOT_FINITE(cron_next(&spec, pg_tzset("UTC"), GetCurrentTimestamp())))
			dag_error(ld->report, path_join(path, "cron"), cron->line, cron->col,
					  "cron expression \"%s\" never fires", job->cron);
	}
	tz = yaml_map_get(node, "timezone");
	if (tz != NULL && read_text(ld, tz, path_join(path, "timezone"), &job->timezone) &&
		pg_tzset(job->timezone) == NULL)
		dag_error(ld->report, path_join(path, "timezone"), tz->line, tz->col,
				  "unknown time zone \"%s\" (use an IANA name such as UTC or Europe/Berlin)",
				  job->timezone);
	catchup = yaml_map_get(node, "catchup");
	if (catchup != NULL)
		read_enum(ld, catchup, path_join(path, "catchup"), catchups, &job->catchup);
}

/* Applies a retries map over the values already in job. */
static void
load_retries(DagLoad *ld, JobModel *job, const YamlNode *node, const char *path)
{
	const YamlNode *v;
	int64		n;

	if (node == NULL || !expect_map(ld, node, path) || !check_keys(ld, node, retries_keys, path))
		return;
	if ((v = yaml_map_get(node, "max_attempts")) != NULL &&
		read_int(ld, v, path_join(path, "max_attempts"), 1, 1000, &n))
		job->max_attempts = (int) n;
	if ((v = yaml_map_get(node, "backoff")) != NULL)
		read_duration(ld, v, path_join(path, "backoff"), 0, DAYS(1), &job->backoff_ms);
	if ((v = yaml_map_get(node, "max_backoff")) != NULL)
		read_duration(ld, v, path_join(path, "max_backoff"), 0, DAYS(7), &job->max_backoff_ms);
}

/*
 * Applies the execution-only keys shared by `defaults` and jobs (retries,
 * lease, timeout, concurrency, priority) over the values already in job.
 */
static void
load_execution(DagLoad *ld, JobModel *job, const YamlNode *map, const char *path)
{
	const YamlNode *v;
	int64		n;

	load_retries(ld, job, yaml_map_get(map, "retries"), path_join(path, "retries"));
	if ((v = yaml_map_get(map, "lease")) != NULL)
		read_duration(ld, v, path_join(path, "lease"), SECONDS(1), DAYS(1), &job->lease_ms);
	if ((v = yaml_map_get(map, "timeout")) != NULL)
		read_duration(ld, v, path_join(path, "timeout"), SECONDS(1), DAYS(7), &job->timeout_ms);
	if ((v = yaml_map_get(map, "concurrency")) != NULL &&
		read_int(ld, v, path_join(path, "concurrency"), 1, 10000, &n))
		job->concurrency = (int) n;
	if ((v = yaml_map_get(map, "priority")) != NULL &&
		read_int(ld, v, path_join(path, "priority"), -1000, 1000, &n))
		job->priority = (int) n;
}

static const OperatorSpec *
find_operator(const char *name)
{
	for (size_t i = 0; i < lengthof(operators); i++)
		if (strcmp(operators[i].name, name) == 0)
			return &operators[i];
	return NULL;
}

/* "a, b, c" of the operator names. */
static char *
operator_names(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (size_t i = 0; i < lengthof(operators); i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", operators[i].name);
	return buf.data;
}

/* Loads one job, starting from the DAG's defaults. */
static JobModel *
load_job(DagLoad *ld, const JobModel *defaults, const YamlNode *key, const YamlNode *node)
{
	JobModel   *job = palloc(sizeof(JobModel));
	char	   *path = path_join("jobs", key->value);
	const OperatorSpec *op = NULL;
	const YamlNode *v;
	StringInfoData config;
	int64		n;

	*job = *defaults;
	job->name = key->value;
	job->line = key->line;
	job->col = key->col;
	read_name(ld, key, path_join("jobs", key->value), &job->name);
	if (!expect_map(ld, node, path))
		return job;
	check_keys(ld, node, job_keys, path);

	if ((v = yaml_map_get(node, "operator")) != NULL &&
		read_text(ld, v, path_join(path, "operator"), &job->operator))
	{
		op = find_operator(job->operator);
		if (op == NULL)
			dag_error(ld->report, path_join(path, "operator"), v->line, v->col,
					  "unknown operator \"%s\" (built-in operators: %s)",
					  job->operator, operator_names());
	}
	if ((v = yaml_map_get(node, "version")) != NULL &&
		read_int(ld, v, path_join(path, "version"), 1, 1000000, &n))
		job->operator_version = (int) n;
	if ((v = yaml_map_get(node, "description")) != NULL)
		read_text(ld, v, path_join(path, "description"), &job->description);
	if ((v = yaml_map_get(node, "activation")) != NULL &&
		read_enum(ld, v, path_join(path, "activation"), activations, &job->activation) &&
		strcmp(job->activation, "source") == 0 && op != NULL && !op->source)
		dag_error(ld->report, path_join(path, "activation"), v->line, v->col,
				  "operator %s cannot be a source", op->name);
	job->runtime = op ? (char *) op->runtimes[0] : "ecs_platform";
	if ((v = yaml_map_get(node, "runtime")) != NULL &&
		read_enum(ld, v, path_join(path, "runtime"), runtimes, &job->runtime))
	{
		bool		allowed = false;

		if (strcmp(job->runtime, "ecs_udf") == 0)
			dag_error(ld->report, path_join(path, "runtime"), v->line, v->col,
					  "runtime ecs_udf is not supported yet; run untrusted code with runtime lambda");
		else if (op != NULL)
		{
			for (int i = 0; op->runtimes[i] != NULL; i++)
				allowed |= (strcmp(op->runtimes[i], job->runtime) == 0);
			if (!allowed)
				dag_error(ld->report, path_join(path, "runtime"), v->line, v->col,
						  "operator %s runs on runtime %s, not %s",
						  op->name, join_choices(op->runtimes), job->runtime);
		}
	}
	job->inputs = load_inputs(ld, yaml_map_get(node, "inputs"), path_join(path, "inputs"));
	job->outputs = load_outputs(ld, yaml_map_get(node, "outputs"), path_join(path, "outputs"));
	initStringInfo(&config);
	if (op != NULL)
		load_config(ld, job, yaml_map_get(node, "config"), op->config,
					path_join(path, "config"), &config);
	else
		appendStringInfoString(&config, "{}");
	job->config_json = config.data;
	if ((v = yaml_map_get(node, "trigger")) != NULL)
		load_trigger(ld, job, v, path_join(path, "trigger"));
	load_execution(ld, job, node, path);
	if ((v = yaml_map_get(node, "materialize")) != NULL &&
		read_bool(ld, v, path_join(path, "materialize"), &job->materialize) &&
		!job->materialize && op != NULL && strcmp(op->name, "sql") != 0)
		dag_error(ld->report, path_join(path, "materialize"), v->line, v->col,
				  "only sql jobs may be virtual (materialize: false); operator %s always materializes",
				  op->name);
	if ((v = yaml_map_get(node, "execution_strategy")) != NULL)
		read_enum(ld, v, path_join(path, "execution_strategy"), strategies, &job->execution_strategy);
	if (job->backoff_ms > job->max_backoff_ms)
		dag_error(ld->report, path_join(path, "retries"), node->line, node->col,
				  "retries.backoff (" INT64_FORMAT "ms) is more than retries.max_backoff (" INT64_FORMAT "ms)",
				  job->backoff_ms, job->max_backoff_ms);
	return job;
}

/* The built-in defaults, then the DAG's `defaults` section over them. */
static void
load_defaults(DagLoad *ld, JobModel *defaults, const YamlNode *node)
{
	memset(defaults, 0, sizeof(*defaults));
	defaults->operator = "";
	defaults->operator_version = 1;
	defaults->activation = "reactive";
	defaults->max_attempts = 5;
	defaults->backoff_ms = SECONDS(2);
	defaults->max_backoff_ms = SECONDS(300);
	defaults->lease_ms = SECONDS(30);
	defaults->timeout_ms = -1;
	defaults->materialize = true;
	defaults->execution_strategy = "per_event";
	if (node == NULL)
		return;
	if (!expect_map(ld, node, "defaults") || !check_keys(ld, node, defaults_keys, "defaults"))
		return;
	load_execution(ld, defaults, node, "defaults");
}

/*
 * Loads and validates a DAG file.  Returns the model, or NULL when the text
 * is not even a YAML map; every problem found is in report either way.
 */
DagModel *
dag_model_load(const char *text, size_t len, DagReport *report)
{
	DagLoad		ld = {report};
	YamlNode   *root = yaml_tree_parse(text, len, report);
	DagModel   *model;
	JobModel	defaults;
	const YamlNode *v;

	if (root == NULL || !expect_map(&ld, root, ""))
		return NULL;
	model = palloc0(sizeof(DagModel));
	model->dag = "";
	check_keys(&ld, root, top_keys, "");
	if ((v = yaml_map_get(root, "dag")) != NULL)
		read_name(&ld, v, "dag", &model->dag);
	if ((v = yaml_map_get(root, "description")) != NULL)
		read_text(&ld, v, "description", &model->description);
	load_defaults(&ld, &defaults, yaml_map_get(root, "defaults"));
	if ((v = yaml_map_get(root, "jobs")) != NULL && expect_map(&ld, v, "jobs"))
	{
		if (v->count == 0)
			dag_error(report, "jobs", v->line, v->col, "a DAG needs at least one job");
		for (int i = 0; i < v->count; i++)
			model->jobs = lappend(model->jobs, load_job(&ld, &defaults, v->keys[i], v->items[i]));
	}
	model->publish = load_inputs(&ld, yaml_map_get(root, "publish"), "publish");
	dag_graph_check(model, report);
	return model;
}

/* Appends "key": value-or-null for a string. */
static void
json_text_field(StringInfo out, const char *key, const char *value)
{
	appendStringInfo(out, ", \"%s\": ", key);
	if (value)
		escape_json(out, value);
	else
		appendStringInfoString(out, "null");
}

/* Appends a list of dataset references with their positions. */
static void
json_refs(StringInfo out, const char *key, const List *refs)
{
	bool		first = true;
	ListCell   *lc;

	appendStringInfo(out, ", \"%s\": [", key);
	foreach(lc, refs)
	{
		DatasetRef *ref = lfirst(lc);

		appendStringInfoString(out, first ? "{\"dataset\": " : ", {\"dataset\": ");
		escape_json(out, ref->dataset);
		if (ref->storage)
		{
			appendStringInfoString(out, ", \"storage\": ");
			escape_json(out, ref->storage);
		}
		appendStringInfo(out, ", \"line\": %d, \"col\": %d}", ref->line, ref->col);
		first = false;
	}
	appendStringInfoChar(out, ']');
}

/* The model as JSON: the form trace.deploy_dag works from. */
void
dag_model_to_json(const DagModel *model, StringInfo out)
{
	bool		first = true;
	ListCell   *lc;

	appendStringInfoString(out, "{\"dag\": ");
	escape_json(out, model->dag);
	json_text_field(out, "description", model->description);
	appendStringInfoString(out, ", \"jobs\": [");
	foreach(lc, model->jobs)
	{
		JobModel   *job = lfirst(lc);

		if (!first)
			appendStringInfoString(out, ", ");
		first = false;
		appendStringInfoString(out, "{\"name\": ");
		escape_json(out, job->name);
		appendStringInfo(out, ", \"line\": %d, \"col\": %d", job->line, job->col);
		json_text_field(out, "operator", job->operator);
		appendStringInfo(out, ", \"operator_version\": %d", job->operator_version);
		json_text_field(out, "activation", job->activation);
		json_text_field(out, "runtime", job->runtime);
		json_refs(out, "inputs", job->inputs);
		json_refs(out, "outputs", job->outputs);
		appendStringInfo(out, ", \"config\": %s", job->config_json);
		if (job->has_trigger)
		{
			appendStringInfoString(out, ", \"trigger\": {\"cron\": ");
			escape_json(out, job->cron ? job->cron : "");
			json_text_field(out, "timezone", job->timezone);
			json_text_field(out, "catchup", job->catchup);
			appendStringInfoChar(out, '}');
		}
		else
			appendStringInfoString(out, ", \"trigger\": null");
		appendStringInfo(out, ", \"max_attempts\": %d, \"backoff_ms\": " INT64_FORMAT
						 ", \"max_backoff_ms\": " INT64_FORMAT ", \"lease_ms\": " INT64_FORMAT,
						 job->max_attempts, job->backoff_ms, job->max_backoff_ms, job->lease_ms);
		if (job->timeout_ms >= 0)
			appendStringInfo(out, ", \"timeout_ms\": " INT64_FORMAT, job->timeout_ms);
		else
			appendStringInfoString(out, ", \"timeout_ms\": null");
		if (job->concurrency > 0)
			appendStringInfo(out, ", \"concurrency\": %d", job->concurrency);
		else
			appendStringInfoString(out, ", \"concurrency\": null");
		appendStringInfo(out, ", \"priority\": %d, \"materialize\": %s",
						 job->priority, job->materialize ? "true" : "false");
		json_text_field(out, "execution_strategy", job->execution_strategy);
		if (job->query != NULL)
			appendStringInfo(out, ", \"query_line\": %d, \"query_col\": %d",
							 job->query_line, job->query_col);
		json_text_field(out, "description", job->description);
		appendStringInfoChar(out, '}');
	}
	appendStringInfoChar(out, ']');
	json_refs(out, "publish", model->publish);
	appendStringInfoChar(out, '}');
}
