// CLI tests spawn the compiled binary: compile first so they never run a stale dist/.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = () => {
  const root = path.resolve(__dirname, '..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
};
