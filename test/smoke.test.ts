import { optimize } from '../src';
import { committedModel, expectNoLeaks } from './helpers/tf';

test('wasm verification runs under jest', async () => {
  // policy always: a verification needs a rewrite, which the timed default may not make on a loaded machine.
  const result = await expectNoLeaks(() => optimize(committedModel('qwen3vl-patch-embed-mini'), { backend: 'wasm', policy: 'always' }));
  expect(result.report.verification?.backend).toBe('wasm');
  expect(result.report.verification?.passed).toBe(true);
});
