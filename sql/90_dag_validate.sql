-- The DAG loader and validator: every problem with its path and position,
-- hostile YAML refused fast, nothing stored on a bad deploy.
\set VERBOSITY terse

-- The design's example DAG (with its cross-job references) is valid.
SELECT * FROM trace.validate_dag($yaml$
dag: eth_mainnet
defaults: {retries: {max_attempts: 5, backoff: 2s, max_backoff: 5m}, lease: 30s}
jobs:
  follow:
    operator: block_follower
    activation: source
    runtime: ecs_platform
    config: {rpc: mainnet, start_block: 19000000, confirmations: 12}
    outputs: [eth.blocks, eth.transactions, eth.logs]
  ranges:
    operator: aggregator
    runtime: dispatcher
    inputs: [eth.blocks]
    config: {cursor: block_number, size: 10000}
    outputs: [eth.block_ranges]
  compact:
    operator: parquet_compact
    inputs: [eth.block_ranges]
    config: {source: eth.transactions}
    outputs: [{dataset: eth.transactions_cold, storage: parquet}]
  whales:
    operator: sql
    inputs: [eth.transactions]
    config: {query: "SELECT * FROM {{eth.transactions}} WHERE value > 1e21"}
    materialize: false
    outputs: [eth.whale_txs]
  page:
    operator: alert_evaluate
    inputs: [eth.whale_txs]
    config: {route: oncall_webhook}
  hourly:
    operator: integrity_check
    trigger: {cron: "0 * * * *", timezone: UTC}
    inputs: [eth.blocks]
publish: [eth.blocks, eth.transactions_cold]
$yaml$);

-- Every problem of a bad file, in file order, each with path and line:column.
SELECT * FROM trace.validate_dag($yaml$
dag: Bad-Name
colour: blue
defaults: {lease: 10 parsecs}
jobs:
  ranges:
    operator: aggregator
    inputs: [blocks]
    config: {cursor: block_number, size: -5, extra: 1}
    outputs: [r]
  u: {operator: udf, runtime: ecs_udf, config: {language: cobol}, outputs: [u_out]}
  z: {operator: nope}
  c: {operator: integrity_check, inputs: [r], trigger: {cron: "61 * * * *", timezone: Mars/Base}}
  q: {operator: sql, inputs: [r], outputs: [s], config: {query: "select * from {{other}}"}, materialize: no}
  f: {operator: block_follower, activation: source, inputs: [r], outputs: [r], config: {rpc: x}}
  w: {operator: noop, retries: {backoff: 1h, max_backoff: 1m}, priority: high}
  v: {operator: splitter, config: {cursor: n}, inputs: [r, s], outputs: [v1, v2]}
publish: [nowhere]
$yaml$);

-- Cycles are found and named.
SELECT * FROM trace.validate_dag($yaml$
dag: loop
jobs:
  a: {operator: noop, inputs: [d3], outputs: [d1]}
  b: {operator: noop, inputs: [d1], outputs: [d2]}
  c: {operator: noop, inputs: [d2], outputs: [d3]}
$yaml$);

-- Structure: not a map, empty, no jobs, wrong types.
SELECT * FROM trace.validate_dag('');
SELECT * FROM trace.validate_dag('- just a list');
SELECT * FROM trace.validate_dag('dag: x');
SELECT * FROM trace.validate_dag(E'dag: x\njobs: {}');
SELECT * FROM trace.validate_dag(E'dag: x\njobs: [a, b]');
SELECT * FROM trace.validate_dag(E'dag: x\njobs:\n  a: {operator: noop, inputs: blocks, outputs: {x: 1}}');
SELECT * FROM trace.validate_dag(E'dag: x\njobs:\n  a: {operator: aggregator, inputs: [b], outputs: [c], config: {cursor: n, size: "10"}}\n  b0: {operator: noop, outputs: [b]}');

-- Hostile YAML is refused before it costs anything: duplicate keys, anchors
-- and aliases (alias bombs, self-reference), tags, merge keys, deep
-- nesting, second documents, invalid syntax, huge documents.
SELECT * FROM trace.validate_dag(E'dag: x\njobs:\n  a: {operator: noop}\n  a: {operator: noop}');
SELECT * FROM trace.validate_dag('a: &a [*a]');
SELECT * FROM trace.validate_dag(E'dag: x\nbase: &b {operator: noop}\njobs:\n  a: *b');
SELECT * FROM trace.validate_dag(E'dag: !!python/object:os.system x');
SELECT * FROM trace.validate_dag(E'dag: x\njobs:\n  a:\n    <<: {operator: noop}');
SELECT * FROM trace.validate_dag(repeat('[', 40000));
SELECT * FROM trace.validate_dag(repeat('{a: ', 33) || '1' || repeat('}', 33));
SELECT * FROM trace.validate_dag(E'dag: x\n---\ndag: y');
SELECT * FROM trace.validate_dag(E'dag: x\njobs: {a: [}');
SELECT * FROM trace.validate_dag(E'dag: x\n\tjobs: 1');
SELECT * FROM trace.validate_dag('dag: ' || repeat('x', 1100000));
SELECT * FROM trace.validate_dag('dag: "' || repeat('x', 70000) || '"');

-- Names reach SQL only as identifiers: a dataset id with quotes and
-- semicolons is just a name, and its stable view has exactly that name.
SELECT dag, dag_version FROM trace.deploy_dag($yaml$
dag: meta
jobs:
  a: {operator: noop, activation: source, outputs: ['x"; DROP TABLE trace.task; --']}
$yaml$);
SELECT dataset_id, stable_name, to_regclass(stable_name) IS NOT NULL AS view_exists,
       to_regclass('trace.task') IS NOT NULL AS task_table_intact
FROM trace.datasets WHERE dag = 'meta';

-- Deploy raises on the first error with its position, and stores nothing.
SELECT test.try($$SELECT * FROM trace.deploy_dag(E'dag: x\njobs:\n  a: {operator: nope}')$$);
SELECT test.try($$SELECT * FROM trace.deploy_dag(NULL)$$);
SELECT test.try($$SELECT * FROM trace.deploy_dag('dag: x', NULL)$$);
SELECT test.try($$SELECT * FROM trace.deploy_dag(E'dag: x\njobs:\n  a: {operator: noop}', '{"rebuild_everything": true}')$$);
SELECT test.try($$SELECT * FROM trace.deploy_dag(E'dag: x\njobs:\n  a: {operator: noop}', '{"rebuild_execution_strategy": "no"}')$$);
SELECT count(*) AS dags FROM trace.dag WHERE dag <> 'meta';

-- A sql job whose query does not run is refused at the query's position.
SELECT test.try($yaml$SELECT * FROM trace.deploy_dag(E'dag: badsql\njobs:\n  src: {operator: noop, activation: source, outputs: [raw]}\n  q:\n    operator: sql\n    inputs: [raw]\n    config: {query: "SELECT no_such_column FROM {{raw}}"}\n    outputs: [out]')$yaml$);
-- ...and cannot reach beyond its inputs.
SELECT test.try($yaml$SELECT * FROM trace.deploy_dag(E'dag: badsql\njobs:\n  src: {operator: noop, activation: source, outputs: [raw]}\n  q:\n    operator: sql\n    inputs: [raw]\n    config: {query: "SELECT * FROM trace.org_role, {{raw}}"}\n    outputs: [out]')$yaml$);
SELECT test.try($yaml$SELECT * FROM trace.deploy_dag(E'dag: badsql\njobs:\n  src: {operator: noop, activation: source, outputs: [raw]}\n  q:\n    operator: sql\n    inputs: [raw]\n    config: {query: "SELECT 1 FROM {{raw}}) q; DROP TABLE trace.task; --"}\n    outputs: [out]')$yaml$);
SELECT count(*) AS dags FROM trace.dag WHERE dag = 'badsql';
