#!/usr/bin/env node
/**
 * Dev tool (not shipped, not in CI): runs `inspect` over every converter graph model in a folder
 * and counts the convs left alone for a shape-inference gap (the conv's input shape unknown),
 * against all convs. Convs whose reason asks for --input-shape (a model input of unknown rank or
 * size, so no size to run the model at) are counted apart: that is the model's to say. Build
 * first (`npx tsc -p .`), then:
 *
 *   node dist/tools/shape-gaps.js <folder> [--verbose]
 *
 * A model is a *.json holding a GraphDef (format "graph-model", any file name); layers models
 * and other JSON are passed over. Prints one line per model and the total.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { inspectGraphModel } from '../src/index';
import { silenceTfjsNodeBanner } from '../src/quiet';

const CONV_OPS = new Set(['Conv2D', '_FusedConv2D', 'Conv3D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative',
  'Conv2DBackpropInput', 'Conv3DBackpropInputV2']);
/** The words of a refusal that is about the tool's shape inference rather than about the conv. */
const SHAPE_GAP = /input shape[^:]* is unknown|not modelled|cannot be computed|broadcast statically|has no static shape|sits on a loop/;

function modelFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return modelFiles(full);
    if (!entry.name.endsWith('.json')) return [];
    try {
      const json = JSON.parse(fs.readFileSync(full, 'utf8'));
      return json?.format === 'graph-model' || json?.modelTopology?.node ? [full] : [];
    } catch {
      return [];
    }
  }).sort();
}

async function main(): Promise<void> {
  silenceTfjsNodeBanner();
  const [dir, ...flags] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: node dist/tools/shape-gaps.js <folder> [--verbose]\n');
    process.exit(2);
  }
  const verbose = flags.includes('--verbose');
  await tf.setBackend('cpu');
  let [convs, gaps, models, sizes] = [0, 0, 0, 0];
  const reasons = new Map<string, number>();
  for (const file of modelFiles(dir)) {
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const nodes: { name: string; op: string }[] = json.modelTopology?.node ?? [];
    const convNames = new Set(nodes.filter((n) => CONV_OPS.has(n.op)).map((n) => n.name));
    const started = Date.now();
    let line: string;
    try {
      const report = await inspectGraphModel(file, { policy: 'always', backend: 'cpu' });
      // One conv can be refused by several passes: it counts once, as a gap if any reason is one.
      const gapped = new Set<string>();
      const needSizes = new Set<string>();
      for (const skip of report.skipped) {
        if (!convNames.has(skip.layer) || !SHAPE_GAP.test(skip.reason)) continue;
        (/--input-shape/.test(skip.reason) ? needSizes : gapped).add(skip.layer);
        const key = skip.reason.replace(/"[^"]*"/g, '"…"').replace(/\[[^\]]*\]/g, '[…]').slice(0, 140);
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
      convs += convNames.size;
      gaps += gapped.size;
      sizes += needSizes.size;
      models++;
      const asking = needSizes.size ? `, ${needSizes.size} until --input-shape is given` : '';
      line = `${path.relative(dir, file)}: ${gapped.size}/${convNames.size} convs left for a shape gap${asking} (${((Date.now() - started) / 1000).toFixed(1)} s)`;
    } catch (error) {
      line = `${path.relative(dir, file)}: inspect failed: ${(error as Error).message.split('\n')[0]}`;
    }
    process.stdout.write(`${line}\n`);
  }
  process.stdout.write(`total: ${gaps} of ${convs} convs (${convs ? ((100 * gaps) / convs).toFixed(1) : 0}%) in ${models} models left for a shape-inference gap; ${sizes} more until --input-shape is given\n`);
  if (verbose || gaps) {
    for (const [reason, count] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, verbose ? 100 : 15)) process.stdout.write(`  ${count}x ${reason}\n`);
  }
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
