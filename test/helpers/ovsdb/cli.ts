// The OVS command-line tools, for baselines and cross-checks against what our
// code sees: ovsdb-tool, ovs-appctl, ovs-vsctl, ovsdb-client. Each runs to
// completion, bounded by CLI_TIMEOUT_MS; a non-zero exit rejects with its stderr.
import { execFile } from 'node:child_process';

/** Paths of PEM files (what the OVS CLIs take). */
export interface TlsPaths {
  key: string;
  cert: string;
  ca: string;
}

/** A cell in OVSDB wire encoding (RFC 7047 §5.1): atoms, ["uuid",…], ["set",[…]], ["map",[[k,v]…]]. */
export type OvsdbJson = null | boolean | number | string | OvsdbJson[] | { [key: string]: OvsdbJson };
export type OvsdbDumpRow = Record<string, OvsdbJson>;

const CLI_TIMEOUT_MS = 15_000;

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a CLI to completion (bounded); reject with its stderr on non-zero exit. */
function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: CLI_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim() || stdout.trim();
          reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message.split('\n')[0]}${detail ? `\n${detail}` : ''}`, { cause: err }));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/** same as: ovsdb-tool ARGS…  (stdout) */
export async function ovsdbTool(...args: string[]): Promise<string> {
  return (await run('ovsdb-tool', args)).stdout;
}

function tlsArgs(tls: TlsPaths | undefined): string[] {
  return tls === undefined ? [] : [`--private-key=${tls.key}`, `--certificate=${tls.cert}`, `--ca-cert=${tls.ca}`];
}

/** same as: ovs-appctl -t CTL ARGS…  (stdout) */
export async function ovsAppctl(ctlPath: string, ...args: string[]): Promise<string> {
  return (await run('ovs-appctl', [`--timeout=${CLI_TIMEOUT_MS / 1000}`, '-t', ctlPath, ...args])).stdout;
}

/** same as: ovs-vsctl --db=REMOTE --no-wait ARGS…  (trimmed stdout). Pass --private-key etc. first in args for ssl:. */
export async function ovsVsctl(remote: string, ...args: string[]): Promise<string> {
  return (await run('ovs-vsctl', [`--db=${remote}`, '--no-wait', `--timeout=${CLI_TIMEOUT_MS / 1000}`, ...args])).stdout.trim();
}

/** same as: ovsdb-client transact REMOTE 'TXN'  → parsed result array (throws if any op failed) */
export async function ovsdbClientTransact(remote: string, txn: unknown[], opts: { tls?: TlsPaths } = {}): Promise<unknown[]> {
  const { stdout } = await run('ovsdb-client', [...tlsArgs(opts.tls), 'transact', remote, JSON.stringify(txn)]);
  const result = JSON.parse(stdout) as unknown[];
  const failed = result.find((r) => typeof r === 'object' && r !== null && 'error' in r);
  if (failed !== undefined) throw new Error(`ovsdb-client transact on ${remote} failed: ${JSON.stringify(failed)}`);
  return result;
}

/**
 * The real server's view of a database, for comparing with our replica.
 * same as: ovsdb-client --format=json dump REMOTE DB
 * Returns rows per table (all tables, or only `tables`), each row as {column: wire-encoded value}
 * including `_uuid` (["uuid", "…"]); rows are sorted by _uuid. (`dump` has no `_version`.)
 */
export async function ovsdbClientDump(
  remote: string,
  db: string,
  tables?: string[],
  opts: { tls?: TlsPaths } = {},
): Promise<Record<string, OvsdbDumpRow[]>> {
  // `ovsdb-client dump REMOTE DB TABLE COLUMN…` takes one table only, so dump all and filter.
  const { stdout } = await run('ovsdb-client', [...tlsArgs(opts.tls), '--format=json', 'dump', remote, db]);
  const all: Record<string, OvsdbDumpRow[]> = {};
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const tbl = JSON.parse(line) as { caption: string; headings: string[]; data: OvsdbJson[][] };
    const name = tbl.caption.replace(/ table$/, '');
    const rows = tbl.data.map((cells) => {
      const row: OvsdbDumpRow = {};
      tbl.headings.forEach((h, i) => {
        row[h] = cells[i] ?? null;
      });
      return row;
    });
    rows.sort((a, b) => uuidOf(a).localeCompare(uuidOf(b)));
    all[name] = rows;
  }
  if (tables === undefined) return all;
  const out: Record<string, OvsdbDumpRow[]> = {};
  for (const name of tables) {
    const rows = all[name];
    if (rows === undefined) throw new Error(`ovsdbClientDump: no table ${name} in ${db} (have ${Object.keys(all).join(', ')})`);
    out[name] = rows;
  }
  return out;
}

function uuidOf(row: OvsdbDumpRow): string {
  const u = row['_uuid'];
  return Array.isArray(u) && typeof u[1] === 'string' ? u[1] : '';
}

