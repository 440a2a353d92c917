import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { isPublicAddress } from '@atelier/kit';
import type { SendResult, WebhookSender } from '../domain/webhook-delivery.job';

export interface WebhookClientOptions {
  timeoutMs: number;
  /** http and loopback/private/link-local destinations allowed (development and tests). */
  allowPrivate: boolean;
}

/**
 * POSTs one callback. The SSRF guard runs at connection time on the address actually dialled:
 * the request's own `lookup` resolves the name, refuses it if any address is not public, and
 * hands the socket the address it checked — so a name that resolves differently a moment later
 * (DNS rebinding) cannot slip through. Redirects are not followed (a 3xx is a failed attempt),
 * and the whole attempt, headers included, has `timeoutMs`.
 */
export function createWebhookClient(o: WebhookClientOptions): WebhookSender & { close(): void } {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
  };

  const guardedLookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, family: options.family }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const refused = o.allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      const chosen = addresses[0];
      if (refused || !chosen) {
        const e = new Error(
          refused
            ? `${hostname} resolves to a non-public address (${refused.address})`
            : `${hostname}: no address`,
        );
        return callback(Object.assign(e, { code: 'EREFUSEDADDRESS' }), '', 0);
      }
      if (options.all)
        return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, [chosen]);
      callback(null, chosen.address, chosen.family);
    });
  };

  return {
    send(url, headers, body) {
      return new Promise<SendResult>((resolve) => {
        let target: URL;
        try {
          target = new URL(url);
        } catch {
          return resolve({ error: 'not a URL' });
        }
        const protocol = target.protocol as 'http:' | 'https:';
        if (protocol !== 'https:' && !(o.allowPrivate && protocol === 'http:'))
          return resolve({ error: 'only https callback URLs are allowed' });
        // A literal address never goes through lookup: check it here.
        const host = target.hostname.replace(/^\[|\]$/g, '');
        if (isIP(host) && !o.allowPrivate && !isPublicAddress(host))
          return resolve({ error: `${host} is not a public address` });
        const request = (protocol === 'https:' ? https : http).request(target, {
          method: 'POST',
          agent: agents[protocol],
          lookup: guardedLookup,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        });
        const timer = setTimeout(
          () => request.destroy(new Error(`no answer within ${o.timeoutMs} ms`)),
          o.timeoutMs,
        );
        request.on('response', (res) => {
          clearTimeout(timer);
          // The answer's body is of no interest; drain it so the connection can be reused.
          res.resume();
          resolve({ status: res.statusCode ?? 0 });
        });
        request.on('error', (err) => {
          clearTimeout(timer);
          resolve({ error: err.message });
        });
        request.end(body);
      });
    },
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}
