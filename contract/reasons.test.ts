import t from 'tap';
import { Code, ConnectError } from '@connectrpc/connect';
import { CNI_CODES } from './cni.ts';
import { ErrorInfoSchema } from './gen/google/rpc/error_details_pb.ts';
import { HOST_API_REASONS, isWireReason, PORTS_REASONS, reasonOf, WIRE_CODES } from './reasons.ts';

// The one written-out copy of the tables: hosts in the field match on these
// values, so a change here is a wire change (a new row is fine; an edited or
// removed one breaks running hosts). Everything else reads the tables.
const PINNED: [reason: string, grpc: string, cni: number][] = [
  ['invalid-attachment', 'InvalidArgument', 4],
  ['invalid-pod-namespace', 'InvalidArgument', 4],
  ['invalid-pod-name', 'InvalidArgument', 4],
  ['invalid-pod-uid', 'InvalidArgument', 4],
  ['invalid-sandbox-id', 'InvalidArgument', 4],
  ['invalid-ifname', 'InvalidArgument', 4],
  ['too-many-attachments', 'InvalidArgument', 4],
  ['lease-not-found', 'NotFound', 108],
  ['rate-limited', 'ResourceExhausted', 11],
  ['bad-peer-identity', 'Unauthenticated', 101],
  ['wrong-host', 'PermissionDenied', 101],
  ['deadline-exceeded', 'DeadlineExceeded', 11],
  ['pod-not-found', 'NotFound', 100],
  ['pod-not-on-this-chassis', 'PermissionDenied', 101],
  ['pod-uid-mismatch', 'PermissionDenied', 101],
  ['not-owner', 'PermissionDenied', 101],
  ['vf-pool-empty', 'ResourceExhausted', 102],
  ['host-lease-cap', 'ResourceExhausted', 102],
  ['sandbox-conflict', 'FailedPrecondition', 103],
  ['ovn-not-installed', 'DeadlineExceeded', 11],
  ['not-ready', 'Unavailable', 11],
  ['internal', 'Internal', 107],
];

t.test('reason → gRPC code → CNI code, as pinned', async (t) => {
  const now = Object.keys(WIRE_CODES).map((r) => [r, Code[WIRE_CODES[r as keyof typeof WIRE_CODES]], CNI_CODES[r as keyof typeof CNI_CODES]]);
  t.strictSame(now.sort(), [...PINNED].sort());
});

t.test('every host API reason and every pool reason but plug-failed reaches the host by name', async (t) => {
  t.strictSame([...HOST_API_REASONS, ...PORTS_REASONS].filter((r) => !isWireReason(r)), ['plug-failed']);
  t.strictSame(Object.keys(WIRE_CODES).filter((r) => !(HOST_API_REASONS as readonly string[]).includes(r) && !(PORTS_REASONS as readonly string[]).includes(r)), ['internal']);
});

t.test('isWireReason takes own keys only', async (t) => {
  for (const s of ['constructor', 'toString', '__proto__', 'hasOwnProperty', '', 'plug-failed']) t.notOk(isWireReason(s), JSON.stringify(s));
  t.ok(isWireReason('not-owner'));
});

t.test('reasonOf: ErrorInfo in our domain, else the reason header', async (t) => {
  const info = (domain: string, reason: string) => ({ desc: ErrorInfoSchema, value: { domain, reason } });
  t.equal(reasonOf(new ConnectError('x', Code.NotFound, undefined, [info('dpu.v1', 'pod-not-found')])), 'pod-not-found');
  t.equal(reasonOf(new ConnectError('x', Code.NotFound, undefined, [info('other', 'a'), info('dpu.v1', 'b')])), 'b', 'other domains skipped');
  t.equal(reasonOf(new ConnectError('x', Code.NotFound, { 'dpu-error-reason': 'not-owner' })), 'not-owner', 'header');
  t.equal(reasonOf(new ConnectError('x', Code.NotFound, undefined, [info('other', 'a')])), undefined);
});
