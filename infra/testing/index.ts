export { createTestDatabase, type TestDatabase } from './db';
export { waitFor, type WaitOptions } from './wait';
export * from './mesh';
export * from './proxy';
export * from './fixtures';
