import t from 'tap';
import { Code, ConnectError } from '@connectrpc/connect';
import { CNI_CODES, CNI_ERR } from '../../contract/cni.ts';
import { ErrorInfoSchema } from '../../contract/gen/google/rpc/error_details_pb.ts';
import { WIRE_CODES, type WireReason } from '../../contract/reasons.ts';
import { mapAgentError } from './agent.ts';
import { CniError } from './errors.ts';

const withReason = (code: Code, reason: string) =>
  new ConnectError('agent text', code, undefined, [{ desc: ErrorInfoSchema, value: { reason, domain: 'dpu.v1' } }]);

t.test('agent reasons → CNI codes', async (t) => {
  for (const reason of Object.keys(WIRE_CODES) as WireReason[]) {
    const cni = CNI_CODES[reason];
    const e = mapAgentError(withReason(WIRE_CODES[reason], reason), 'ADD');
    t.equal(e.code, cni, `${reason} → ${cni}`);
    t.match(e.details, new RegExp(`reason ${reason}`));
    t.match(e.message, /^ADD: /);
  }
});

t.test('a reason outside the contract, or in another domain, maps by gRPC code', async (t) => {
  t.equal(mapAgentError(withReason(Code.NotFound, 'constructor'), 'x').code, CNI_ERR.POD_NOT_FOUND);
  t.equal(mapAgentError(withReason(Code.PermissionDenied, 'no-such-reason'), 'x').code, CNI_ERR.PERMISSION_DENIED);
  const foreign = new ConnectError('x', Code.Unavailable, undefined, [{ desc: ErrorInfoSchema, value: { reason: 'pod-not-found', domain: 'other' } }]);
  t.equal(mapAgentError(foreign, 'x').code, CNI_ERR.TRY_AGAIN_LATER);
});

t.test('no reason: by gRPC code; transport failures are try-again-later', async (t) => {
  t.equal(mapAgentError(new ConnectError('connect ECONNREFUSED', Code.Unavailable), 'x').code, CNI_ERR.TRY_AGAIN_LATER);
  t.equal(mapAgentError(new ConnectError('timeout', Code.DeadlineExceeded), 'x').code, CNI_ERR.TRY_AGAIN_LATER);
  t.equal(mapAgentError(new Error('socket hang up'), 'x').code, CNI_ERR.AGENT_INTERNAL, 'unknown error → plugin-specific internal');
  t.equal(mapAgentError(new ConnectError('nope', Code.Unimplemented), 'x').code, CNI_ERR.AGENT_INTERNAL);
  const pass = new CniError(CNI_ERR.VF_NETDEV_NOT_FOUND, 'x');
  t.equal(mapAgentError(pass, 'x'), pass, 'CniError passes through');
});
