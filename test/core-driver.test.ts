/** The one driver (src/core/driver.ts) on a toy dialect: a list of named integers. */
import { Dialect, MAX_SWEEPS, runRules } from '../src/core/driver';
import type { Rule, RunSettings } from '../src/core/rule';

interface Item {
  name: string;
  value: number;
}
type Ctx = RunSettings & { items: Item[] };
type ToyRule = Rule<Item, Ctx, number, Item[]>;

/** One scope over `items`; lint fails when a value is negative (a "broken graph"). */
function toy(items: Item[]): Dialect<Item, Ctx, Item[]> {
  return {
    names: () => items.map((i) => i.name),
    root: () => ({
      path: 'toy',
      units: () => [...items],
      nameOf: (item) => item.name,
      contains: (item) => items.includes(item),
      context: (settings) => ({ ...settings, items }),
      replace: (item, replacement) => {
        items.splice(items.indexOf(item), 1, ...replacement);
        return { names: replacement.map((r) => r.name) };
      },
      lint: () => {
        const bad = items.find((i) => i.value < 0);
        if (bad) throw new Error(`${bad.name} is negative`);
      },
    }),
  };
}

/** Splits an even value v > 1 into two items v/2 (fresh names): reaches a fixed point of 1s. */
const split: ToyRule = {
  name: 'split-even',
  appliesTo: (item) => item.value > 1,
  match: (item) => (item.value % 2 === 0 ? { plan: item.value / 2 } : { refusal: `${item.value} is odd` }),
  rewrite: (item, half, context) => [{ name: context.freshName(item.name), value: half }, { name: context.freshName(item.name), value: half }],
};

/** Refuses unless forced: the way a built-in policy holds a rule back. */
const decrementIfForced: ToyRule = {
  name: 'decrement',
  appliesTo: (item) => item.value > 1,
  match: (item, context) => (context.forced ? { plan: item.value - 1 } : { refusal: 'not forced' }),
  rewrite: (item, value) => [{ name: item.name, value }],
};

test('sweeps to a fixed point, records rewrites, and keeps refusals of the last sweep only', () => {
  const items = [{ name: 'a', value: 4 }, { name: 'b', value: 3 }];
  const run = runRules(toy(items), [split]);
  expect(items.map((i) => i.value)).toEqual([1, 1, 1, 1, 3]);
  // Fresh names never reuse a taken one: a, b, then a_2, a_3 ... for the pieces.
  expect(new Set(items.map((i) => i.name)).size).toBe(items.length);
  expect(run.rewritten.map((r) => [r.layer, r.pass, r.replacement.length])).toEqual([['a', 'split-even', 2], ['a_2', 'split-even', 2], ['a_3', 'split-even', 2]]);
  expect(run.skipped).toEqual([{ layer: 'b', graph: 'toy', pass: 'split-even', reason: '3 is odd' }]);
});

test('rules are tried in priority order; the first match wins, refusals before it are recorded', () => {
  const items = [{ name: 'a', value: 6 }];
  const run = runRules(toy(items), [decrementIfForced, split], { forced: new Set(['decrement']) });
  // decrement (forced) wins on 6 -> 5 -> ... -> 1; split never gets a turn on an even value first.
  expect(run.rewritten.map((r) => r.pass)).toEqual(['decrement', 'decrement', 'decrement', 'decrement', 'decrement']);
  expect(items).toEqual([{ name: 'a', value: 1 }]);
  const unforced = runRules(toy([{ name: 'a', value: 6 }, { name: 'b', value: 3 }]), [decrementIfForced, split]);
  expect(unforced.rewritten.map((r) => r.pass)).toEqual(['split-even']);
  // The model's own unit b gets every refusal, in rule order; a_2 and a_3, made by the rewrite, get none.
  expect(unforced.skipped.map((s) => `${s.layer} ${s.pass}: ${s.reason}`)).toEqual(['b decrement: not forced', 'b split-even: 3 is odd']);
});

test('the keep hook sees each match before its rewrite and can keep the unit, quoting its reason', () => {
  const items = [{ name: 'a', value: 8 }, { name: 'b', value: 2 }];
  const seen: string[] = [];
  const run = runRules(toy(items), [split], {
    backend: 'cpu',
    keep: (candidate) => {
      seen.push(`${candidate.layer.name}:${candidate.plan}:${candidate.context.backend}:${candidate.pass.name}`);
      return candidate.layer.name === 'a' ? 'slower on cpu' : null;
    },
  });
  expect(items.map((i) => i.value)).toEqual([8, 1, 1]);
  expect(run.kept).toEqual([{ layer: 'a', graph: 'toy', pass: 'split-even', reason: 'slower on cpu' }]);
  expect(run.rewritten.map((r) => r.layer)).toEqual(['b']);
  expect(seen).toEqual(['a:4:cpu:split-even', 'b:1:cpu:split-even', 'a:4:cpu:split-even']);
});

test('a rewrite that breaks lint is an internal error naming the rule and the unit', () => {
  const negate: ToyRule = { name: 'negate', appliesTo: () => true, match: () => ({ plan: 0 }), rewrite: (item) => [{ name: item.name, value: -item.value }] };
  expect(() => runRules(toy([{ name: 'a', value: 2 }]), [negate])).toThrow('pass negate left an invalid graph after rewriting toy/a: a is negative');
});

test('a rule that matches its own output forever is stopped after MAX_SWEEPS', () => {
  const forever: ToyRule = { name: 'forever', appliesTo: () => true, match: () => ({ plan: 0 }), rewrite: (item) => [{ ...item }] };
  expect(() => runRules(toy([{ name: 'a', value: 1 }]), [forever])).toThrow(`passes still rewriting after ${MAX_SWEEPS} sweeps`);
});

test('rules with reportRefusals false stay out of the report', () => {
  const run = runRules(toy([{ name: 'b', value: 3 }]), [{ ...split, reportRefusals: false }]);
  expect(run).toEqual({ rewritten: [], skipped: [], kept: [] });
});
