export { freePort } from './ports';
export { repoRoot } from './repo-root';
export { startPostgres, DataDirInUseError, type PostgresOptions, type PostgresServer } from './postgres';
export { startRedis, ensureRedisInstalled, pingRedis, type RedisOptions, type RedisServer } from './redis';
export { startS3, type S3Options, type S3Server } from './s3';
export { meshEnv, processEnv, stripeWebhookUrl, type MeshEnvInput, type MeshProcess } from './mesh-env';
