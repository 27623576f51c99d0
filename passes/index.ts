import type { Pass } from '../src/pass';
import { conv3dToDense } from './conv3d-to-dense';

/** Built-in passes in the order the driver tries them on each layer. */
export const BUILTIN_PASSES: Pass[] = [conv3dToDense as Pass];
