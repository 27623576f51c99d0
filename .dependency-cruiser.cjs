/**
 * Import rules (`npm test` runs `depcruise` first; docs/design.md "Layout"). Imports run one way,
 * from the top of this list down:
 *
 *   7 cli                          src/cli
 *   6 pipeline                     src/pipeline, src/convert, src/report, src/index.ts, src/jest.ts,
 *                                  src/api.ts and src/worker.ts (the calls in worker threads)
 *   5 policy, verify, bench        src/policy, src/verify, src/bench
 *   4 measurement and backends     src/backend, src/browser, src/workers
 *   3 rules                        passes/, src/rewrite
 *   2 formats and dialects         src/formats, src/layers, src/graphdef, src/io, src/validate, src/pass.ts
 *   1 core                         src/core, src/errors.ts, src/yield.ts, src/quiet.ts, src/version.ts
 *
 * A module may import from its own level and from any level below it, never from above, and no
 * import may close a circle. Type-only imports count too: a type that a lower level needs
 * belongs at that level.
 */
const LEVELS = [
  { name: 'core', path: '^src/(core/|errors\\.ts$|yield\\.ts$|quiet\\.ts$|version\\.ts$)' },
  { name: 'formats and dialects', path: '^src/(formats|layers|graphdef|io|validate)/|^src/pass\\.ts$' },
  { name: 'rules', path: '^(passes|src/rewrite)/' },
  { name: 'measurement and backends', path: '^src/(backend|browser|workers)/' },
  { name: 'policy, verify, bench', path: '^src/(policy|verify|bench)/' },
  { name: 'pipeline', path: '^src/(pipeline/|report/|convert/|index\\.ts$|jest\\.ts$|api\\.ts$|worker\\.ts$)' },
  { name: 'cli', path: '^src/cli/' },
];

const upward = LEVELS.slice(0, -1).map((level, i) => ({
  name: `no-upward-from-${level.name.replace(/[^a-z]+/g, '-')}`,
  severity: 'error',
  comment:
    `level ${i + 1} (${level.name}) may import only from its own level or below. Move the shared ` +
    'piece down to the lowest level that needs it, or pass it in as a parameter from above ' +
    '(see .dependency-cruiser.cjs and docs/design.md "Layout").',
  from: { path: level.path },
  to: { path: LEVELS.slice(i + 1).map((above) => `(${above.path})`).join('|') },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'this import closes a circle of modules. Break it by moving what both sides need into a ' +
        'module below both, or by passing a function in as a parameter (see docs/design.md "Layout").',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-unplaced-module',
      severity: 'error',
      comment:
        'this module is in no level of .dependency-cruiser.cjs: add its folder to the level it belongs to.',
      from: { path: '^(src|passes)/', pathNot: LEVELS.map((level) => `(${level.path})`).join('|') },
      to: {},
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
