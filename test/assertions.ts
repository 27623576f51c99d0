// Every test must assert something that could fail: a test whose expects never run fails.
beforeEach(() => {
  expect.hasAssertions();
});
