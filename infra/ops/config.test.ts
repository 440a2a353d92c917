/* eslint-disable @typescript-eslint/no-explicit-any -- rendered Kubernetes objects are untyped JSON */
/**
 * Operations checks: the compose file, the image recipe, Prometheus, Alertmanager and Grafana
 * configuration, the container healthcheck — checked without a Docker engine.
 *
 * Not a jest test: `make ops` runs it with node's test runner after infra/ops/tools.sh has
 * installed docker-compose, promtool, amtool and kubectl (each only when missing), so no test
 * installs system packages. Whether the metrics and label values that alerts and panels name
 * really exist is checked on a real scrape of the mesh (gateway/test/scrape.test.ts).
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules, createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { before, describe, it } from 'node:test';
import { expect } from 'expect';
import type { z } from 'zod';

import { billingConfigSchema } from '@atelier/billing';
import { imagerConfigSchema } from '@atelier/imager';
import { inferencerConfigSchema } from '@atelier/inferencer';
import { trainerConfigSchema } from '@atelier/trainer';
import { gatewayConfigSchema } from '@atelier/gateway';
import { resolveMigrations } from '../migrate/runner';
import { processEnv, readEnvFile } from '../stack/mesh-env';
import { repoRoot } from '../stack/repo-root';
import {
  allPanels,
  alertRules,
  dashboardQueries,
  dashboards,
  grafanaToPromql,
  promqlMetricNames,
} from './promql';

const ROOT = repoRoot(__dirname);
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const ENV_EXAMPLE = path.join(ROOT, '.env.example');
const PROM_DIR = path.join(ROOT, 'infra', 'prometheus');
const GRAFANA_DIR = path.join(ROOT, 'infra', 'grafana');
const ALERTMANAGER_DIR = path.join(ROOT, 'infra', 'alertmanager');
const DOCKER_DIR = path.join(ROOT, 'infra', 'docker');
const OPERATIONS_DOC = path.join(ROOT, 'docs', 'operations.md');

/** The processes of the image, with their config schema. */
const PROCESSES = {
  gateway: gatewayConfigSchema,
  billing: billingConfigSchema,
  imager: imagerConfigSchema,
  trainer: trainerConfigSchema,
  inferencer: inferencerConfigSchema,
} as const;
type ProcessName = keyof typeof PROCESSES;
const PROCESS_NAMES = Object.keys(PROCESSES) as ProcessName[];
const GRPC_SERVICES = PROCESS_NAMES.filter((p) => p !== 'gateway');
/** Workspaces whose code runs in the image (infra/ is the dev and test stack). */
const RUNTIME_WORKSPACES = [
  'protos',
  'services/kit',
  'services/billing',
  'services/imager',
  'services/trainer',
  'services/inferencer',
  'gateway',
];

// ---------------------------------------------------------------------------------------------
// tools

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, cmd);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A tool infra/ops/tools.sh installs (`make ops-tools`); this file installs nothing. */
function tool(name: string): string {
  const found = which(name);
  if (!found)
    throw new Error(
      `${name} is not on PATH: run the ops checks with \`make ops\` (infra/ops/tools.sh installs it)`,
    );
  return found;
}

// ---------------------------------------------------------------------------------------------
// parsing helpers

const localRequire = createRequire(__filename);

/** YAML → JS with whichever parser is installed (yaml, js-yaml), else the python3 that docker-compose brings. */
function parseYaml(text: string): unknown {
  try {
    const yaml = localRequire('yaml') as { parse(s: string, o?: object): unknown };
    return yaml.parse(text, { merge: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
  }
  try {
    const jsYaml = localRequire('js-yaml') as { load(s: string): unknown };
    return jsYaml.load(text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
  }
  const py = run(
    'python3',
    ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { input: text },
  );
  if (py.status !== 0)
    throw new Error(`no YAML parser available (yaml, js-yaml, python3-yaml): ${py.stderr}`);
  return JSON.parse(py.stdout);
}

const readYaml = (file: string) => parseYaml(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;

/** KEY=value and commented-out `# KEY=value` lines of an env example. */
function envExampleEntries(file: string): Map<string, { value: string; commented: boolean }> {
  const entries = new Map<string, { value: string; commented: boolean }>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(# )?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) entries.set(m[2]!, { value: m[3]!, commented: Boolean(m[1]) });
  }
  return entries;
}

function listFiles(dir: string, accept: (file: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist' && entry.name !== 'test')
        out.push(...listFiles(full, accept));
    } else if (accept(full)) out.push(full);
  }
  return out;
}

/** TypeScript sources that run in production: services/*\/src, gateway/src, protos/gen (no tests, no .d.ts). */
function runtimeSources(): string[] {
  const isSource = (f: string) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts');
  const serviceDirs = fs
    .readdirSync(path.join(ROOT, 'services'))
    .map((s) => path.join(ROOT, 'services', s, 'src'));
  return [...serviceDirs, path.join(ROOT, 'gateway', 'src'), path.join(ROOT, 'protos', 'gen')].flatMap((d) =>
    listFiles(d, isSource),
  );
}

type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

/** Metrics the code declares (`new Counter({ name: 'atelier_…' …` and friends), with their help text. */
function declaredMetrics(): Map<string, { type: MetricType; help: string; file: string }> {
  const metrics = new Map<string, { type: MetricType; help: string; file: string }>();
  const decl =
    /new\s+(Counter|Gauge|Histogram|Summary)\s*(?:<[^>]*>)?\s*\(\s*\{\s*name:\s*['"`]([a-zA-Z_:][a-zA-Z0-9_:]*)['"`](?:\s*,\s*help:\s*['"`]([^'"`]*)['"`])?/g;
  const anyName = /\bname:\s*['"`](atelier_[a-z0-9_]+)['"`]/g;
  for (const file of runtimeSources().filter(
    (f) => !f.includes(`${path.sep}protos${path.sep}gen${path.sep}`),
  )) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(decl))
      metrics.set(m[2]!, { type: m[1]!.toLowerCase() as MetricType, help: m[3] ?? '', file });
    for (const m of text.matchAll(anyName))
      if (!metrics.has(m[1]!)) metrics.set(m[1]!, { type: 'untyped', help: '', file });
  }
  return metrics;
}

/** Series names a metric of each type exposes. */
function seriesNames(name: string, type: string): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

// ---------------------------------------------------------------------------------------------
// compose

type ComposeService = {
  image?: string;
  build?: unknown;
  environment?: Record<string, string | null>;
  healthcheck?: { test?: unknown; disable?: boolean };
  depends_on?: Record<string, { condition?: string }>;
  deploy?: {
    replicas?: number;
    resources?: { limits?: { memory?: string | number; cpus?: string | number } };
  };
  profiles?: string[];
  entrypoint?: unknown;
  ports?: unknown[];
  volumes?: unknown[];
  restart?: string;
  container_name?: string;
  command?: unknown;
};

/** Values for the secrets .env.example leaves empty, so the file can be validated as an operator would fill it. */
function exampleSecrets(): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const [key, { value, commented }] of envExampleEntries(ENV_EXAMPLE))
    if (!commented && value === '')
      secrets[key] = key.endsWith('_URL')
        ? `https://hooks.example.com/${key.toLowerCase()}`
        : `test-${key.toLowerCase()}`;
  return secrets;
}

/** An environment without the caller's own compose variables (a real .env or exported secrets must not help). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? os.tmpdir(),
    LANG: 'C.UTF-8',
  };
  return { ...env, ...extra };
}

describe('operations', () => {
  let dockerCompose: string;
  let promtool: string;
  let compose: { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };

  before(() => {
    dockerCompose = tool('docker-compose');
    promtool = tool('promtool');
    const result = run(dockerCompose, ['--env-file', ENV_EXAMPLE, '-f', COMPOSE_FILE, 'config'], {
      env: cleanEnv(exampleSecrets()),
    });
    if (result.status !== 0) throw new Error(`docker-compose config failed:\n${result.stderr}`);
    compose = parseYaml(result.stdout) as typeof compose;
  });

  describe('docker-compose.yml', () => {
    it('validates with docker-compose config -q, filled in as .env.example says', () => {
      const result = run(dockerCompose, ['--env-file', ENV_EXAMPLE, '-f', COMPOSE_FILE, 'config', '-q'], {
        env: cleanEnv(exampleSecrets()),
      });
      expect({ status: result.status, stderr: result.stderr.trim() }).toEqual({ status: 0, stderr: '' });
    });

    it('refuses to start while a secret is still empty', () => {
      const secrets = exampleSecrets();
      expect(Object.keys(secrets)).toEqual(
        expect.arrayContaining([
          'POSTGRES_PASSWORD',
          'REDIS_PASSWORD',
          'STRIPE_SECRET_KEY',
          'REPLICATE_API_TOKEN',
          'GRAFANA_ADMIN_PASSWORD',
        ]),
      );
      // MinIO is optional (the `minio` profile): its own start refuses an empty root password,
      // so compose can validate a stack on AWS S3 that sets no MinIO variable.
      expect(secrets).toHaveProperty('MINIO_ROOT_PASSWORD');
      const minioStart = JSON.stringify(compose.services.minio!.command);
      expect(minioStart).toContain('[ -n \\"$$MINIO_ROOT_PASSWORD\\" ]');
      expect(minioStart).toContain('set MINIO_ROOT_PASSWORD in .env');
      for (const key of Object.keys(secrets).filter((k) => k !== 'MINIO_ROOT_PASSWORD')) {
        const { [key]: _left, ...others } = secrets;
        const result = run(dockerCompose, ['--env-file', ENV_EXAMPLE, '-f', COMPOSE_FILE, 'config', '-q'], {
          env: cleanEnv(others),
        });
        expect({ key, status: result.status }).toEqual({ key, status: 1 });
        expect(result.stderr).toContain(`set ${key} in .env`);
      }
    });

    it('documents every variable it reads in .env.example', () => {
      const text = fs.readFileSync(COMPOSE_FILE, 'utf8');
      const used = new Set([...text.matchAll(/(?<!\$)\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
      const documented = new Set(envExampleEntries(ENV_EXAMPLE).keys());
      expect([...used].filter((v) => !documented.has(v))).toEqual([]);
    });

    it('gives every long-running service a healthcheck; one-shots are waited for until they complete', () => {
      const services = compose.services;
      const awaitedOneShots = new Set(
        Object.values(services).flatMap((s) =>
          Object.entries(s.depends_on ?? {})
            .filter(([, d]) => d.condition === 'service_completed_successfully')
            .map(([name]) => name),
        ),
      );
      expect([...awaitedOneShots].sort()).toEqual(['db-roles', 'flyway']);
      const oneShots = Object.keys(services).filter((name) => services[name]!.restart === 'no');
      expect(oneShots.sort()).toEqual(['db-roles', 'flyway', 'minio-init']);
      const missing: string[] = [];
      for (const [name, service] of Object.entries(services)) {
        if (oneShots.includes(name)) {
          expect({ name, restart: service.restart }).toEqual({ name, restart: 'no' });
          continue;
        }
        const test = service.healthcheck?.test;
        if (service.healthcheck?.disable || !Array.isArray(test) || test.length < 2 || test[0] === 'NONE')
          missing.push(name);
      }
      expect(missing).toEqual([]);
    });

    it('runs migrations with the official Flyway image before any service starts', () => {
      const flyway = compose.services.flyway!;
      expect(flyway.image).toMatch(/^flyway\/flyway:/);
      expect(flyway.command).toEqual(['migrate']);
      const mounts = (flyway.volumes ?? []).map(String);
      expect(mounts).toEqual(
        expect.arrayContaining([`${ROOT}/flyway/sql:/flyway/sql:ro`, `${ROOT}/flyway/conf:/flyway/conf:ro`]),
      );
      // Whoever reads the database waits for the migrations.
      for (const name of PROCESS_NAMES) {
        const schema = PROCESSES[name] as unknown as z.ZodObject<Record<string, z.ZodType>>;
        if (!('DATABASE_URL' in schema.shape)) continue;
        expect({
          name,
          flyway: compose.services[name]!.depends_on?.flyway?.condition,
          roles: compose.services[name]!.depends_on?.['db-roles']?.condition,
        }).toEqual({
          name,
          flyway: 'service_completed_successfully',
          roles: 'service_completed_successfully',
        });
        // Its own login role (infra/postgres/login-roles.sql), never the owner Flyway uses.
        const url = new URL(String(compose.services[name]!.environment!.DATABASE_URL));
        expect({ name, user: url.username }).toEqual({ name, user: name });
      }
      // The local runner (infra/migrate) and Flyway must keep one history table: Flyway's defaults.
      const toml = fs.readFileSync(path.join(ROOT, 'flyway', 'conf', 'flyway.toml'), 'utf8');
      expect(toml).toMatch(/locations\s*=\s*\[\s*"filesystem:\/flyway\/sql"\s*\]/);
      expect(toml).not.toMatch(/^\s*(schemas|defaultSchema|table)\s*=/m);
    });

    it('runs every gRPC service replicated on one image, unpublished, and publishes only the gateway', () => {
      const image = compose.services.gateway!.image;
      for (const name of PROCESS_NAMES) {
        const s = compose.services[name]!;
        expect({ name, image: s.image, build: Boolean(s.build), container_name: s.container_name }).toEqual({
          name,
          image,
          build: true,
          container_name: undefined,
        });
      }
      for (const name of GRPC_SERVICES) {
        const s = compose.services[name]!;
        expect({ name, replicas: Number(s.deploy?.replicas) >= 2, ports: s.ports }).toEqual({
          name,
          replicas: true,
          ports: undefined,
        });
      }
      expect(compose.services.gateway!.ports).toHaveLength(1);
    });

    it('runs every image at a pinned tag, never latest; the Atelier image at ATELIER_VERSION', () => {
      const tagOf = (image: string) =>
        /^(?:[^/]+\/)*[^/:@]+(?::([^/:@]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(image)?.[1];
      for (const [name, s] of Object.entries(compose.services)) {
        const tag = s.image ? tagOf(s.image) : undefined;
        expect({ name, image: s.image, pinned: Boolean(tag) && tag !== 'latest' }).toEqual({
          name,
          image: s.image,
          pinned: true,
        });
      }
      // A release sets the version; compose then runs (and builds) exactly that tag.
      const release = run(dockerCompose, ['--env-file', ENV_EXAMPLE, '-f', COMPOSE_FILE, 'config'], {
        env: cleanEnv({
          ...exampleSecrets(),
          ATELIER_IMAGE: 'registry.example.com/atelier',
          ATELIER_VERSION: '1.4.0',
        }),
      });
      expect(release.status).toBe(0);
      const services = (parseYaml(release.stdout) as typeof compose).services;
      for (const name of PROCESS_NAMES)
        expect({ name, image: services[name]!.image }).toEqual({
          name,
          image: 'registry.example.com/atelier:1.4.0',
        });
    });

    it('lets .env set every setting a process reads, except the addresses and ports it fixes', () => {
      // Set every variable to the value its infra/env example shows (or suggests, when commented
      // out) and check each arrives, unchanged, in the environment of every process that reads it.
      const fixed = (key: string) =>
        /_ADDR$|_HOST$|_PORT$/.test(key) || ['DATABASE_URL', 'REDIS_URL', 'PUBLIC_WEBHOOK_URL'].includes(key);
      const settings = new Map<string, string>();
      for (const name of PROCESS_NAMES) {
        const schema = PROCESSES[name] as unknown as z.ZodObject<Record<string, z.ZodType>>;
        const entries = envExampleEntries(path.join(ROOT, 'infra', 'env', `${name}.env.example`));
        for (const key of Object.keys(schema.shape).filter((k) => !fixed(k)))
          if (!settings.has(key)) settings.set(key, entries.get(key)?.value ?? '');
      }
      const envFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-env-')), '.env');
      fs.writeFileSync(
        envFile,
        `${fs.readFileSync(ENV_EXAMPLE, 'utf8')}\n${[...settings].map(([k, v]) => `${k}=${v}`).join('\n')}\n`,
      );
      // The secrets come from the environment, as the other checks pass them; it wins over the file.
      const secrets = exampleSecrets();
      const result = run(dockerCompose, ['--env-file', envFile, '-f', COMPOSE_FILE, 'config'], {
        env: cleanEnv(secrets),
      });
      expect({ status: result.status, stderr: result.stderr.trim() }).toEqual({ status: 0, stderr: '' });
      const all = parseYaml(result.stdout) as typeof compose;
      const unreachable: string[] = [];
      for (const name of PROCESS_NAMES) {
        const schema = PROCESSES[name] as unknown as z.ZodObject<Record<string, z.ZodType>>;
        const env = all.services[name]!.environment ?? {};
        for (const key of Object.keys(schema.shape).filter((k) => !fixed(k)))
          if (String(env[key]) !== (secrets[key] ?? settings.get(key)))
            unreachable.push(`${name} ${key}=${String(env[key])}`);
        const parsed = schema.safeParse(
          Object.fromEntries(Object.entries(env).filter(([, v]) => v !== null && v !== '')),
        );
        expect({
          name,
          issues: parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
        }).toEqual({
          name,
          issues: undefined,
        });
      }
      expect(unreachable).toEqual([]);
    });

    it('caps the memory and CPU of every container, each settable from .env', () => {
      const text = fs.readFileSync(COMPOSE_FILE, 'utf8');
      const uncapped: string[] = [];
      for (const [name, service] of Object.entries(compose.services)) {
        const limits = service.deploy?.resources?.limits;
        if (!limits?.memory || !limits.cpus) uncapped.push(name);
        const variable = name.toUpperCase().replaceAll('-', '_');
        for (const what of ['MEMORY', 'CPUS'])
          if (!text.includes(`\${${variable}_${what}:-`)) uncapped.push(`${name}: no ${variable}_${what}`);
      }
      expect(uncapped).toEqual([]);
      // .env.example shows the defaults the file falls back to.
      const example = envExampleEntries(ENV_EXAMPLE);
      const differ = [...text.matchAll(/\$\{([A-Z_]+_(?:MEMORY|CPUS)):-([^}]+)\}/g)]
        .filter((m) => example.get(m[1]!)?.value !== m[2])
        .map((m) => `${m[1]}: ${m[2]} here, ${example.get(m[1]!)?.value} in .env.example`);
      expect(differ).toEqual([]);
    });

    it('gives the imager room for the measured peak of an upload plus a second upload decoding', () => {
      const bench = JSON.parse(
        fs.readFileSync(path.join(ROOT, 'bench', 'results', 'train.json'), 'utf8'),
      ) as {
        figures: { rss_mib: { peak: { imager: number } } };
      };
      const mib = (v: string | number | undefined) => {
        const m = /^(\d+(?:\.\d+)?)([KMG])?i?B?$/i.exec(String(v));
        if (!m) throw new Error(`memory limit ${String(v)}`);
        return Number(m[1]) * ({ K: 1 / 1024, M: 1, G: 1024 }[(m[2] ?? 'M').toUpperCase()] ?? 1);
      };
      const limit = mib(compose.services.imager!.deploy?.resources?.limits?.memory);
      const budget = imagerConfigSchema.shape.IMAGER_DECODE_BUDGET_MIB.parse(undefined);
      expect({ limit, enough: limit >= bench.figures.rss_mib.peak.imager + budget }).toEqual({
        limit,
        enough: true,
      });
    });

    it('expires noncurrent bucket versions after BUCKET_NONCURRENT_DAYS, set at bucket setup', () => {
      const script = path.join(ROOT, 'infra', 'bucket', 'lifecycle.sh');
      const lifecycle = (days?: string) =>
        run('sh', [script], { env: cleanEnv(days === undefined ? {} : { BUCKET_NONCURRENT_DAYS: days }) });
      const rules = (out: string) =>
        (JSON.parse(out) as { Rules: Array<Record<string, any>> }).Rules.map((r) => ({
          status: r.Status,
          prefix: r.Filter?.Prefix,
          days: r.NoncurrentVersionExpiration?.NoncurrentDays,
          current: r.Expiration?.Days ?? r.Expiration?.Date,
        }));
      expect(rules(lifecycle().stdout)).toEqual([
        { status: 'Enabled', prefix: '', days: 30, current: undefined },
      ]);
      expect(rules(lifecycle('7').stdout)[0]!.days).toBe(7);
      for (const bad of ['0', 'x', '-1', '1.5'])
        expect({ bad, status: lifecycle(bad).status }).toEqual({ bad, status: 64 });
      // minio-init imports it from .env's value and checks the rule is there.
      const init = compose.services['minio-init']!;
      expect(JSON.stringify(init.command)).toContain('sh /etc/atelier/bucket/lifecycle.sh | mc ilm import');
      expect((init.volumes ?? []).map(String)).toContain(`${ROOT}/infra/bucket:/etc/atelier/bucket:ro`);
      expect(init.environment?.BUCKET_NONCURRENT_DAYS).toBe(
        envExampleEntries(ENV_EXAMPLE).get('BUCKET_NONCURRENT_DAYS')?.value,
      );
    });

    it('runs the bundled MinIO only with its profile; without S3_ENDPOINT imager talks to AWS S3', () => {
      for (const name of ['minio', 'minio-init'])
        expect({ name, profiles: compose.services[name]!.profiles }).toEqual({ name, profiles: ['minio'] });
      expect(envExampleEntries(ENV_EXAMPLE).get('COMPOSE_PROFILES')?.value).toBe('minio');
      // Nothing outside the profile may wait for it, or a stack without MinIO would not start.
      for (const [name, service] of Object.entries(compose.services))
        if (!service.profiles?.includes('minio'))
          expect({
            name,
            waits: Object.keys(service.depends_on ?? {}).filter((d) => d.startsWith('minio')),
          }).toEqual({
            name,
            waits: [],
          });
      const aws = fs
        .readFileSync(ENV_EXAMPLE, 'utf8')
        .replace(/^COMPOSE_PROFILES=.*$/m, '')
        .replace(/^S3_ENDPOINT=.*$/m, '')
        .replace(/^S3_PRESIGN_ENDPOINT=.*$/m, '')
        .replace(/^MINIO_ROOT_PASSWORD=.*$/m, '');
      const envFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-aws-')), '.env');
      fs.writeFileSync(envFile, aws);
      const { MINIO_ROOT_PASSWORD: _unused, ...secrets } = exampleSecrets();
      const result = run(dockerCompose, ['--env-file', envFile, '-f', COMPOSE_FILE, 'config'], {
        env: cleanEnv(secrets),
      });
      expect({ status: result.status, stderr: result.stderr.trim() }).toEqual({ status: 0, stderr: '' });
      const env = (parseYaml(result.stdout) as typeof compose).services.imager!.environment ?? {};
      expect({
        S3_ENDPOINT: env.S3_ENDPOINT ?? undefined,
        S3_PRESIGN_ENDPOINT: env.S3_PRESIGN_ENDPOINT ?? undefined,
      }).toEqual({
        S3_ENDPOINT: undefined,
        S3_PRESIGN_ENDPOINT: undefined,
      });
      const config = imagerConfigSchema.parse(
        Object.fromEntries(Object.entries(env).filter(([, v]) => v !== null && v !== '')),
      );
      expect(config.S3_ENDPOINT).toBeUndefined();
    });

    for (const name of PROCESS_NAMES)
      it(`gives ${name} an environment its config schema accepts`, () => {
        const schema = PROCESSES[name] as unknown as z.ZodObject<Record<string, z.ZodType>>;
        const raw = compose.services[name]!.environment ?? {};
        const env = Object.fromEntries(
          Object.entries(raw).filter(([, v]) => v !== null && v !== undefined),
        ) as Record<string, string>;
        const parsed = schema.safeParse(env);
        expect(
          parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
        ).toEqual([]);
        expect(env.SERVICE).toBe(name);
        // Listening on loopback inside a container would make it unreachable.
        if (name === 'gateway') expect(env.HTTP_HOST).toBe('0.0.0.0');
        else expect(env.GRPC_HOST).toBe('0.0.0.0');
        // Every *_ADDR names a compose service on the port that service listens on.
        for (const [key, value] of Object.entries(env).filter(([k]) => k.endsWith('_ADDR'))) {
          const target = key.replace(/_ADDR$/, '').toLowerCase();
          const port = compose.services[target]?.environment?.GRPC_PORT;
          expect({ key, value }).toEqual({ key, value: `${target}:${port}` });
        }
      });

    for (const name of PROCESS_NAMES)
      it(`documents every variable of ${name} in its infra/env example`, () => {
        const schema = PROCESSES[name] as unknown as z.ZodObject<Record<string, z.ZodType>>;
        const file = path.join(ROOT, 'infra', 'env', `${name}.env.example`);
        const entries = envExampleEntries(file);
        const keys = Object.keys(schema.shape).sort();
        const where = path.relative(ROOT, file);
        expect({
          [`${where}: undocumented (add them)`]: keys.filter((k) => !entries.has(k)),
          [`${where}: not read by the code (remove them)`]: [...entries.keys()].filter(
            (k) => !keys.includes(k),
          ),
        }).toEqual({
          [`${where}: undocumented (add them)`]: [],
          [`${where}: not read by the code (remove them)`]: [],
        });
        // Required variables are spelled out, not commented out; an optional one that is spelled
        // out shows the code's default; the example as a whole parses.
        const stale: string[] = [];
        for (const key of keys) {
          const field = schema.shape[key]!;
          const fallback = field.safeParse(undefined);
          const entry = entries.get(key)!;
          if (!fallback.success)
            expect({ key, commented: entry.commented }).toEqual({ key, commented: false });
          else if (!entry.commented && fallback.data !== undefined) {
            const shown = field.safeParse(entry.value);
            if (!shown.success || JSON.stringify(shown.data) !== JSON.stringify(fallback.data)) {
              stale.push(`${key}=${entry.value} but the code's default is ${JSON.stringify(fallback.data)}`);
            }
          }
        }
        expect(stale).toEqual([]);
        const env = Object.fromEntries(
          [...entries].filter(([, e]) => !e.commented).map(([k, e]) => [k, e.value]),
        );
        const parsed = schema.safeParse(env);
        expect(
          parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
        ).toEqual([]);
      });
  });

  describe('backups (infra/backup)', () => {
    const BACKUP = path.join(ROOT, 'infra', 'backup', 'backup.sh');
    let work: string;
    let bin: string;
    before(() => {
      // pg_dump and pg_restore stand-ins: this machine's client tools are older than the Postgres
      // the stack runs, and pg_dump refuses a newer server. They record what they were asked.
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-backup-'));
      bin = path.join(work, 'bin');
      fs.mkdirSync(bin);
      fs.writeFileSync(
        path.join(bin, 'pg_dump'),
        '#!/bin/sh\n[ -n "$FAIL_DUMP" ] && { echo "pg_dump: connection refused" >&2; exit 1; }\n' +
          'for a in "$@"; do case "$a" in --file=*) printf "PGDMP %s" "$PGDATABASE" > "${a#--file=}";; esac; done\n',
        { mode: 0o755 },
      );
      fs.writeFileSync(
        path.join(bin, 'pg_restore'),
        '#!/bin/sh\nlast=; for a in "$@"; do last="$a"; done\ngrep -q "^PGDMP" "$last"\n',
        { mode: 0o755 },
      );
    });
    const backup = (dir: string, extra: Record<string, string> = {}) =>
      run('sh', [BACKUP], {
        env: {
          ...cleanEnv(extra),
          PATH: `${bin}:${process.env.PATH}`,
          PGDATABASE: 'atelier',
          BACKUP_DIR: dir,
          BACKUP_TEXTFILE_DIR: work,
        },
      });

    it('keeps a checked dump, prunes those past the retention, and records its success for the alert', () => {
      const dir = path.join(work, 'dumps');
      fs.mkdirSync(dir);
      const old = path.join(dir, 'atelier-20200101T000000Z.dump');
      const recent = path.join(dir, 'atelier-20991231T000000Z.dump');
      fs.writeFileSync(old, 'PGDMP old');
      fs.writeFileSync(recent, 'PGDMP recent');
      const now = Date.now() / 1000;
      fs.utimesSync(old, now - 15 * 86400, now - 15 * 86400);
      fs.utimesSync(recent, now - 13 * 86400, now - 13 * 86400);
      const before = Math.floor(Date.now() / 1000);
      const result = backup(dir, { BACKUP_RETENTION_DAYS: '14' });
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
      const files = fs.readdirSync(dir).sort();
      expect(files).toEqual([expect.stringMatching(/^atelier-\d{8}T\d{6}Z\.dump$/), path.basename(recent)]);
      expect(fs.readFileSync(path.join(dir, files[0]!), 'utf8')).toBe('PGDMP atelier');
      const metrics = fs.readFileSync(path.join(work, 'atelier_backup.prom'), 'utf8');
      const at = Number(/^atelier_backup_last_success_timestamp_seconds (\d+)$/m.exec(metrics)?.[1]);
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
      // The alert reads exactly this series.
      expect(fs.readFileSync(path.join(PROM_DIR, 'alerts.yml'), 'utf8')).toContain(
        'atelier_backup_last_success_timestamp_seconds',
      );
    });

    it('leaves no partial dump and does not report success when pg_dump fails', () => {
      const dir = path.join(work, 'failing');
      const metrics = path.join(work, 'atelier_backup.prom');
      fs.writeFileSync(metrics, 'atelier_backup_last_success_timestamp_seconds 1\n');
      const result = backup(dir, { FAIL_DUMP: '1' });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('connection refused');
      expect(fs.readdirSync(dir)).toEqual([]);
      expect(fs.readFileSync(metrics, 'utf8')).toBe('atelier_backup_last_success_timestamp_seconds 1\n');
      expect(backup(dir, { BACKUP_RETENTION_DAYS: 'x' }).status).toBe(64);
    });

    it('runs in compose on a schedule, into a host folder, its metric where node-exporter reads it', () => {
      const service = compose.services.backup!;
      expect(service.restart).toBe('unless-stopped');
      const mounts = (service.volumes ?? []).map(String);
      expect(mounts).toEqual(
        expect.arrayContaining([`${ROOT}/infra/backup:/opt/atelier:ro`, 'node-textfile:/textfile:rw']),
      );
      expect(service.environment).toMatchObject({ BACKUP_TEXTFILE_DIR: '/textfile', BACKUP_DIR: '/backups' });
      expect((compose.services['node-exporter']!.volumes ?? []).map(String)).toContain(
        'node-textfile:/textfile:ro',
      );
      const restore = fs.readFileSync(path.join(ROOT, 'infra', 'backup', 'restore.sh'), 'utf8');
      expect(restore).toContain('--single-transaction');
    });
  });

  describe('image', () => {
    const dockerfile = () => fs.readFileSync(path.join(DOCKER_DIR, 'Dockerfile'), 'utf8');

    it('copies only paths that exist and builds every runtime workspace, not infra', () => {
      const text = dockerfile();
      const sources = [...text.matchAll(/^COPY\s+(?!--from)(?:--\S+\s+)*(.+)$/gm)].flatMap((m) =>
        m[1]!.trim().split(/\s+/).slice(0, -1),
      );
      expect(sources.length).toBeGreaterThan(5);
      expect(sources.filter((s) => !fs.existsSync(path.join(ROOT, s)))).toEqual([]);
      const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
        workspaces: string[];
      };
      // infra never ships; the console ships as the static files of its own build stage.
      expect(rootPkg.workspaces.filter((w) => w !== 'infra' && w !== 'console').sort()).toEqual(
        [...RUNTIME_WORKSPACES].sort(),
      );
      expect(text).toContain('COPY console/package.json');
      expect(text).toContain('COPY --from=console /app/console/dist console/dist');
      for (const ws of RUNTIME_WORKSPACES) {
        expect(text).toContain(`COPY ${ws}/package.json`);
        expect(text).toMatch(new RegExp(`-w ${ws.replace('/', '\\/')}\\b`));
        expect(text).toContain(`COPY --from=build /app/${ws}/dist ${ws}/dist`);
      }
      expect(text).toMatch(/npm ci --omit=dev/);
    });

    it('runs as a non-root user under tini, with a healthcheck, and bakes in no secret', () => {
      const text = dockerfile();
      const finalStage = text.slice(text.lastIndexOf('\nFROM '));
      expect(finalStage).toMatch(/^USER (?!root\b|0\b)\S+/m);
      expect(finalStage).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"/m);
      expect(finalStage).toMatch(/^HEALTHCHECK .*\n?.*healthcheck\.js/m);
      expect(
        [...text.matchAll(/^(?:ENV|ARG)\s+(.*)$/gm)]
          .map((m) => m[1]!)
          .filter((l) => /SECRET|PASSWORD|TOKEN|_KEY\b|DATABASE_URL|REDIS_URL/i.test(l)),
      ).toEqual([]);
      const ignore = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
      expect(ignore).toEqual(
        expect.arrayContaining(['.env', '**/node_modules', '**/dist', '.atelier', '.git']),
      );
    });

    it('gets every package the runtime code imports from the production install of the runtime workspaces', () => {
      // What `npm ci --omit=dev -w <runtime workspaces>` installs, computed from the lockfile.
      const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
        packages: Record<
          string,
          {
            dependencies?: Record<string, string>;
            optionalDependencies?: Record<string, string>;
            peerDependencies?: Record<string, string>;
            peerDependenciesMeta?: Record<string, { optional?: boolean }>;
            link?: boolean;
            resolved?: string;
            dev?: boolean;
          }
        >;
      };
      const resolveFrom = (from: string, name: string): string | undefined => {
        let dir = from;
        for (;;) {
          const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
          if (lock.packages[candidate]) return candidate;
          if (!dir) return undefined;
          // node_modules/a/node_modules/b → node_modules/a → the root; services/kit → the root.
          const cut = dir.lastIndexOf('/node_modules/');
          dir = cut >= 0 ? dir.slice(0, cut) : '';
        }
      };
      const installed = new Set<string>();
      const seen = new Set<string>();
      const queue = [...RUNTIME_WORKSPACES];
      while (queue.length) {
        const at = queue.shift()!;
        if (seen.has(at)) continue;
        seen.add(at);
        const entry = lock.packages[at];
        if (!entry) continue;
        if (entry.link && entry.resolved) {
          queue.push(entry.resolved);
          continue;
        }
        const deps = { ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies };
        for (const name of Object.keys(deps)) {
          if (entry.peerDependencies?.[name] && entry.peerDependenciesMeta?.[name]?.optional) continue;
          const where = resolveFrom(at, name);
          if (!where) continue; // an optional dependency for another platform
          installed.add(name);
          queue.push(where);
        }
      }
      const builtins = new Set(builtinModules);
      const missing = new Map<string, string[]>();
      for (const file of runtimeSources()) {
        const text = fs.readFileSync(file, 'utf8');
        const specs = [
          ...text.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;'"]*?from\s+['"]([^'"]+)['"]/gm),
          ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
          ...text.matchAll(/\b(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/g),
        ].map((m) => m[1]!);
        for (const spec of specs) {
          if (spec.startsWith('.') || spec.startsWith('node:') || spec.startsWith('@atelier/')) continue;
          const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          if (builtins.has(pkg) || installed.has(pkg)) continue;
          missing.set(pkg, [...(missing.get(pkg) ?? []), path.relative(ROOT, file)]);
        }
      }
      const report = [...missing].map(
        ([pkg, files]) =>
          `${pkg} (imported by ${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''}) is not a production dependency of any runtime workspace: add it to "dependencies" of the workspace that imports it`,
      );
      expect(report).toEqual([]);
    });
  });

  describe('container healthcheck (infra/docker/healthcheck.js)', () => {
    const script = path.join(DOCKER_DIR, 'healthcheck.js');

    before(() => {
      // The image runs the compiled kit; build it when this checkout has not yet.
      if (!fs.existsSync(path.join(ROOT, 'services', 'kit', 'dist', 'health-client.js'))) {
        const build = run(process.execPath, [
          path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          '-b',
          'services/kit',
        ]);
        if (build.status !== 0)
          throw new Error(`tsc -b services/kit failed:\n${build.stdout}${build.stderr}`);
      }
    });

    const runCheck = (env: Record<string, string>) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(process.execPath, [script], {
          env: { PATH: process.env.PATH, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (c) => (output += c));
        child.stderr.on('data', (c) => (output += c));
        child.on('close', (code) => resolve({ code, output }));
      });

    it('passes a gRPC service only while grpc.health.v1 answers SERVING', async () => {
      const health = new HealthImplementation({ '': 'NOT_SERVING' });
      const server = new grpc.Server();
      health.addToServer(server);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        ),
      );
      try {
        const env = { SERVICE: 'trainer', GRPC_HOST: '0.0.0.0', GRPC_PORT: String(port) };
        expect(await runCheck(env)).toEqual({ code: 1, output: expect.stringContaining('NOT_SERVING') });
        health.setStatus('', 'SERVING');
        expect(await runCheck(env)).toEqual({ code: 0, output: expect.stringContaining('SERVING') });
      } finally {
        server.forceShutdown();
      }
      expect(
        await runCheck({ SERVICE: 'trainer', GRPC_PORT: String(port), HEALTHCHECK_TIMEOUT_MS: '500' }),
      ).toMatchObject({ code: 1 });
    });

    it('passes the gateway only while /readyz answers 200', async () => {
      let ready = false;
      const server = http.createServer((req, res) => {
        if (req.url !== '/readyz') return void res.writeHead(404).end();
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify(ready ? { status: 'ready' } : { status: 'unavailable', failing: ['billing'] }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        const env = { SERVICE: 'gateway', HTTP_HOST: '0.0.0.0', HTTP_PORT: String(port) };
        expect(await runCheck(env)).toEqual({ code: 1, output: expect.stringContaining('503') });
        ready = true;
        expect(await runCheck(env)).toEqual({ code: 0, output: expect.stringContaining('200') });
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it("gives the imager its allocator settings from one file, in the image and in the dev stack, the environment's own winning", () => {
      const file = path.join(ROOT, 'services', 'imager', 'malloc.env');
      const settings = readEnvFile(file);
      expect(settings).toMatchObject({ MALLOC_ARENA_MAX: expect.stringMatching(/^\d+$/) });
      expect(fs.readFileSync(path.join(DOCKER_DIR, 'Dockerfile'), 'utf8')).toContain(
        'COPY services/imager/malloc.env services/imager/',
      );
      const ports = Object.fromEntries(PROCESS_NAMES.map((p, i) => [p, 50_000 + i])) as never;
      expect(processEnv('imager', ports)).toMatchObject(settings);
      expect(Object.keys(processEnv('gateway', ports))).not.toContain('MALLOC_ARENA_MAX');

      // The entrypoint, with /app standing for a directory holding the file and a main.js that
      // prints what it was given.
      const app = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-start-'));
      try {
        fs.mkdirSync(path.join(app, 'services', 'imager', 'dist'), { recursive: true });
        fs.copyFileSync(file, path.join(app, 'services', 'imager', 'malloc.env'));
        fs.writeFileSync(
          path.join(app, 'services', 'imager', 'dist', 'main.js'),
          'process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("MALLOC_")))))',
        );
        const script = path.join(app, 'start.sh');
        fs.writeFileSync(
          script,
          fs.readFileSync(path.join(DOCKER_DIR, 'start.sh'), 'utf8').replaceAll('/app/', `${app}/`),
        );
        const start = (env: NodeJS.ProcessEnv) =>
          JSON.parse(run('sh', [script], { env: { PATH: process.env.PATH, ...env } }).stdout || 'null');
        expect(start({ SERVICE: 'imager' })).toEqual(settings);
        expect(start({ SERVICE: 'imager', MALLOC_ARENA_MAX: '8' })).toEqual({
          ...settings,
          MALLOC_ARENA_MAX: '8',
        });
      } finally {
        fs.rmSync(app, { recursive: true, force: true });
      }
    });

    it('fails on an unknown SERVICE, and so does the entrypoint', async () => {
      expect(await runCheck({ SERVICE: 'bogus' })).toEqual({
        code: 1,
        output: expect.stringContaining('SERVICE must be one of'),
      });
      const start = run('sh', [path.join(DOCKER_DIR, 'start.sh')], {
        env: { PATH: process.env.PATH, SERVICE: 'bogus' },
      });
      expect({ status: start.status, stderr: start.stderr }).toEqual({
        status: 64,
        stderr: expect.stringContaining('set SERVICE to one of'),
      });
      // The entrypoint starts what tsc -b emits for each process.
      const text = fs.readFileSync(path.join(DOCKER_DIR, 'start.sh'), 'utf8');
      expect(text).toContain('/app/gateway/dist/main.js');
      expect(text).toContain('/app/services/${SERVICE}/dist/main.js');
      for (const name of GRPC_SERVICES)
        expect(fs.existsSync(path.join(ROOT, 'services', name, 'src', 'main.ts'))).toBe(true);
      expect(fs.existsSync(path.join(ROOT, 'gateway', 'src', 'main.ts'))).toBe(true);
    });
  });

  describe('Prometheus', () => {
    const promtoolRun = (args: string[]) => {
      const result = run(promtool, args);
      return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
    };

    it('has a configuration promtool accepts', () => {
      expect(promtoolRun(['check', 'config', path.join(PROM_DIR, 'prometheus.yml')])).toMatchObject({
        status: 0,
      });
    });

    it('has alert rules promtool accepts', () => {
      expect(promtoolRun(['check', 'rules', path.join(PROM_DIR, 'alerts.yml')])).toMatchObject({ status: 0 });
    });

    it('has alert rules that fire when they should and stay quiet otherwise (promtool test rules)', () => {
      expect(promtoolRun(['test', 'rules', path.join(PROM_DIR, 'alerts.test.yml')])).toMatchObject({
        status: 0,
      });
    });

    it('scrapes every replica of every process on the port it serves metrics on', () => {
      const config = readYaml(path.join(PROM_DIR, 'prometheus.yml')) as {
        scrape_configs: Array<{
          job_name: string;
          metrics_path?: string;
          dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
        }>;
      };
      for (const name of PROCESS_NAMES) {
        const job = config.scrape_configs.find((j) => j.job_name === name);
        const env = compose.services[name]!.environment ?? {};
        const port = Number(env.METRICS_PORT);
        expect({ name, sd: job?.dns_sd_configs }).toEqual({
          name,
          sd: [expect.objectContaining({ names: [name], type: 'A', port })],
        });
      }
      const mounts = (compose.services.prometheus!.volumes ?? []).map(String);
      expect(mounts).toContain(`${PROM_DIR}:/etc/prometheus:ro`);
      // The host's disks (AtelierDiskFillingUp) and the textfile collector, through node-exporter.
      const node = config.scrape_configs.find((j) => j.job_name === 'node') as
        { static_configs?: Array<{ targets: string[] }> } | undefined;
      expect(node?.static_configs?.[0]?.targets).toEqual(['node-exporter:9100']);
      expect(compose.services['node-exporter']?.command).toEqual(
        expect.arrayContaining(['--path.rootfs=/host', '--collector.textfile.directory=/textfile']),
      );
    });

    it('gives every alert a severity, a summary and a description, a unit test and a section in docs/operations.md', () => {
      const tests = fs.readFileSync(path.join(PROM_DIR, 'alerts.test.yml'), 'utf8');
      const doc = fs.readFileSync(OPERATIONS_DOC, 'utf8');
      for (const rule of alertRules().filter((r) => r.alert)) {
        expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({
          alert: rule.alert,
          severity: expect.stringMatching(/^(critical|warning)$/),
        });
        expect(Object.keys(rule.annotations ?? {}).sort()).toEqual(['description', 'summary']);
        expect({ alert: rule.alert, tested: tests.includes(`alertname: ${rule.alert}\n`) }).toEqual({
          alert: rule.alert,
          tested: true,
        });
        expect({ alert: rule.alert, documented: doc.includes(rule.alert!) }).toEqual({
          alert: rule.alert,
          documented: true,
        });
      }
    });
  });

  describe('Alertmanager', () => {
    const render = (env: Record<string, string>) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-alertmanager-'));
      const file = path.join(dir, 'alertmanager.yml');
      const result = run('sh', [path.join(ALERTMANAGER_DIR, 'render.sh'), file], { env: cleanEnv(env) });
      return { ...result, file, dir };
    };
    const amtool = (args: string[]) => {
      const result = run(tool('amtool'), args);
      return {
        status: result.status,
        stdout: result.stdout.trim(),
        output: `${result.stdout}${result.stderr}`.trim(),
      };
    };
    const composeEnv = () =>
      Object.fromEntries(
        Object.entries(compose.services.alertmanager!.environment ?? {}).filter(
          ([, v]) => v !== null && v !== undefined && v !== '',
        ),
      ) as Record<string, string>;

    it('renders from the compose environment into a configuration amtool accepts, with and without e-mail', () => {
      const variants = [
        composeEnv(),
        {
          ...composeEnv(),
          ALERT_WARNING_WEBHOOK_URL: 'https://hooks.example.com/warning',
          ALERT_EMAIL_TO: 'oncall@example.com',
          ALERT_SMTP_SMARTHOST: 'smtp.example.com:587',
          ALERT_SMTP_FROM: 'alertmanager@example.com',
          ALERT_SMTP_USERNAME: 'alertmanager',
          ALERT_SMTP_PASSWORD: "it's secret",
        },
      ];
      for (const env of variants) {
        const rendered = render(env);
        try {
          expect({ status: rendered.status, stderr: rendered.stderr }).toEqual({ status: 0, stderr: '' });
          expect(amtool(['check-config', rendered.file])).toMatchObject({ status: 0 });
          // critical pages through the critical receiver, everything else waits as a warning.
          for (const [severity, receiver] of [
            ['critical', 'critical'],
            ['warning', 'warning'],
          ]) {
            const routed = amtool([
              'config',
              'routes',
              'test',
              `--config.file=${rendered.file}`,
              `severity=${severity}`,
              'alertname=AtelierServiceDown',
            ]);
            // stdout is the receiver; stderr may carry a warning about --alertmanager.url.
            expect({ severity, receiver: routed.stdout }).toEqual({ severity, receiver });
          }
          const text = fs.readFileSync(rendered.file, 'utf8');
          expect(text).toContain(env.ALERT_WEBHOOK_URL);
          if (env.ALERT_EMAIL_TO) expect(text).toContain("'it''s secret'");
        } finally {
          fs.rmSync(rendered.dir, { recursive: true, force: true });
        }
      }
    });

    it('refuses to render without a receiver, and e-mail without its server', () => {
      const noWebhook = render({});
      expect(noWebhook.status).not.toBe(0);
      expect(noWebhook.stderr).toContain('set ALERT_WEBHOOK_URL in .env');
      const noSmtp = render({ ALERT_WEBHOOK_URL: 'https://hooks.example.com/x', ALERT_EMAIL_TO: 'a@b.c' });
      expect(noSmtp.status).not.toBe(0);
      expect(noSmtp.stderr).toContain('ALERT_SMTP_SMARTHOST');
    });

    it('is where Prometheus sends alerts, with its script mounted', () => {
      const config = readYaml(path.join(PROM_DIR, 'prometheus.yml')) as {
        alerting?: { alertmanagers?: Array<{ static_configs?: Array<{ targets: string[] }> }> };
      };
      expect(config.alerting?.alertmanagers?.[0]?.static_configs?.[0]?.targets).toEqual([
        'alertmanager:9093',
      ]);
      const mounts = (compose.services.alertmanager!.volumes ?? []).map(String);
      expect(mounts).toContain(`${ALERTMANAGER_DIR}:/etc/alertmanager:ro`);
    });
  });

  describe('Kubernetes (deploy/kubernetes)', () => {
    const KUBE_DIR = path.join(ROOT, 'deploy', 'kubernetes');
    const FLYWAY_SQL = path.join(ROOT, 'flyway', 'sql');
    const overlays = ['dev', 'production'];
    const rendered = new Map<string, Array<Record<string, any>>>();
    const renderedFiles = new Map<string, string>();
    let work: string;

    before(() => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-kustomize-'));
      for (const overlay of overlays) {
        const result = run(tool('kubectl'), [
          'kustomize',
          '--load-restrictor',
          'LoadRestrictionsNone',
          path.join(KUBE_DIR, 'overlays', overlay),
        ]);
        if (result.status !== 0) throw new Error(`kubectl kustomize ${overlay} failed:\n${result.stderr}`);
        const file = path.join(work, `${overlay}.yaml`);
        fs.writeFileSync(file, result.stdout);
        renderedFiles.set(overlay, file);
        rendered.set(
          overlay,
          result.stdout
            .split(/^---$/m)
            .map((doc) => parseYaml(doc) as Record<string, any>)
            .filter(Boolean),
        );
      }
    });

    it('renders every overlay into objects valid against the Kubernetes schemas, with no unknown field', () => {
      const result = run(process.execPath, [
        path.join(ROOT, 'infra', 'ops', 'kubernetes-validate.mjs'),
        ...overlays.map((o) => renderedFiles.get(o)!),
      ]);
      expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toMatchObject({
        status: 0,
      });
    });

    it('runs every container at a pinned tag (kustomize images:), never latest', () => {
      for (const [overlay, objects] of rendered) {
        for (const o of objects) {
          const pod = o.kind === 'Job' || o.kind === 'Deployment' ? o.spec.template.spec : undefined;
          for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
            const tag = /^(?:[^/]+\/)*[^/:@]+(?::([^/:@]+))?/.exec(c.image as string)?.[1];
            const where = `${overlay} ${o.kind}/${o.metadata.name} ${c.name}`;
            expect({ where, image: c.image, pinned: Boolean(tag) && tag !== 'latest' }).toEqual({
              where,
              image: c.image,
              pinned: true,
            });
          }
        }
      }
    });

    it('runs every process with probes, limits and its secret by reference; gRPC services behind headless Services', () => {
      for (const [overlay, objects] of rendered) {
        const find = (kind: string, name: string) =>
          objects.find((o) => o.kind === kind && o.metadata?.name === name);
        for (const name of PROCESS_NAMES) {
          const deployment = find('Deployment', name);
          const container = deployment?.spec.template.spec.containers[0];
          const where = `${overlay} ${name}`;
          expect({ where, container: Boolean(container) }).toEqual({ where, container: true });
          expect({ where, limits: Object.keys(container.resources?.limits ?? {}).sort() }).toEqual({
            where,
            limits: ['cpu', 'memory'],
          });
          expect({
            where,
            secret: container.envFrom?.some((e: any) => e.secretRef?.name === `atelier-${name}`),
          }).toEqual({
            where,
            secret: true,
          });
          // Secrets are referenced, never carried.
          expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
          const service = find('Service', name);
          expect({
            where,
            scrape: deployment!.spec.template.metadata.annotations['prometheus.io/port'],
          }).toEqual({
            where,
            scrape: compose.services[name]!.environment!.METRICS_PORT,
          });
          expect({ where, env: container.env.find((e: any) => e.name === 'METRICS_PORT')?.value }).toEqual({
            where,
            env: compose.services[name]!.environment!.METRICS_PORT,
          });
          if (name === 'gateway') {
            expect(container.readinessProbe.httpGet.path).toBe('/readyz');
            continue;
          }
          const grpcPort = Number(compose.services[name]!.environment!.GRPC_PORT);
          expect({
            where,
            readiness: container.readinessProbe?.grpc?.port,
            liveness: container.livenessProbe?.grpc?.port,
          }).toEqual({
            where,
            readiness: grpcPort,
            liveness: grpcPort,
          });
          expect({ where, clusterIP: service?.spec.clusterIP }).toEqual({ where, clusterIP: 'None' });
          // Every *_ADDR names the headless Service on its gRPC port.
          for (const env of container.env.filter((e: any) => e.name.endsWith('_ADDR'))) {
            const target = env.name.replace(/_ADDR$/, '').toLowerCase();
            expect(env.value).toBe(`${target}:${compose.services[target]!.environment!.GRPC_PORT}`);
          }
          expect({ where, pdb: Boolean(find('PodDisruptionBudget', name)) }).toEqual({ where, pdb: true });
        }
        expect(
          objects
            .filter((o) => o.kind === 'HorizontalPodAutoscaler')
            .map((o) => o.spec.scaleTargetRef.name)
            .sort(),
        ).toEqual(['gateway', 'imager', 'inferencer']);
      }
    });

    it('lists every Flyway migration in the base, in version order, flat and under the ConfigMap size limit', () => {
      // resolveMigrations is what the dev runner applies: recursive, like Flyway, and it rejects a
      // misnamed .sql file, so a migration added anywhere under flyway/sql is counted here.
      const migrations = resolveMigrations(FLYWAY_SQL);
      const nested = migrations.filter((m) => m.script.includes('/')).map((m) => m.script);
      // A ConfigMap is flat: a migration in a subfolder could not be mounted where Flyway finds it.
      expect({ nested }).toEqual({ nested: [] });
      const kustomization = readYaml(path.join(KUBE_DIR, 'base', 'kustomization.yaml')) as {
        configMapGenerator?: Array<{ name: string; files?: string[] }>;
      };
      const listed = (kustomization.configMapGenerator ?? [])
        .find((g) => g.name === 'flyway-sql')
        ?.files?.map((f) => path.relative(FLYWAY_SQL, path.resolve(KUBE_DIR, 'base', f)));
      const hint =
        'deploy/kubernetes/base/kustomization.yaml configMapGenerator flyway-sql must list flyway/sql';
      expect({ hint, listed }).toEqual({ hint, listed: migrations.map((m) => m.script) });
      // Kubernetes refuses a ConfigMap over 1 MiB; keep room for its metadata.
      const bytes = migrations.reduce((n, m) => n + Buffer.byteLength(m.sql), 0);
      expect({ bytes, underLimit: bytes < 900 * 1024 }).toEqual({ bytes, underLimit: true });
    });

    it('mounts exactly flyway/sql, byte for byte, where the Flyway Job reads its migrations', () => {
      const migrations = resolveMigrations(FLYWAY_SQL);
      for (const [overlay, objects] of rendered) {
        const job = objects.find((o) => o.kind === 'Job' && o.metadata?.name === 'flyway-migrate');
        const pod = job?.spec.template.spec;
        const container = pod?.containers.find((c: any) => c.name === 'flyway');
        const locations = container?.env?.find((e: any) => e.name === 'FLYWAY_LOCATIONS')?.value as string;
        const mountPath = locations?.replace(/^filesystem:/, '');
        const mount = container?.volumeMounts?.find((m: any) => m.mountPath === mountPath);
        const volume = pod?.volumes?.find((v: any) => v.name === mount?.name);
        const configMap = objects.find(
          (o) => o.kind === 'ConfigMap' && o.metadata.name === volume?.configMap?.name,
        );
        expect({ overlay, mountPath, configMap: Boolean(configMap) }).toEqual({
          overlay,
          mountPath: '/flyway/sql',
          configMap: true,
        });
        const data = (configMap?.data ?? {}) as Record<string, string>;
        expect({ overlay, files: Object.keys(data).sort() }).toEqual({
          overlay,
          files: migrations.map((m) => m.script).sort(),
        });
        for (const m of migrations)
          expect({ overlay, script: m.script, same: data[m.script] === m.sql }).toEqual({
            overlay,
            script: m.script,
            same: true,
          });
      }
    });

    it('lets only the gateway take traffic from outside, and each service only from its callers', () => {
      const objects = rendered.get('production')!;
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
      const deny = policies.find((p) => p.metadata.name === 'default-deny');
      expect(deny?.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
      const callers: Record<string, string[]> = {};
      for (const name of PROCESS_NAMES) {
        const env = compose.services[name]!.environment ?? {};
        for (const key of Object.keys(env).filter((k) => k.endsWith('_ADDR')))
          (callers[key.replace(/_ADDR$/, '').toLowerCase()] ??= []).push(name);
      }
      for (const name of GRPC_SERVICES) {
        const policy = policies.find((p) => p.metadata.name === name);
        const grpcPort = Number(compose.services[name]!.environment!.GRPC_PORT);
        const rule = policy?.spec.ingress.find((r: any) => r.ports.some((p: any) => p.port === grpcPort));
        const from = (rule?.from ?? [])
          .map((f: any) => f.podSelector?.matchLabels?.['app.kubernetes.io/name'])
          .sort();
        expect({ name, from }).toEqual({ name, from: (callers[name] ?? []).sort() });
      }
    });
  });

  describe('Grafana', () => {
    it('provisions the Prometheus datasource and the dashboards folder compose mounts', () => {
      const ds = readYaml(path.join(GRAFANA_DIR, 'provisioning', 'datasources', 'prometheus.yml')) as {
        datasources: Array<{ uid: string; type: string; url: string }>;
      };
      expect(ds.datasources).toEqual([
        expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' }),
      ]);
      const providers = readYaml(path.join(GRAFANA_DIR, 'provisioning', 'dashboards', 'atelier.yml')) as {
        providers: Array<{ options: { path: string } }>;
      };
      const mounts = (compose.services.grafana!.volumes ?? []).map(String);
      expect(mounts).toEqual(
        expect.arrayContaining([
          `${GRAFANA_DIR}/provisioning:/etc/grafana/provisioning:ro`,
          `${GRAFANA_DIR}/dashboards:${providers.providers[0]!.options.path}:ro`,
        ]),
      );
    });

    it('has the overview, pipeline and money dashboards, valid and self-consistent', () => {
      const all = dashboards();
      expect(all.map((d) => path.basename(d.file)).sort()).toEqual([
        'money.json',
        'overview.json',
        'pipeline.json',
      ]);
      const uids = all.map((d) => d.json.uid);
      expect(new Set(uids).size).toBe(all.length);
      const doc = fs.readFileSync(OPERATIONS_DOC, 'utf8');
      for (const { file, json } of all) {
        expect({ file, uid: typeof json.uid, title: typeof json.title }).toEqual({
          file,
          uid: 'string',
          title: 'string',
        });
        expect({ file, documented: doc.includes(json.title!) }).toEqual({ file, documented: true });
        const panels = allPanels(json.panels);
        const ids = panels.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const p of panels.filter((p) => p.type !== 'row')) {
          const uid = typeof p.datasource === 'object' ? p.datasource?.uid : p.datasource;
          expect({ file, panel: p.title, uid, queries: (p.targets ?? []).length > 0 }).toEqual({
            file,
            panel: p.title,
            uid: 'prometheus',
            queries: true,
          });
        }
      }
    });

    it('shows every Atelier metric the code declares somewhere', () => {
      const used = new Set(
        dashboards().flatMap(({ json }) => dashboardQueries(json).flatMap((q) => promqlMetricNames(q.expr))),
      );
      const unshown = [...declaredMetrics()].filter(
        ([name, { type }]) =>
          name.startsWith('atelier_') && !seriesNames(name, type).some((s) => used.has(s)),
      );
      expect(
        unshown.map(
          ([name, { file }]) =>
            `${name} (declared in ${path.relative(ROOT, file)}): add a panel for it to infra/grafana/dashboards/*.json`,
        ),
      ).toEqual([]);
    });

    it('has queries that parse as PromQL (promtool, after Grafana variables are substituted)', () => {
      const rules = dashboards().flatMap(({ file, json }) =>
        dashboardQueries(json).map((q, i) => ({
          record: `dashboard:${path.basename(file, '.json')}:q${i}`,
          expr: grafanaToPromql(q.expr),
        })),
      );
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-dashboards-'));
      try {
        const file = path.join(dir, 'dashboards.rules.json');
        // JSON is YAML: promtool reads it as a rules file.
        fs.writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboards', rules }] }));
        const result = run(promtool, ['check', 'rules', file]);
        expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toMatchObject({
          status: 0,
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
