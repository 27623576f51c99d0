/** Shared wording for validation messages: what was found, shortened to fit one line. */
import type { JsonObject } from '../layers/types';

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JSON-like text of a value, visiting at most a few levels and items: a hostile value may be
 * nested 100,000 deep (JSON.stringify would overflow the stack) or be megabytes long.
 */
function preview(value: unknown, depth: number): string {
  if (Array.isArray(value)) {
    if (depth > 2) return '[...]';
    const items = value.slice(0, 4).map((item) => preview(item, depth + 1));
    return `[${items.join(',')}${value.length > 4 ? ',...' : ''}]`;
  }
  if (isObject(value)) {
    if (depth > 2) return '{...}';
    const keys = Object.keys(value);
    const items = keys.slice(0, 4).map((key) => `${JSON.stringify(key.slice(0, 40))}:${preview(value[key], depth + 1)}`);
    return `{${items.join(',')}${keys.length > 4 ? ',...' : ''}}`;
  }
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return typeof value;
}

/** A value as JSON, cut at 40 characters; `nothing` for a missing key. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = preview(value, 0);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
