#!/usr/bin/env bash
# Installs the packed tool into fresh apps the way users do (npm pack, then npm install of the
# tarball next to the app's own tfjs) and checks, for each tfjs version given (default: the ends
# of the supported range), that:
#  - npm installs no tfjs-node / tfjs-node-gpu and exactly one copy of @tensorflow/tfjs-core;
#  - the app optimizes its own in-memory model with nothing on stderr, gets an instance of its
#    own tf.LayersModel back that computes the same outputs, and keeps its backend;
#  - the CLI answers --version with the package version.
# Usage: tools/check-install.sh [tfjs-version ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  min="$(node -p "require('$root/package.json').peerDependencies['@tensorflow/tfjs'].match(/>=\\s*([0-9.]+)/)[1]")"
  versions=("$min" "4.22.0")
fi
work="$(mktemp -d /tmp/tfjs-rewrite-install.XXXXXX)"
trap 'rm -rf "$work"' EXIT
tarball="$work/$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -1)"
expected_version="$(node -p "require('$root/package.json').version")"

for version in "${versions[@]}"; do
  app="$work/app-$version"
  mkdir -p "$app"
  printf '{"name":"app","version":"1.0.0","private":true}\n' > "$app/package.json"
  (cd "$app" && npm install --no-audit --no-fund --loglevel=error "@tensorflow/tfjs@$version" "@tensorflow/tfjs-backend-wasm@$version" "$tarball" > npm.log 2>&1) \
    || { cat "$app/npm.log"; echo "check-install: npm install failed for tfjs $version"; exit 1; }
  if [ -e "$app/node_modules/@tensorflow/tfjs-node" ] || [ -e "$app/node_modules/@tensorflow/tfjs-node-gpu" ]; then
    echo "check-install: npm install of the tool installed tfjs-node(-gpu) (tfjs $version)"; exit 1
  fi
  cores="$(find "$app/node_modules" -path '*/@tensorflow/tfjs-core/package.json' | wc -l)"
  [ "$cores" -eq 1 ] || { echo "check-install: $cores copies of @tensorflow/tfjs-core with tfjs $version"; exit 1; }
  cat > "$app/smoke.js" <<'JS'
const tf = require('@tensorflow/tfjs');
(async () => {
  await tf.setBackend('cpu');
  tf.tidy(() => tf.zeros([1]).dataSync()); // tfjs's own first-use banner, before we watch stderr
  const noise = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk, ...rest) => (noise.push(String(chunk)), write(chunk, ...rest));
  const { optimize } = require('tfjs-rewrite');
  const input = tf.input({ shape: [4, 8, 8, 3] });
  const conv = tf.layers.conv3d({ filters: 6, kernelSize: 4, strides: 4 }).apply(input);
  const model = tf.model({ inputs: input, outputs: tf.layers.flatten().apply(conv) });
  // The install is under test, not the speed policy (a conv this small may not pay: it would be kept).
  const result = await optimize(model, { policy: 'always' });
  const loaded = await result.load();
  const x = tf.randomUniform([3, 4, 8, 8, 3], -1, 1, 'float32', 7);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.predict(x), loaded.predict(x)))).dataSync()[0]);
  const problems = [];
  if (result.report.rewritten.length !== 1) problems.push(`rewritten ${result.report.rewritten.length} layers, expected 1`);
  if (!result.report.verification.passed) problems.push('verification failed');
  if (!(loaded instanceof tf.LayersModel)) problems.push('the result is not an instance of the app\'s tf.LayersModel');
  if (tf.getBackend() !== 'cpu') problems.push(`the app's backend changed to ${tf.getBackend()}`);
  if (!(diff < 1e-5)) problems.push(`outputs differ by ${diff}`);
  // A Sequential whose sliding Conv3D needs an Add comes back as a functional model (class Model): this tfjs loads it.
  const seq = tf.sequential({ layers: [tf.layers.conv3d({ inputShape: [4, 6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' }), tf.layers.flatten()] });
  const seqResult = await optimize(seq, { policy: 'always', passes: ['conv3d-to-conv2d-slices'] });
  const seqLoaded = await seqResult.load();
  const xs = tf.randomUniform([2, 4, 6, 6, 2], -1, 1, 'float32', 8);
  const seqDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(seq.predict(xs), seqLoaded.predict(xs)))).dataSync()[0]);
  if (seqResult.artifacts.modelTopology.class_name !== 'Model') problems.push(`the rewritten Sequential is a ${seqResult.artifacts.modelTopology.class_name}, expected Model`);
  if (!seqResult.report.verification.passed) problems.push('verification of the Sequential failed');
  if (!(seqDiff < 1e-5)) problems.push(`the Sequential's outputs differ by ${seqDiff}`);
  if (noise.length) problems.push(`${noise.length} stderr line(s), first: ${noise[0].trim().slice(0, 200)}`);
  const line = `tfjs ${tf.version.tfjs}: rewritten ${result.report.rewritten.map((r) => r.layer)} verified on ${result.report.verification.backend}, max diff ${diff}; ` +
    `a Sequential's sliding Conv3D: functional, loaded, max diff ${seqDiff}`;
  process.stdout.write(problems.length ? `FAIL ${line}: ${problems.join('; ')}\n` : `ok ${line}\n`);
  process.exitCode = problems.length ? 1 : 0;
})().catch((error) => { process.stdout.write(`FAIL ${error.stack}\n`); process.exitCode = 1; });
JS
  (cd "$app" && node smoke.js) || { echo "check-install: smoke failed with tfjs $version"; exit 1; }
  # A true guest: the app serves predictions on its own backend (cpu) while several optimize()
  # calls run concurrently (verified on wasm and cpu, in worker threads): no crash, no other
  # backend seen, every prediction exactly as before.
  cat > "$app/guest.js" <<'JS'
const tf = require('@tensorflow/tfjs');
(async () => {
  await tf.setBackend('cpu');
  const { optimize } = require('tfjs-rewrite');
  const build = (seed) => {
    const input = tf.input({ shape: [4, 8, 8, 3] });
    const conv = tf.layers.conv3d({ filters: 6, kernelSize: 4, strides: 4, kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(input);
    return tf.model({ inputs: input, outputs: tf.layers.flatten().apply(conv) });
  };
  const app = build(1);
  const x = tf.randomUniform([2, 4, 8, 8, 3], -1, 1, 'float32', 5);
  const expected = app.predict(x).dataSync().slice();
  const backends = new Set();
  let predictions = 0;
  let wrong = 0;
  let done = false;
  const serving = (async () => {
    while (!done) {
      backends.add(tf.getBackend());
      const y = app.predict(x);
      const got = await y.data();
      y.dispose();
      if (got.some((v, i) => v !== expected[i])) wrong++;
      predictions++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  const runs = await Promise.all([
    optimize(build(2), { policy: 'always', backend: 'wasm' }),
    optimize(build(3), { policy: 'always', backend: 'cpu' }),
    optimize(build(4), { policy: 'always' }),
    optimize(app, { policy: 'always', backend: 'wasm' }),
  ]);
  done = true;
  await serving;
  const problems = [];
  if (!runs.every((r) => r.report.verification && r.report.verification.passed)) problems.push('a verification failed');
  if ([...backends].join() !== 'cpu') problems.push(`the app saw backends ${[...backends]}`);
  if (wrong) problems.push(`${wrong} of ${predictions} predictions differed`);
  if (predictions === 0) problems.push('no prediction was served');
  const line = `tfjs ${tf.version.tfjs}: ${predictions} predictions served on cpu during 4 concurrent optimize() calls (${runs.map((r) => r.report.verification.backend)})`;
  process.stdout.write(problems.length ? `FAIL ${line}: ${problems.join('; ')}\n` : `ok ${line}\n`);
  process.exitCode = problems.length ? 1 : 0;
})().catch((error) => { process.stdout.write(`FAIL ${error.stack}\n`); process.exitCode = 1; });
JS
  (cd "$app" && node guest.js) || { echo "check-install: guest check failed with tfjs $version"; exit 1; }
  got="$(cd "$app" && npx --no-install tfjs-rewrite --version)"
  [ "$got" = "$expected_version" ] || { echo "check-install: --version printed '$got', expected $expected_version"; exit 1; }
  # The CLI on a model.json from disk: output readable by others under umask 022 (755/644).
  (cd "$app" && umask 022 && npx --no-install tfjs-rewrite optimize "$root/fixtures/models/video-tubelet/model.json" --out out --json > cli.json 2> cli.err) \
    || { cat "$app/cli.err"; echo "check-install: CLI optimize failed with tfjs $version"; exit 1; }
  # Nothing on stderr but the progress heartbeat (a line every 10 s of a long run, on a loaded machine).
  grep -v -E '^tfjs-rewrite: .*[0-9]+ s elapsed' "$app/cli.err" > "$app/cli.noise" || true
  [ ! -s "$app/cli.noise" ] || { cat "$app/cli.err"; echo "check-install: CLI optimize wrote to stderr with tfjs $version"; exit 1; }
  modes="$(cd "$app/out" && stat -c '%a' . * | sort -u | tr '\n' ' ')"
  [ "$modes" = "644 755 " ] || { echo "check-install: output modes are '$modes', expected 755 (folder) and 644 (files)"; exit 1; }
  (cd "$app" && npx --no-install tfjs-rewrite optimize "$root/fixtures/graph-models/graph-patch-embed-mini/model.json" --out graph-out --json > graph.json 2> graph.err) \
    || { cat "$app/graph.err"; echo "check-install: CLI optimize of a graph model failed with tfjs $version"; exit 1; }
  echo "ok tfjs $version: CLI optimize of a layers and a graph model from files, output modes $modes"
done
echo "check-install: ok for tfjs ${versions[*]}"
