import t from 'tap';
import { Code, ConnectError } from '@connectrpc/connect';
import { ErrorInfoSchema } from '../../dpu-agent/src/gen/google/rpc/error_details_pb.ts';
import { mapAgentError } from './agent.ts';
import { CNI_ERR, CniError } from './errors.ts';

const withReason = (code: Code, reason: string) =>
  new ConnectError('agent text', code, undefined, [{ desc: ErrorInfoSchema, value: { reason, domain: 'dpu.v1' } }]);

t.test('agent reasons → CNI codes', async (t) => {
  const table: [Code, string, number][] = [
    [Code.NotFound, 'pod-not-found', CNI_ERR.POD_NOT_FOUND],
    [Code.NotFound, 'lease-not-found', CNI_ERR.LEASE_NOT_FOUND],
    [Code.PermissionDenied, 'pod-not-on-this-chassis', CNI_ERR.PERMISSION_DENIED],
    [Code.PermissionDenied, 'pod-uid-mismatch', CNI_ERR.PERMISSION_DENIED],
    [Code.PermissionDenied, 'not-owner', CNI_ERR.PERMISSION_DENIED],
    [Code.Unauthenticated, 'bad-peer-identity', CNI_ERR.PERMISSION_DENIED],
    [Code.PermissionDenied, 'wrong-host', CNI_ERR.PERMISSION_DENIED],
    [Code.ResourceExhausted, 'vf-pool-empty', CNI_ERR.POOL_EXHAUSTED],
    [Code.ResourceExhausted, 'host-lease-cap', CNI_ERR.POOL_EXHAUSTED],
    [Code.ResourceExhausted, 'rate-limited', CNI_ERR.TRY_AGAIN_LATER],
    [Code.FailedPrecondition, 'sandbox-conflict', CNI_ERR.SANDBOX_CONFLICT],
    [Code.DeadlineExceeded, 'ovn-not-installed', CNI_ERR.TRY_AGAIN_LATER],
    [Code.Unavailable, 'not-ready', CNI_ERR.TRY_AGAIN_LATER],
    [Code.InvalidArgument, 'invalid-ifname', CNI_ERR.INVALID_ENV],
    [Code.Internal, 'internal', CNI_ERR.AGENT_INTERNAL],
  ];
  for (const [code, reason, cni] of table) {
    const e = mapAgentError(withReason(code, reason), 'ADD');
    t.equal(e.code, cni, `${reason} → ${cni}`);
    t.match(e.details, new RegExp(`reason ${reason}`));
    t.match(e.message, /^ADD: /);
  }
});

t.test('no reason: by gRPC code; transport failures are try-again-later', async (t) => {
  t.equal(mapAgentError(new ConnectError('connect ECONNREFUSED', Code.Unavailable), 'x').code, CNI_ERR.TRY_AGAIN_LATER);
  t.equal(mapAgentError(new ConnectError('timeout', Code.DeadlineExceeded), 'x').code, CNI_ERR.TRY_AGAIN_LATER);
  t.equal(mapAgentError(new Error('socket hang up'), 'x').code, CNI_ERR.AGENT_INTERNAL, 'unknown error → plugin-specific internal');
  t.equal(mapAgentError(new ConnectError('nope', Code.Unimplemented), 'x').code, CNI_ERR.AGENT_INTERNAL);
  const pass = new CniError(CNI_ERR.VF_NETDEV_NOT_FOUND, 'x');
  t.equal(mapAgentError(pass, 'x'), pass, 'CniError passes through');
});
