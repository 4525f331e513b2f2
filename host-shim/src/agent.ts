import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { CNI_CODES, CNI_ERR, type CniErrorCode } from '../../contract/cni.ts';
import { HostService } from '../../contract/gen/dpu/v1/host_pb.ts';
import { isWireReason, reasonOf } from '../../contract/reasons.ts';
import { tlsConnector, TlsFilesError, watchTlsFiles } from '../../contract/tls-files.ts';
import type { NetConf } from './cni.ts';
import { CniError } from './errors.ts';

// The shim's side of the host API: a gRPC client over HTTP/2 with TLS 1.3 and
// this host's client certificate (its CN is the host name the agent checks
// leases against), and the mapping of agent errors to CNI error codes. The
// cert files are followed (contract/tls-files.ts): a long-lived client opens
// its next connection with a rotated cert without being rebuilt.

export interface AgentClient {
  readonly client: Client<typeof HostService>;
  close(): void;
}

export async function createAgentClient(conf: NetConf): Promise<AgentClient> {
  let files;
  try {
    files = await watchTlsFiles({ paths: { key: conf.tls.key, cert: conf.tls.cert, ca: conf.tls.ca }, build: (f) => f });
  } catch (err) {
    if (err instanceof TlsFilesError) throw new CniError(CNI_ERR.INVALID_CONFIG, `cannot read tls.${err.file}`, `${err.path}: ${(err.cause as Error).message}`);
    throw new CniError(CNI_ERR.INVALID_CONFIG, 'cannot read tls files', (err as Error).message);
  }
  const watcher = files;
  const sessionManager = new Http2SessionManager(conf.agentUrl, {}, {
    createConnection: tlsConnector(() => watcher.current, conf.serverName ? { servername: conf.serverName } : {}),
  });
  const transport = createGrpcTransport({ baseUrl: conf.agentUrl, sessionManager });
  return {
    client: createClient(HostService, transport),
    close: () => {
      watcher.close();
      sessionManager.abort();
    },
  };
}

const BY_CODE: Partial<Record<Code, CniErrorCode>> = {
  [Code.Unavailable]: CNI_ERR.TRY_AGAIN_LATER,
  [Code.DeadlineExceeded]: CNI_ERR.TRY_AGAIN_LATER,
  [Code.Aborted]: CNI_ERR.TRY_AGAIN_LATER,
  [Code.Canceled]: CNI_ERR.TRY_AGAIN_LATER,
  [Code.ResourceExhausted]: CNI_ERR.TRY_AGAIN_LATER,
  [Code.NotFound]: CNI_ERR.POD_NOT_FOUND,
  [Code.PermissionDenied]: CNI_ERR.PERMISSION_DENIED,
  [Code.Unauthenticated]: CNI_ERR.PERMISSION_DENIED,
  [Code.FailedPrecondition]: CNI_ERR.SANDBOX_CONFLICT,
  [Code.InvalidArgument]: CNI_ERR.INVALID_ENV,
};

/** An agent call's failure as a CNI error: by reason when the agent gave one, else by gRPC code. */
export function mapAgentError(err: unknown, what: string): CniError {
  if (err instanceof CniError) return err;
  const ce = ConnectError.from(err);
  const reason = reasonOf(ce);
  const code = reason !== undefined && isWireReason(reason) ? CNI_CODES[reason] : (BY_CODE[ce.code] ?? CNI_ERR.AGENT_INTERNAL);
  const details = `grpc ${Code[ce.code]}${reason ? `, reason ${reason}` : ''}: ${ce.rawMessage}`;
  return new CniError(code, `${what}: ${MESSAGES[code] ?? 'DPU agent call failed'}`, details, { cause: err });
}

const MESSAGES: Partial<Record<CniErrorCode, string>> = {
  [CNI_ERR.TRY_AGAIN_LATER]: 'DPU agent unavailable or busy, try again later',
  [CNI_ERR.POD_NOT_FOUND]: 'pod unknown to the DPU (no OVN port yet)',
  [CNI_ERR.LEASE_NOT_FOUND]: 'no VF lease for this attachment',
  [CNI_ERR.PERMISSION_DENIED]: 'refused by the DPU agent',
  [CNI_ERR.POOL_EXHAUSTED]: 'no VF available',
  [CNI_ERR.SANDBOX_CONFLICT]: 'interface attached to another sandbox of this pod',
  [CNI_ERR.INVALID_ENV]: 'the DPU agent rejected the pod arguments',
  [CNI_ERR.AGENT_INTERNAL]: 'DPU agent internal error',
};
