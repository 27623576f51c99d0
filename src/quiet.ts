/**
 * Drops tfjs's one-time "install tfjs-node" banner: our tools report the backend they chose
 * (and why others were passed over), so the banner is only noise on stderr.
 */
export function silenceTfjsNodeBanner(): void {
  const warn = console.warn.bind(console);
  console.warn = (...parts: unknown[]) => {
    if (String(parts[0]).includes('looks like you are running TensorFlow.js in Node.js')) return;
    warn(...parts);
  };
}
