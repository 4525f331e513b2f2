// The one reader of TLS files (keys, certificates, CAs, CRLs) for both sides of
// the host API: the DPU agent (its server cert, the host CA, the CRL; its OVSDB/OVN
// client certs) and the untrusted host side (its client cert). Node built-ins
// only: the host side may import this module and nothing of the agent.
//
// Rotation contract: files may be replaced in place, by rename (mv over), or by a
// Kubernetes secret volume's `..data` symlink swap. Watching a file's inode loses
// it after a rename, so the watcher watches the parent directories (fs.watch) and
// also polls (some file systems send no events; inotify watches can run out). Each
// check reads every file and compares a content fingerprint: a change is applied
// only if `build` accepts the new set; a refused set keeps the old material and is
// reported once (not on every poll) until the files change again.
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** A TLS file could not be read. `file` is the caller's name for it (e.g. `tls.cert`). */
export class TlsFilesError extends Error {
  constructor(
    readonly file: string,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'TlsFilesError';
  }
}

export type TlsPathSet<K extends string> = { readonly [k in K]: string };
export type TlsFileSet<K extends string> = { readonly [k in K]: Buffer };

/** Reads every named file; the first unreadable one throws TlsFilesError naming it. */
export async function readTlsFiles<K extends string>(paths: TlsPathSet<K>): Promise<TlsFileSet<K>> {
  const out = {} as { [k in K]: Buffer };
  for (const name of Object.keys(paths) as K[]) {
    const path = paths[name];
    try {
      out[name] = await readFile(path);
    } catch (err) {
      throw new TlsFilesError(name, path, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

function fingerprint(files: Readonly<Record<string, Buffer>>): string {
  const h = createHash('sha256');
  for (const k of Object.keys(files).sort()) {
    h.update(`${k}\u0000${files[k]!.length}\u0000`);
    h.update(files[k]!);
  }
  return h.digest('hex');
}

export interface TlsWatchOptions<K extends string, T> {
  readonly paths: TlsPathSet<K>;
  /** Turns the bytes into usable material; throws to refuse them (the old material stays). */
  build(files: TlsFileSet<K>): T;
  /** A new set was accepted (not called for the initial load). */
  onChange?(material: T): void;
  /** A new set could not be read or was refused; the old material stays in use. */
  onError?(err: Error): void;
  /** Quiet time after a file event before reading (a rotation writes key and cert separately). */
  readonly debounceMs?: number;
  /** Poll interval, the fallback for file systems without events; 0 = no polling. */
  readonly pollMs?: number;
}

export type CheckResult = 'unchanged' | 'applied' | 'refused';

/** Loaded TLS material that follows its files. Created by `watchTlsFiles`. */
export class TlsFilesWatcher<K extends string, T> {
  private fp: string;
  private refusedKey: string | undefined;
  private readonly watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<CheckResult> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly opts: TlsWatchOptions<K, T>,
    private material: T,
    files: TlsFileSet<K>,
  ) {
    this.fp = fingerprint(files);
  }

  get current(): T {
    return this.material;
  }

  /** Starts watching (directories + poll). Events that cannot be watched fall back to the poll. */
  start(): this {
    const debounceMs = this.opts.debounceMs ?? 200;
    for (const dir of new Set(Object.values<string>(this.opts.paths).map((p) => dirname(p)))) {
      try {
        const w = watch(dir, { persistent: false }, () => {
          if (this.debounce) clearTimeout(this.debounce);
          this.debounce = setTimeout(() => void this.check(), debounceMs);
          this.debounce.unref();
        });
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch {
        // No inotify here (or out of watches): the poll below still sees changes.
      }
    }
    const pollMs = this.opts.pollMs ?? 10_000;
    if (pollMs > 0) {
      this.pollTimer = setInterval(() => void this.check(), pollMs);
      this.pollTimer.unref();
    }
    return this;
  }

  /** Reads the files now; applies them if they changed and `build` accepts them. Never throws. */
  check(): Promise<CheckResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.checkOnce().finally(() => {
      this.running = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.check();
      }
    });
    return this.running;
  }

  private async checkOnce(): Promise<CheckResult> {
    if (this.closed) return 'unchanged';
    let files: TlsFileSet<K>;
    try {
      files = await readTlsFiles(this.opts.paths);
    } catch (err) {
      return this.refuse(`read:${(err as Error).message}`, err as Error);
    }
    const fp = fingerprint(files);
    if (fp === this.fp) {
      this.refusedKey = undefined;
      return 'unchanged';
    }
    let next: T;
    try {
      next = this.opts.build(files);
    } catch (err) {
      return this.refuse(`build:${fp}`, err as Error);
    }
    this.fp = fp;
    this.refusedKey = undefined;
    this.material = next;
    this.opts.onChange?.(next);
    return 'applied';
  }

  private refuse(key: string, err: Error): CheckResult {
    // Report a given bad state once; the poll would otherwise repeat it every interval.
    if (this.refusedKey !== key) this.opts.onError?.(err);
    this.refusedKey = key;
    return 'refused';
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounce) clearTimeout(this.debounce);
  }
}

/**
 * Loads the files once (a failure throws: at start there is no old material to
 * keep) and returns a started watcher holding the material.
 */
export async function watchTlsFiles<K extends string, T>(opts: TlsWatchOptions<K, T>): Promise<TlsFilesWatcher<K, T>> {
  const files = await readTlsFiles(opts.paths);
  return new TlsFilesWatcher(opts, opts.build(files), files).start();
}

export interface ClientTlsMaterial {
  readonly key?: Buffer;
  readonly cert?: Buffer;
  readonly ca: Buffer;
}

/**
 * An `http2.connect` `createConnection` that opens each new connection with the
 * material current at that moment (TLS 1.3, ALPN h2): a client whose cert files
 * rotate uses the new cert on its next connection without being rebuilt.
 */
export function tlsConnector(
  material: () => ClientTlsMaterial,
  extra: Pick<ConnectionOptions, 'servername' | 'maxVersion'> = {},
): (authority: URL) => TLSSocket {
  return (authority: URL): TLSSocket => {
    const host = authority.hostname.replace(/^\[|\]$/g, '');
    const m = material();
    return tlsConnect({
      host,
      port: Number(authority.port || 443),
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.3',
      ca: m.ca,
      ...(m.key ? { key: m.key } : {}),
      ...(m.cert ? { cert: m.cert } : {}),
      // SNI carries names only (RFC 6066 §3); the cert's IP SAN is checked against `host`.
      ...(extra.servername ? { servername: extra.servername } : isIP(host) ? {} : { servername: host }),
      ...(extra.maxVersion ? { maxVersion: extra.maxVersion } : {}),
    });
  };
}
