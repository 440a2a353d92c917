import { stopStack } from './global-setup';

/** Stops what the global setup started (nothing when it used external servers). */
export default async function globalTeardown(): Promise<void> {
  const stack = globalThis.__ATELIER_TEST_STACK__;
  globalThis.__ATELIER_TEST_STACK__ = undefined;
  if (stack) await stopStack(stack);
}
