/** The package version, read from the package.json above this file (src/ in tests, dist/src/ installed); the CLI prints it, decisions files record it. */
import * as fs from 'fs';
import * as path from 'path';

export function packageVersion(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (json.name === 'tfjs-rewrite') return json.version;
    }
    if (path.dirname(dir) === dir) throw new Error('package.json of tfjs-rewrite not found');
  }
}
