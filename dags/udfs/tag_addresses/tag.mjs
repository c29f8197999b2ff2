// Tag addresses from a list (a Trace UDF in TypeScript, shipped as .mjs).
//
// Job (runtime lambda):
//   operator: udf
//   runtime: lambda
//   config:
//     language: typescript
//     entrypoint: tag_addresses/tag.mjs
//     timeout: 20s
//   outputs: [labels.address_tags]        # the rows go to the job's output
//
// Task payload: {"partition": "2024-05-01", "addresses": ["0x...", ...],
//                "labels": "tag_addresses/labels.json"}   (labels: optional;
// the list is a file in the UDF directory)
// Output: one row {address, tag, category} per listed address found, and an
// event for the partition; untagged addresses are counted in the result.
//
// The list is read from /udf (the UDF directory, read-only in the sandbox);
// the UDF has no network.  Types: see ../sdk/typescript/trace_udf.d.ts
// (Node 20 runs .mjs; the logic is plain TypeScript-compatible JavaScript).
import { readFileSync } from 'node:fs';
import { run, Fatal } from '../sdk/typescript/trace_udf.mjs';

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** label file: [{"address": "0x..", "tag": "..", "category": ".."}] -> Map */
function loadLabels(path) {
  const list = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(list)) throw new Fatal(`${path}: expected a JSON array`);
  const byAddress = new Map();
  for (const e of list) {
    if (!ADDRESS.test(e.address ?? '')) throw new Fatal(`${path}: bad address ${JSON.stringify(e.address)}`);
    byAddress.set(e.address.toLowerCase(), { tag: String(e.tag), category: String(e.category ?? 'other') });
  }
  return byAddress;
}

run(async (task, out) => {
  const { partition, addresses } = task.payload ?? {};
  if (typeof partition !== 'string' || !Array.isArray(addresses)) {
    throw new Fatal('payload needs "partition" (string) and "addresses" (array)');
  }
  const labelsFile = task.payload.labels ?? 'tag_addresses/labels.json';
  if (typeof labelsFile !== 'string' || labelsFile.includes('..')) throw new Fatal('bad "labels" path');
  const labels = loadLabels('/udf/' + labelsFile);
  const dataset = task.outputs?.[0] ?? 'labels.address_tags';
  const seen = new Set();
  let tagged = 0;
  let untagged = 0;
  for (const raw of addresses) {
    if (typeof raw !== 'string' || !ADDRESS.test(raw)) throw new Fatal(`not an address: ${JSON.stringify(raw)}`);
    const address = raw.toLowerCase();
    if (seen.has(address)) continue;   // one row per address
    seen.add(address);
    const label = labels.get(address);
    if (!label) {
      untagged++;
      continue;
    }
    out.row(dataset, partition, { address, tag: label.tag, category: label.category });
    tagged++;
  }
  out.event(dataset, partition, { rows: tagged });
  out.log('info', `partition ${partition}: ${tagged} tagged, ${untagged} untagged`);
  return { tagged, untagged };
});
