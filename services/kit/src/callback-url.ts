import { isIP } from 'node:net';
import { Errors } from './errors';

/**
 * Where a service may send a customer's callbacks (PRODUCT.md, "Callbacks to the customer's own
 * server"): one rule for billing's account endpoints and for the per-request `callback_url` of
 * trainings and prompts, so a URL refused at delivery is refused when it is given. Pure: names
 * are resolved and checked again at every delivery (billing's webhook client), which is what
 * stops DNS rebinding.
 */

/** What may be called, as an IP address: public unicast only (no SSRF into our network). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return isPublicV4(address);
  if (family !== 6) return false;
  const v6 = expandV6(address);
  if (!v6) return false;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): judge the IPv4 address.
  const isMapped = v6.slice(0, 5).every((w) => w === 0) && v6[5] === 0xffff;
  const isCompat = v6.slice(0, 6).every((w) => w === 0) && (v6[6]! !== 0 || v6[7]! > 1);
  if (isMapped || isCompat)
    return isPublicV4(`${v6[6]! >> 8}.${v6[6]! & 255}.${v6[7]! >> 8}.${v6[7]! & 255}`);
  const [w0] = v6 as [number];
  if (v6.every((w) => w === 0)) return false; // ::
  if (v6.slice(0, 7).every((w) => w === 0) && v6[7] === 1) return false; // ::1
  if ((w0 & 0xfe00) === 0xfc00) return false; // fc00::/7 unique local
  if ((w0 & 0xffc0) === 0xfe80) return false; // fe80::/10 link-local
  if ((w0 & 0xffc0) === 0xfec0) return false; // fec0::/10 site-local (deprecated)
  if ((w0 & 0xff00) === 0xff00) return false; // multicast
  if (w0 === 0x0064 && v6[1] === 0xff9b) return false; // 64:ff9b::/96 NAT64 reaches IPv4 inside
  if (w0 === 0x2001 && v6[1] === 0x0db8) return false; // documentation
  if (w0 === 0x2002) return false; // 6to4 embeds an IPv4 address
  if (w0 === 0x2001 && v6[1] === 0) return false; // Teredo
  return true;
}

function isPublicV4(address: string): boolean {
  const [a, b] = address.split('.').map(Number) as [number, number, number, number];
  if (a === 0 || a === 10 || a === 127) return false; // this network, private, loopback
  if (a === 169 && b === 254) return false; // link-local (cloud metadata)
  if (a === 172 && b >= 16 && b <= 31) return false;
  if (a === 192 && b === 168) return false;
  if (a === 100 && b >= 64 && b <= 127) return false; // carrier-grade NAT
  if (a === 192 && b === 0) return false; // IETF protocol assignments, 192.0.0.0/24 and 192.0.2.0/24
  if (a === 198 && (b === 18 || b === 19)) return false; // benchmarking
  if (a >= 224) return false; // multicast, reserved, broadcast
  return true;
}

/** Eight 16-bit words, or undefined. Accepts `::` compression and a dotted IPv4 tail. */
function expandV6(address: string): number[] | undefined {
  let s = address.toLowerCase().split('%')[0]!;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail) {
    const p = tail[1]!.split('.').map(Number);
    s =
      s.slice(0, -tail[1]!.length) +
      `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const h = parse(head);
  const r = rest === undefined ? [] : parse(rest);
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const words = [...h, ...Array<number>(fill).fill(0), ...r];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff)
    ? words
    : undefined;
}

/**
 * A callback URL as given: https (http too when private destinations are allowed, for local
 * receivers), no credentials in it, and not a literal private address or local name. Answers
 * the URL normalised; `field` names it in the 400 (`url` of an endpoint, a request's
 * `callback_url`). WEBHOOK_ALLOW_PRIVATE is `allowPrivate`.
 */
export function checkCallbackUrl(raw: string, allowPrivate: boolean, field = 'url'): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw Errors.invalid(`${field} must be an absolute URL`);
  }
  if (raw.length > 2000) throw Errors.invalid(`${field} must be at most 2000 characters`);
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:'))
    throw Errors.invalid(`${field} must be https`);
  if (url.username || url.password) throw Errors.invalid(`${field} must not carry credentials`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && isIP(host) && !isPublicAddress(host))
    throw Errors.invalid(`${field} must not point at a loopback, private or link-local address`);
  if (!allowPrivate && /^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i.test(host))
    throw Errors.invalid(`${field} must not point at a local name`);
  return url.toString();
}
