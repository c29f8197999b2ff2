/*-------------------------------------------------------------------------
 * cron.c
 *		Five-field cron expressions and their next fire time in a time zone.
 *
 * Syntax: "minute hour day-of-month month day-of-week", each field a list of
 * values, ranges (a-b), steps (*\/n, a-b/n, and a/n meaning a-max/n as in
 * cronie and croner) and names (jan..dec, sun..sat; 7 is Sunday too), or one
 * of @yearly @annually @monthly @weekly @daily @midnight @hourly.  As in
 * Vixie cron, when both day fields are restricted a day matches either of
 * them.
 *
 * Fire times are wall-clock times in the schedule's IANA zone, and each
 * matching local time fires exactly once:
 *	 - a local time that happens twice (clocks go back) fires once, at the
 *	   second occurrence (PostgreSQL reads ambiguous local times as standard
 *	   time);
 *	 - a local time that does not exist (clocks go forward) fires once, at the
 *	   same distance past the transition (02:30 in a 02:00->03:00 gap fires
 *	   at 03:30; 02:10 in Lord Howe's 02:00->02:30 gap at 02:40); when that
 *	   instant is also a slot of its own, it fires once.
 * These are PostgreSQL's own readings of such local times.  Moving a
 * skipped time forward can put it after real slots (02:10 -> 02:40 comes
 * after 02:35 in Lord Howe), so the next fire time is the earliest instant
 * of all slots, not the instant of the first slot in local order.
 * The caller keeps the last fired instant and asks for the first slot after
 * it, so restarts never repeat or skip a slot.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "cron.h"

/* How far ahead to search: covers Feb 29 in any leap-year cycle. */
#define CRON_SEARCH_DAYS (366 * 8)

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

/* Reads one number or name at *p; returns false when there is none. */
static bool
cron_read_value(const char **p, const char *const *names, int names_base, int *value)
{
	const char *s = *p;

	if (isdigit((unsigned char) *s))
	{
		int			v = 0;

		while (isdigit((unsigned char) *s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*value = v;
		*p = s;
		return true;
	}
	if (names != NULL)
	{
		for (int i = 0; names[i] != NULL; i++)
		{
			if (pg_strncasecmp(s, names[i], 3) == 0)
			{
				*value = i + names_base;
				*p = s + 3;
				return true;
			}
		}
	}
	return false;
}

/*
 * Parses one field into a bitmask of allowed values in [lo, hi].  Returns
 * false with a message in err on a bad field.
 */
static bool
cron_parse_field(const char *field, const char *what, int lo, int hi,
				 const char *const *names, int names_base, uint64 *mask,
				 char *err, size_t errlen)
{
	const char *p = field;

	*mask = 0;
	for (;;)
	{
		int			from,
					to,
					step = 1;

		if (*p == '*')
		{
			from = lo;
			to = hi;
			p++;
		}
		else
		{
			if (!cron_read_value(&p, names, names_base, &from))
			{
				snprintf(err, errlen, "bad %s field \"%s\"", what, field);
				return false;
			}
			to = from;
			if (*p == '-')
			{
				p++;
				if (!cron_read_value(&p, names, names_base, &to))
				{
					snprintf(err, errlen, "bad range in %s field \"%s\"", what, field);
					return false;
				}
			}
			else if (*p == '/')
				to = hi;		/* a/n is a-max/n, as in cronie and croner */
		}
		if (*p == '/')
		{
			p++;
			if (!cron_read_value(&p, NULL, 0, &step) || step < 1)
			{
				snprintf(err, errlen, "bad step in %s field \"%s\"", what, field);
				return false;
			}
		}
		if (from < lo || to > hi || from > to)
		{
			snprintf(err, errlen, "%s field \"%s\" is out of range %d-%d", what, field, lo, hi);
			return false;
		}
		for (int v = from; v <= to; v += step)
			*mask |= UINT64CONST(1) << v;
		if (*p == '\0')
			return true;
		if (*p != ',')
		{
			snprintf(err, errlen, "bad %s field \"%s\"", what, field);
			return false;
		}
		p++;
	}
}

/* Expands the @macros into their five-field form. */
static const char *
cron_expand_macro(const char *expr)
{
	static const struct
	{
		const char *name;
		const char *fields;
	}			macros[] = {
		{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"},
		{"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
		{"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
		{"@hourly", "0 * * * *"},
	};

	for (size_t i = 0; i < lengthof(macros); i++)
		if (pg_strcasecmp(expr, macros[i].name) == 0)
			return macros[i].fields;
	return expr;
}

/*
 * Parses a cron expression.  Returns false with a message in err when it is
 * not a valid five-field expression or macro.
 */
bool
cron_parse(const char *expr, CronSpec *spec, char *err, size_t errlen)
{
	char	   *copy;
	char	   *fields[5];
	int			n = 0;
	char	   *save = NULL;
	uint64		mask;

	memset(spec, 0, sizeof(*spec));
	if (expr[0] == '@' && cron_expand_macro(expr) == expr)
	{
		snprintf(err, errlen, "unknown cron macro \"%s\"", expr);
		return false;
	}
	copy = pstrdup(cron_expand_macro(expr));
	for (char *tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save))
	{
		if (n == 5)
		{
			snprintf(err, errlen, "cron expression \"%s\" has more than 5 fields", expr);
			return false;
		}
		fields[n++] = tok;
	}
	if (n != 5)
	{
		snprintf(err, errlen, "cron expression \"%s\" has %d fields, expected 5", expr, n);
		return false;
	}
	if (!cron_parse_field(fields[0], "minute", 0, 59, NULL, 0, &spec->minutes, err, errlen) ||
		!cron_parse_field(fields[1], "hour", 0, 23, NULL, 0, &mask, err, errlen))
		return false;
	spec->hours = (uint32) mask;
	if (!cron_parse_field(fields[2], "day-of-month", 1, 31, NULL, 0, &mask, err, errlen))
		return false;
	spec->days = (uint32) mask;
	spec->days_restricted = (strcmp(fields[2], "*") != 0);
	if (!cron_parse_field(fields[3], "month", 1, 12, month_names, 1, &mask, err, errlen))
		return false;
	spec->months = (uint16) mask;
	if (!cron_parse_field(fields[4], "day-of-week", 0, 7, day_names, 0, &mask, err, errlen))
		return false;
	if (mask & (UINT64CONST(1) << 7))
		mask |= 1;				/* 7 is Sunday too */
	spec->weekdays = (uint8) (mask & 0x7f);
	spec->weekdays_restricted = (strcmp(fields[4], "*") != 0);
	return true;
}

/* Whether a calendar day matches the day fields (Vixie cron's OR rule). */
static bool
cron_day_matches(const CronSpec *spec, int year, int month, int day)
{
	bool		dom = (spec->days >> day) & 1;
	bool		dow = (spec->weekdays >> j2day(date2j(year, month, day))) & 1;

	if (!((spec->months >> month) & 1))
		return false;
	if (spec->days_restricted && spec->weekdays_restricted)
		return dom || dow;
	return dom && dow;
}

/* The instant a local wall-clock time in tz stands for. */
static TimestampTz
cron_local_to_instant(int year, int month, int day, int hour, int minute, pg_tz *tz)
{
	struct pg_tm tm;
	int			offset;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year;
	tm.tm_mon = month;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = minute;
	offset = DetermineTimeZoneOffset(&tm, tz);
	if (tm2timestamp(&tm, 0, &offset, &result) != 0)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("cron fire time out of range")));
	return result;
}

/*
 * How far (seconds) the zone's UTC offset varies over the two days either
 * side of t: a skipped local time moves forward by at most this much, so a
 * slot later in local time by more than this can never fire earlier.  0
 * when the offset does not change near t (the usual case).
 */
static int64
cron_offset_spread(pg_tz *tz, TimestampTz t)
{
	pg_time_t	from = (pg_time_t) timestamptz_to_time_t(t) - 2 * SECS_PER_DAY;
	pg_time_t	end = from + 4 * SECS_PER_DAY;
	long int	lo = LONG_MAX,
				hi = LONG_MIN;

	/* at most a handful of transitions fit in four days */
	for (int i = 0; i < 16; i++)
	{
		long int	before,
					after_off;
		int			before_dst,
					after_dst;
		pg_time_t	boundary;

		if (pg_next_dst_boundary(&from, &before, &before_dst, &boundary,
								 &after_off, &after_dst, tz) != 1 ||
			boundary > end)
			break;
		lo = Min(lo, Min(before, after_off));
		hi = Max(hi, Max(before, after_off));
		from = boundary;
	}
	return hi > lo ? (int64) (hi - lo) : 0;
}

/*
 * The first fire time strictly after `after`, or DT_NOEND when the
 * expression never fires (e.g. "0 0 31 2 *").  Slots are visited in local
 * order; once one fires after `after`, the later slots that could still
 * fire earlier (those within the zone's offset spread) are visited too and
 * the earliest instant wins.
 */
TimestampTz
cron_next(const CronSpec *spec, pg_tz *tz, TimestampTz after)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			offset;
	int			julian;
	TimestampTz best = DT_NOEND;
	int64		last_local = PG_INT64_MAX;	/* local minute to stop after */

	if (timestamp2tm(after, &offset, &tm, &fsec, NULL, tz) != 0)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("timestamp out of range")));
	/* Start one day early: a skipped local time may map past `after`. */
	julian = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - 1;
	for (int d = 0; d < CRON_SEARCH_DAYS; d++, julian++)
	{
		int			year,
					month,
					day;

		if ((int64) julian * MINS_PER_HOUR * HOURS_PER_DAY > last_local)
			break;
		j2date(julian, &year, &month, &day);
		if (!cron_day_matches(spec, year, month, day))
			continue;
		for (int hour = 0; hour < 24; hour++)
		{
			if (!((spec->hours >> hour) & 1))
				continue;
			for (int minute = 0; minute < 60; minute++)
			{
				int64		local = ((int64) julian * HOURS_PER_DAY + hour) * MINS_PER_HOUR + minute;
				TimestampTz at;

				if (!((spec->minutes >> minute) & 1))
					continue;
				if (local > last_local)
					return best;
				at = cron_local_to_instant(year, month, day, hour, minute, tz);
				if (at <= after || at >= best)
					continue;
				if (best == DT_NOEND)
				{
					int64		spread = cron_offset_spread(tz, at);

					if (spread == 0)
						return at;
					last_local = local + (spread + SECS_PER_MINUTE - 1) / SECS_PER_MINUTE;
				}
				best = at;
			}
		}
	}
	return best;
}

/* Looks up an IANA zone, raising a clear error when it is unknown. */
static pg_tz *
cron_zone(const char *name)
{
	pg_tz	   *tz = pg_tzset(name);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown time zone \"%s\"", name),
				 errhint("Use an IANA name such as UTC or Europe/Berlin.")));
	return tz;
}

PG_FUNCTION_INFO_V1(trace_cron_next);

/*
 * trace.cron_next(expr text, timezone text, after timestamptz): the next fire
 * time after `after`; NULL when the expression never fires.  Taking `after`
 * as an argument lets tests use fixed clocks.
 */
Datum
trace_cron_next(PG_FUNCTION_ARGS)
{
	char	   *expr = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *zone = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz after = PG_GETARG_TIMESTAMPTZ(2);
	CronSpec	spec;
	char		err[256];
	TimestampTz next;

	if (!cron_parse(expr, &spec, err, sizeof(err)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", err),
				 errhint("A cron expression has five fields: minute hour day-of-month month day-of-week.")));
	next = cron_next(&spec, cron_zone(zone), after);
	if (TIMESTAMP_NOT_FINITE(next))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}
