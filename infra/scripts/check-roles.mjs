#!/usr/bin/env node
// The closed role vocabulary of CONVENTIONS.md, checked by `make lint`: every file under
// services/<service>/src is `<resource>.<role>.ts` with a role from ROLES, in the folder that
// role belongs to, or one of the few wiring files in ALLOWED. The kit is the shared skeleton
// (store, claim loop, entry point…), named by concept, so it is not checked; the gateway keeps
// its own layout (routes/v1/<resource>.ts, middleware/…), but a role it does name must be one of
// ours.
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const ROLES = {
  service: 'domain',
  rules: 'domain',
  model: 'domain',
  job: 'domain',
  repository: 'repositories',
  client: 'clients',
  handlers: 'grpc',
  mappers: 'grpc',
};
// Paths relative to services/<service>/src: the process entry, its wiring, its config, the
// metrics wrappers app.ts applies, the ops CLI, the domain's ports, and barrels.
const ALLOWED = [
  /^main\.ts$/,
  /^app\.ts$/,
  /^config\.ts$/,
  /^metrics\.ts$/,
  /^admin\/cli\.ts$/,
  /^domain\/ports\.ts$/,
  /^([a-z-]+\/)?index\.ts$/,
];
const NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*\.([a-z]+)\.ts$/;
const vocabulary = Object.keys(ROLES).join(', ');

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

const problems = [];
const services = readdirSync(join(ROOT, 'services'), { withFileTypes: true })
  .filter((e) => e.isDirectory() && e.name !== 'kit')
  .map((e) => e.name);
for (const service of services) {
  const src = join(ROOT, 'services', service, 'src');
  for (const file of walk(src)) {
    const rel = relative(src, file);
    if (ALLOWED.some((re) => re.test(rel))) continue;
    const shown = relative(ROOT, file);
    const m = NAME.exec(rel.split('/').pop());
    if (!m) {
      problems.push(`${shown}: not <resource>.<role>.ts (roles: ${vocabulary})`);
    } else if (!(m[1] in ROLES)) {
      problems.push(`${shown}: role '${m[1]}' is not in the vocabulary (${vocabulary})`);
    } else if (rel.split('/')[0] !== ROLES[m[1]] || rel.split('/').length !== 2) {
      problems.push(`${shown}: a ${m[1]} file lives in src/${ROLES[m[1]]}/`);
    }
  }
}
for (const file of walk(join(ROOT, 'gateway', 'src'))) {
  const m = /\.([a-z]+)\.ts$/.exec(file);
  if (m && !(m[1] in ROLES))
    problems.push(`${relative(ROOT, file)}: role '${m[1]}' is not in the vocabulary (${vocabulary})`);
}

if (problems.length) {
  console.error('Closed role vocabulary (CONVENTIONS.md): rename or fold these files.');
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
