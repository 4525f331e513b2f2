// Bench dispatcher: `npm run bench -- NAME [args…]` → test/bench/NAME.ts's main(args).
// Each bench prints human-readable lines, then ends with one JSON line {"bench":NAME,…}.
const BENCHES: Record<string, () => Promise<{ main(args: string[]): Promise<number> }>> = {
  attach: () => import('./attach.ts'),
  lab: () => import('./lab.ts'),
  plug: () => import('./plug.ts'),
  reboot: () => import('./reboot.ts'),
  scrape: () => import('./scrape.ts'),
  'tc-dump': () => import('./tc-dump.ts'),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [args…]\n`);
  process.exitCode = 2;
} else {
  load()
    .then((m) => m.main(args))
    .then(
      (code) => {
        process.exitCode = code;
      },
      (err: unknown) => {
        process.stderr.write(`bench ${name}: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exitCode = 1;
      },
    );
}
