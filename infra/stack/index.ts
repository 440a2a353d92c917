/** @public bench/lib/stack-process.mjs loads it from dist/ (knip does not follow that require). */
export { freePort } from './ports';
export { repoRoot } from './repo-root';
export { startPostgres, DataDirInUseError, type PostgresServer } from './postgres';
export { startRedis, pingRedis, type RedisServer } from './redis';
export { startS3 } from './s3';
export { ensureLoginRoles, isDbService } from './db-roles';
export { meshEnv, processEnv, stripeWebhookUrl } from './mesh-env';
