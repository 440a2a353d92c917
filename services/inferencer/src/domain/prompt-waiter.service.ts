import { EventEmitter } from 'node:events';

/**
 * Lets CreatePrompt with `wait_seconds` answer as soon as its prompt finishes. Completion in this
 * process wakes the waiter at once; a completion on another replica (the webhook may land on
 * any) is seen by polling the prompt's own row.
 */
export class PromptWaiter {
  private readonly finished = new EventEmitter();

  constructor(private readonly pollMs = 250) {
    // One listener per waiting call; many may wait at once.
    this.finished.setMaxListeners(0);
  }

  /** Called after a prompt's terminal transition committed. */
  notify(promptId: string): void {
    this.finished.emit(promptId);
  }

  /** Resolves when `isFinished` says so, at `until` (epoch ms), or when `signal` aborts — whichever is first. */
  async wait(
    promptId: string,
    until: number,
    isFinished: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<void> {
    for (;;) {
      if (signal?.aborted || (await isFinished())) return;
      const left = until - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.finished.off(promptId, done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(this.pollMs, left));
        this.finished.once(promptId, done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}
