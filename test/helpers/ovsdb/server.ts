// A standalone ovsdb-server on a fresh database in a temp dir, on its own unix
// socket and, on request, 127.0.0.1 TCP and SSL ports (the contract of every
// server we start is in process.ts).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCert, makeCa } from '../../../scripts/labkit/certs.ts';
import { type TlsPaths, ovsdbClientTransact, ovsdbTool } from './cli.ts';
import { type OvsdbProcess, PortInUseError, SCHEMAS, type SchemaName, START_ATTEMPTS, ServerProcess, type TeardownHost, withControls } from './process.ts';
import { checkSockPath, makeDir, makeTempDir, removeAtExit, reservePort, serverEnv } from './sandbox.ts';

/** PEM contents (what our jsonrpc transport takes). */
export interface TlsPem {
  key: string;
  cert: string;
  ca: string;
}

export interface StartOvsdbServerOptions {
  /** default 'vswitch' */
  schema?: SchemaName;
  /** also listen on ptcp:PORT:127.0.0.1 */
  tcp?: boolean;
  /** also listen on pssl:PORT:127.0.0.1 with a throwaway CA (client certs in `tls`) */
  ssl?: boolean;
  /** use this dir (created if missing, must hold no database yet, NOT removed on teardown); default: a fresh temp dir, removed on teardown */
  dir?: string;
  /**
   * Insert the root row the system scripts create (ovs-vsctl init / ovn-nbctl init):
   * Open_vSwitch for 'vswitch', NB_Global for 'ovn-nb'. Default true for those two;
   * 'ovn-sb' has no such row outside ovn-northd, so it is left empty.
   */
  init?: boolean;
  /** extra ovsdb-server arguments, e.g. ['-vjsonrpc:file:dbg'] */
  extraArgs?: string[];
  /** readiness bound, default 10000 */
  readyTimeoutMs?: number;
}

export interface OvsdbServer extends OvsdbProcess {
  readonly dir: string;
  readonly dbName: string;
  readonly schema: SchemaName;
  /** 'tcp:127.0.0.1:PORT' when opts.tcp */
  readonly tcpRemote?: string;
  /** 'ssl:127.0.0.1:PORT' when opts.ssl */
  readonly sslRemote?: string;
  /** client key/cert + CA, PEM contents, when opts.ssl */
  readonly tls?: TlsPem;
  /** the same client files as paths (for ovsdb-client/ovs-vsctl), when opts.ssl */
  readonly tlsPaths?: TlsPaths;
}

const DEFAULT_READY_MS = 10_000;

// ---------------------------------------------------------------------------
// PKI (one throwaway CA per process)

interface ServerPki {
  server: TlsPaths;
  client: TlsPaths;
  clientPem: TlsPem;
}

let pkiPromise: Promise<ServerPki> | undefined;

/** CA + server cert (SAN 127.0.0.1, localhost) + client cert, issued once per process (scripts/labkit/certs.ts). */
function serverPki(): Promise<ServerPki> {
  pkiPromise ??= makeServerPki().catch((err: unknown) => {
    pkiPromise = undefined;
    throw err;
  });
  return pkiPromise;
}

async function makeServerPki(): Promise<ServerPki> {
  const dir = await makeTempDir('ovsdb-pki-');
  removeAtExit(dir);
  const ca = await makeCa(dir, 'ca');
  const [server, client] = await Promise.all([
    issueCert(ca, 'server', { cn: 'ovsdb-server', usage: 'server', san: ['IP:127.0.0.1', 'DNS:localhost'] }),
    issueCert(ca, 'client', { cn: 'dpu-agent-test', usage: 'client' }),
  ]);
  const paths = (c: { keyPath: string; certPath: string }): TlsPaths => ({ key: c.keyPath, cert: c.certPath, ca: ca.certPath });
  return {
    server: paths(server),
    client: paths(client),
    clientPem: {
      key: await readFile(client.keyPath, 'utf8'),
      cert: await readFile(client.certPath, 'utf8'),
      ca: await readFile(ca.certPath, 'utf8'),
    },
  };
}

// ---------------------------------------------------------------------------
// standalone server

/**
 * Start a standalone ovsdb-server on a fresh database.
 * same as: ovsdb-tool create DB SCHEMA; ovsdb-server DB --remote=punix:… [--remote=ptcp:PORT:127.0.0.1]
 *          [--remote=pssl:PORT:127.0.0.1 --private-key … --certificate … --ca-cert …] --unixctl … --pidfile … --no-chdir --log-file …
 */
export async function startOvsdbServer(t: TeardownHost, opts: StartOvsdbServerOptions = {}): Promise<OvsdbServer> {
  const schema = opts.schema ?? 'vswitch';
  const { path: schemaPath, dbName, root } = SCHEMAS[schema];
  const { dir, owned } = await makeDir('ovsdb-', opts.dir);
  const readyMs = opts.readyTimeoutMs ?? DEFAULT_READY_MS;

  let proc: ServerProcess | undefined;
  t.teardown(async () => {
    await proc?.stop();
    if (owned) await rm(dir, { recursive: true, force: true });
  });

  const dbFile = join(dir, `${dbName}.db`);
  const sockPath = join(dir, 'db.sock');
  const ctlPath = join(dir, 'ovsdb-server.ctl');
  const logFile = join(dir, 'ovsdb-server.log');
  checkSockPath(sockPath);
  checkSockPath(ctlPath);
  await ovsdbTool('create', dbFile, schemaPath);

  const pki = opts.ssl === true ? await serverPki() : undefined;
  let tcpPort: number | undefined;
  let sslPort: number | undefined;
  for (let attempt = 1; ; attempt++) {
    tcpPort = opts.tcp === true ? await reservePort() : undefined;
    sslPort = pki !== undefined ? await reservePort() : undefined;
    const argv = [
      dbFile,
      `--remote=punix:${sockPath}`,
      ...(tcpPort !== undefined ? [`--remote=ptcp:${tcpPort}:127.0.0.1`] : []),
      ...(sslPort !== undefined && pki !== undefined
        ? [`--remote=pssl:${sslPort}:127.0.0.1`, `--private-key=${pki.server.key}`, `--certificate=${pki.server.cert}`, `--ca-cert=${pki.server.ca}`]
        : []),
      `--unixctl=${ctlPath}`,
      `--pidfile=${join(dir, 'ovsdb-server.pid')}`,
      '--no-chdir',
      `--log-file=${logFile}`,
      '-vconsole:off',
      ...(opts.extraArgs ?? []),
    ];
    const ports = [tcpPort, sslPort].filter((p): p is number => p !== undefined);
    proc = new ServerProcess({ label: `ovsdb-server(${schema}) in ${dir}`, argv, sockPath, logFile, ports, env: serverEnv(dir) });
    proc.spawn();
    try {
      await proc.waitReady(readyMs, true);
      break;
    } catch (err) {
      await proc.kill9();
      if (!(err instanceof PortInUseError) || attempt >= START_ATTEMPTS) throw err;
    }
  }

  const unixRemote = `unix:${sockPath}`;
  if (opts.init ?? (root !== undefined)) {
    if (root === undefined) throw new Error(`init: schema ${schema} has no root row to create`);
    // same as: ovs-vsctl --no-wait init / ovn-nbctl init on a fresh db (insert the root row)
    await ovsdbClientTransact(unixRemote, [dbName, { op: 'insert', table: root, row: {} }]);
  }

  return withControls(proc, readyMs, {
    dir,
    dbFile,
    dbName,
    schema,
    unixRemote,
    ...(tcpPort !== undefined ? { tcpRemote: `tcp:127.0.0.1:${tcpPort}` } : {}),
    ...(sslPort !== undefined ? { sslRemote: `ssl:127.0.0.1:${sslPort}` } : {}),
    ...(pki !== undefined ? { tls: pki.clientPem, tlsPaths: pki.client } : {}),
    ctlPath,
    logFile,
  });
}
