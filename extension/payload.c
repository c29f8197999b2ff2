/*-------------------------------------------------------------------------
 * payload.c
 *		The size cap on JSON arguments (payloads, results, configs).
 *
 * Every JSON value a caller hands to trace is stored in a state table and
 * often read again by workers, so one cap, trace.max_payload_bytes, bounds
 * them all; the rows of one write_rows call (a whole partition) have their
 * own, trace.max_write_bytes.  The size measured is the jsonb datum as passed, before any
 * compression, which is what the caller sent.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "access/detoast.h"
#include "utils/builtins.h"

#include "trace.h"
#include "trace_errcodes.h"

/* Raises TR003 when a JSON datum is larger than limit bytes; setting names
 * the GUC that sets the limit. */
void
trace_check_size(Datum value, const char *argument, int limit, const char *setting)
{
	Size		size = toast_raw_datum_size(value) - VARHDRSZ;

	if (size > (Size) limit)
		ereport(ERROR,
				(errcode(ERRCODE_TRACE_PAYLOAD_TOO_LARGE),
				 errmsg("argument \"%s\" is too large: %zu bytes", argument, size),
				 errdetail("The limit is %d bytes.", limit),
				 errhint("Split the data or pass a reference; the limit is %s.", setting)));
}

PG_FUNCTION_INFO_V1(trace_check_payload);

/*
 * trace.check_payload(payload jsonb, argument text): raises TR003 naming the
 * argument when payload is larger than trace.max_payload_bytes; NULL passes
 * (callers check NULLs themselves, with their own message).
 */
Datum
trace_check_payload(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		trace_check_size(PG_GETARG_DATUM(0),
				   PG_ARGISNULL(1) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(1)),
				   trace_max_payload_bytes, "trace.max_payload_bytes");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(trace_check_write_size);

/*
 * trace.check_write_size(rows jsonb): the same for the rows of one
 * trace.write_rows call, which replace a whole partition at once and so get
 * their own, larger limit, trace.max_write_bytes.
 */
Datum
trace_check_write_size(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		trace_check_size(PG_GETARG_DATUM(0), "rows", trace_max_write_bytes, "trace.max_write_bytes");
	PG_RETURN_VOID();
}
