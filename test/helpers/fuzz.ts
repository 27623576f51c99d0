/**
 * Deterministic generator of broken and hostile models, made from the small committed fixtures
 * (copied, never touched). Each case is a model.json text plus shard bytes plus optional
 * filesystem tricks (links out of the folder, directories in place of shards); the same seed
 * gives the same cases. `materialize` writes one case into a folder.
 */
import * as fs from 'fs';
import * as path from 'path';
import { COMMITTED } from './tf';
import { mulberry32 } from '../../fixtures/models';

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
type Path = (string | number)[];

export const MUTATION_KINDS = [
  'type-swap', 'delete-key', 'wrong-shape', 'bad-path', 'shard-bytes', 'garbage-json',
  'topology', 'manifest', 'weight-values', 'config-values', 'valid',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export interface FuzzCase {
  id: number;
  kind: MutationKind;
  fixture: string;
  /** One-phrase description of the mutation, for failure messages. */
  what: string;
  modelJson: string;
  shards: Map<string, Buffer>;
  /** Extra entries: a symlink (to an absolute target) or a directory. */
  links: { name: string; target: string }[];
  dirs: string[];
}

export const FUZZ_FIXTURES = [
  'pointwise-1x1x1', 'qwen3vl-patch-embed-mini', 'sequential-mixed', 'shared-two-input', 'nested-sequential',
];

/** mulberry32: small seeded PRNG, floats in [0, 1). */
export const prng = mulberry32;

class Rng {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

interface Base {
  json: JsonValue;
  shards: Map<string, Buffer>;
}

function loadBase(name: string): Base {
  const dir = path.join(COMMITTED, name);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as JsonValue;
  const shards = new Map<string, Buffer>();
  for (const file of fs.readdirSync(dir)) if (file.endsWith('.bin')) shards.set(file, fs.readFileSync(path.join(dir, file)));
  return { json, shards };
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
type Obj = { [key: string]: JsonValue };
const isObj = (value: JsonValue | undefined): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every path in the tree (objects and arrays), root excluded. */
function allPaths(value: JsonValue, prefix: Path = [], into: Path[] = []): Path[] {
  if (Array.isArray(value)) value.forEach((item, i) => { into.push([...prefix, i]); allPaths(item, [...prefix, i], into); });
  else if (isObj(value)) for (const [key, item] of Object.entries(value)) { into.push([...prefix, key]); allPaths(item, [...prefix, key], into); }
  return into;
}

function getAt(root: JsonValue, at: Path): JsonValue {
  let value = root;
  for (const key of at) value = (value as Obj)[key as string];
  return value;
}

function setAt(root: JsonValue, at: Path, value: JsonValue | undefined): void {
  const parent = getAt(root, at.slice(0, -1)) as Obj | JsonValue[];
  const key = at[at.length - 1];
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete (parent as Obj)[key as string];
  } else {
    (parent as Obj)[key as string] = value;
  }
}

const show = (at: Path) => at.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');

/** Values of every JSON type, including the edge cases parsers trip on. */
const SWAPS: JsonValue[] = [
  null, true, false, 0, -1, 1.5, 1e308, -0, 2 ** 53, '', 'x', '../..', '__proto__', [], [null], [[[]]], {}, { class_name: 'x' },
  [1, 2, 3], ['a', 0, 0], 'NaN', 4294967296,
];

/** Layer entries of the top graph (functional or Sequential). */
function layersOf(json: Obj): Obj[] {
  const config = (json.modelTopology as Obj).config;
  const layers = Array.isArray(config) ? config : (config as Obj).layers;
  return (layers as JsonValue[]).filter(isObj);
}

function specsOf(json: Obj): Obj[] {
  return ((json.weightsManifest as Obj[])[0].weights as Obj[]);
}

type Mutator = (json: Obj, rng: Rng, base: Base, out: { shards: Map<string, Buffer>; links: FuzzCase['links']; dirs: string[] }) => string;

const MUTATORS: Record<Exclude<MutationKind, 'garbage-json'>, Mutator> = {
  'type-swap': (json, rng) => {
    const paths = allPaths(json);
    const at = rng.pick(paths);
    const value = rng.pick(SWAPS);
    setAt(json, at, clone(value));
    return `${show(at)} = ${JSON.stringify(value)}`;
  },
  'delete-key': (json, rng) => {
    const at = rng.pick(allPaths(json));
    setAt(json, at, undefined);
    return `delete ${show(at)}`;
  },
  'wrong-shape': (json, rng) => {
    const specs = specsOf(json);
    const spec = rng.pick(specs);
    const shape = spec.shape as number[];
    const variants: [string, JsonValue][] = [
      ['append 1', [...shape, 1]], ['append 2', [...shape, 2]], ['drop last', shape.slice(0, -1)],
      ['first +1', [shape[0] + 1, ...shape.slice(1)]], ['last -1', [...shape.slice(0, -1), shape[shape.length - 1] - 1]],
      ['zero', shape.map(() => 0)], ['negative', [-shape[0], ...shape.slice(1)]], ['float', [shape[0] + 0.5, ...shape.slice(1)]],
      ['huge', [2 ** 40, ...shape.slice(1)]], ['reversed', [...shape].reverse()], ['string dims', shape.map(String)],
      ['scalar', []], ['flat', [shape.reduce((a, b) => a * b, 1)]],
    ];
    const [label, value] = rng.pick(variants);
    spec.shape = value;
    return `${spec.name}.shape ${label} -> ${JSON.stringify(value)}`;
  },
  'bad-path': (json, rng, base, out) => {
    const group = (json.weightsManifest as Obj[])[0];
    const real = (group.paths as string[])[0];
    const variants: [string, () => string][] = [
      ['dotdot', () => `../${real}`], ['nested dotdot', () => `sub/../../${real}`], ['absolute', () => '/etc/passwd'],
      ['url', () => 'https://example.com/w.bin'], ['file url', () => 'file:///etc/passwd'], ['encoded dotdot', () => `%2e%2e/${real}`],
      ['encoded absolute', () => '%2Fetc%2Fpasswd'], ['bad escape', () => '%zz.bin'], ['empty', () => ''], ['nul', () => 'a\u0000.bin'],
      ['missing', () => 'nope.bin'], ['backslash', () => '\\\\server\\share\\w.bin'], ['windows drive', () => 'C:\\w.bin'],
      ['dot', () => '.'], ['directory', () => { out.dirs.push('adir'); return 'adir'; }],
      ['link out', () => { out.links.push({ name: 'out.bin', target: '/etc/hostname' }); return 'out.bin'; }],
      ['link to device', () => { out.links.push({ name: 'zero.bin', target: '/dev/zero' }); return 'zero.bin'; }],
      ['dangling link', () => { out.links.push({ name: 'gone.bin', target: '/nonexistent/x.bin' }); return 'gone.bin'; }],
      ['duplicate path', () => { group.paths = [real, real]; return real; }],
      ['number', () => 7 as unknown as string],
    ];
    const [label, make] = rng.pick(variants);
    const value = make();
    if (label !== 'duplicate path') group.paths = [value];
    // The real shard stays in place: only the manifest path is hostile.
    void base;
    return `paths[0] ${label}: ${JSON.stringify(value)}`;
  },
  'shard-bytes': (json, rng, _base, out) => {
    const [name, bytes] = [...out.shards.entries()][0];
    const variants: [string, () => void][] = [
      ['truncated', () => out.shards.set(name, bytes.subarray(0, rng.int(bytes.length)))],
      ['one byte short', () => out.shards.set(name, bytes.subarray(0, bytes.length - 1))],
      ['oversized', () => out.shards.set(name, Buffer.concat([bytes, Buffer.alloc(1 + rng.int(64))]))],
      ['empty', () => out.shards.set(name, Buffer.alloc(0))],
      ['missing', () => out.shards.delete(name)],
      ['split in two', () => {
        const cut = rng.int(bytes.length);
        out.shards.set(name, bytes.subarray(0, cut));
        out.shards.set('part2.bin', bytes.subarray(cut));
        ((json.weightsManifest as Obj[])[0].paths as string[]).push('part2.bin');
      }],
      ['split, second missing', () => {
        out.shards.set(name, bytes.subarray(0, bytes.length >> 1));
        ((json.weightsManifest as Obj[])[0].paths as string[]).push('part2.bin');
      }],
    ];
    const [label, apply] = rng.pick(variants);
    apply();
    return `shard ${label}`;
  },
  topology: (json, rng) => {
    const topology = json.modelTopology as Obj;
    const layers = layersOf(json);
    const functional = topology.class_name !== 'Sequential';
    const withInbound = layers.filter((l) => Array.isArray(l.inbound_nodes) && (l.inbound_nodes as JsonValue[]).length > 0);
    const named = (l: Obj) => (functional ? (l.name as string) : ((l.config as Obj).name as string));
    const variants: [string, () => void][] = [
      ['duplicate name', () => {
        const [a, b] = [layers[0], layers[layers.length - 1]];
        if (functional) b.name = a.name as string;
        ((b.config as Obj) ?? {}).name = named(a);
      }],
      ['unknown class', () => { rng.pick(layers).class_name = rng.pick(['MyCustomLayer', 'Conv4D', 'conv3d', 'TFOpLambda']); }],
      ['container class swap', () => { rng.pick(layers).class_name = rng.pick(['Sequential', 'Functional', 'Model']); }],
      ['topology class', () => { topology.class_name = rng.pick(['Sequential', 'Model', 'Graph', '']); }],
      ['empty layers', () => {
        if (Array.isArray(topology.config)) topology.config = [];
        else (topology.config as Obj).layers = [];
      }],
      ['deep nesting', () => {
        let inner: Obj = { class_name: 'Sequential', config: { name: 'n0', layers: [{ class_name: 'Dense', config: { name: 'd', units: 1 } }] } };
        for (let i = 1; i < 200; i++) inner = { class_name: 'Sequential', config: { name: `n${i}`, layers: [inner] } };
        json.modelTopology = inner;
      }],
    ];
    if (functional && withInbound.length) {
      const target = rng.pick(withInbound);
      const ref = () => ((target.inbound_nodes as JsonValue[][])[0][0] as JsonValue[]);
      variants.push(
        ['dangling ref', () => { ref()[0] = 'no_such_layer'; }],
        ['self cycle', () => { ref()[0] = target.name as string; ref()[1] = 0; }],
        ['cycle', () => {
          // The first layer that consumes `target` feeds back into it.
          const consumer = withInbound.find((l) => JSON.stringify(l.inbound_nodes).includes(`"${target.name}"`)) ?? target;
          ref()[0] = consumer.name as string;
          ref()[1] = 0;
        }],
        ['node index out of range', () => { ref()[1] = rng.pick([1, 5, 1000, -1]); }],
        ['tensor index out of range', () => { ref()[2] = rng.pick([1, 7]); }],
        ['keras3 inbound', () => { (target.inbound_nodes as JsonValue[])[0] = { args: [{ class_name: '__keras_tensor__' }], kwargs: {} }; }],
        ['keras3 io', () => { (topology.config as Obj).input_layers = ['x', 0, 0]; }],
        ['keras3 dtype policy', () => { (target.config as Obj).dtype = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' } }; }],
        ['empty inbound node', () => { (target.inbound_nodes as JsonValue[])[0] = []; }],
        ['input layer gets inbound', () => {
          const input = layers.find((l) => l.class_name === 'InputLayer')!;
          input.inbound_nodes = [[[target.name as string, 0, 0, {}]]];
        }],
        ['output is missing', () => { (topology.config as Obj).output_layers = [['ghost', 0, 0]]; }],
        ['no outputs', () => { (topology.config as Obj).output_layers = []; }],
        ['input not InputLayer', () => { (topology.config as Obj).input_layers = [[target.name as string, 0, 0]]; }],
        ['extra call', () => { (target.inbound_nodes as JsonValue[]).push(clone((target.inbound_nodes as JsonValue[])[0])); }],
      );
    }
    const [label, apply] = rng.pick(variants);
    apply();
    return label;
  },
  manifest: (json, rng) => {
    const specs = specsOf(json);
    const spec = rng.pick(specs);
    const variants: [string, () => void][] = [
      ['dtype', () => { spec.dtype = rng.pick(['float16', 'float64', 'string', 'complex64', 'int32', 'bool', 'FLOAT32', 7]); }],
      ['duplicate name', () => { specs.push(clone(spec)); }],
      ['renamed (unowned)', () => { spec.name = `ghost/${(spec.name as string).split('/').pop()}`; }],
      ['suffix renamed', () => { spec.name = `${(spec.name as string).split('/')[0]}/weights`; }],
      ['no scope', () => { spec.name = 'kernel'; }],
      ['dropped spec', () => { specs.splice(specs.indexOf(spec), 1); }],
      ['reordered', () => { specs.reverse(); }],
      ['quantization garbage', () => { spec.quantization = rng.pick<JsonValue>([{ dtype: 'uint8' }, { dtype: 'int4', scale: 1, min: 0 }, 'q', { dtype: 'uint8', scale: 'x', min: 0 }]); }],
      ['quantized uint8', () => { spec.quantization = { dtype: 'uint8', scale: 0.01, min: -1 }; }],
      ['manifest not array', () => { json.weightsManifest = rng.pick<JsonValue>([{}, 'w.bin', 3]); }],
      ['group without weights', () => { delete (json.weightsManifest as Obj[])[0].weights; }],
      ['two groups', () => { (json.weightsManifest as JsonValue[]).push({ paths: [], weights: [] }); }],
    ];
    const [label, apply] = rng.pick(variants);
    apply();
    return `${spec.name}: ${label}`;
  },
  'weight-values': (json, rng, _base, out) => {
    const [name, bytes] = [...out.shards.entries()][0];
    const copy = Buffer.from(bytes);
    const floats = new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength >> 2);
    const index = rng.int(floats.length);
    const variants: [string, number][] = [['NaN', NaN], ['+Inf', Infinity], ['-Inf', -Infinity], ['finite change', rng.next() * 2 - 1], ['zero', 0]];
    const [label, value] = rng.pick(variants);
    floats[index] = value;
    out.shards.set(name, copy);
    void json;
    return `float ${index} = ${label}`;
  },
  'config-values': (json, rng) => {
    const layers = layersOf(json);
    const candidates = layers.filter((l) => isObj(l.config) && l.class_name !== 'InputLayer');
    const layer = rng.pick(candidates.length ? candidates : layers);
    const config = (layer.config ?? {}) as Obj;
    const key = rng.pick(['kernel_size', 'strides', 'padding', 'filters', 'data_format', 'dilation_rate', 'activation', 'use_bias', 'units', 'target_shape', 'batch_input_shape', 'groups']);
    const value = rng.pick<JsonValue>([null, 0, -2, 2.5, 'same', 'causal', 'channels_first', 'bogus', [1, 1], [2, 2, 2], [0, 0, 0], [1e9, 1, 1], true, {}, 'gelu', [null, 3, 4]]);
    config[key] = value;
    layer.config = config;
    return `${layer.class_name}.${key} = ${JSON.stringify(value)}`;
  },
  valid: () => 'unchanged',
};

function garbageJson(text: string, rng: Rng): [string, string] {
  const variants: [string, () => string][] = [
    ['truncated', () => text.slice(0, rng.int(text.length))],
    ['byte flip', () => { const i = rng.int(text.length); return text.slice(0, i) + String.fromCharCode(rng.int(128)) + text.slice(i + 1); }],
    ['empty', () => ''], ['null', () => 'null'], ['array', () => '[]'], ['number', () => '42'], ['string', () => '"model"'],
    ['bom', () => `\ufeff${text}`], ['deep arrays', () => '['.repeat(200000) + ']'.repeat(200000)],
    ['deep objects', () => '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)],
    ['trailing garbage', () => `${text}}}`], ['nul bytes', () => '\u0000'.repeat(10)],
    ['no topology', () => JSON.stringify({ format: 'layers-model', weightsManifest: [] })],
    ['graph model', () => JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] })],
    ['topology is a string', () => JSON.stringify({ modelTopology: 'Model', weightsManifest: [] })],
    ['duplicate keys', () => text.replace('"modelTopology"', '"modelTopology": null, "modelTopology"')],
  ];
  const [label, make] = rng.pick(variants);
  return [make(), label];
}

/** Kinds in proportion: weighted toward mutations whose outcome is least predictable. */
const WEIGHTS: [MutationKind, number][] = [
  ['type-swap', 20], ['delete-key', 14], ['wrong-shape', 8], ['bad-path', 8], ['shard-bytes', 7], ['garbage-json', 7],
  ['topology', 12], ['manifest', 9], ['weight-values', 6], ['config-values', 7], ['valid', 2],
];

export function generateCases(count: number, seed = 20261124): FuzzCase[] {
  const rng = new Rng(prng(seed));
  const bases = new Map(FUZZ_FIXTURES.map((name) => [name, loadBase(name)]));
  const total = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
  const cases: FuzzCase[] = [];
  for (let id = 0; id < count; id++) {
    let roll = rng.int(total);
    const kind = WEIGHTS.find(([, w]) => (roll -= w) < 0)![0];
    const fixture = rng.pick(FUZZ_FIXTURES);
    const base = bases.get(fixture)!;
    const json = clone(base.json) as Obj;
    const out = { shards: new Map(base.shards), links: [] as FuzzCase['links'], dirs: [] as string[] };
    let modelJson: string;
    let what: string;
    if (kind === 'garbage-json') {
      [modelJson, what] = garbageJson(JSON.stringify(json), rng);
    } else {
      what = MUTATORS[kind](json, rng, base, out);
      modelJson = JSON.stringify(json);
    }
    cases.push({ id, kind, fixture, what, modelJson, shards: out.shards, links: out.links, dirs: out.dirs });
  }
  return cases;
}

/** Writes a case into `dir` (created); returns the model.json path. */
export function materialize(fuzzCase: FuzzCase, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), fuzzCase.modelJson);
  for (const [name, bytes] of fuzzCase.shards) fs.writeFileSync(path.join(dir, name), bytes);
  for (const link of fuzzCase.links) fs.symlinkSync(link.target, path.join(dir, link.name));
  for (const sub of fuzzCase.dirs) fs.mkdirSync(path.join(dir, sub));
  return path.join(dir, 'model.json');
}

/** Files (bytes), links (targets) and folders under `dir`, never following a link (one may point at /dev/zero). */
export function snapshotTree(dir: string): string {
  const entries: string[] = [];
  if (!fs.existsSync(dir)) return '(missing)';
  for (const name of (fs.readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const file = path.join(dir, name);
    const stats = fs.lstatSync(file);
    if (stats.isSymbolicLink()) entries.push(`${name} -> ${fs.readlinkSync(file)}`);
    else if (stats.isFile()) entries.push(`${name} ${fs.readFileSync(file).toString('base64')}`);
    else entries.push(`${name}/`);
  }
  return entries.join('\n');
}

/**
 * A hang inside a synchronous loop blocks the event loop, so no in-process timer (nor jest's
 * timeout) can fire. This watchdog is a worker thread: it watches a shared heartbeat and, when
 * one case has run for `limitMs`, names it on stderr and kills the process, so CI fails loudly.
 */
export function startWatchdog(limitMs: number): { beat(caseId: number): void; stop(): void } {
  const shared = new Int32Array(new SharedArrayBuffer(8)); // [case id, beat counter]
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Worker } = require('worker_threads') as typeof import('worker_threads');
  const worker = new Worker(`
    const { workerData } = require('worker_threads');
    const shared = workerData.shared;
    let last = -1, since = Date.now();
    setInterval(() => {
      const beat = Atomics.load(shared, 1);
      if (beat !== last) { last = beat; since = Date.now(); return; }
      if (Date.now() - since > workerData.limitMs) {
        // fs.writeSync: a worker's process.stderr goes through the (blocked) main thread.
        require('fs').writeSync(2, 'fuzz watchdog: case #' + Atomics.load(shared, 0) + ' hung for ' + workerData.limitMs + ' ms\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, 250);
  `, { eval: true, workerData: { shared, limitMs } });
  worker.unref();
  return {
    beat(caseId: number) {
      Atomics.store(shared, 0, caseId);
      Atomics.add(shared, 1, 1);
    },
    stop: () => void worker.terminate(),
  };
}
