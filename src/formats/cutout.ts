/**
 * A candidate rewrite cut out of its model: the matched conv alone behind an input of the shape
 * it sees there, and the same after the rules, as two small models of the model's own format.
 * The policy times the pair, the bench times the rewritten one (its subgraph column), and the
 * exact check runs the pair on integer weights. Each format builds its own (src/layers/cutout.ts,
 * src/graphdef/cutout.ts); everything that uses one reads only this.
 */
import type { io } from '@tensorflow/tfjs';
import type { FormatName } from './load';

export interface CutOut {
  format: FormatName;
  /** The conv's layer or node name. */
  layer: string;
  /** The conv's class or op ("Conv3D", "Conv2D"). */
  className: string;
  /** Input shape without the batch. */
  shape: number[];
  /** How many calls of the layer see this shape (their times add up); 1 for a GraphDef op. */
  calls: number;
  /** The conv alone, as stock tfjs loads it. */
  original: io.ModelArtifacts;
  /** The same after the whole pipeline (the replacement and its clean-ups). */
  rewritten: io.ModelArtifacts;
  /** Classes (layers) or ops (GraphDef) of the rewritten cut-out, inputs excluded, in order. */
  replacement: string[];
  /** The rule the cut-out times. */
  pass: string;
  /** Set when the cut-out runs on a part of the conv's input, not the whole (its sizes without batch). */
  cutOutOf?: number[];
}
