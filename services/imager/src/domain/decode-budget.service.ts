/**
 * The imager's one memory budget for decoding, shared by every upload at once: a semaphore on the
 * estimated bytes a decode holds (see `decodeCost`). A decode waits until its estimate fits in
 * what the running ones leave; an estimate larger than the whole budget could never run and is
 * refused by the caller before it asks.
 *
 * Waiters are served in arrival order, so a large photo is not starved by a stream of small ones
 * (a small one behind it waits too, even if it would fit).
 */
export class DecodeBudget {
  private used = 0;
  private highWater = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isFinite(capacity) || capacity <= 0) {
      throw new RangeError(`the decode budget must be positive, got ${capacity}`);
    }
  }

  fits(bytes: number): boolean {
    return bytes <= this.capacity;
  }

  /** Resolves with the release once `bytes` fit; rejects with the signal's reason if it aborts
   * first. `bytes` must fit the capacity. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    if (!this.fits(bytes)) throw new RangeError(`${bytes} bytes can never fit a budget of ${this.capacity}`);
    signal?.throwIfAborted();
    if (this.waiting.length === 0 && this.used + bytes <= this.capacity) return this.take(bytes);

    await new Promise<void>((resolve, reject) => {
      const waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        this.drain(); // the ones behind it may fit now
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
    return this.take(bytes, true);
  }

  /** Bytes held now, and the most ever held at once (for tests and metrics). */
  get inUse(): number {
    return this.used;
  }

  get peak(): number {
    return this.highWater;
  }

  get queued(): number {
    return this.waiting.length;
  }

  private take(bytes: number, granted = false): () => void {
    if (!granted) this.used += bytes;
    this.highWater = Math.max(this.highWater, this.used);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.drain();
    };
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.bytes <= this.capacity) {
      const next = this.waiting.shift()!;
      this.used += next.bytes; // counted before its continuation runs, so nothing overtakes it
      next.grant();
    }
  }
}
