import { graphConv3dToMatMul } from '../../passes/graph-conv3d-to-matmul';
import type { GraphPass } from './pass';

/** Built-in graph-model passes, in the order the driver tries them on each node. */
export const BUILTIN_GRAPH_PASSES: GraphPass[] = [graphConv3dToMatMul as GraphPass];
