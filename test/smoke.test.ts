import { optimize } from '../src';
import { committedModel, expectNoLeaks } from './helpers/tf';

test('wasm verification runs under jest', async () => {
  const result = await expectNoLeaks(() => optimize(committedModel('qwen3vl-patch-embed-mini'), { backend: 'wasm' }));
  expect(result.report.verification?.backend).toBe('wasm');
  expect(result.report.verification?.passed).toBe(true);
});
