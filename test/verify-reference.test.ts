import * as tf from '@tensorflow/tfjs';
import { convReference, convSpecOf, erf } from '../src/verify/reference';

describe('float64 conv reference', () => {
  test('erf matches tabulated values to 1e-14', () => {
    // Values from mpmath.erf at 30 digits.
    const table: [number, number][] = [
      [0, 0], [0.1, 0.1124629160182848922], [0.5, 0.5204998778130465377], [1, 0.8427007929497148693],
      [2.4, 0.9993114861033549], [2.6, 0.9997639655834706], [3.5, 0.9999992569016276586], [-1.7, -0.9837904585907745],
    ];
    for (const [x, want] of table) expect(Math.abs(erf(x) - want)).toBeLessThan(1e-14);
  });

  // Sliding, strided, dilated, 'same'-padded and channelsFirst convs: the reference is written
  // from the definition, so it must agree with tfjs's own conv on all of them, not only patches.
  test.each([
    { name: 'sliding 3x3x3', kernelSize: [3, 3, 3], strides: [1, 1, 1], padding: 'valid' },
    { name: 'non-sliding 2x4x4', kernelSize: [2, 4, 4], strides: [2, 4, 4], padding: 'valid' },
    { name: 'strided same', kernelSize: [3, 2, 3], strides: [2, 2, 1], padding: 'same' },
    { name: 'dilated', kernelSize: [2, 2, 2], strides: [1, 1, 1], padding: 'valid', dilationRate: [1, 2, 2] },
    { name: 'channelsFirst gelu', kernelSize: [2, 3, 3], strides: [2, 3, 3], padding: 'valid', dataFormat: 'channelsFirst', activation: 'gelu' },
  ] as const)('agrees with tf conv3d: $name', async ({ name: _, ...config }) => {
    await tf.setBackend('cpu');
    const channelsFirst = 'dataFormat' in config;
    const inputShape = channelsFirst ? [3, 5, 7, 6] : [5, 7, 6, 3];
    const layer = tf.layers.conv3d({ filters: 4, useBias: true, biasInitializer: 'glorotUniform', ...config } as Parameters<typeof tf.layers.conv3d>[0]);
    const x = tf.randomUniform([2, ...inputShape], -1, 1, 'float32', 7);
    const y = layer.apply(x) as tf.Tensor;
    const spec = convSpecOf(layer);
    if ('unavailable' in spec) throw new Error(spec.unavailable);
    const ref = convReference(spec, x.dataSync(), inputShape, 2);
    expect([2, ...ref.rowShape]).toEqual(y.shape);
    const got = y.dataSync();
    let worst = 0;
    ref.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - got[i]))));
    // float32 conv of <= 54 terms of |w x| < 1: within a few ulps; an index slip would be O(0.1).
    expect(worst).toBeLessThan(2e-6);
    tf.dispose([x, y]);
    layer.dispose();
  });

  test('layers without a float64 reference say why', () => {
    const layer = tf.layers.conv3d({ filters: 2, kernelSize: 2, activation: 'softmax' });
    layer.apply(tf.input({ shape: [2, 2, 2, 1] }));
    expect(convSpecOf(layer)).toEqual({ unavailable: 'activation "softmax" has no float64 reference' });
    layer.dispose();
  });
});
