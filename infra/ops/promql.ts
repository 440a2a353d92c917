/**
 * What the alert rules and dashboards ask Prometheus for, and what a scrape holds: shared by the
 * ops checks (infra/ops) and the real-scrape test (gateway/test/scrape.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from '../stack/repo-root';

export const ROOT = repoRoot(__dirname);
const PROM_DIR = path.join(ROOT, 'infra', 'prometheus');
const DASHBOARD_DIR = path.join(ROOT, 'infra', 'grafana', 'dashboards');

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const doc = parseYaml(fs.readFileSync(path.join(PROM_DIR, 'alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: AlertRule[] }>;
  };
  return doc.groups.flatMap((g) => g.rules);
}

export interface RuleTests {
  tests: Array<{
    name: string;
    input_series: Array<{ series: string; values: string }>;
    alert_rule_test?: Array<{ eval_time: string; alertname: string; exp_alerts: unknown[] }>;
  }>;
}

export function ruleTests(): RuleTests {
  return parseYaml(fs.readFileSync(path.join(PROM_DIR, 'alerts.test.yml'), 'utf8')) as RuleTests;
}

export interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { uid?: string } | string | null;
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}
export interface Dashboard {
  uid?: string;
  title?: string;
  panels?: Panel[];
  templating?: {
    list?: Array<{
      name?: string;
      query?: string | { query?: string };
      definition?: string;
      datasource?: { uid?: string };
    }>;
  };
}

export function dashboards(): Array<{ file: string; json: Dashboard }> {
  return fs
    .readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({
      file: path.join(DASHBOARD_DIR, f),
      json: JSON.parse(fs.readFileSync(path.join(DASHBOARD_DIR, f), 'utf8')) as Dashboard,
    }));
}

export function allPanels(panels: Panel[] = []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

/** Every PromQL query of a dashboard, with where it is. */
export function dashboardQueries(d: Dashboard): Array<{ where: string; expr: string }> {
  const queries: Array<{ where: string; expr: string }> = [];
  for (const p of allPanels(d.panels)) {
    for (const t of p.targets ?? []) if (t.expr) queries.push({ where: `panel "${p.title}"`, expr: t.expr });
  }
  return queries;
}

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);

/** Metric names a PromQL expression selects (identifiers that are not functions, keywords, labels or variables). */
export function promqlMetricNames(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b(group_left|group_right)\b/g, ' ')
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?/g, ' ')
    .replace(/\boffset\s+-?[0-9]+[a-z]+/gi, ' ');
  s = s.replace(/(?<![\w.])[0-9][0-9.]*(?:e[+-]?[0-9]+)?[a-zA-Z]*/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/(?<![\w:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || PROMQL_KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.push(m[1]!);
  }
  return names;
}

export interface Matcher {
  metric: string;
  label: string;
  op: string;
  value: string;
}

/** Label matchers of each selector. */
export function promqlMatchers(expr: string): Matcher[] {
  const out: Matcher[] = [];
  for (const sel of expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)) {
    for (const m of sel[2]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      out.push({ metric: sel[1]!, label: m[1]!, op: m[2]!, value: m[3]! });
    }
  }
  return out;
}

/** The literal values a matcher names: `a`, or each branch of `a|b|c`; none for a real regex or a variable. */
export function namedValues(m: Matcher): string[] {
  if (m.op !== '=' && m.op !== '=~') return [];
  if (m.value.includes('$')) return [];
  if (m.op === '=') return [m.value];
  if (!/^[A-Za-z0-9_|:/-]+$/.test(m.value)) return [];
  return m.value.split('|');
}

/** A regex matcher that is more than a list of literal values (`5..`, `/api/.*`). */
export function isRealRegex(m: Matcher): boolean {
  return m.op === '=~' && !m.value.includes('$') && namedValues(m).length === 0;
}

/** Grafana variables replaced by values Prometheus accepts, so dashboard queries can be checked as PromQL. */
export function grafanaToPromql(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$__interval|\$__range|\$\{__range\}|\$\{__rate_interval\}/g, '5m')
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?/g, '.+');
}

/** One series of a scrape (or of a rule test): its name and labels. */
export interface Series {
  name: string;
  labels: Record<string, string>;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g))
    labels[m[1]!] = m[2]!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
  return labels;
}

/** The series of a Prometheus text exposition (values and comments dropped). */
export function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+\S+/.exec(line);
    if (m) out.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2]) : {} });
  }
  return out;
}

/** A series selector as written in a rule test: `name{a="b", …}`. */
export function parseSeriesSelector(selector: string): Series {
  const m = /^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$/.exec(selector);
  if (!m) throw new Error(`not a series selector: ${selector}`);
  return { name: m[1]!, labels: m[2] ? parseLabels(m[2]) : {} };
}

/** Labels Prometheus adds to every series of a target (not the process). */
export const TARGET_LABELS = new Set(['job', 'instance']);
/** Series Prometheus itself writes for every target. */
export const SCRAPE_SERIES = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
]);
