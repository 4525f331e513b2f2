// Opens the byte stream under a JSON-RPC connection: the only place that
// knows about sockets and TLS. Resolves once the stream is usable (TCP
// connected, or TLS handshake done), never earlier.

import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { ConfigError, ConnectError, TimeoutError } from '../errors.ts';
import { formatRemote, type Remote } from './remote.ts';

/** PEM contents (not file paths), as OVS takes them from --private-key/--certificate/--ca-cert. */
export interface TlsFiles {
  key: string | Buffer;
  cert: string | Buffer;
  ca: string | Buffer;
  /** Name to verify the server certificate against (and send as SNI) instead of the remote's host. */
  servername?: string;
}

export interface ConnectTransportOptions {
  tls?: TlsFiles;
  /** Default 10000; 0 disables (then only the OS connect timeout applies). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export async function connectTransport(remote: Remote, opts: ConnectTransportOptions = {}): Promise<Duplex> {
  const name = formatRemote(remote);
  if (remote.kind === 'ssl' && !opts.tls) {
    throw new ConfigError('tls', `${name} needs a private key, certificate and CA certificate`);
  }
  const { signal } = opts;
  if (signal?.aborted) throw new ConnectError(name, { cause: signal.reason });
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  let socket: net.Socket;
  try {
    socket = open(remote, opts.tls);
  } catch (err) {
    // tls.connect() throws synchronously on unusable PEM (bad key, key/cert mismatch).
    throw new ConnectError(name, { cause: err });
  }
  const readyEvent = remote.kind === 'ssl' ? 'secureConnect' : 'connect';

  return new Promise<Duplex>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
      socket.off(readyEvent, onReady);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (cause: unknown): void => {
      cleanup();
      // destroy() may still surface a queued error; nobody else listens yet.
      socket.on('error', () => {});
      socket.destroy();
      reject(new ConnectError(name, { cause }));
    };
    const onReady = (): void => {
      cleanup();
      if (remote.kind !== 'unix') socket.setNoDelay(true);
      resolve(socket);
    };
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(new Error('socket closed during connect'));
    const onAbort = (): void => fail(signal?.reason);

    socket.once(readyEvent, onReady);
    socket.once('error', onError);
    socket.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs > 0) {
      timer = setTimeout(() => fail(new TimeoutError(`connect to ${name}`, timeoutMs)), timeoutMs);
    }
  });
}

function open(remote: Remote, files: TlsFiles | undefined): net.Socket {
  switch (remote.kind) {
    case 'unix':
      return net.connect({ path: remote.path });
    case 'tcp':
      return net.connect({ host: remote.host, port: remote.port });
    case 'ssl': {
      const f = files!;
      // Chain verification against our CA and a client certificate, as
      // stream-ssl.c does (SSL_VERIFY_PEER). Unlike stream-ssl.c, Node also
      // checks the server name: certificates must carry the host (or
      // `servername`) as subjectAltName. SNI is only sent for DNS names,
      // which tls.connect handles when servername is not given.
      return tls.connect({
        host: remote.host,
        port: remote.port,
        key: f.key,
        cert: f.cert,
        ca: f.ca,
        ...(f.servername !== undefined ? { servername: f.servername } : {}),
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      });
    }
  }
}
