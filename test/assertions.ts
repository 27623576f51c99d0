// Every test must assert something that could fail: a test whose expects never run fails.
beforeEach(() => {
  expect.hasAssertions();
});

// Library calls run in a worker pool (src/workers/pool.ts): end its threads with the test file.
afterAll(async () => {
  const { closePool } = await import('../src/workers/pool');
  await closePool();
});
