export { createTestDatabase, TEST_ROLE_PASSWORDS, type TestDatabase } from './db';
export { waitFor } from './wait';
export * from './mesh';
export * from './proxy';
export * from './fixtures';
