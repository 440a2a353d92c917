/**
 * Typed reads of form-decoded params with Stripe's coercion and error wording. `path` is the
 * param's full bracketed name (`line_items[0][quantity]`), which is what Stripe reports in `param`.
 */
import { Errors } from './errors';
import type { FormObject, FormValue } from './form';

export const at = (prefix: string, key: string | number): string =>
  prefix ? `${prefix}[${key}]` : String(key);

export function rejectUnknown(obj: FormObject, allowed: ReadonlySet<string>, prefix = ''): void {
  for (const key of Object.keys(obj)) if (!allowed.has(key)) throw Errors.unknownParam(at(prefix, key));
}

export function optString(value: FormValue | undefined, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw Errors.invalid(path, `Invalid string: ${JSON.stringify(value)}`);
  return value;
}

export function reqString(value: FormValue | undefined, path: string): string {
  const s = optString(value, path);
  if (s === undefined) throw Errors.missingParam(path);
  if (s === '') throw Errors.emptyString(path);
  return s;
}

export function optInt(value: FormValue | undefined, path: string): number | undefined {
  const s = optString(value, path);
  if (s === undefined) return undefined;
  if (!/^-?\d{1,15}$/.test(s)) throw Errors.invalidInteger(path, s);
  return Number(s);
}

export function reqInt(value: FormValue | undefined, path: string): number {
  const n = optInt(value, path);
  if (n === undefined) throw Errors.missingParam(path);
  return n;
}

export function optBool(value: FormValue | undefined, path: string): boolean | undefined {
  const s = optString(value, path);
  if (s === undefined) return undefined;
  if (s !== 'true' && s !== 'false') throw Errors.invalid(path, `Invalid boolean: ${s}`);
  return s === 'true';
}

export function optHash(value: FormValue | undefined, path: string): FormObject | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' || Array.isArray(value)) throw Errors.invalid(path, `Invalid hash`);
  return value;
}

export function optArray(value: FormValue | undefined, path: string): FormValue[] | undefined {
  if (value === undefined || value === '') return undefined;
  if (!Array.isArray(value)) throw Errors.invalid(path, `Invalid array`);
  return value;
}

/** Stripe's metadata limits: 50 keys, keys up to 40 characters, values up to 500. */
export function metadata(value: FormValue | undefined, path = 'metadata'): Record<string, string> {
  if (value === undefined || value === '') return {};
  if (typeof value === 'string') throw Errors.invalid(path, 'Invalid hash');
  // `metadata[0]=x` decodes as an array; metadata keys are still strings.
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  if (entries.length > 50) throw Errors.invalid(path, 'Metadata can have up to 50 keys.');
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    const p = at(path, k);
    if (typeof v !== 'string') throw Errors.invalid(p, `Invalid string: ${JSON.stringify(v)}`);
    if (k.length > 40)
      throw Errors.invalid(
        p,
        `Metadata keys can have up to 40 characters, but the key is ${k.length} characters long.`,
      );
    if (v.length > 500)
      throw Errors.invalid(
        p,
        `Metadata values can have up to 500 characters, but you passed in a value that is ${v.length} characters long.`,
      );
    // An empty value unsets the key, so it never appears on the object.
    if (v !== '') out[k] = v;
  }
  return out;
}

/** `expand[]` as a list of dotted paths. */
export function expandList(params: FormObject): string[] {
  const raw = params['expand'];
  if (raw === undefined) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((v, i) => optString(v, `expand[${i}]`) ?? '');
}
