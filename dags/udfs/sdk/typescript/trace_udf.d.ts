// Types for trace_udf.mjs, the Trace UDF SDK (protocol "trace-udf/1").

export declare const PROTOCOL: 'trace-udf/1';

/** Throw to fail the attempt without retry. */
export declare class Fatal extends Error {
  constructor(message: string);
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Task<Payload = Json, Config = { [key: string]: Json }> {
  taskId: number;
  attempt: number;
  mode: 'live' | 'rebuild' | 'manual';
  payload: Payload;
  config: Config;
  inputs: Json;
  /** The job's output dataset ids, when the worker knows them. */
  outputs: string[] | null;
  /** The input event that made this task, if any. */
  event: { event_id: number; dataset_id: string; partition_key: string; [key: string]: Json } | null;
  job: { name?: string; dag?: string | null };
  raw: { [key: string]: Json };
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export declare class Output {
  /** One row of a partition of a dataset. */
  row(dataset: string, partitionKey: string, row: { [key: string]: Json }): void;
  /** Announces a partition (once per dataset and key). */
  event(dataset: string, partitionKey: string, payload?: { [key: string]: Json }): void;
  log(level: LogLevel, message: string): void;
}

export declare function readTask(): Promise<Task>;

/** Runs the handler; its return value is the task's result. */
export declare function run<P = Json, C = { [key: string]: Json }>(
  handle: (task: Task<P, C>, out: Output) => Json | void | Promise<Json | void>,
): Promise<void>;
