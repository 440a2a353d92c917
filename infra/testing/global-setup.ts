// Placeholder until the stack launcher lands: starts nothing.
export default async function globalSetup(): Promise<void> {}
