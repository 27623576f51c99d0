#!/usr/bin/env node
/**
 * `npm run pack-check`: packs the package, installs the tarball into an empty temp project, and
 * requires every shipped module there; checks that every relative require of a shipped file
 * resolves inside the package (the dev bench in tools/ and fixtures/ are not shipped). Exit 1
 * with one line per problem.
 */
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const repo = path.resolve(__dirname, '..');
const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-rewrite-pack-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
try {
  const tarball = execFileSync(npm, ['pack', '--silent', '--pack-destination', temp], { cwd: repo, encoding: 'utf8' }).trim().split('\n').pop();
  const project = path.join(temp, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pack-check', version: '1.0.0', private: true }));
  execFileSync(npm, ['install', '--silent', '--no-audit', '--no-fund', '--prefer-offline', path.join(temp, tarball)], { cwd: project, stdio: 'inherit' });

  const root = path.join(project, 'node_modules', 'tfjs-rewrite');
  const files = [];
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).forEach((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(file);
    else if (file.endsWith('.js')) files.push(file);
  });
  walk(root);
  const problems = [];
  for (const file of files) {
    for (const match of fs.readFileSync(file, 'utf8').matchAll(/require\("(\.[^"]+)"\)/g)) {
      const target = path.resolve(path.dirname(file), match[1]);
      const found = [target, `${target}.js`, path.join(target, 'index.js')].some((t) => fs.existsSync(t) && t.startsWith(root + path.sep));
      if (!found) problems.push(`${path.relative(root, file)}: require("${match[1]}") is not in the package`);
    }
  }
  // Load each module in the installed project (the CLI runs on load: --help instead; the jest
  // matchers need jest's global expect: a stand-in).
  const loader = `
    globalThis.expect = { extend() {} };
    const bad = [];
    for (const file of ${JSON.stringify(files)}) {
      if (file.endsWith('/cli/main.js')) continue;
      try { require(file); } catch (error) { bad.push(file + ': ' + String(error.message).split('\\n')[0]); }
    }
    require('tfjs-rewrite'); require('tfjs-rewrite/jest');
    process.stdout.write(JSON.stringify(bad));`;
  const bad = JSON.parse(execFileSync(process.execPath, ['-e', loader], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  problems.push(...bad.map((line) => path.relative(root, line)));
  // Library calls run in a worker: its script must resolve inside the installed package.
  const script = execFileSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(path.join(root, 'dist/src/workers/pool.js'))}).workerScript())`], { cwd: project, encoding: 'utf8' });
  if (!script.startsWith(root + path.sep) || !fs.existsSync(script)) problems.push(`the worker script resolves to ${script}, outside the package`);
  const help = execFileSync(process.execPath, [path.join(root, 'dist/src/cli/main.js'), '--help'], { encoding: 'utf8' });
  if (!help.startsWith('usage: tfjs-rewrite')) problems.push('the CLI does not print its usage');
  for (const line of problems) process.stderr.write(`pack-check: ${line}\n`);
  process.stdout.write(`pack-check: ${files.length} shipped modules, ${problems.length} problem(s)\n`);
  process.exitCode = problems.length ? 1 : 0;
} finally {
  fs.rmSync(temp, { recursive: true, force: true });
}
