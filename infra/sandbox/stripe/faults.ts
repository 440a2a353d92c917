/**
 * Injected failures for tests: the next N requests matching a route answer an error status, or
 * never answer at all. A fault strikes before the request is executed (nothing changes, nothing is
 * stored under its idempotency key), like a load balancer failing — so the `stripe` client's own
 * retries (2 by default, on 5xx and 409) can then succeed.
 */
export type FaultAnswer = number | 'hang';

interface Fault {
  method: string | null;
  pathPrefix: string | null;
  answer: FaultAnswer;
  remaining: number;
}

export class Faults {
  private faults: Fault[] = [];

  /**
   * `route` is `'*'`, a method (`'POST'`), a path prefix (`'/v1/refunds'`) or both
   * (`'POST /v1/checkout/sessions'`); a prefix matches the path and everything under it.
   */
  add(route: string, answer: FaultAnswer, times: number): void {
    const [first = '*', second] = route.trim().split(/\s+/);
    const isMethod = /^[A-Za-z]+$/.test(first) && first !== '*';
    const method = isMethod ? first.toUpperCase() : null;
    const path = isMethod ? (second ?? null) : first === '*' ? null : first;
    this.faults.push({ method, pathPrefix: path, answer, remaining: times });
  }

  /** The answer for this request if a fault matches it (and uses one of its strikes). */
  take(method: string, path: string): FaultAnswer | undefined {
    const fault = this.faults.find(
      (f) =>
        (f.method === null || f.method === method) &&
        (f.pathPrefix === null ||
          path === f.pathPrefix ||
          path.startsWith(`${f.pathPrefix.replace(/\/$/, '')}/`)),
    );
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults = this.faults.filter((f) => f !== fault);
    return fault.answer;
  }

  clear(): void {
    this.faults = [];
  }
}
