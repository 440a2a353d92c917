/** Events as Stripe records them: a snapshot of the object taken when the change happened. */
import { newId } from './ids';
import { nowSeconds, type EventObject } from './objects';
import type { RequestInfo } from './ledger';

export class EventLog {
  private readonly events = new Map<string, EventObject>();

  constructor(private readonly apiVersion: string) {}

  create(type: string, object: object, request: RequestInfo | null, pendingWebhooks: number): EventObject {
    const event: EventObject = {
      id: newId.event(),
      object: 'event',
      api_version: this.apiVersion,
      created: nowSeconds(),
      // A copy, so later changes to the object do not rewrite history.
      data: { object: structuredClone(object) },
      livemode: false,
      pending_webhooks: pendingWebhooks,
      request: request ? { ...request } : null,
      type,
    };
    this.events.set(event.id, event);
    return event;
  }

  /** Records an event built elsewhere (a test's hand-made one) so `GET /v1/events/:id` finds it. */
  adopt(event: EventObject): void {
    if (!this.events.has(event.id)) this.events.set(event.id, event);
  }

  get(id: string): EventObject | undefined {
    return this.events.get(id);
  }

  all(): EventObject[] {
    return [...this.events.values()];
  }

  delivered(id: string): void {
    const event = this.events.get(id);
    if (event) event.pending_webhooks = Math.max(0, event.pending_webhooks - 1);
  }
}
