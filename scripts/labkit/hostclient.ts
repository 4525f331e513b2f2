// Drives hostside.ts inside a host netns: one child process per HostSide, JSON
// lines both ways, every command bounded by a timeout. Stopped by its own pid.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './chassis.ts';
import { apiUrl } from './plan.ts';
import { pkiDir } from './pki.ts';
import type { LabRun } from './run.ts';
import type { DpuState } from './state.ts';

export type Reply = Record<string, unknown> & { ok: boolean };
export interface CallReply extends Reply {
  ms: number;
  res?: Record<string, unknown>;
  code?: string;
  reason?: string | null;
  message?: string;
}

export interface AttachmentKeyJson {
  pod: { namespace: string; name: string; uid: string };
  sandboxId: string;
  ifname: string;
}

export class HostSide {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; timer: NodeJS.Timeout }>();
  private ready!: Promise<void>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  /** Starts the toolkit in `host.hostNs`, aimed at `target`'s host API (default: its own DPU). */
  static async start(run: LabRun, host: DpuState, target: DpuState = host): Promise<HostSide> {
    const child = spawn(
      'ip',
      ['netns', 'exec', host.hostNs, process.execPath, '--import', 'tsx', 'scripts/labkit/hostside.ts', '--pki', pkiDir(run), '--url', apiUrl(target.k)],
      { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const h = new HostSide(child);
    child.stderr.on('data', () => undefined);
    h.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('hostside did not start')), 30_000);
      const rl = createInterface({ input: child.stdout });
      rl.on('line', (line) => {
        let m: Reply & { id?: number; ready?: boolean };
        try {
          m = JSON.parse(line) as Reply & { id?: number };
        } catch {
          return;
        }
        if (m.ready) {
          clearTimeout(timer);
          resolve();
          return;
        }
        const p = m.id !== undefined ? h.pending.get(m.id) : undefined;
        if (p) {
          clearTimeout(p.timer);
          h.pending.delete(m.id as number);
          p.resolve(m);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`hostside exited ${code}`));
        for (const [, p] of h.pending) p.resolve({ ok: false, error: 'hostside exited' });
        h.pending.clear();
      });
    });
    await h.ready;
    return h;
  }

  send<T extends Reply = Reply>(cmd: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: `no answer within ${timeoutMs} ms` } as unknown as T);
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (r: Reply) => void, timer });
      this.child.stdin.write(`${JSON.stringify({ id, ...cmd })}\n`);
    });
  }

  call(method: 'allocateVf' | 'releaseVf' | 'getVf' | 'listVfs' | 'status', req: Record<string, unknown>, opts: { as?: string; timeoutMs?: number; url?: string } = {}): Promise<CallReply> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return this.send<CallReply>({ op: 'call', method, req, as: opts.as ?? 'host1', timeoutMs, ...(opts.url ? { url: opts.url } : {}) }, timeoutMs + 10_000);
  }

  allocate(attachment: AttachmentKeyJson, opts: { as?: string; timeoutMs?: number } = {}): Promise<CallReply> {
    return this.call('allocateVf', { attachment }, opts);
  }

  release(attachment: AttachmentKeyJson, opts: { as?: string; timeoutMs?: number } = {}): Promise<CallReply> {
    return this.call('releaseVf', { attachment }, opts);
  }

  /** Stops the child by its pid (stdin closed first, SIGKILL if it lingers). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
