// Validates rendered Kubernetes manifests offline, twice over:
//  1. kubernetes-models: each object against the Kubernetes OpenAPI schema of its kind (types,
//     required fields, enums, formats);
//  2. kubernetes-types through tsc: each object as a typed literal, so a field the Kubernetes API
//     does not have (a typo, a field at the wrong level) is an error too (the schema validators
//     of step 1 accept unknown fields).
// Usage: node infra/ops/kubernetes-validate.mjs rendered.yaml… ; exits 1 listing every problem.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { parseAllDocuments } from 'yaml';

const require = createRequire(import.meta.url);
const problems = [];
const typed = [];
let count = 0;

for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
    const obj = doc.toJS();
    if (!obj) continue;
    count++;
    const where = `${path.basename(file)}: ${obj.kind}/${obj.metadata?.name}`;
    const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
    const modulePath = group
      ? `kubernetes-models/${group}/${version}/${obj.kind}`
      : `kubernetes-models/${version}/${obj.kind}`;
    let Model;
    try {
      Model = (await import(modulePath))[obj.kind];
    } catch {
      problems.push(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (err) {
      problems.push(`${where}: ${err.message}`);
    }
    const typesModule = group
      ? `kubernetes-types/${group.replace(/\.k8s\.io$/, '')}/${version}`
      : `kubernetes-types/core/${version}`;
    typed.push(
      `// ${where}\nexport const o${typed.length}: import('${typesModule}').${obj.kind} = ${JSON.stringify(obj, null, 1)};\n`,
    );
  }
}

// tsc on the typed literals: excess property checks reject unknown fields.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-k8s-'));
try {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  fs.writeFileSync(path.join(dir, 'objects.ts'), typed.join('\n'));
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        module: 'commonjs',
        moduleResolution: 'node',
        typeRoots: [],
        types: [],
        baseUrl: root,
        paths: { 'kubernetes-types/*': [path.join(root, 'node_modules', 'kubernetes-types', '*')] },
      },
      files: ['objects.ts'],
    }),
  );
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], {
    encoding: 'utf8',
  });
  if (tsc.status !== 0) problems.push(`unknown or mistyped fields:\n${tsc.stdout}${tsc.stderr}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`${count} objects valid`);
