// readers.mjs: reads every file pqconf wrote with three independent Parquet
// readers from npm and compares them row by row with the source rows:
//   DuckDB (@duckdb/node-api), hyparquet (+ hyparquet-compressors for zstd),
//   parquet-wasm (arrow-rs, decoded through apache-arrow's IPC reader).
// Also checks, through DuckDB: the column types it infers, the statistics of
// every row group and column (parquet_metadata()), the key-value metadata
// (parquet_kv_metadata()), and the documented uint256 expressions.
//
//   node readers.mjs DIR        (run from a directory whose node_modules
//                                holds the packages; prints ok / not ok lines)
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import * as pw from 'parquet-wasm/node';
import { tableFromIPC } from 'apache-arrow';

const dir = process.argv[2];
let failures = 0;
const ok = (m) => console.log(`ok - ${m}`);
const notOk = (m, detail) => { failures++; console.log(`not ok - ${m}`); if (detail) console.log(`#   ${String(detail).slice(0, 600)}`); };

// The uint256 expressions docs/cold-storage.md gives (tested here).
const U256_MACROS = `
CREATE MACRO trace_u256(b) AS
  CASE WHEN substr(hex(b), 1, 32) = '00000000000000000000000000000000'
       THEN from_hex(substr(hex(b), 33, 32))::BIT::UHUGEINT END;
CREATE MACRO trace_u256_double(b) AS
  from_hex(substr(hex(b), 1, 32))::BIT::UHUGEINT::DOUBLE * pow(2.0, 128)
  + from_hex(substr(hex(b), 33, 32))::BIT::UHUGEINT::DOUBLE;`;

const hex = (u8) => Buffer.from(u8.buffer ? Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength) : u8).toString('hex');

// Canonical form of a source value (from the JSONL) and of a reader's value.
function canonSource(type, v) {
  if (v === null) return null;
  switch (type) {
    case 'bool': return v ? 'true' : 'false';
    case 'int16': case 'int32': return String(v);
    case 'int64': case 'timestamptz': return String(v);
    case 'float64': return canonDouble(typeof v === 'string' ? ({ NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity })[v] : v);
    case 'json': return JSON.stringify(JSON.parse(v));
    default: return v;         // string, numeric: text; bytes, fixed, uint256: hex
  }
}
function canonDouble(d) {
  if (Number.isNaN(d)) return 'NaN';
  if (Object.is(d, -0)) return '-0';
  return String(d);
}
function canonReader(type, v) {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'bool': return typeof v === 'string' ? v : v ? 'true' : 'false';
    case 'float64': return typeof v === 'string' ? v : canonDouble(Number(v));
    // text from DuckDB and arrow; hyparquet's parsed value comes wrapped
    case 'json': return typeof v === 'string' ? JSON.stringify(JSON.parse(v)) : JSON.stringify(v.parsed);
    case 'bytes': case 'fixed': case 'uint256':
      return typeof v === 'string' ? v : hex(v);
    default: return typeof v === 'bigint' ? v.toString() : String(v);
  }
}

function compareRows(reader, file, schema, source, got) {
  if (got.length !== source.length) {
    notOk(`${reader}: ${file}`, `${got.length} rows, expected ${source.length}`);
    return;
  }
  for (let i = 0; i < source.length; i++) {
    for (const c of schema.columns) {
      const want = canonSource(c.type, source[i][c.name]);
      const have = canonReader(c.type, got[i][c.name]);
      if (want !== have) {
        notOk(`${reader}: ${file}`, `row ${i} column ${c.name} (${c.type}): got ${have}, expected ${want}`);
        return;
      }
    }
  }
  ok(`${reader}: ${file} (${source.length} rows, ${schema.columns.length} columns)`);
}

// ------------------------------------------------------------------ DuckDB
const duckTypes = {
  bool: 'BOOLEAN', int16: 'SMALLINT', int32: 'INTEGER', int64: 'BIGINT', float64: 'DOUBLE',
  timestamptz: 'TIMESTAMP WITH TIME ZONE', string: 'VARCHAR', numeric: 'VARCHAR', json: 'JSON',
  bytes: 'BLOB', fixed: 'BLOB', uint256: 'BLOB',
};
function duckExpr(c) {
  const q = `"${c.name}"`;
  switch (c.type) {
    case 'timestamptz': return `epoch_us(${q})::VARCHAR`;
    case 'float64': return `CASE WHEN isnan(${q}) THEN 'NaN' WHEN ${q} = 'inf'::DOUBLE THEN 'Infinity' WHEN ${q} = '-inf'::DOUBLE THEN '-Infinity' ELSE ${q}::VARCHAR END`;
    case 'bytes': case 'fixed': case 'uint256': return `lower(hex(${q}))`;
    default: return `${q}::VARCHAR`;
  }
}
function duckCanon(type, v) {
  if (v === null) return null;
  if (type === 'float64') return ({ NaN: 'NaN', Infinity: 'Infinity', '-Infinity': '-Infinity' })[v] ?? canonDouble(Number(v));
  if (type === 'json') return JSON.stringify(JSON.parse(v));
  return v;
}
// DuckDB renders BLOB (and non-UTF-8) statistics with \xHH escapes.
function parseRendering(s) {
  const out = [];
  for (let i = 0; i < s.length;) {
    if (s[i] === '\\' && s[i + 1] === 'x' && /^[0-9A-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      out.push(parseInt(s.slice(i + 2, i + 4), 16)); i += 4;
    } else {
      const cp = s.codePointAt(i); const ch = String.fromCodePoint(cp);
      out.push(...Buffer.from(ch, 'utf8')); i += ch.length;
    }
  }
  return Buffer.from(out);
}
function le(type, v) {
  // PLAIN bytes of a source value, for the statistics comparison
  switch (type) {
    case 'string': case 'numeric': case 'json': return Buffer.from(v, 'utf8');
    default: return Buffer.from(v, 'hex');
  }
}

async function duck(con, file, schema, source) {
  const f = path.join(dir, `${file}.parquet`);
  // types
  const desc = (await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${f}')`)).getRowsJson();
  for (const c of schema.columns) {
    const d = desc.find((r) => r[0] === c.name);
    if (!d || d[1] !== duckTypes[c.type]) { notOk(`duckdb: ${file} types`, `${c.name}: ${d && d[1]}, expected ${duckTypes[c.type]}`); return; }
  }
  ok(`duckdb: ${file} column types`);
  // rows
  const sel = schema.columns.map((c) => `${duckExpr(c)} AS "${c.name}"`).join(', ');
  const rows = (await con.runAndReadAll(`SELECT ${sel} FROM read_parquet('${f}')`)).getRowObjectsJson();
  const got = rows.map((r) => Object.fromEntries(schema.columns.map((c) => [c.name, duckCanon(c.type, r[c.name])])));
  compareRows('duckdb', file, schema, source, got);
  // uint256 as numbers
  for (const c of schema.columns.filter((c) => c.type === 'uint256')) {
    const r = (await con.runAndReadAll(`SELECT trace_u256("${c.name}")::VARCHAR AS e, trace_u256_double("${c.name}") AS d FROM read_parquet('${f}')`)).getRowObjectsJson();
    let bad = null;
    source.forEach((s, i) => {
      if (bad || s[c.name] === null) return;
      const n = BigInt('0x' + s[c.name]);
      const exact = n < (1n << 128n) ? n.toString() : null;
      if (r[i].e !== exact) bad = `row ${i}: trace_u256 ${r[i].e}, expected ${exact}`;
      const d = Number(r[i].d), want = Number(n);
      if (Math.abs(d - want) > Math.abs(want) * 1e-15) bad = `row ${i}: trace_u256_double ${d}, expected ${want}`;
    });
    if (bad) notOk(`duckdb: ${file} uint256 expressions on ${c.name}`, bad);
    else ok(`duckdb: ${file} trace_u256() exact below 2^128 and trace_u256_double() on ${c.name}`);
  }
  // key-value metadata
  const kv = Object.fromEntries((await con.runAndReadAll(`SELECT decode(key), decode(value) FROM parquet_kv_metadata('${f}')`)).getRowsJson());
  const types = schema.columns.map((c) => c.type).join(' ');
  const kvBad = Object.entries(schema.kv).find(([k, v]) => kv[k] !== v) || (kv['trace.column_types'] !== types && ['trace.column_types', kv['trace.column_types']]);
  if (kvBad) notOk(`duckdb: ${file} key-value metadata`, JSON.stringify(kvBad)); else ok(`duckdb: ${file} key-value metadata`);
  // statistics of every row group and column
  const meta = (await con.runAndReadAll(`SELECT row_group_id, column_id, row_group_num_rows, stats_null_count, stats_min_value, stats_max_value, path_in_schema FROM parquet_metadata('${f}') ORDER BY row_group_id, column_id`)).getRowsJson();
  let start = 0, lastGroup = -1, checked = 0, bad = null;
  for (const [g, col, nrows, nullCount, min, max, name] of meta) {
    if (bad) break;
    if (Number(g) !== lastGroup) { if (lastGroup >= 0) start += prevRows; lastGroup = Number(g); }
    var prevRows = Number(nrows);
    const c = schema.columns[Number(col)];
    if (c.name !== name) { bad = `column ${col} is ${name}`; break; }
    const vals = source.slice(start, start + Number(nrows)).map((r) => r[c.name]);
    const nonNull = vals.filter((v) => v !== null);
    if (Number(nullCount) !== vals.length - nonNull.length) { bad = `${name} rg ${g}: null_count ${nullCount}`; break; }
    checked++;
    if (nonNull.length === 0) { if (min !== null || max !== null) bad = `${name} rg ${g}: bounds on an all-null chunk`; continue; }
    if (c.type === 'float64') {
      const nums = nonNull.map((v) => Number(v)).filter((x) => !Number.isNaN(x));
      const lo = Math.min(...nums), hi = Math.max(...nums);
      if (!Number.isFinite(lo) || !Number.isFinite(hi)) continue;   // DuckDB shows no infinite float bounds
      if (Number(min) !== lo || Number(max) !== hi) bad = `${name} rg ${g}: ${min}..${max}, expected ${lo}..${hi}`;
      continue;
    }
    if (['bool', 'int16', 'int32', 'int64'].includes(c.type)) {
      const big = nonNull.map((v) => c.type === 'bool' ? BigInt(v ? 1 : 0) : BigInt(v));
      const lo = big.reduce((a, b) => (b < a ? b : a)), hi = big.reduce((a, b) => (b > a ? b : a));
      const show = (x) => c.type === 'bool' ? (x ? 'true' : 'false') : x.toString();
      if (min !== show(lo) || max !== show(hi)) bad = `${name} rg ${g}: ${min}..${max}, expected ${show(lo)}..${show(hi)}`;
      continue;
    }
    if (c.type === 'timestamptz') {
      const r = (await con.runAndReadAll(`SELECT epoch_us('${min}'::TIMESTAMPTZ)::VARCHAR, epoch_us('${max}'::TIMESTAMPTZ)::VARCHAR`)).getRowsJson()[0];
      const big = nonNull.map((v) => BigInt(v));
      const lo = big.reduce((a, b) => (b < a ? b : a)), hi = big.reduce((a, b) => (b > a ? b : a));
      if (r[0] !== lo.toString() || r[1] !== hi.toString()) bad = `${name} rg ${g}: ${r[0]}..${r[1]}, expected ${lo}..${hi}`;
      continue;
    }
    // byte arrays: unsigned byte order; long bounds may be truncated
    const bufs = nonNull.map((v) => le(c.type, v));
    const lo = bufs.reduce((a, b) => (Buffer.compare(b, a) < 0 ? b : a));
    const hi = bufs.reduce((a, b) => (Buffer.compare(b, a) > 0 ? b : a));
    const text = ['string', 'numeric', 'json'].includes(c.type);
    const smin = min === null ? null : text && !min.includes('\\x') ? Buffer.from(min, 'utf8') : parseRendering(min);
    const smax = max === null ? null : text && !max.includes('\\x') ? Buffer.from(max, 'utf8') : parseRendering(max);
    if (smin === null || !(smin.equals(lo) || (Buffer.compare(smin, lo) < 0 && lo.subarray(0, smin.length).equals(smin)))) {
      bad = `${name} rg ${g}: min ${min} is not ${lo.toString('hex')} nor a prefix of it`; continue;
    }
    if (smax === null) {
      if (!hi.subarray(0, 16).every((b) => b === 0xff)) bad = `${name} rg ${g}: no max`;
      continue;
    }
    if (!(smax.equals(hi) || (Buffer.compare(smax, hi) > 0 && smax.length <= 65))) bad = `${name} rg ${g}: max ${max} below ${hi.toString('hex')}`;
  }
  if (bad) notOk(`duckdb: ${file} statistics (parquet_metadata)`, bad);
  else ok(`duckdb: ${file} statistics of ${checked} column chunks match the rows`);
}

// ---------------------------------------------------------------- hyparquet
async function hyp(file, schema, source) {
  const buf = fs.readFileSync(path.join(dir, `${file}.parquet`));
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const rows = await parquetReadObjects({
    file: ab, compressors, utf8: false,
    parsers: {
      timestampFromMilliseconds: (v) => v, timestampFromMicroseconds: (v) => v, timestampFromNanoseconds: (v) => v,
      dateFromDays: (v) => v, stringFromBytes: (b) => b && new TextDecoder().decode(b), jsonFromBytes: (b) => b && { parsed: JSON.parse(new TextDecoder().decode(b)) },
      geometryFromBytes: (b) => b, geographyFromBytes: (b) => b, uuidFromBytes: (b) => b,
    },
  });
  compareRows('hyparquet', file, schema, source, rows);
}

// ------------------------------------------------------------- parquet-wasm
function arrowColumn(vec, type, n) {
  const out = new Array(n);
  let i = 0;
  for (const data of vec.data) {
    for (let k = 0; k < data.length; k++, i++) {
      const valid = !data.nullBitmap || data.nullBitmap.length === 0 ||
        (data.nullBitmap[(data.offset + k) >> 3] >> ((data.offset + k) & 7)) & 1;
      if (!valid) { out[i] = null; continue; }
      if (type === 'timestamptz') out[i] = data.values[data.offset + k];        // raw int64 microseconds
      else out[i] = vec.get(i);
    }
  }
  return out;
}
function wasm(file, schema, source) {
  const buf = fs.readFileSync(path.join(dir, `${file}.parquet`));
  const t = tableFromIPC(pw.readParquet(new Uint8Array(buf)).intoIPCStream());
  const cols = Object.fromEntries(schema.columns.map((c) => {
    const v = t.getChild(c.name);
    if (!v && t.numRows > 0) throw new Error(`no column ${c.name}`);
    return [c.name, v ? arrowColumn(v, c.type, t.numRows) : []];
  }));
  const rows = Array.from({ length: t.numRows }, (_, i) => Object.fromEntries(schema.columns.map((c) => [c.name, cols[c.name][i]])));
  compareRows('parquet-wasm', file, schema, source, rows);
}

// ---------------------------------------------------------------------------
const files = fs.readdirSync(dir).filter((n) => n.endsWith('.schema.json')).map((n) => n.replace('.schema.json', '')).sort();
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
await con.run(U256_MACROS);
for (const file of files) {
  const schema = JSON.parse(fs.readFileSync(path.join(dir, `${file}.schema.json`), 'utf8'));
  const source = fs.readFileSync(path.join(dir, `${file}.jsonl`), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  for (const [name, fn] of [['duckdb', () => duck(con, file, schema, source)], ['hyparquet', () => hyp(file, schema, source)], ['parquet-wasm', () => wasm(file, schema, source)]]) {
    try { await fn(); } catch (e) { notOk(`${name}: ${file}`, e.stack || e); }
  }
}
console.log(`# ${files.length} files, ${failures} failures`);
process.exit(failures ? 1 : 0);
