/**
 * Browser tests need a headless Chromium/Chrome and puppeteer-core. In CI (CI=true) their
 * absence is a failure, never a silent skip; elsewhere the tests are skipped with the reason.
 */
import { INSTALL_HINT, findChrome } from '../../src/browser/session';

function missing(): string | null {
  try {
    require.resolve('puppeteer-core');
  } catch {
    return 'puppeteer-core is not installed (npm install)';
  }
  return findChrome() ? null : `no browser found: ${INSTALL_HINT}`;
}

export const BROWSER_MISSING = missing();

/** `describe` for tests that drive a real browser. */
export function describeBrowser(name: string, body: () => void): void {
  if (!BROWSER_MISSING) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => test('a browser is present (required in CI)', () => {
      throw new Error(`CI=true and the browser tests cannot run: ${BROWSER_MISSING}`);
    }));
  } else {
    process.stderr.write(`skipping "${name}": ${BROWSER_MISSING}\n`);
    describe.skip(name, body);
  }
}
