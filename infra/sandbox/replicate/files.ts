/**
 * Output files served under `/files/<run id>/<name>`. Like Replicate's API outputs they vanish
 * `ttlMs` after the run produced them; expiry is checked on access rather than with timers, so a
 * long TTL keeps nothing scheduled.
 */

interface StoredFile {
  body: Buffer;
  contentType: string;
  expiresAt: number;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private readonly removed = new Set<string>();

  constructor(private readonly ttlMs: number) {}

  /** Stores a file and returns its path (to be prefixed with the public URL). */
  put(runId: string, name: string, body: Buffer, contentType: string): string {
    this.sweep();
    this.files.set(`${runId}/${name}`, { body, contentType, expiresAt: Date.now() + this.ttlMs });
    return `/files/${runId}/${name}`;
  }

  get(runId: string, name: string): StoredFile | undefined {
    this.sweep();
    return this.files.get(`${runId}/${name}`);
  }

  /** Removes the files of one run, or of every run. */
  expire(runId?: string): void {
    for (const key of [...this.files.keys()]) {
      const owner = key.slice(0, key.indexOf('/'));
      if (runId === undefined || owner === runId) this.drop(key);
    }
  }

  /** True once a run had files and they are gone. */
  isRemoved(runId: string): boolean {
    this.sweep();
    return this.removed.has(runId);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, file] of this.files) if (file.expiresAt <= now) this.drop(key);
  }

  private drop(key: string): void {
    this.files.delete(key);
    this.removed.add(key.slice(0, key.indexOf('/')));
  }
}
