// ovs-appctl / ovn-appctl in-process: JSON-RPC 1.0 over a daemon's control
// socket (lib/unixctl.c). Each command is a request whose params are the
// command's string arguments; the daemon answers with text in "result" or
// "error". Probes stay off: unixctl servers never send echo and, like
// ovs-appctl, we hold the connection only for a few commands.

import { ProtocolError, RpcError, UnixctlError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { JsonRpcConnection } from '../jsonrpc/connection.ts';

export interface UnixctlConnectOptions {
  /** Connect timeout and default per-command timeout (ovs-appctl --timeout); 0 or absent: none for commands, 10 s to connect. */
  timeoutMs?: number;
  logger?: Logger;
}

export interface UnixctlCallOptions {
  timeoutMs?: number;
}

export class UnixctlClient {
  readonly #conn: JsonRpcConnection;

  private constructor(conn: JsonRpcConnection) {
    this.#conn = conn;
  }

  /** `path` is the control socket itself, e.g. from unixctlPath(). */
  static async connect(path: string, opts: UnixctlConnectOptions = {}): Promise<UnixctlClient> {
    const timeout = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? opts.timeoutMs : undefined;
    const conn = await JsonRpcConnection.connect(
      { kind: 'unix', path },
      {
        name: `unixctl:${path}`,
        probeIntervalMs: 0,
        connectTimeoutMs: timeout,
        requestTimeoutMs: timeout,
        logger: opts.logger,
      },
    );
    return new UnixctlClient(conn);
  }

  get closed(): boolean {
    return this.#conn.closed;
  }

  /**
   * Same as: ovs-appctl -t <socket> <command> <args…>. Resolves with the
   * daemon's output text; an error reply rejects UnixctlError. Transport
   * failures keep their own types (TimeoutError, ConnectionClosedError).
   */
  async call(command: string, args: string[] = [], opts: UnixctlCallOptions = {}): Promise<string> {
    let result: unknown;
    try {
      result = await this.#conn.request(command, args, { timeoutMs: opts.timeoutMs });
    } catch (err) {
      if (err instanceof RpcError) {
        throw new UnixctlError(command, typeof err.error === 'string' ? err.error : JSON.stringify(err.error));
      }
      throw err;
    }
    if (typeof result !== 'string') {
      // unixctl_command_reply() always sends a JSON string.
      throw new ProtocolError(`unixctl ${command}: result is not a string`);
    }
    return result;
  }

  close(): void {
    this.#conn.close();
  }
}
