/*-------------------------------------------------------------------------
 * payload.c
 *		The size cap on JSON arguments (payloads, results, configs).
 *
 * Every JSON value a caller hands to trace is stored in a state table and
 * often read again by workers, so one cap, trace.max_payload_bytes, bounds
 * them all.  The size measured is the jsonb datum as passed, before any
 * compression, which is what the caller sent.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "access/detoast.h"
#include "utils/builtins.h"

#include "trace.h"

PG_FUNCTION_INFO_V1(trace_check_payload);

/*
 * trace.check_payload(payload jsonb, argument text): raises TR003 naming the
 * argument when payload is larger than the cap; NULL passes (callers check
 * NULLs themselves, with their own message).
 */
Datum
trace_check_payload(PG_FUNCTION_ARGS)
{
	Size		size;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();

	size = toast_raw_datum_size(PG_GETARG_DATUM(0)) - VARHDRSZ;
	if (size > (Size) trace_max_payload_bytes)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('T', 'R', '0', '0', '3')),
				 errmsg("argument \"%s\" is too large: %zu bytes",
						PG_ARGISNULL(1) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(1)),
						size),
				 errdetail("The limit is %d bytes.", trace_max_payload_bytes),
				 errhint("Store large data in a dataset and pass a reference; the limit is trace.max_payload_bytes.")));
	PG_RETURN_VOID();
}
