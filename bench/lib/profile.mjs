// Summarises a V8 .cpuprofile (node --cpu-prof): where the samples fell, by function (self time)
// and by package, so a report can say what a process spent its CPU on.
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { ROOT, round } from './common.mjs';

const maps = new Map();
/** dist/x.js:line → src/x.ts:line through the compiler's source map, when there is one. */
function original(file, line, column) {
  if (!maps.has(file)) {
    let map;
    try {
      const raw = JSON.parse(fs.readFileSync(`${file}.map`, 'utf8'));
      map = { map: new SourceMap(raw), dir: path.dirname(file) };
    } catch {
      map = undefined;
    }
    maps.set(file, map);
  }
  const m = maps.get(file);
  const entry = m?.map.findEntry(line, column);
  if (!entry?.originalSource) return undefined;
  const source = entry.originalSource.startsWith('file://')
    ? entry.originalSource.slice(7)
    : path.resolve(m.dir, entry.originalSource);
  return `${path.relative(ROOT, source)}:${entry.originalLine + 1}`;
}

function location(url) {
  if (!url) return '';
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  if (nm !== -1) return file.slice(nm + 'node_modules/'.length);
  return path.relative(ROOT, file);
}

/** The package (or our workspace / node internals) a frame belongs to. */
function owner(frame) {
  const { functionName, url } = frame;
  if (!url) {
    if (/^\((idle|program|garbage collector|root)\)$/.test(functionName)) return functionName;
    return '(native)';
  }
  if (url.startsWith('node:')) return 'node internals';
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = file.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const rel = path.relative(ROOT, file);
  return rel
    .split('/')
    .slice(0, rel.startsWith('services/') ? 2 : 1)
    .join('/');
}

/**
 * Self time per function and per package, and inclusive time of our own functions (workspace code),
 * in ms and % of the window. `window` ({fromUs, toUs}, CLOCK_MONOTONIC µs as process.hrtime gives
 * them, which is also V8's profile clock on Linux) keeps only the samples taken under load. `busy`
 * excludes (idle): the share of one core the process actually used.
 */
export function summariseProfile(file, { top = 15, window } = {}) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let t = profile.startTime;
  let first;
  let last;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    first ??= t;
    last = t;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = window && first !== undefined ? last - first : profile.endTime - profile.startTime;
  const keyOf = (callFrame) => {
    if (!callFrame.url) return callFrame.functionName || '(anonymous)';
    const file = callFrame.url.replace(/^file:\/\//, '');
    const src = file.includes('node_modules/')
      ? undefined
      : original(file, callFrame.lineNumber, callFrame.columnNumber);
    return `${callFrame.functionName || '(anonymous)'} ${src ?? `${location(callFrame.url)}:${callFrame.lineNumber + 1}`}`;
  };
  const fns = new Map();
  const pkgs = new Map();
  const inclusive = new Map();
  const site = new Map();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id);
    if (callFrame.functionName === '(idle)') idleUs += us;
    // Who to blame: the innermost frame of our own code on the stack (the call site that led to the
    // library work), else the innermost library package, else the V8 category.
    let blame;
    let lib;
    for (let cur = id; cur !== undefined && !blame; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      const o = owner(cf);
      if (o.startsWith('services/') || o === 'gateway' || o === 'bench' || o === 'protos') blame = keyOf(cf);
      else if (!lib && cf.url && o !== 'node internals') lib = `(library) ${o}`;
    }
    blame ??=
      lib ?? (callFrame.url ? '(node internals, no library frame)' : callFrame.functionName || '(native)');
    site.set(blame, (site.get(blame) ?? 0) + us);
    fns.set(keyOf(callFrame), (fns.get(keyOf(callFrame)) ?? 0) + us);
    const pkg = owner(callFrame);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
    // Inclusive time of workspace functions (and a few library entry points) on this stack, once each.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      const o = owner(cf);
      if (!(
        o.startsWith('services/') ||
        o === 'gateway' ||
        o === 'bench' ||
        INTERESTING.test(cf.functionName)
      ))
        continue;
      const key = keyOf(cf);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const pct = (us) => round((100 * us) / totalUs, 1);
  const list = (m, n = top) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: round(us / 1000, 0), pct: pct(us) }));
  return {
    file: path.relative(ROOT, file),
    wall_ms: round(totalUs / 1000, 0),
    busy_pct: pct(totalUs - idleUs),
    top_functions: list(fns),
    by_package: list(pkgs),
    inclusive: list(inclusive, top),
    by_call_site: list(site, top),
  };
}

// Library functions worth an inclusive figure: logging, metrics, gRPC calls, Redis, pg, serialisation.
const INTERESTING =
  /^(makeUnaryRequest|sendUnaryMessage|write|info|asJson|observe|inc|evalsha|eval|sendCommand|query|serializeMessage|deserializeMessage|encode|decode|stringify|json|send|handle)$/;

/** The newest .cpuprofile in dir. */
export function newestProfile(dir) {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return files[0];
}

export function printProfile(name, s, out = console.log) {
  out(`\n  ${name}: ${s.busy_pct}% of ${s.wall_ms} ms busy (${s.file})`);
  out(
    `    by package: ${s.by_package
      .slice(0, 10)
      .map((p) => `${p.name} ${p.pct}%`)
      .join(', ')}`,
  );
  out('    top self time:');
  for (const f of s.top_functions.slice(0, 12)) out(`      ${String(f.pct).padStart(5)}%  ${f.name}`);
  if (s.by_call_site?.length) {
    out('    self time by call site (innermost frame of our code on the stack):');
    for (const f of s.by_call_site.slice(0, 14)) out(`      ${String(f.pct).padStart(5)}%  ${f.name}`);
  }
  if (s.inclusive?.length) {
    out('    inclusive (our code and a few library entry points):');
    for (const f of s.inclusive.slice(0, 14)) out(`      ${String(f.pct).padStart(5)}%  ${f.name}`);
  }
}
