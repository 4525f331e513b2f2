import { readFileSync } from 'node:fs';

/** The package version; esbuild inlines the define in release bundles. */
export const VERSION: string = (() => {
  const injected = (globalThis as { __DPU_AGENT_VERSION__?: string }).__DPU_AGENT_VERSION__;
  if (injected) return injected;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
