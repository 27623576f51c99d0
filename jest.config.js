/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  setupFiles: ['<rootDir>/test/setup.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/assertions.ts'],
  globalSetup: '<rootDir>/test/global-setup.js',
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: { ignoreCodes: [151001] } }] },
  // Examples import the package by name, as users do.
  moduleNameMapper: { '^tfjs-rewrite$': '<rootDir>/src/index.ts', '^tfjs-rewrite/jest$': '<rootDir>/src/jest.ts' },
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  testTimeout: 60000,
  // On 2 cores jest runs in band; once (2026-12-05, fresh clone, all 1382 tests passed) it then
  // waited on an open handle that was not identified. CI must end: exit once the run is reported.
  forceExit: true,
};
