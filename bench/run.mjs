#!/usr/bin/env node
// `make bench [NAME=api]`, `npm run bench -- [api|train|outputs|scale]`, `node bench/run.mjs [NAME]`:
// runs the benchmarks (all, or the one named) one after another, each on a stack it starts and
// stops itself, prints a table and writes bench/results/<name>.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESULTS_DIR, commit, log, machine, now, round } from './lib/common.mjs';

const BENCHMARKS = ['api', 'train', 'outputs', 'scale', 'callbacks'];

// The AWS SDK announces, on every load, that it will need Node 22 in 2027: not a benchmark figure.
const emitWarning = process.emitWarning;
process.emitWarning = (warning, ...rest) => {
  if (/AWS SDK for JavaScript \(v3\)/.test(String(warning?.message ?? warning))) return;
  return emitWarning.call(process, warning, ...rest);
};

const fmt = (v) =>
  v === '' || v === undefined || v === null ? '' : typeof v === 'boolean' ? (v ? 'yes' : 'NO') : String(v);

function printTable(rows) {
  const head = ['benchmark', 'figure', 'value', 'baseline', 'ratio', 'target', 'met'];
  const body = rows.map((r) => [r.bench, r.figure, r.value, r.baseline, r.ratio, r.target, r.met].map(fmt));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells) =>
    cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of body) console.log(line(r));
}

async function main() {
  const wanted = process.argv[2] || process.env.NAME || '';
  const names = wanted ? [wanted] : BENCHMARKS;
  for (const n of names) {
    if (!BENCHMARKS.includes(n)) {
      console.error(`unknown benchmark "${n}"; one of: ${BENCHMARKS.join(', ')}`);
      process.exit(2);
    }
  }
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const rows = [];
  const failed = [];
  const info = { machine: machine(), commit: commit() };
  for (const name of names) {
    const mod = await import(`./${name}.mjs`);
    log(`${name}: starting`);
    const loadavg = os.loadavg().map((x) => round(x, 2));
    const started = now();
    let result;
    try {
      result = await mod.run();
    } catch (err) {
      log(`${name}: FAILED: ${err instanceof Error ? err.stack : err}`);
      failed.push(name);
      continue;
    }
    const seconds = round((now() - started) / 1000, 0);
    const record = {
      name,
      figures: result.figures,
      baseline: result.baseline,
      ratio: result.ratio,
      target: result.target,
      met: result.met,
      ...(result.details ? { details: result.details } : {}),
      ...(result.profiles ? { profiles: result.profiles } : {}),
      notes: result.notes ?? [],
      seconds,
      ...info,
      loadavg_at_start: loadavg,
      date: new Date().toISOString(),
    };
    const file = path.join(RESULTS_DIR, `${name}.json`);
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
    fs.renameSync(`${file}.tmp`, file);
    for (const row of result.table) rows.push({ bench: name, ...row });
    log(`${name}: done in ${seconds} s → ${path.relative(process.cwd(), file)}`);
    printTable(result.table.map((r) => ({ bench: name, ...r })));
    for (const note of result.notes ?? []) console.log(`  ${note}`);
    mod.report?.(result);
  }
  if (names.length > 1 && rows.length) {
    console.log(
      `\nAll benchmarks (${info.machine.cpus} × ${info.machine.model}, ${info.machine.memory}, node ${info.machine.node}, commit ${info.commit.slice(0, 12)})`,
    );
    printTable(rows);
  }
  if (failed.length) {
    console.error(`\nfailed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
