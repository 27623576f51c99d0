/**
 * `convertKeras3` / `tfjs-rewrite convert`: a Keras 3 LayersModel export -> the Keras 2 form stock
 * tfjs-layers loads, and nothing else (no rewrite, no optimization). The result is loaded once
 * with stock tfjs before it is handed back, so "converted" means "tfjs loads it".
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { asGuest } from '../backend/guest';
import { WriteOptions, writeModelFiles } from '../io/files';
import { ModelSource, NOT_CONVERTED, loadChecked } from '../io/source';
import type { Conversion } from '../layers/types';
import { disposeModel, instantiate } from '../formats/load';

export interface ConvertReport {
  /** What was converted (absent when the model was already in the form tfjs loads). */
  converted?: Conversion;
  notes: string[];
  /** Inputs and outputs of the loaded model: [name, shape] pairs. */
  inputs: [string, (number | null)[]][];
  outputs: [string, (number | null)[]][];
}

export interface ConvertResult {
  report: ConvertReport;
  /** The model as tfjs loads it (topology in the Keras 2 form, weights named and made for it). */
  artifacts: io.ModelArtifacts;
  save(dir: string, options?: WriteOptions): string;
}

export const ALREADY_LOADABLE = 'not a Keras 3 topology: already in the form tfjs-layers loads; written through unchanged';

async function convert(source: ModelSource): Promise<ConvertResult> {
  const { artifacts, ir } = await loadChecked(source);
  const model = await instantiate(artifacts, 'converted');
  // By the layer that makes each tensor (a Sequential has no inputNames/outputNames).
  const shapes = (tensors: tf.SymbolicTensor[]) => tensors.map((t): [string, (number | null)[]] => [t.sourceLayer.name, t.shape]);
  const inputs = shapes(model.inputs);
  const outputs = shapes(model.outputs);
  disposeModel(model);
  // A file read unconverted because stock tfjs loads it as it is already says so in a note.
  const notes = ir.converted || ir.notes.some((note) => note.startsWith(NOT_CONVERTED)) ? ir.notes : [...ir.notes, ALREADY_LOADABLE];
  const report: ConvertReport = { notes, inputs, outputs };
  if (ir.converted) report.converted = ir.converted;
  return { report, artifacts, save: (dir, options) => writeModelFiles(artifacts, dir, options) };
}

/** Converts a Keras 3 model (path, artifacts or model) to the form stock tfjs loads; see docs/keras3.md. */
export const convertKeras3 = asGuest(convert);
