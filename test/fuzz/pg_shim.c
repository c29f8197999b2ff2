/*-------------------------------------------------------------------------
 * pg_shim.c
 *		Just the PostgreSQL backend symbols that the DAG loader
 *		(yaml_tree.c, dag_report.c, dag_model.c, dag_graph.c, cron.c) links
 *		against, so the fuzzer runs that code unchanged outside a backend.
 *
 *	 - Memory: every palloc is its own malloc block on one list (the
 *	   "arena"), so ASan sees each allocation's exact bounds;
 *	   pg_shim_reset() frees whatever is left after each input.  Memory
 *	   contexts are not modelled: everything belongs to the arena.
 *	 - Errors: ereport/elog(ERROR) longjmp to the innermost PG_TRY, as in
 *	   the backend; an ERROR outside any PG_TRY, or FATAL/PANIC, aborts.
 *	   Messages below ERROR are dropped.
 *	 - Time zones (simplified): pg_tzset knows only "UTC" and "Asia/Kolkata"
 *	   (a fixed +05:30 with no DST since 1945, which exercises a non-hour
 *	   offset); every other name is unknown, as a misspelt zone is in the
 *	   backend.  Fixed offsets have no DST gaps or overlaps, so cron_next's
 *	   DST handling is not exercised here (the SQL tests cover it).
 *	 - GetCurrentTimestamp is fixed (2024-01-01 00:00 UTC) so that every
 *	   input is reproducible.
 * The list of symbols came from the linker; keep it that way.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>
#include <setjmp.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* port.h maps these onto PostgreSQL's own versions; here we want libc's. */
#undef vsnprintf
#undef fprintf
#undef qsort

void		pg_shim_reset(void);

/* ---- memory ------------------------------------------------------------ */

typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	Size		size;
	Size		pad;			/* keeps the payload 16-byte aligned */
} Chunk;

static Chunk arena = {&arena, &arena, 0, 0};

MemoryContext CurrentMemoryContext = NULL;

static void *
chunk_alloc(Size size, bool zero)
{
	Chunk	   *c;

	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	c = zero ? calloc(1, sizeof(Chunk) + size) : malloc(sizeof(Chunk) + size);
	if (c == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	c->size = size;
	c->prev = &arena;
	c->next = arena.next;
	arena.next->prev = c;
	arena.next = c;
	return c + 1;
}

void *
palloc(Size size)
{
	return chunk_alloc(size, false);
}

void *
palloc0(Size size)
{
	return chunk_alloc(size, true);
}

void
pfree(void *pointer)
{
	Chunk	   *c = (Chunk *) pointer - 1;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

void *
repalloc(void *pointer, Size size)
{
	void	   *copy = palloc(size);
	Chunk	   *c = (Chunk *) pointer - 1;

	memcpy(copy, pointer, Min(size, c->size));
	pfree(pointer);
	return copy;
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

void
pg_shim_reset(void)
{
	while (arena.next != &arena)
		pfree(arena.next + 1);
}

/* ---- formatting: libc's printf, so ASan checks every %s argument ---------- */

int
pg_snprintf(char *str, size_t count, const char *fmt,...)
{
	va_list		args;
	int			n;

	va_start(args, fmt);
	n = vsnprintf(str, count, fmt, args);
	va_end(args);
	return n;
}

char *
psprintf(const char *fmt,...)
{
	va_list		args;
	int			n;
	char	   *out;

	va_start(args, fmt);
	n = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (n < 0)
		elog(ERROR, "vsnprintf failed");
	out = palloc(n + 1);
	va_start(args, fmt);
	vsnprintf(out, n + 1, fmt, args);
	va_end(args);
	return out;
}

/* port/pgstrcasecmp.c: ASCII folding, and the locale's for high-bit bytes */
static int
fold(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if (IS_HIGHBIT_SET(c) && isupper(c))
		return tolower(c);
	return c;
}

int
pg_strncasecmp(const char *s1, const char *s2, size_t n)
{
	for (; n > 0; n--, s1++, s2++)
	{
		int			c1 = fold((unsigned char) *s1);
		int			c2 = fold((unsigned char) *s2);

		if (c1 != c2)
			return c1 - c2;
		if (c1 == 0)
			break;
	}
	return 0;
}

int
pg_strcasecmp(const char *s1, const char *s2)
{
	return pg_strncasecmp(s1, s2, SIZE_MAX);
}

void
pg_qsort(void *base, size_t nel, size_t elsize, int (*cmp) (const void *, const void *))
{
	qsort(base, nel, elsize, cmp);
}

/* ---- StringInfo ------------------------------------------------------- */

void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	str->data[0] = '\0';
	str->len = 0;
	str->cursor = 0;
}

void
enlargeStringInfo(StringInfo str, int needed)
{
	int			newlen;

	if (needed < 0 || (Size) needed >= MaxAllocSize - (Size) str->len)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("out of memory: cannot enlarge string buffer containing %d bytes by %d more bytes",
							   str->len, needed)));
	needed += str->len + 1;
	if (needed <= str->maxlen)
		return;
	for (newlen = 2 * str->maxlen; needed > newlen; newlen *= 2)
		;
	if (newlen > (int) MaxAllocSize)
		newlen = (int) MaxAllocSize;
	str->data = repalloc(str->data, newlen);
	str->maxlen = newlen;
}

/* Returns 0 when it fit, else the space needed (as the backend's does). */
int
appendStringInfoVA(StringInfo str, const char *fmt, va_list args)
{
	int			avail = str->maxlen - str->len;
	int			n = vsnprintf(str->data + str->len, avail, fmt, args);

	if (n < 0)
		elog(ERROR, "vsnprintf failed");
	if (n < avail)
	{
		str->len += n;
		return 0;
	}
	str->data[str->len] = '\0';
	return n + 1;
}

void
appendStringInfo(StringInfo str, const char *fmt,...)
{
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(str, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(str, needed);
	}
}

static void
append_bytes(StringInfo str, const char *data, int len)
{
	enlargeStringInfo(str, len);
	memcpy(str->data + str->len, data, len);
	str->len += len;
	str->data[str->len] = '\0';
}

void
appendStringInfoString(StringInfo str, const char *s)
{
	append_bytes(str, s, strlen(s));
}

void
appendStringInfoChar(StringInfo str, char ch)
{
	append_bytes(str, &ch, 1);
}

/* utils/adt/json.c, PostgreSQL 15 */
void
escape_json(StringInfo buf, const char *str)
{
	appendStringInfoCharMacro(buf, '"');
	for (const char *p = str; *p; p++)
	{
		switch (*p)
		{
			case '\b':
				appendStringInfoString(buf, "\\b");
				break;
			case '\f':
				appendStringInfoString(buf, "\\f");
				break;
			case '\n':
				appendStringInfoString(buf, "\\n");
				break;
			case '\r':
				appendStringInfoString(buf, "\\r");
				break;
			case '\t':
				appendStringInfoString(buf, "\\t");
				break;
			case '"':
				appendStringInfoString(buf, "\\\"");
				break;
			case '\\':
				appendStringInfoString(buf, "\\\\");
				break;
			default:
				if ((unsigned char) *p < ' ')
					appendStringInfo(buf, "\\u%04x", (int) *p);
				else
					appendStringInfoCharMacro(buf, *p);
				break;
		}
	}
	appendStringInfoCharMacro(buf, '"');
}

/* ---- List -------------------------------------------------------------- */

List *
lappend(List *list, void *datum)
{
	if (list == NIL)
	{
		list = palloc(offsetof(List, initial_elements));
		list->type = T_List;
		list->length = 0;
		list->max_length = 0;
		list->elements = NULL;
	}
	if (list->length == list->max_length)
	{
		list->max_length = list->max_length ? list->max_length * 2 : 8;
		list->elements = list->elements
			? repalloc(list->elements, list->max_length * sizeof(ListCell))
			: palloc(list->max_length * sizeof(ListCell));
	}
	list->elements[list->length++].ptr_value = datum;
	return list;
}

/* ---- HTAB: string keys only, chained, in the arena ------------------------ */

#define HTAB_BUCKETS 1024

typedef struct HashEntry
{
	struct HashEntry *next;
	Size		pad;			/* keeps the entry 16-byte aligned */
	/* the caller's entry (key first) follows */
} HashEntry;

struct HTAB
{
	Size		keysize;
	Size		entrysize;
	HashEntry  *buckets[HTAB_BUCKETS];
};

HTAB *
hash_create(const char *tabname, long nelem, const HASHCTL *info, int flags)
{
	HTAB	   *h;

	if ((flags & (HASH_ELEM | HASH_STRINGS)) != (HASH_ELEM | HASH_STRINGS) ||
		(flags & ~(HASH_ELEM | HASH_STRINGS | HASH_CONTEXT)) != 0)
		elog(PANIC, "pg_shim: hash_create supports only HASH_ELEM | HASH_STRINGS [| HASH_CONTEXT]");
	h = palloc0(sizeof(HTAB));
	h->keysize = info->keysize;
	h->entrysize = info->entrysize;
	return h;
}

void *
hash_search(HTAB *h, const void *key, HASHACTION action, bool *found)
{
	const char *k = key;
	uint32		hash = 2166136261u;
	HashEntry **bucket;
	HashEntry  *e;

	for (Size i = 0; i < h->keysize - 1 && k[i]; i++)
		hash = (hash ^ (unsigned char) k[i]) * 16777619u;
	bucket = &h->buckets[hash % HTAB_BUCKETS];
	for (e = *bucket; e != NULL; e = e->next)
		if (strncmp((char *) (e + 1), k, h->keysize - 1) == 0)
			break;
	if (found)
		*found = (e != NULL);
	if (e != NULL || action == HASH_FIND)
		return e ? e + 1 : NULL;
	if (action != HASH_ENTER)
		elog(PANIC, "pg_shim: hash_search supports only HASH_FIND and HASH_ENTER");
	e = palloc0(sizeof(HashEntry) + h->entrysize);
	strncpy((char *) (e + 1), k, h->keysize - 1);
	e->next = *bucket;
	*bucket = e;
	return e + 1;
}

void
hash_destroy(HTAB *h)
{
	for (int b = 0; b < HTAB_BUCKETS; b++)
		while (h->buckets[b] != NULL)
		{
			HashEntry  *e = h->buckets[b];

			h->buckets[b] = e->next;
			pfree(e);
		}
	pfree(h);
}

/* ---- errors ----------------------------------------------------------- */

sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;

static int	err_level;
static char err_message[1024];

bool
errstart_cold(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	err_level = elevel;
	strcpy(err_message, "(no message)");
	return true;
}

int
errcode(int sqlerrcode)
{
	return 0;
}

int
errmsg(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(err_message, sizeof(err_message), fmt, args);
	va_end(args);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(err_message, sizeof(err_message), fmt, args);
	va_end(args);
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

void
pg_re_throw(void)
{
	if (PG_exception_stack == NULL || err_level > ERROR)
	{
		fprintf(stderr, "pg_shim: uncaught %s: %s\n",
				err_level > ERROR ? "FATAL/PANIC" : "ERROR", err_message);
		abort();
	}
	siglongjmp(*PG_exception_stack, 1);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	pg_re_throw();
}

/* The message of the last ERROR, for the fuzz target's verbose mode. */
const char *
pg_shim_last_error(void)
{
	return err_message;
}

/* ---- dates: utils/adt/datetime.c, PostgreSQL 15 ----------------------------- */

int
date2j(int y, int m, int d)
{
	int			julian;
	int			century;

	if (m > 2)
	{
		m += 1;
		y += 4800;
	}
	else
	{
		m += 13;
		y += 4799;
	}
	century = y / 100;
	julian = y * 365 - 32167;
	julian += y / 4 - century + century / 4;
	julian += 7834 * m / 256 + d;
	return julian;
}

void
j2date(int jd, int *year, int *month, int *day)
{
	unsigned int julian;
	unsigned int quad;
	unsigned int extra;
	int			y;

	julian = jd;
	julian += 32044;
	quad = julian / 146097;
	extra = (julian - quad * 146097) * 4 + 3;
	julian += 60 + quad * 3 + extra / 146097;
	quad = julian / 1461;
	julian -= quad * 1461;
	y = julian * 4 / 1461;
	julian = ((y != 0) ? ((julian + 305) % 365) : ((julian + 306) % 366)) + 123;
	y += quad * 4;
	*year = y - 4800;
	quad = julian * 2141 / 65536;
	*day = julian - 7834 * quad / 256;
	*month = (quad + 10) % MONTHS_PER_YEAR + 1;
}

int
j2day(int date)
{
	date += 1;
	date %= 7;
	if (date < 0)
		date += 7;
	return date;
}

/* ---- time zones and timestamps (fixed offsets only, see the top) -------- */

struct pg_tz
{
	const char *name;
	int			gmtoff;			/* seconds east of UTC */
};

static struct pg_tz zones[] = {{"UTC", 0}, {"Asia/Kolkata", 5 * 3600 + 30 * 60}};

pg_tz *
pg_tzset(const char *name)
{
	for (int i = 0; i < lengthof(zones); i++)
		if (pg_strcasecmp(name, zones[i].name) == 0)
			return &zones[i];
	return NULL;
}

/* As the backend: seconds west of UTC (UTC+05:30 gives -19800). */
int
DetermineTimeZoneOffset(struct pg_tm *tm, pg_tz *tzp)
{
	tm->tm_isdst = 0;
	return -tzp->gmtoff;
}

/* utils/adt/timestamp.c, PostgreSQL 15, with its range checks. */
int
tm2timestamp(struct pg_tm *tm, fsec_t fsec, int *tzp, Timestamp *result)
{
	TimeOffset	date;
	TimeOffset	time;

	*result = 0;
	if (!IS_VALID_JULIAN(tm->tm_year, tm->tm_mon, tm->tm_mday))
		return -1;
	date = date2j(tm->tm_year, tm->tm_mon, tm->tm_mday) - POSTGRES_EPOCH_JDATE;
	time = (((((tm->tm_hour * MINS_PER_HOUR) + tm->tm_min) * SECS_PER_MINUTE) + tm->tm_sec)
			* USECS_PER_SEC) + fsec;
	*result = date * USECS_PER_DAY + time;
	if ((*result - time) / USECS_PER_DAY != date ||
		(*result < 0 && date > 0) || (*result > 0 && date < -1))
		return -1;
	if (tzp != NULL)
		*result += (int64) *tzp * USECS_PER_SEC;
	if (!IS_VALID_TIMESTAMP(*result))
		return -1;
	return 0;
}

/* As the backend's, with the zone a fixed offset instead of pg_localtime. */
int
timestamp2tm(Timestamp dt, int *tzp, struct pg_tm *tm, fsec_t *fsec,
			 const char **tzn, pg_tz *attimezone)
{
	Timestamp	date;
	Timestamp	time;

	if (tzp != NULL)
	{
		if (attimezone == NULL || !IS_VALID_TIMESTAMP(dt))
			return -1;
		dt += (int64) attimezone->gmtoff * USECS_PER_SEC;
	}
	time = dt;
	TMODULO(time, date, USECS_PER_DAY);
	if (time < 0)
	{
		time += USECS_PER_DAY;
		date -= 1;
	}
	date += POSTGRES_EPOCH_JDATE;
	if (date < 0 || date > (Timestamp) INT_MAX)
		return -1;
	j2date((int) date, &tm->tm_year, &tm->tm_mon, &tm->tm_mday);
	tm->tm_hour = time / USECS_PER_HOUR;
	time -= tm->tm_hour * USECS_PER_HOUR;
	tm->tm_min = time / USECS_PER_MINUTE;
	time -= tm->tm_min * USECS_PER_MINUTE;
	tm->tm_sec = time / USECS_PER_SEC;
	*fsec = time - tm->tm_sec * USECS_PER_SEC;
	tm->tm_isdst = tzp ? 0 : -1;
	tm->tm_gmtoff = tzp ? attimezone->gmtoff : 0;
	tm->tm_zone = tzp ? attimezone->name : NULL;
	if (tzp != NULL)
		*tzp = -attimezone->gmtoff;
	if (tzn != NULL)
		*tzn = tm->tm_zone;
	return 0;
}

/* A fixed offset has no transitions: none after *timep (result 0). */
int
pg_next_dst_boundary(const pg_time_t *timep, long int *before_gmtoff, int *before_isdst,
					 pg_time_t *boundary, long int *after_gmtoff, int *after_isdst,
					 const pg_tz *tz)
{
	*before_gmtoff = tz->gmtoff;
	*before_isdst = 0;
	return 0;
}

/* utils/adt/timestamp.c, PostgreSQL 15. */
pg_time_t
timestamptz_to_time_t(TimestampTz t)
{
	return (pg_time_t) (t / USECS_PER_SEC +
						((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY));
}

TimestampTz
GetCurrentTimestamp(void)
{
	return (TimestampTz) (date2j(2024, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
}

/* ---- SQL-callable glue in cron.c (trace_cron_next), never called here --- */

char *
text_to_cstring(const text *t)
{
	elog(PANIC, "pg_shim: text_to_cstring is not available");
	pg_unreachable();
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	elog(PANIC, "pg_shim: pg_detoast_datum_packed is not available");
	pg_unreachable();
}
