import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { Errors } from '@atelier/kit';

// A NUL or a lone UTF-16 surrogate: Postgres text cannot hold either (invalid UTF-8 bytes were
// already refused before decoding, or arrive here as the decoder's U+FFFD where noted).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function fail(field: string, why: string): never {
  throw Errors.invalid(`${field}: ${why}`, { errors: [{ field, message: why }] });
}

export function checkText(field: string, value: string, opts: { replacementIsInvalid?: boolean } = {}): void {
  if (value.includes('\0')) fail(field, 'contains a NUL character');
  if (LONE_SURROGATE.test(value)) fail(field, 'contains an unpaired UTF-16 surrogate');
  if (opts.replacementIsInvalid && value.includes('\ufffd')) fail(field, 'is not valid UTF-8');
}

/** Every string in a parsed JSON body or query, keys included, with its path for the error. */
export function checkTextTree(where: string, value: unknown, depth = 0): void {
  if (typeof value === 'string') return checkText(where, value);
  if (value === null || typeof value !== 'object' || depth > 32) return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const field = `${where}.${k}`;
    checkText(`${where} key`, k);
    checkTextTree(field, v, depth + 1);
  }
}

/** The raw query: percent-escapes that do not decode to UTF-8 are refused, not passed on literally. */
export function checkRawQuery(url: string): void {
  const at = url.indexOf('?');
  if (at < 0) return;
  for (const pair of url.slice(at + 1).split('&')) {
    const [name = '', value = ''] = pair.split('=', 2);
    for (const part of [name, value]) {
      try {
        decodeURIComponent(part.replace(/\+/g, ' '));
      } catch {
        let field = name;
        try {
          field = decodeURIComponent(name);
        } catch {
          field = '(name)';
        }
        fail(`query.${field}`, 'is not valid UTF-8');
      }
    }
  }
}

/** body-parser `verify`: raw JSON bytes that are not UTF-8 never reach the decoder. */
export function verifyUtf8(_req: IncomingMessage, _res: unknown, buf: Buffer): void {
  if (!isUtf8(buf)) fail('body', 'is not valid UTF-8');
}
