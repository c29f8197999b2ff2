-- Events.  trace.emit_event is at-least-once made effectively-once: the key
-- (producer_task_id, dataset_id, partition_key) is unique, so a retry of the
-- task that emits the same partition again gets the original event back and
-- changes nothing.

-- Emits one event for the task holding the given lease and returns its
-- event_id.  The task row is share-locked with the fence in the same
-- statement, so a concurrent re-claim either waits for this emit or makes it
-- fail with TR001; it never interleaves.  TR002 when a cancel was requested.
CREATE FUNCTION trace.emit_event(
    task_id       bigint,
    attempt       int,
    lease_token   uuid,
    dataset_id    text,
    partition_key text,
    payload       jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    producer  trace.task;
    new_id    bigint;
BEGIN
    IF dataset_id IS NULL OR partition_key IS NULL OR payload IS NULL THEN
        PERFORM trace.require_arg(dataset_id IS NULL, 'dataset_id');
        PERFORM trace.require_arg(partition_key IS NULL, 'partition_key');
        PERFORM trace.require_arg(payload IS NULL, 'payload');
    END IF;
    IF dataset_id = '' OR length(dataset_id) > 200 THEN
        RAISE EXCEPTION 'argument "dataset_id" must be 1 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(partition_key) > 1000 THEN
        RAISE EXCEPTION 'argument "partition_key" must be at most 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM trace.check_payload(payload, 'payload');

    SELECT * INTO producer FROM trace.task t
    WHERE t.task_id = emit_event.task_id AND t.attempt = emit_event.attempt
      AND t.lease_token = emit_event.lease_token AND t.state = 'running'
      AND t.lease_expires_at > now()
    FOR SHARE;
    IF NOT FOUND THEN
        PERFORM trace.raise_lease_error(task_id, attempt, lease_token);
    END IF;
    IF producer.cancel_requested THEN
        RAISE EXCEPTION 'task % was canceled', task_id
            USING ERRCODE = 'TR002',
                  HINT = 'Stop the operator and give the task up with trace.fail_task.';
    END IF;

    INSERT INTO trace.event (org_id, producer_task_id, producer_attempt, dataset_id,
                             partition_key, payload)
    VALUES (producer.org_id, task_id, attempt, dataset_id, partition_key, payload)
    ON CONFLICT ON CONSTRAINT event_producer_task_id_dataset_id_partition_key_key
    DO NOTHING
    RETURNING event_id INTO new_id;
    IF new_id IS NULL THEN
        SELECT e.event_id INTO new_id FROM trace.event e
        WHERE e.producer_task_id = emit_event.task_id AND e.dataset_id = emit_event.dataset_id
          AND e.partition_key = emit_event.partition_key;
    END IF;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION trace.emit_event(bigint, int, uuid, text, text, jsonb) IS
    'Emits an event for a leased task, idempotent on (producer_task_id, dataset_id, partition_key); returns its event_id';
