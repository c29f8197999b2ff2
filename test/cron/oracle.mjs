// Independent oracles for trace.cron_next (test/cron/run.sh drives this).
//
//   node oracle.mjs cases NODE_MODULES SEED N   > cases.tsv
//       id, expression, zone, after (ISO, UTC): N generated cases, plus the
//       fixed ones below; deterministic for a seed.
//   node oracle.mjs sequences NODE_MODULES SEED N > seqs.tsv
//       id, expression, zone, start, steps: chains of fire times across
//       offset changes (each slot once: none lost, none repeated).
//   node oracle.mjs compare NODE_MODULES cases.tsv trace.tsv seqs.tsv trace_seqs.tsv
//       compares Trace's answers with three oracles; prints "ok"/"not ok"
//       lines and the disagreements.
//
// The oracles:
//   model       Trace's documented rules (docs/dags.md), written here from
//               the rules, not from cron.c: the expression parsed by croner's
//               CronPattern, the zone's offsets from ICU (Intl), every local
//               slot mapped to its instant (a repeated local time to its
//               second occurrence, a skipped one as far past the transition
//               as it was meant to be past the time the clocks jumped from),
//               and the earliest instant after `after` over a window a day
//               longer than any jump.  Compared on every case, no exclusion.
//   croner      croner 11 (sloppyRanges, so a/n reads a-max/n as in Trace;
//               in day-of-week it stops at 6, so there it is given a-7/n).
//   cron-parser cron-parser 5.
// croner and cron-parser differ from Trace's documented rules near a change
// of the zone's UTC offset, by design:
//   - a repeated local time: both fire at its first occurrence (croner also
//     at both for patterns that are not one fixed time); Trace fires once,
//     at the second;
//   - a skipped local time: croner skips it (patterns that are not one fixed
//     time) or fires at the transition (fixed times); cron-parser moves it
//     one hour forward whatever the jump (wrong for Lord Howe's 30 minutes
//     and Troll's 2 hours); Trace moves it by the jump.
// So they are compared only on cases whose span, from a day before `after`
// to a day after the later answer, holds no offset change of the zone; the
// others are counted and left to the model.  cron-parser also gives up on
// some sparse expressions ("loop limit exceeded") and refuses a day-of-week
// naming Sunday as both 0 and 7 (0,7 or 0-7/2, which Trace and croner
// accept); those are counted and left to the other two.  It lacks
// @midnight, so it is given @daily, the same schedule.  No other case is
// excluded.
import { createRequire } from 'module';
import fs from 'fs';
import path from 'path';

const [mode, modules, ...args] = process.argv.slice(2);
const require = createRequire(path.resolve(modules) + '/');
const { Cron, CronPattern } = require('croner');
const { CronExpressionParser } = require('cron-parser');

const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const ZONES = ['Australia/Lord_Howe', 'Pacific/Chatham', 'Antarctica/Troll', 'America/New_York',
  'Europe/London', 'Asia/Kolkata', 'UTC', 'Australia/Adelaide', 'America/St_Johns',
  'Europe/Berlin', 'Asia/Kathmandu', 'America/Santiago'];
const SCAN_FROM = Date.UTC(2022, 0, 1), SCAN_TO = Date.UTC(2042, 0, 1);

// --- the zone's offsets, from ICU -------------------------------------------
const fmt = new Map();
function icuOffset(zone, ms) {         // minutes east of UTC at instant ms
  let f = fmt.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric',
      month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    fmt.set(zone, f);
  }
  const p = {};
  for (const x of f.formatToParts(new Date(ms))) p[x.type] = +x.value;
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return Math.round((wall - Math.floor(ms / 1000) * 1000) / MIN);
}

// Every offset change of a zone in [SCAN_FROM, SCAN_TO): {at, before, after}
// (minutes), found by sampling every 3 hours and bisecting to the second.
const transitions = new Map();
function zoneTransitions(zone) {
  if (transitions.has(zone)) return transitions.get(zone);
  const out = [];
  let t = SCAN_FROM, off = icuOffset(zone, t);
  for (let u = t + 3 * HOUR; u < SCAN_TO; t = u, u += 3 * HOUR) {
    const o = icuOffset(zone, u);
    if (o === off) continue;
    let lo = t, hi = u;                // offset(lo) = off, offset(hi) = o
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (icuOffset(zone, mid) === off) lo = mid; else hi = mid;
    }
    out.push({ at: hi, before: off, after: o });
    off = o;
  }
  transitions.set(zone, { list: out, first: icuOffset(zone, SCAN_FROM) });
  return transitions.get(zone);
}
function offsetAt(zone, ms) {
  const { list, first } = zoneTransitions(zone);
  let lo = 0, hi = list.length;        // first transition with at > ms
  while (lo < hi) { const m = (lo + hi) >> 1; if (list[m].at > ms) hi = m; else lo = m + 1; }
  return lo === 0 ? first : list[lo - 1].after;
}
function changeWithin(zone, from, to) {
  return zoneTransitions(zone).list.some((x) => x.at >= from && x.at <= to);
}

// The instant a local wall-clock time (as ms on a naive UTC axis) stands
// for under Trace's rules.
function localToInstant(zone, local) {
  const offs = new Set([offsetAt(zone, local - 30 * HOUR)]);
  for (const x of zoneTransitions(zone).list)
    if (x.at > local - 30 * HOUR && x.at < local + 30 * HOUR) offs.add(x.after);
  const real = [...offs].map((o) => local - o * MIN).filter((t) => offsetAt(zone, t) * MIN === local - t);
  if (real.length) return Math.max(...real);      // once, or the second occurrence
  for (const x of zoneTransitions(zone).list)     // skipped: the offset before the jump
    if (local >= x.at + x.before * MIN && local < x.at + x.after * MIN) return local - x.before * MIN;
  throw new Error(`no instant for local ${new Date(local).toISOString()} in ${zone}`);
}

// --- the model of Trace's rules ----------------------------------------------
// a/n means a-max/n in every field (docs/dags.md); max is 7 in day-of-week,
// where 7 is Sunday too.  Written out as a range for croner's parser.
const FIELD_MAX = [59, 23, 31, 12, 7];
function stepsAsRanges(expr, fields = [0, 1, 2, 3, 4]) {
  if (expr.startsWith('@')) return expr;
  return expr.split(' ').map((f, i) => (!fields.includes(i) ? f
    : f.split(',').map((part) => part.replace(/^(\d+)\/(\d+)$/, `$1-${FIELD_MAX[i]}/$2`)).join(','))).join(' ');
}
function dayMatches(p, y, m, d, dow) {
  if (!p.month[m - 1]) return false;
  const dom = !!p.day[d - 1], wd = !!p.dayOfWeek[dow];
  return !p.starDOM && !p.starDOW ? dom || wd : dom && wd;
}
function modelNext(expr, zone, after) {
  const p = new CronPattern(stepsAsRanges(expr), undefined);
  const off = offsetAt(zone, after);
  const la = new Date(after + off * MIN);
  let day = Date.UTC(la.getUTCFullYear(), la.getUTCMonth(), la.getUTCDate()) - DAY;
  let best = null, limit = Infinity;
  for (let i = 0; i < 366 * 8 + 2 && day <= limit; i++, day += DAY) {
    const dt = new Date(day);
    if (!dayMatches(p, dt.getUTCFullYear(), dt.getUTCMonth() + 1, dt.getUTCDate(), dt.getUTCDay())) continue;
    for (let h = 0; h < 24; h++) {
      if (!p.hour[h]) continue;
      for (let mi = 0; mi < 60; mi++) {
        if (!p.minute[mi]) continue;
        const local = day + h * HOUR + mi * MIN;
        if (local > limit) return best;
        const at = localToInstant(zone, local);
        if (at > after && (best === null || at < best)) {
          if (best === null) limit = local + 26 * HOUR;   // longer than any jump
          best = at;
        }
      }
    }
  }
  return best;
}

// --- the two libraries -------------------------------------------------------
// croner reads a/n in day-of-week only up to 6 (1/6 is Monday alone; Trace,
// cronie and cron-parser read 1-7/6, Monday and Sunday): that field is given
// to it as a range.
function cronerNext(expr, zone, after) {
  const c = new Cron(stepsAsRanges(expr, [4]), { timezone: zone, paused: true, sloppyRanges: true });
  const d = c.nextRun(new Date(after));
  return d ? d.getTime() : null;
}
// cron-parser's answer, or a string saying why it has none that matters.
function cronParserNext(expr, zone, after) {
  try {
    // it lacks the @midnight alias of @daily
    const it = CronExpressionParser.parse(expr === '@midnight' ? '@daily' : expr,
      { currentDate: new Date(after), tz: zone });
    return it.next().toDate().getTime();
  } catch (e) {
    const msg = String(e);
    if (/Invalid explicit day of month/i.test(msg)) return null;      // "0 0 31 2 *": never
    if (/loop limit exceeded/i.test(msg)) return 'gives up (its loop limit)';
    if (/DayOfWeek Validation error, duplicate values found: 0/.test(msg))
      return 'refuses Sunday as both 0 and 7';
    throw e;
  }
}

// --- generating cases --------------------------------------------------------
function rng(seed) {                   // xorshift32, deterministic
  let x = seed >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
  next.int = (a, b) => a + Math.floor(next() * (b - a + 1));
  next.pick = (a) => a[Math.floor(next() * a.length)];
  return next;
}
function field(r, lo, hi, names) {
  const v = () => r.int(lo, hi);
  const span = hi - lo + 1;
  const step = () => r.int(2, Math.max(2, Math.min(span - 1, 30)));
  const forms = [
    () => '*', () => `*/${step()}`, () => `${v()}`,
    () => { const a = v(), b = v(); return a === b ? `${a}` : `${Math.min(a, b)},${Math.max(a, b)}`; },
    () => { const a = v(), b = v(); return `${Math.min(a, b)}-${Math.max(a, b)}`; },
    () => { const a = r.int(lo, hi - 1); return `${a}-${r.int(a + 1, hi)}/${step()}`; },
    () => `${v()}/${step()}`,
  ];
  if (names) forms.push(() => r.pick(names));
  return r.pick(forms)();
}
function expression(r, nearChange) {
  if (r() < 0.04) return r.pick(['@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly']);
  const minute = r() < 0.3 ? r.pick(['0', '30', '10,35', '15,45', '*', '*/5', '5/15', '45', '59'])
    : field(r, 0, 59);
  const hour = r() < 0.5 ? r.pick(['*', '0', '1', '2', '3', '1,2', '2,3', '1-3', '0-4', '2/1', '*/2'])
    : field(r, 0, 23);
  if (nearChange && r() < 0.7) return `${minute} ${hour} * * *`;
  const dom = r() < 0.65 ? '*' : r() < 0.3 ? r.pick(['29', '31', '30', '1,15', '28-31']) : field(r, 1, 31);
  const month = r() < 0.7 ? '*' : field(r, 1, 12, ['jan-mar', 'feb', 'oct,nov', 'mar-oct', 'dec']);
  const dow = r() < 0.7 ? '*' : field(r, 0, 7, ['mon-fri', 'sun', 'sat,sun', 'wed', 'mon-sat']);
  return `${minute} ${hour} ${dom} ${month} ${dow}`;
}
const FIXED = [                        // the cases, and leap days
  ['10,35 2 * * *', 'Australia/Lord_Howe', '2025-10-04T15:29:00Z'],
  ['* 2,3 * * *', 'Antarctica/Troll', '2026-03-29T00:30:00Z'],
  ['* 2,3 * * *', 'Antarctica/Troll', '2026-03-29T01:59:00Z'],
  ['30 2 * * *', 'Pacific/Chatham', '2025-09-27T12:00:00Z'],
  ['0 12 29 2 *', 'UTC', '2025-03-01T00:00:00Z'],
  ['0 0 29 2 mon', 'Asia/Kolkata', '2024-02-27T00:00:00Z'],
  ['*/30 * 29 2 *', 'Australia/Lord_Howe', '2028-02-28T12:00:00Z'],
  ['0 0 31 2 *', 'UTC', '2026-01-01T00:00:00Z'],
];
function genCases(seed, n) {
  const r = rng(seed);
  const rows = FIXED.map(([e, z, a], i) => [`f${i}`, e, z, a]);
  for (let i = 0; i < n; i++) {
    const zone = r.pick(ZONES);
    const changes = zoneTransitions(zone).list.filter((x) => x.at >= Date.UTC(2024, 0, 1) && x.at < Date.UTC(2031, 0, 1));
    let after, near = false;
    const k = r();
    if (k < 0.5 && changes.length) {
      after = r.pick(changes).at + r.int(-30 * 60, 4 * 60) * MIN;
      near = true;
    } else if (k < 0.6) {
      after = Date.UTC(r.pick([2024, 2025, 2027, 2028]), 1, r.int(26, 29), r.int(0, 23), r.int(0, 59));
    } else {
      after = Date.UTC(2024, 0, 1) + Math.floor(r() * 7 * 365) * DAY + r.int(0, 1439) * MIN;
    }
    if (r() < 0.2) after += r.int(1, 59) * 1000;
    rows.push([`g${i}`, expression(r, near), zone, new Date(after).toISOString()]);
  }
  return rows;
}
function genSequences(seed, n) {
  const r = rng(seed ^ 0x5bd1e995);
  const rows = [['s-troll', '* 2,3 * * *', 'Antarctica/Troll', '2026-03-29T00:00:00Z', 130],
    ['s-lordhowe', '10,35 2 * * *', 'Australia/Lord_Howe', '2025-10-04T15:00:00Z', 4]];
  for (let i = 0; i < n; i++) {
    const zone = r.pick(ZONES.filter((z) => zoneTransitions(z).list.length));
    const x = r.pick(zoneTransitions(zone).list.filter((t) => t.at >= Date.UTC(2024, 0, 1) && t.at < Date.UTC(2031, 0, 1)));
    const minute = r.pick(['*/10', '0,30', '10,35', '15,45', '*/15', '5/20', '0']);
    const hour = r.pick(['*', '0-5', '1,2,3', '2', '1-3']);
    rows.push([`s${i}`, `${minute} ${hour} * * *`, zone, new Date(x.at - r.int(2, 20) * HOUR).toISOString(), 40]);
  }
  return rows;
}

// --- comparing ---------------------------------------------------------------
const readTsv = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
const iso = (t) => (t === null ? 'never' : new Date(t).toISOString().replace('.000Z', 'Z'));
const parseTrace = (s) => (s === '' || s === '\\N' ? null : Date.parse(s));

function compare(casesFile, traceFile, seqFile, traceSeqFile) {
  const trace = new Map(readTsv(traceFile).map(([id, t]) => [id, parseTrace(t)]));
  const stats = { cases: 0, model: 0, croner: 0, cronParser: 0, nearChange: 0 };
  const skipped = {};                  // why cron-parser has no answer -> count
  const bad = { model: [], croner: [], cronParser: [] };
  for (const [id, expr, zone, afterIso] of readTsv(casesFile)) {
    const after = Date.parse(afterIso);
    if (!trace.has(id)) { bad.model.push(`${id}: no answer from Trace`); continue; }
    const t = trace.get(id);
    const m = modelNext(expr, zone, after);
    const c = cronerNext(expr, zone, after);
    const p = cronParserNext(expr, zone, after);
    const desc = `${id} '${expr}' ${zone} after ${afterIso}: trace ${iso(t)}`;
    stats.cases++;
    stats.model++;
    if (t !== m) bad.model.push(`${desc}, model ${iso(m)}`);
    const latest = Math.max(...[t, c, p, m].filter((x) => typeof x === 'number'), after);
    if (changeWithin(zone, after - DAY, latest + DAY)) { stats.nearChange++; continue; }
    stats.croner++;
    if (t !== c) bad.croner.push(`${desc}, croner ${iso(c)}`);
    if (typeof p === 'string') { skipped[p] = (skipped[p] || 0) + 1; continue; }
    stats.cronParser++;
    if (t !== p) bad.cronParser.push(`${desc}, cron-parser ${iso(p)}`);
  }
  const traceSeq = new Map(readTsv(traceSeqFile).map(([id, list]) => [id, list]));
  let seqs = 0, steps = 0;
  const badSeq = [];
  for (const [id, expr, zone, start, n] of readTsv(seqFile)) {
    const want = [];
    let t = Date.parse(start);
    for (let i = 0; i < +n; i++) { t = modelNext(expr, zone, t); if (t === null) break; want.push(iso(t)); }
    const got = (traceSeq.get(id) || '').split(',').filter(Boolean).map((s) => iso(parseTrace(s)));
    seqs++; steps += want.length;
    if (got.join(',') !== want.join(',')) {
      const k = want.findIndex((w, i) => got[i] !== w);
      badSeq.push(`${id} '${expr}' ${zone} from ${start}: step ${k + 1}: trace ${got[k]}, model ${want[k]}`);
    }
  }
  const report = (name, n, list) => {
    console.log(`${list.length ? 'not ok' : 'ok'} - trace.cron_next agrees with ${name} on ${n - list.length} of ${n} cases`);
    const show = +(process.env.ORACLE_SHOW || 15);
    for (const l of list.slice(0, show)) console.log(`#   ${l}`);
    if (list.length > show) console.log(`#   ... and ${list.length - show} more`);
  };
  report('the model of the documented rules', stats.model, bad.model);
  report('croner (cases away from offset changes)', stats.croner, bad.croner);
  report('cron-parser (cases away from offset changes)', stats.cronParser, bad.cronParser);
  report('the model, slot after slot across offset changes', seqs, badSeq);
  console.log(`# ${stats.cases} cases, ${stats.nearChange} near an offset change (model only); `
    + `${seqs} sequences, ${steps} fire times`);
  for (const [why, n] of Object.entries(skipped)) console.log(`# cron-parser ${why}: ${n} cases (croner and the model only)`);
  return bad.model.length + bad.croner.length + bad.cronParser.length + badSeq.length;
}

const out = (rows) => process.stdout.write(rows.map((r) => r.join('\t')).join('\n') + '\n');
if (mode === 'cases') out(genCases(+args[0], +args[1]));
else if (mode === 'sequences') out(genSequences(+args[0], +args[1]));
else if (mode === 'compare') process.exitCode = compare(...args) ? 1 : 0;
else { console.error('usage: oracle.mjs cases|sequences|compare NODE_MODULES ...'); process.exitCode = 2; }
