import { Gauge, type Registry } from 'prom-client';
import type { Metrics } from './metrics';

/** Named checks, each throwing while its dependency (postgres, redis, bucket, a service) does not answer. */
export type DependencyChecks = Record<string, () => Promise<unknown>>;

const gauges = new WeakMap<Registry, { gauge: Gauge<'dependency'>; refresh: Array<() => Promise<void>> }>();

/** One gauge per registry; at every scrape it runs the checks again, so /metrics tells the truth now. */
function dependencyGauge(registry: Registry) {
  let entry = gauges.get(registry);
  if (!entry) {
    const refresh: Array<() => Promise<void>> = [];
    const gauge = new Gauge({
      name: 'atelier_dependency_up',
      help: 'Whether a dependency answered the last readiness check of this process (1) or not (0)',
      labelNames: ['dependency'] as const,
      registers: [registry],
      async collect() {
        await Promise.all(refresh.map((r) => r().catch(() => undefined)));
      },
    });
    entry = { gauge, refresh };
    gauges.set(registry, entry);
  }
  return entry;
}

/** Thrown by a readiness check: `failing` names the dependencies that did not answer. */
export class DependenciesDown extends Error {
  readonly failing: string[];
  constructor(failures: Array<{ name: string; reason: string }>) {
    super(`dependencies not ready: ${failures.map((f) => `${f.name}: ${f.reason}`).join('; ')}`);
    this.name = 'DependenciesDown';
    this.failing = failures.map((f) => f.name);
  }
}

async function within<T>(promise: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The readiness check of a process built from named checks: each one's result is recorded as
 * `atelier_dependency_up{dependency}` (1 or 0), and it throws naming every dependency that failed.
 * Health (NOT_SERVING) and /metrics thus report the same outage, even when no traffic fails.
 */
export function dependencyReadiness(
  metrics: Pick<Metrics, 'registry'>,
  checks: DependencyChecks,
  timeoutMs = 2_000,
): () => Promise<void> {
  const { gauge, refresh } = dependencyGauge(metrics.registry);
  const run = async () => {
    const failures = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await within(Promise.resolve().then(check), timeoutMs, name);
          gauge.set({ dependency: name }, 1);
          return undefined;
        } catch (err) {
          gauge.set({ dependency: name }, 0);
          return { name, reason: (err as Error).message };
        }
      }),
    );
    const failing = failures.filter((f) => f !== undefined);
    if (failing.length) throw new DependenciesDown(failing);
  };
  refresh.push(run);
  return run;
}
