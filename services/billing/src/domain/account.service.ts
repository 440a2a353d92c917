import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Errors, requireUuid } from '@atelier/kit';
import type { Store } from '../repositories';
import type { AccountRow } from '../repositories/account.repository';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_RE = /^atl_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}$/;

function base62(length: number): string {
  // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** A key is `atl_<8-char prefix>_<32 chars>`: the prefix identifies it in lists and logs. */
function generateApiKey(): { key: string; prefix: string } {
  const prefix = `atl_${base62(8)}`;
  return { key: `${prefix}_${base62(32)}`, prefix };
}

/** trainer: deletes every version of an account, then asks billing to erase the account. */
export interface AccountDataDeletion {
  deleteAccountData(accountId: string): Promise<{ versions: number }>;
}

export class AccountService {
  private readonly accounts: Store['repos']['accounts'];
  private readonly keys: Store['repos']['apiKeys'];

  constructor(
    private readonly store: Store,
    private readonly deletion?: AccountDataDeletion,
  ) {
    this.accounts = store.repos.accounts;
    this.keys = store.repos.apiKeys;
  }

  /** The account and its credits over every version. */
  async summary(accountId: string) {
    const id = requireUuid('account_id', accountId);
    const row = await this.accounts.summary(id);
    if (!row) throw Errors.notFound('account', id);
    const { granted, used, ...account } = row;
    return { account, credits: { granted, used, remaining: granted - used } };
  }

  /**
   * Records the deletion of the account and all its data with trainer, which runs it as a durable
   * job and calls `erase` at its end. Repeating it is harmless; a deleted account is 410.
   */
  async deleteAccount(accountId: string): Promise<{ versions: number }> {
    const id = requireUuid('account_id', accountId);
    const found = await this.accounts.findDeletedAt(id);
    if (!found) throw Errors.notFound('account', id);
    if (found.deleted_at) throw Errors.accountDeleted(id);
    if (!this.deletion) throw Errors.unavailable('trainer');
    return this.deletion.deleteAccountData(id);
  }

  /**
   * The account's last step, all or nothing: keys revoked, email erased, webhook endpoints and
   * the events and deliveries kept for them gone (their payloads name the account's models and
   * prompts). Idempotent.
   */
  async erase(accountId: string): Promise<number> {
    const id = requireUuid('account_id', accountId);
    return this.store.transaction(async (repos) => {
      const erased = await repos.accounts.erase(id);
      if (!erased) throw Errors.notFound('account', id);
      await repos.webhookEndpoints.deleteOfAccount(id);
      await repos.webhookEvents.deleteOfAccount(id);
      return erased.keysRevoked;
    });
  }

  async createAccount(email: string): Promise<{ account: AccountRow; apiKey: string }> {
    const normalised = email.trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(normalised) || normalised.length > 254) {
      throw Errors.invalid(`not an email address: ${JSON.stringify(email.slice(0, 80))}`);
    }
    const account = await this.accounts.insert(randomUUID(), normalised);
    const { key } = await this.createKey(account.id);
    return { account: { ...account, active_keys: 1 }, apiKey: key };
  }

  listAccounts(): Promise<AccountRow[]> {
    return this.accounts.list();
  }

  async createKey(accountId: string): Promise<{ key: string; prefix: string }> {
    requireUuid('account_id', accountId);
    if (!(await this.accounts.exists(accountId))) throw Errors.notFound('account', accountId);
    const generated = generateApiKey();
    await this.keys.insert({
      id: randomUUID(),
      accountId,
      prefix: generated.prefix,
      hash: hashApiKey(generated.key),
    });
    return generated;
  }

  async revokeKey(prefix: string): Promise<void> {
    if (!(await this.keys.revoke(prefix))) throw Errors.notFound('active api key', prefix);
  }

  async authenticate(apiKey: string): Promise<{ accountId: string; prefix: string }> {
    // Shape first: garbage never reaches the database.
    if (!KEY_RE.test(apiKey)) throw Errors.unauthenticated();
    const found = await this.keys.findActiveByHash(hashApiKey(apiKey));
    if (!found) throw Errors.unauthenticated();
    return { accountId: found.account_id, prefix: found.prefix };
  }
}
