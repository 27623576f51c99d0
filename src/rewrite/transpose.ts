/** Weight layout helpers live with the weight bytes (src/io/transpose.ts); rules import them here. */
export { transposeValues, permuteRows } from '../io/transpose';
