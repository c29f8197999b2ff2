/*-------------------------------------------------------------------------
 * cron.h
 *		Cron expressions: parsing and next fire time (see cron.c).
 *-------------------------------------------------------------------------
 */
#ifndef TRACE_CRON_H
#define TRACE_CRON_H

#include "pgtime.h"
#include "datatype/timestamp.h"

typedef struct CronSpec
{
	uint64		minutes;		/* bit n: minute n (0-59) */
	uint32		hours;			/* bit n: hour n (0-23) */
	uint32		days;			/* bit n: day of month n (1-31) */
	uint16		months;			/* bit n: month n (1-12) */
	uint8		weekdays;		/* bit n: weekday n (0 = Sunday) */
	bool		days_restricted;
	bool		weekdays_restricted;
} CronSpec;

extern bool cron_parse(const char *expr, CronSpec *spec, char *err, size_t errlen);
extern TimestampTz cron_next(const CronSpec *spec, pg_tz *tz, TimestampTz after);

#endif							/* TRACE_CRON_H */
