/**
 * `expand[]=payment_intent`, `expand[]=promotion.coupon`, `expand[]=data.promotion.coupon`:
 * replaces an id at the dotted path with the object it names, on a copy of the response.
 */
import { Errors } from './errors';

export function expand(value: unknown, paths: string[], find: (id: string) => object | undefined): unknown {
  if (paths.length === 0) return value;
  const copy = structuredClone(value);
  paths.forEach((path, i) => walk(copy, path.split('.'), path, `expand[${i}]`, find));
  return copy;
}

function walk(
  node: unknown,
  segments: string[],
  path: string,
  param: string,
  find: (id: string) => object | undefined,
): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, segments, path, param, find);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const [key, ...rest] = segments as [string, ...string[]];
  const record = node as Record<string, unknown>;
  if (!(key in record)) throw Errors.invalid(param, `This property cannot be expanded (${path}).`);
  const child = record[key];
  if (rest.length > 0) return walk(child, rest, path, param, find);
  if (child === null || typeof child === 'object') return; // nothing to expand, or already expanded
  const found = typeof child === 'string' ? find(child) : undefined;
  if (!found) throw Errors.invalid(param, `This property cannot be expanded (${path}).`);
  record[key] = structuredClone(found);
}
