// trace_udf: the TypeScript/JavaScript SDK for Trace UDFs ("trace-udf/1").
//
// No dependencies; runs on the machine's node (>= 18).  Types are in
// trace_udf.d.ts.  Node 20 cannot run .ts files without a compiler, so UDFs
// ship as .mjs (or compiled .js); with node >= 22.6 an entrypoint ending in
// .ts runs with --experimental-strip-types.
//
//   import { run, Fatal } from '../sdk/typescript/trace_udf.mjs';
//   run(async (task, out) => {
//     out.row('labels.tags', task.payload.partition, { address, tag });
//     out.event('labels.tags', task.payload.partition, { rows: 1 });
//     out.log('info', 'tagged 1 address');
//     return { tagged: 1 };           // the task's result
//   });
//
// A thrown error fails the attempt (retryable); throw new Fatal(msg) to
// fail it for good.  Rows and events are written by the worker only when
// the UDF returns: a failed attempt writes nothing.

export const PROTOCOL = 'trace-udf/1';

/** Fails the attempt without retry. */
export class Fatal extends Error {
  constructor(message) {
    super(message);
    this.name = 'Fatal';
  }
}

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

/** Writes protocol lines to stdout. */
export class Output {
  row(dataset, partitionKey, row) {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new TypeError('a row must be an object');
    }
    emit({ type: 'row', dataset, partition_key: String(partitionKey), row });
  }
  event(dataset, partitionKey, payload = {}) {
    emit({ type: 'event', dataset, partition_key: String(partitionKey), payload });
  }
  log(level, message) {
    emit({ type: 'log', level, message: String(message) });
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and checks the task line. */
export async function readTask() {
  const text = await readStdin();
  const first = text.split('\n', 1)[0];
  if (!first) throw new Fatal('no task on stdin');
  const doc = JSON.parse(first);
  if (doc.type !== 'task' || doc.protocol !== PROTOCOL) {
    throw new Fatal(`unsupported protocol ${JSON.stringify(doc.protocol)} (this SDK speaks ${PROTOCOL})`);
  }
  const t = doc.task ?? {};
  return {
    taskId: t.task_id, attempt: t.attempt, mode: t.mode, payload: t.payload,
    config: t.config ?? {}, inputs: t.inputs ?? null, outputs: t.outputs ?? null,
    event: t.event ?? null, job: t.job ?? {}, raw: t,
  };
}

/** Runs handle(task, out) and writes the result line. */
export async function run(handle) {
  const out = new Output();
  let line;
  try {
    const task = await readTask();
    const result = await handle(task, out);
    line = { type: 'result', ok: true };
    if (result !== undefined) line.result = result;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write((err.stack ?? String(err)) + '\n');
    line = { type: 'result', ok: false, error: `${err.name}: ${err.message}`,
             retryable: !(err instanceof Fatal) };
  }
  emit(line);
  process.exitCode = 0;    // stdout drains before node exits
}
