import { Code } from '@connectrpc/connect';
import type { UniversalServerResponse } from '@connectrpc/connect/protocol';
import * as protoConnect from '@connectrpc/connect/protocol-connect';
import type { HostApiRejectReason } from '../metrics/metrics.ts';
import { codeLabel } from './service.ts';

// Responses that end before a handler counted them (bad framing, oversize, bad
// timeout header, wrong HTTP method or content type): their true status, for
// dpu_host_api_requests_total{code} and dpu_host_api_rejected_total{reason}.

const PARSE_ERROR = /^(\[internal\] )?parse binary: /;
const INVALID_MESSAGE = 'invalid request message';

export interface EarlyStatus {
  readonly code: string;
  readonly rejected?: HostApiRejectReason;
}

/**
 * connect-es reports an undecodable request message as INTERNAL ("parse
 * binary: …", the same path it uses for a client parsing a bad response). For
 * a server that is the caller's fault: rewrite it to INVALID_ARGUMENT with a
 * fixed message, for gRPC (trailer, set once the body iterator finishes) and
 * Connect unary (HTTP 500 JSON body). A Connect error body's code is returned
 * too: the HTTP status alone does not tell it (400 is also "internal" in the
 * Connect HTTP mapping).
 */
export async function decodeErrorsAreInvalidArgument(uRes: UniversalServerResponse): Promise<{ uRes: UniversalServerResponse; connectCode?: string }> {
  const trailer = uRes.trailer;
  const fixTrailer = (): void => {
    if (!trailer || trailer.get('grpc-status') !== String(Code.Internal)) return;
    if (!PARSE_ERROR.test(decodeURIComponent(trailer.get('grpc-message') ?? ''))) return;
    trailer.set('grpc-status', String(Code.InvalidArgument));
    trailer.set('grpc-message', encodeURIComponent(INVALID_MESSAGE));
    trailer.delete('grpc-status-details-bin');
  };
  if (trailer && uRes.body) {
    const body = uRes.body;
    fixTrailer();
    return {
      uRes: {
        ...uRes,
        body: (async function* () {
          yield* body;
          fixTrailer();
        })(),
      },
    };
  }
  if (uRes.status !== 200 && uRes.body && uRes.header?.get('content-type')?.startsWith('application/json')) {
    const chunks: Uint8Array[] = [];
    for await (const c of uRes.body) chunks.push(c);
    let bytes = Buffer.concat(chunks);
    let status = uRes.status;
    let connectCode: string | undefined;
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { code?: unknown; message?: unknown };
      if (typeof j.code === 'string') connectCode = j.code;
      if (status === 500 && j.code === 'internal' && typeof j.message === 'string' && PARSE_ERROR.test(j.message)) {
        status = protoConnect.codeToHttpStatus(Code.InvalidArgument);
        connectCode = protoConnect.codeToString(Code.InvalidArgument);
        bytes = Buffer.from(JSON.stringify({ code: connectCode, message: INVALID_MESSAGE }));
        uRes.header.set('content-length', String(bytes.byteLength));
      }
    } catch {
      // not our JSON error body: pass it on unchanged
    }
    return { uRes: { ...uRes, status, body: (async function* () { yield bytes; })() }, ...(connectCode ? { connectCode } : {}) };
  }
  return { uRes };
}

/** The status of a response no handler counted. `reset` = the stream was reset before it completed. */
export function earlyStatus(uRes: UniversalServerResponse | undefined, connectCode: string | undefined, reset: boolean): EarlyStatus {
  if (reset) return { code: codeLabel(Code.Canceled) };
  if (!uRes) return { code: codeLabel(Code.Unknown) };
  const grpcStatus = uRes.trailer?.get('grpc-status') ?? uRes.header?.get('grpc-status');
  let code: string;
  if (grpcStatus !== null && grpcStatus !== undefined) {
    const n = Number(grpcStatus);
    code = n === 0 ? 'ok' : codeLabel(n as Code);
  } else if (uRes.status === 200) {
    code = 'ok';
  } else if (connectCode !== undefined) {
    code = connectCode;
  } else if (uRes.status === 405) {
    // Not a gRPC/Connect status: the method exists, not for this HTTP verb (Connect GET is off).
    return { code: codeLabel(Code.Unimplemented), rejected: 'bad-http-method' };
  } else if (uRes.status === 415) {
    return { code: codeLabel(Code.InvalidArgument), rejected: 'bad-content-type' };
  } else {
    code = codeLabel(protoConnect.codeFromHttpStatus(uRes.status));
  }
  return code === 'invalid_argument' ? { code, rejected: 'invalid-argument' } : { code };
}
