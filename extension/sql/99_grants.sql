-- Privileges.  Nothing is executable by PUBLIC; each component role gets
-- exactly the functions it calls.  No role gets write access to a table: all
-- writes go through the SECURITY DEFINER functions above.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA trace FROM PUBLIC;
REVOKE ALL ON SCHEMA trace_data FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA trace FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA trace FROM PUBLIC;

GRANT USAGE ON SCHEMA trace
    TO trace_admin, trace_worker, trace_dispatcher, trace_delivery, trace_rpc, trace_query;

-- trace-worker: the task-scoped lifecycle and nothing else.
GRANT EXECUTE ON FUNCTION
    trace.claim_tasks(text, text[], int, interval),
    trace.task_fetch(bigint, int, uuid),
    trace.heartbeat(bigint, int, uuid),
    trace.emit_event(bigint, int, uuid, text, text, jsonb),
    trace.complete_task(bigint, int, uuid, jsonb),
    trace.complete_tasks(bigint[], int[], uuid[], jsonb[]),
    trace.fail_task(bigint, int, uuid, text, boolean),
    trace.write_rows(bigint, int, uuid, text, text, jsonb),
    trace.emit_events(bigint, int, uuid, text, text[], jsonb[]),
    trace.chain_tables(bigint, int, uuid),
    trace.source_state(bigint, int, uuid),
    trace.save_source_state(bigint, int, uuid, jsonb),
    trace.record_reorg(bigint, int, uuid, bigint, bigint, int, text[], text[])
    TO trace_worker;
GRANT USAGE ON SCHEMA trace_data TO trace_worker;

-- Administration: jobs, manual triggers, cancellation, inspection.
GRANT EXECUTE ON FUNCTION
    trace.create_job(text, text, text, jsonb, int, interval, interval, interval, interval, int),
    trace.enqueue_task(bigint, jsonb, int, timestamptz, int),
    trace.enqueue_tasks(bigint, jsonb[], int, timestamptz, int),
    trace.cancel_task(bigint),
    trace.validate_dag(text),
    trace.deploy_dag(text, jsonb),
    trace.rollback_dag(text, int),
    trace.pause_job(text, text),
    trace.resume_job(text, text),
    trace.trigger_job(text, text, jsonb),
    trace.restart_source(text, text)
    TO trace_admin;
GRANT SELECT ON trace.tasks, trace.task_attempts, trace.task_counts, trace.events,
    trace.dags, trace.dag_versions, trace.jobs, trace.datasets, trace.integrity_reports
    TO trace_admin, trace_query;
GRANT EXECUTE ON FUNCTION
    trace.caller_org(),
    trace.dataset_versions(text),
    trace.current_versions(),
    trace.version_blocker(text, text, int)
    TO trace_admin, trace_query;

-- The dispatcher's timed steps (the background worker runs them; an operator
-- holding trace_dispatcher can run one by hand).
GRANT EXECUTE ON FUNCTION
    trace.expire_leases(int),
    trace.release_scheduled(int),
    trace.relay_outbox(int),
    trace.maintain_task_history(interval),
    trace.next_due_ms(),
    trace.fire_cron(int),
    trace.run_dispatcher_tasks(int),
    trace.cutover_ready(int),
    trace.drop_old_versions()
    TO trace_dispatcher;
