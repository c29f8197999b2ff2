// bench/peers/bench.mjs: the driver bench/peers.sh runs (under Node 22, from
// a copy in bench/out/peers beside the installed node_modules).
//
//   node bench.mjs setup
//   node bench.mjs throughput SYSTEM MODE CONCURRENCY    -> one key=value line
//   node bench.mjs latency SYSTEM                         -> one key=value line
//   node bench.mjs worker SYSTEM JSON                     (child process)
//
// SYSTEM: trace | graphile | pgboss | pgq.  The connection comes from the
// environment: PGHOST (the cluster's socket directory), PGPORT, PGDATABASE,
// PGUSER; TRACE_WORKER is the trace-worker binary, TRACE_JOB the bench job id,
// PGBENCH the pgbench binary, BENCH_JOBS the job count (20000).
//
// How a throughput point is timed, the same for every system: the workers
// are started and left idle until they are ready (Node workers say so over
// IPC; trace-worker processes when their LISTEN sessions show up), then all
// the jobs are enqueued in one transaction, and the clock runs from the
// moment that commit is acknowledged until the database holds no unfinished
// job.  The workers report their progress (Node workers: jobs handled, over
// IPC every 10 ms; trace-worker: its "completed" log line per task, at its
// default log level info), and only once they report them all does a poll
// (every TAIL_POLL_MS) look for unfinished jobs in the database: counting a
// 20,000-row queue table every few ms would itself load a 2-core machine.
// So a figure includes the wake-up, every claim and every completion as
// persisted.
// A point still running after BENCH_CAP_S seconds is cut there and rated on
// the jobs finished by then (capped=1).
//
// Wake-up latency, the same for every system: one job every GAP_MS on an
// idle system, each enqueued in a transaction that also inserts a row into
// public.wake_mark; the enqueue's commit time is that row's
// pg_xact_commit_timestamp (track_commit_timestamp = on), taken before the
// commit's WAL flush; the enqueuer also notes when its COMMIT returned (the
// commit acknowledged: flushed, visible, NOTIFY sent).  Handler start:
// a Node handler's first statement reads the wall clock (re-anchored
// against Date.now() every 250 ms, sub-millisecond), and Trace's noop
// operator emits an event first thing whose created_at is now() of the
// emit's transaction (the database clock, the same system clock).
import pg from 'pg';
import { fork, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const JOBS = Number(process.env.BENCH_JOBS || 20000);
const CAP_MS = 1000 * Number(process.env.BENCH_CAP_S || 12);
const TAIL_POLL_MS = 5;
const GAP_MS = Number(process.env.BENCH_GAP_MS || 50);
const SAMPLES = Number(process.env.BENCH_SAMPLES || 200);
const PGQ_POLL_MS = 10;      // PgQ has no wake-up: its consumer polls
const QUEUE = 'noop';
const self = fileURLToPath(import.meta.url);
const allKids = [];   // every worker process started, killed if this one fails

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mono = () => performance.now();

// Wall clock in ms with sub-ms resolution: performance.now() anchored to the
// edge of a Date.now() tick, re-anchored every 250 ms so the monotonic and
// real-time clocks cannot drift apart.
let anchorWall = 0;
let anchorMono = 0;
function reanchor() {
  const start = Date.now();
  let d;
  while ((d = Date.now()) === start) { /* spin to the tick edge, < 1 ms */ }
  anchorWall = d;
  anchorMono = performance.now();
}
function wallClock() {
  return anchorWall + (performance.now() - anchorMono);
}
function startWallClock() {
  reanchor();
  setInterval(reanchor, 250).unref();
}

function connOpts(extra = {}) {
  return {
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    database: process.env.PGDATABASE,
    user: process.env.PGUSER,
    ...extra,
  };
}

async function client() {
  const c = new pg.Client(connOpts());
  await c.connect();
  return c;
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1];
}

function out(fields) {
  console.log(Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(' '));
}

function pkgVersion(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

// ---- CPU accounting ----------------------------------------------------------
//
// Ticks (USER_HZ) the whole machine was busy, and ticks of our processes:
// this one (with its reaped children, e.g. pgbench), the worker processes,
// the postmaster (with its reaped backends) and its live children.  What the
// machine spent beyond ours went to other processes: on a shared machine,
// that says how far a figure can be trusted.  CPU per job (ours) is the
// figure least disturbed by them.
const HZ = 100;   // USER_HZ on Linux
function procTicks(pid, children) {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');   // f[0] is field 3
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0) };
  } catch {
    return { ppid: 0, ticks: 0 };
  }
}
function cpuSnap(pids = []) {
  const pm = Number(readFileSync(`${process.env.PGDATA_DIR}/postmaster.pid`, 'utf8').split('\n')[0]);
  let ours = procTicks('self', true).ticks + procTicks(pm, true).ticks;
  for (const pid of pids) ours += procTicks(pid, true).ticks;
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    const p = procTicks(d, false);
    if (p.ppid === pm) ours += p.ticks;
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const busy = cpu[1] + cpu[2] + cpu[3] + cpu[6] + cpu[7];
  return { t: mono(), busy, ours };
}
// { others_pct, ours_pct, cpu_ms } between two snapshots, for n jobs.
function cpuUse(a, b, n) {
  const cap = ((b.t - a.t) / 1000) * HZ * NCPU;
  const ours = b.ours - a.ours;
  const others = Math.max(0, (b.busy - a.busy) - ours);
  return {
    others_pct: cap > 0 ? ((100 * others) / cap).toFixed(0) : '-',
    ours_pct: cap > 0 ? ((100 * ours) / cap).toFixed(0) : '-',
    cpu_ms: n > 0 ? ((1000 * ours) / HZ / n).toFixed(3) : '-',
  };
}
const NCPU = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu[0-9]/.test(l)).length;

// ---- setup -----------------------------------------------------------------

async function setup() {
  const c = await client();
  const { runMigrations } = await import('graphile-worker');
  const migPool = new pg.Pool(connOpts({ max: 2 }));
  migPool.on('error', (e) => console.error('pool:', e.message));
  migPool.on('connect', (cl) => cl.on('error', (e) => console.error('pool client:', e.message)));
  await runMigrations({ pgPool: migPool, logger: quietGraphileLogger(await import('graphile-worker')) });
  await migPool.end();
  const { PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ ...connOpts(), supervise: false, schedule: false });
  boss.on('error', (e) => console.error('pg-boss:', e.message));
  await boss.start();
  await boss.createQueue(QUEUE, { notify: true });
  await boss.stop({ graceful: false, wait: true });
  await c.query(`SELECT pgq.create_queue('bench')`);
  await c.query(`SELECT pgq.register_consumer('bench', 'c1')`);
  await c.end();
  out({
    graphile_worker: pkgVersion('graphile-worker'),
    pg_boss: pkgVersion('pg-boss'),
    pg: pkgVersion('pg'),
    node: process.version,
  });
}

function quietGraphileLogger(gw) {
  return new gw.Logger(() => (level, message) => {
    if (level === 'error') console.error('graphile-worker:', message);
  });
}

// ---- per-system hooks --------------------------------------------------------

// Empties the system's tables and settles the database.
async function reset(c, system) {
  const tables = {
    trace: ['trace.task', 'trace.task_done', 'trace.task_attempt', 'trace.event', 'trace.outbox'],
    graphile: ['graphile_worker._private_jobs'],
    pgboss: ['pgboss.job'],
  }[system];
  if (tables) {
    await c.query(`TRUNCATE ${tables.join(', ')}`);
    for (const t of tables) await c.query(`VACUUM ANALYZE ${t}`);
  }
  await c.query('TRUNCATE public.wake_mark');
  await c.query('CHECKPOINT');
}

// How many jobs are not finished yet (a cheap count, every POLL_MS).
const remainingSql = {
  trace: 'SELECT count(*)::int AS n FROM trace.task',
  graphile: 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs',
  pgboss: `SELECT count(*)::int AS n FROM pgboss.job WHERE name = '${QUEUE}' AND state < 'completed'`,
};

// Payload of job i.
function payload(system, mode, i, k) {
  const p = { n: i };
  if (k !== undefined) p.k = k;
  if (system === 'trace' && (mode.endsWith('cec') || k !== undefined)) {
    // noop's {"emit": [...]}: one event before it completes.  In the latency
    // run the event is the handler's timestamp (its created_at).
    p.emit = [{ dataset: k !== undefined ? 'bench.wake' : 'bench.dataset', key: String(k ?? i),
                payload: { rows: 100 } }];
  }
  return p;
}

// One transaction that enqueues n jobs.
async function enqueueBulk(c, system, mode, n) {
  const payloads = Array.from({ length: n }, (_, i) => payload(system, mode, i));
  if (system === 'trace') {
    // Mode ...-an: ANALYZE trace.task in the enqueue transaction, so the
    // statistics (and every plan cached against them) see the full queue.
    await c.query('BEGIN');
    await c.query('SELECT count(*) FROM trace.enqueue_tasks($1::bigint, $2::jsonb[])',
                  [process.env.TRACE_JOB, payloads.map((p) => JSON.stringify(p))]);
    if (mode.endsWith('-an')) await c.query('ANALYZE trace.task');
    await c.query('COMMIT');
  } else if (system === 'graphile') {
    await c.query(`SELECT count(*) FROM graphile_worker.add_jobs(
                     (SELECT array_agg(ROW('${QUEUE}', p, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec)
                      FROM unnest($1::json[]) p))`, [payloads.map((p) => JSON.stringify(p))]);
  } else if (system === 'pgboss') {
    // boss.insert() is pg-boss's bulk API: one statement for the array.
    const { PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ ...connOpts(), supervise: false, schedule: false, migrate: false });
    boss.on('error', (e) => console.error('pg-boss:', e.message));
    await boss.start();
    // Outside the timed part: build the array first.
    const jobs = payloads.map((data) => ({ data }));
    const t = mono();
    await boss.insert(QUEUE, jobs);
    const took = mono() - t;
    await boss.stop({ graceful: false, wait: true });
    return took;
  }
  return undefined;
}

// One job, in a transaction that also inserts its wake_mark row.
async function enqueueOne(c, system, k, boss, acks) {
  await c.query('BEGIN');
  const p = payload(system, 'latency', k, k);
  if (system === 'trace') {
    await c.query('SELECT trace.enqueue_task($1::bigint, $2::jsonb)', [process.env.TRACE_JOB, JSON.stringify(p)]);
  } else if (system === 'graphile') {
    await c.query('SELECT graphile_worker.add_job($1, $2::json)', [QUEUE, JSON.stringify(p)]);
  } else if (system === 'pgboss') {
    await boss.send(QUEUE, p, { db: { executeSql: (text, values) => c.query(text, values) } });
  } else if (system === 'pgq') {
    await c.query(`SELECT pgq.insert_event('bench', 'noop', $1)`, [JSON.stringify(p)]);
  }
  await c.query('INSERT INTO public.wake_mark (k) VALUES ($1)', [k]);
  await c.query('COMMIT');
  acks.set(k, wallClock());
}

// ---- worker fleets -------------------------------------------------------------

// Starts the workers of a system; resolves once they are ready.  Returns
// { stop(), handled: [{k, t}] } (handled: Node handlers' timestamps, latency runs).
async function startFleet(system, mode, conc, latency) {
  const handled = [];
  const kids = [];
  const fleet = { done: 0 };
  const counts = [];
  if (system === 'trace') {
    // 1: C processes x concurrency 1 (every claim is of one task);
    // batched: one process x concurrency C (claims up to its free slots).
    const [procs, per] = mode.startsWith('w1') || latency ? [conc, 1] : [1, conc];
    const conninfo = `host=${process.env.PGHOST} port=${process.env.PGPORT} dbname=${process.env.PGDATABASE} user=${process.env.PGUSER}`;
    for (let i = 0; i < procs; i++) {
      const kid = spawn(process.env.TRACE_WORKER, [
        '--conninfo', conninfo, '--runtimes', 'ecs_platform', '--concurrency', String(per),
        '--worker-id', `bench-${i}`, '--log-level', 'info', '--poll-interval', '5s',
      ], { stdio: ['ignore', 'inherit', 'pipe'] });
      // One "completed: ..." line per task it ended (log level info, the
      // default); warnings and errors pass through.
      let rest = '';
      kid.stderr.setEncoding('utf8');
      kid.stderr.on('data', (chunk) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop();
        for (const l of lines) {
          if (l.includes('] task ') && l.includes(': completed: ')) fleet.done++;
          else if (/ (WARN|ERROR) /.test(l)) process.stderr.write(`trace-worker: ${l}\n`);
        }
      });
      kids.push(kid);
      allKids.push(kid);
    }
    const c = await client();
    for (let tries = 0; ; tries++) {
      const r = await c.query(`SELECT count(*)::int AS n FROM pg_stat_activity
                               WHERE application_name = 'trace-worker' AND query = 'LISTEN trace_wakeup'`);
      if (r.rows[0].n >= procs) break;
      if (tries > 500) throw new Error('trace-worker did not start');
      await sleep(10);
    }
    await c.end();
  } else if (system === 'graphile' || system === 'pgboss') {
    // Two Node processes (one per core), C/2 each.
    const procs = 2;
    const per = Math.max(1, Math.floor(conc / procs));
    let ready = 0;
    await new Promise((resolve, reject) => {
      for (let i = 0; i < procs; i++) {
        const kid = fork(self, ['worker', system, JSON.stringify({ mode, per, latency })],
                         { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        counts.push(0);
        kid.on('message', (m) => {
          if (m.type === 'ready' && ++ready === procs) resolve();
          else if (m.type === 'h') handled.push(m);
          else if (m.type === 'n') {
            counts[i] = m.n;
            fleet.done = counts.reduce((a, b) => a + b, 0);
          }
        });
        kid.on('exit', (code) => { if (ready < procs) reject(new Error(`${system} worker exited ${code}`)); });
        kids.push(kid);
        allKids.push(kid);
      }
    });
  }
  await sleep(300);   // let every connection settle into idle
  return Object.assign(fleet, {
    handled,
    pids: kids.map((k) => k.pid),
    async stop() {
      await Promise.all(kids.map((kid) => new Promise((resolve) => {
        if (kid.exitCode !== null) return resolve();
        const t = setTimeout(() => kid.kill('SIGKILL'), 10000);
        kid.on('exit', () => { clearTimeout(t); resolve(); });
        kid.kill('SIGTERM');
      })));
    },
  });
}

// A Node worker process (graphile-worker or pg-boss), started by startFleet.
async function workerMain(system, opts) {
  startWallClock();
  const { mode, per, latency } = opts;
  let handledCount = 0;
  let reported = 0;
  const handle = (data) => {
    if (data && data.k !== undefined) process.send({ type: 'h', k: data.k, t: wallClock() });
    handledCount++;
  };
  // Progress for the orchestrator: jobs handled, every 10 ms when it changed.
  setInterval(() => {
    if (handledCount !== reported) {
      reported = handledCount;
      process.send({ type: 'n', n: reported });
    }
  }, 10).unref();
  let stop;
  if (system === 'graphile') {
    const gw = await import('graphile-worker');
    const pool = new pg.Pool(connOpts({ max: per + 2 }));
    pool.on('error', (e) => console.error('pool:', e.message));
    pool.on('connect', (cl) => cl.on('error', (e) => console.error('pool client:', e.message)));
    // plain: the defaults (one get_job per job, completion per job);
    // lq: localQueue of 100 and completion batching (completeJobBatchDelay 0).
    const worker = mode === 'lq'
      ? { localQueue: { size: 100 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
      : {};
    const runner = await gw.run({
      pgPool: pool, concurrency: per, noHandleSignals: true, crontab: '',
      logger: quietGraphileLogger(gw), preset: { worker },
      taskList: { [QUEUE]: async (payload) => { handle(payload); } },
    });
    stop = async () => { await runner.stop(); await pool.end(); };
  } else {
    const { PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ ...connOpts(), max: per + 2, supervise: false, schedule: false,
                              migrate: false, useListenNotify: true });
    boss.on('error', (e) => console.error('pg-boss:', e.message));
    await boss.start();
    let running = true;
    const loops = [];
    if (mode === 'plain' && !latency) {
      // One job per fetch: boss.fetch() -> handler -> boss.complete(), a
      // loop per slot.  (work() with batchSize 1 would sleep its polling
      // interval, >= 0.5 s, after every job: no burst at batchSize 1.)
      for (let i = 0; i < per; i++) {
        loops.push((async () => {
          while (running) {
            const jobs = await boss.fetch(QUEUE);
            if (!jobs || jobs.length === 0) { await sleep(5); continue; }
            handle(jobs[0].data);
            await boss.complete(QUEUE, jobs[0].id);
          }
        })());
      }
    } else {
      // work(): batchSize 1 (latency), 100 or 1000; burst while batches are
      // full; woken by its NOTIFY (useListenNotify, queue notify: true).
      const batchSize = latency ? 1 : Number(mode.slice(1));
      await boss.work(QUEUE, { batchSize, localConcurrency: per, burstWhenBatchFull: true,
                               pollingIntervalSeconds: 0.5 },
                      async (jobs) => { for (const j of jobs) handle(j.data); });
    }
    stop = async () => { running = false; await Promise.all(loops); await boss.stop({ graceful: true, wait: true }); };
  }
  process.send({ type: 'ready' });
  process.on('disconnect', () => process.exit(1));   // the orchestrator is gone
  process.on('SIGTERM', async () => {
    try { await stop(); } finally { process.exit(0); }
  });
}

// ---- PgQ -------------------------------------------------------------------------

// One consumer pass: tick, take the next batch, handle its events, finish it,
// in one transaction (as PgQ's own consumers do).  Returns the event count,
// or -1 when there was no batch.
async function pgqPass(c, onEvent) {
  await c.query('SELECT pgq.ticker()');
  await c.query('BEGIN');
  const b = await c.query(`SELECT pgq.next_batch('bench', 'c1') AS id`);
  const id = b.rows[0].id;
  if (id === null) { await c.query('COMMIT'); return -1; }
  const ev = await c.query('SELECT ev_id, ev_data FROM pgq.get_batch_events($1)', [id]);
  for (const e of ev.rows) onEvent(e);
  await c.query('SELECT pgq.finish_batch($1)', [id]);
  await c.query('COMMIT');
  return ev.rows.length;
}

async function pgqDrain(c) {
  while ((await pgqPass(c, () => {})) >= 0) { /* old batches */ }
}

async function pgqThroughput(conc) {
  const c = await client();
  await pgqDrain(c);
  await c.query('CHECKPOINT');
  // Produce: C pgbench clients, one pgq.insert_event per transaction, while
  // a ticker loop ticks every 10 ms (the queue's default ticker_max_count
  // 500 cuts the stream into batches of ~500 events).
  const ticker = await client();
  let ticking = true;
  const tickLoop = (async () => {
    while (ticking) { await ticker.query('SELECT pgq.ticker()'); await sleep(10); }
  })();
  // The script stops each client (a deliberate error) once the queue's
  // event sequence passes JOBS new events; -T caps the time.
  const seq = await c.query(`SELECT pgq.seq_getval(queue_event_seq)::bigint AS v FROM pgq.queue WHERE queue_name = 'bench'`);
  const limit = Number(seq.rows[0].v) + JOBS;
  const script = `${process.env.PGHOST}/pgq_produce.sql`;
  writeFileSync(script, [
    `SELECT pgq.insert_event('bench', 'noop', '{"n": 1}') AS ev \\gset`,
    `\\if :ev >= ${limit}`,
    `\\set stop 1 / 0`,
    `\\endif`, ''].join('\n'));
  const snap0 = cpuSnap();
  const pgb = spawn(process.env.PGBENCH, ['-n', '-M', 'prepared', '-c', String(conc), '-j', String(conc),
                                          '-T', String(CAP_MS / 1000), '-f', script],
                    { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  pgb.stdout.on('data', (d) => { text += d; });
  pgb.stderr.on('data', (d) => { text += d; });
  await new Promise((r) => pgb.on('exit', r));
  ticking = false;
  await tickLoop;
  await ticker.end();
  const snap1 = cpuSnap();
  const tps = Number((text.match(/tps = ([0-9.]+)/) || [])[1] || 0);
  const produced = Number((await c.query(
    `SELECT pgq.seq_getval(queue_event_seq)::bigint AS v FROM pgq.queue WHERE queue_name = 'bench'`)).rows[0].v) - (limit - JOBS);
  // Expected: "division by zero" (the stop); anything else is an error.
  const errors = text.split('\n').filter((l) => /error|abort/i.test(l) &&
    !/division by zero|Run was aborted|aborted in command \d+ \(set\)/.test(l)).length;
  // Consume: one consumer (PgQ hands each batch to one consumer; there is
  // no work sharing between consumers of a queue in pgq itself).
  // ticker_max_lag 0: the consumer's own ticker() call also ticks the
  // last partial batch, so a pass without a batch means all were consumed.
  await c.query(`SELECT pgq.set_queue_config('bench', 'ticker_max_lag', '0')`);
  let events = 0;
  let batches = 0;
  const t0 = mono();
  for (;;) {
    const n = await pgqPass(c, () => {});
    if (n < 0) break;
    events += n;
    batches++;
  }
  const secs = (mono() - t0) / 1000;
  const snap2 = cpuSnap();
  await c.query(`SELECT pgq.set_queue_config('bench', 'ticker_max_lag', '3 seconds')`);
  const prod = cpuUse(snap0, snap1, produced);
  const cons = cpuUse(snap1, snap2, events);
  await c.end();
  if (errors) console.error(text);
  out({ system: 'pgq', clients: conc, produce_per_s: tps.toFixed(1), consume_per_s: (events / secs).toFixed(1),
        produced, events, batches, capped: produced < JOBS ? 1 : 0, failed: errors ? 1 : undefined,
        others_pct: prod.others_pct, ours_pct: prod.ours_pct, cpu_ms: prod.cpu_ms,
        consume_others_pct: cons.others_pct, consume_cpu_ms: cons.cpu_ms });
}

// ---- throughput -------------------------------------------------------------------

async function throughput(system, mode, conc) {
  if (system === 'pgq') return pgqThroughput(conc);
  const c = await client();
  await reset(c, system);
  const claimsBefore = system === 'trace' ? await claimCalls(c) : 0;
  const fleet = await startFleet(system, mode, conc, false);
  const t0 = mono();
  const enqMs = await enqueueBulk(c, system, mode, JOBS);
  const tEnq = mono();
  const snap0 = cpuSnap(fleet.pids);
  // Wait for the workers to report every job (no database polling), then
  // poll the database until nothing is unfinished; at the cap, count once.
  while (fleet.done < JOBS && mono() - tEnq < CAP_MS) await sleep(2);
  let polls = 0;
  let left;
  for (;;) {
    const r = await c.query(remainingSql[system]);
    polls++;
    left = r.rows[0].n;
    if (left === 0 || mono() - tEnq >= CAP_MS) break;
    await sleep(TAIL_POLL_MS);
  }
  const tEnd = mono();
  const snap1 = cpuSnap(fleet.pids);
  await fleet.stop();
  const done = JOBS - left;
  const fields = {
    system, mode, clients: conc, jobs: done, capped: left > 0 ? 1 : 0,
    seconds: ((tEnd - tEnq) / 1000).toFixed(3),
    jobs_per_s: (done / ((tEnd - tEnq) / 1000)).toFixed(1),
    enqueue_ms: (enqMs ?? (tEnq - t0)).toFixed(0),
    polls,
    ...cpuUse(snap0, snap1, done),
  };
  if (system === 'trace') {
    await sleep(600);   // backends flush their function statistics as they exit
    const calls = (await claimCalls(c)) - claimsBefore;
    const done = await c.query(`SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS ok,
                                       count(*)::int AS n FROM trace.task_done`);
    const ev = await c.query('SELECT count(*)::int AS n FROM trace.event');
    Object.assign(fields, { claim_calls: calls, succeeded: done.rows[0].ok, events: ev.rows[0].n });
  }
  await c.end();
  out(fields);
}

async function claimCalls(c) {
  const r = await c.query(`SELECT coalesce(sum(calls), 0)::bigint AS n FROM pg_stat_user_functions
                           WHERE schemaname = 'trace' AND funcname = 'claim_tasks'`);
  return Number(r.rows[0].n);
}

// ---- wake-up latency -----------------------------------------------------------------

async function latency(system) {
  startWallClock();
  const c = await client();
  const conc = 4;
  let fleet = null;
  let boss = null;
  const handled = new Map();
  let consumer = null;
  if (system === 'pgq') {
    await pgqDrain(c);
    await c.query(`SELECT pgq.set_queue_config('bench', 'ticker_max_lag', '0')`);
    const cc = await client();
    let running = true;
    consumer = {
      loop: (async () => {
        while (running) {
          const n = await pgqPass(cc, (e) => {
            const t = wallClock();
            handled.set(JSON.parse(e.ev_data).k, t);
          });
          if (n < 0) await sleep(PGQ_POLL_MS);
        }
        await cc.end();
      })(),
      stop() { running = false; return this.loop; },
    };
    await c.query('TRUNCATE public.wake_mark');
  } else {
    await reset(c, system);
    fleet = await startFleet(system, 'plain', conc, true);
  }
  if (system === 'pgboss') {
    const { PgBoss } = await import('pg-boss');
    boss = new PgBoss({ ...connOpts(), max: 2, supervise: false, schedule: false, migrate: false });
    boss.on('error', (e) => console.error('pg-boss:', e.message));
    await boss.start();
  }
  await sleep(1000);   // idle
  const lsnap0 = cpuSnap(fleet ? fleet.pids : []);
  const acks = new Map();
  const start = mono();
  for (let k = 0; k < SAMPLES; k++) {
    const due = start + k * GAP_MS;
    const wait = due - mono();
    if (wait > 0) await sleep(wait);
    await enqueueOne(c, system, k, boss, acks);
  }
  // Wait for the last ones (at most 5 s).
  const deadline = mono() + 5000;
  const count = async () => {
    if (system === 'trace') {
      return (await c.query(`SELECT count(*)::int AS n FROM trace.event WHERE dataset_id = 'bench.wake'`)).rows[0].n;
    }
    return fleet ? fleet.handled.length : handled.size;
  };
  while ((await count()) < SAMPLES && mono() < deadline) await sleep(20);
  const luse = cpuUse(lsnap0, cpuSnap(fleet ? fleet.pids : []), SAMPLES);
  if (fleet) await fleet.stop();
  if (consumer) await consumer.stop();
  if (boss) await boss.stop({ graceful: false, wait: true });
  if (fleet) for (const h of fleet.handled) handled.set(h.k, h.t);
  const marks = await c.query(`SELECT k, extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000 AS t
                               FROM public.wake_mark`);
  let claimLat = [];
  if (system === 'trace') {
    const ev = await c.query(`SELECT partition_key::int AS k, extract(epoch FROM created_at) * 1000 AS t
                              FROM trace.event WHERE dataset_id = 'bench.wake'`);
    for (const r of ev.rows) handled.set(r.k, Number(r.t));
    const st = await c.query(`SELECT (payload->>'k')::int AS k, extract(epoch FROM started_at) * 1000 AS t
                              FROM trace.task_done`);
    const started = new Map(st.rows.map((r) => [r.k, Number(r.t)]));
    for (const m of marks.rows) {
      if (started.has(m.k)) claimLat.push(started.get(m.k) - Number(m.t));
    }
  }
  if (system === 'pgq') {
    await c.query(`SELECT pgq.set_queue_config('bench', 'ticker_max_lag', '3 seconds')`);
  }
  const lat = [];
  const ackLat = [];
  for (const m of marks.rows) {
    if (!handled.has(m.k)) continue;
    lat.push(handled.get(m.k) - Number(m.t));
    if (acks.has(m.k)) ackLat.push(handled.get(m.k) - acks.get(m.k));
  }
  lat.sort((a, b) => a - b);
  ackLat.sort((a, b) => a - b);
  claimLat.sort((a, b) => a - b);
  await c.end();
  const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  out({
    system, samples: lat.length, missed: SAMPLES - lat.length, gap_ms: GAP_MS,
    p50_ms: f(pct(lat, 0.5)), p99_ms: f(pct(lat, 0.99)), max_ms: f(lat[lat.length - 1]),
    min_ms: f(lat[0]),
    ack_p50_ms: f(pct(ackLat, 0.5)), ack_p99_ms: f(pct(ackLat, 0.99)),
    others_pct: luse.others_pct,
    claim_p50_ms: f(pct(claimLat, 0.5)), claim_p99_ms: f(pct(claimLat, 0.99)),
  });
}

// ---- main ---------------------------------------------------------------------------

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'setup') await setup();
  else if (cmd === 'throughput') await throughput(args[0], args[1], Number(args[2]));
  else if (cmd === 'latency') await latency(args[0]);
  else if (cmd === 'worker') await workerMain(args[0], JSON.parse(args[1]));
  else { console.error('usage: bench.mjs setup | throughput SYSTEM MODE C | latency SYSTEM'); process.exit(2); }
} catch (e) {
  console.error(`bench.mjs ${cmd} ${args.join(' ')}: ${e.stack || e}`);
  for (const kid of allKids) if (kid.exitCode === null) kid.kill('SIGKILL');
  process.exit(1);
}
if (cmd !== 'worker') process.exit(0);
