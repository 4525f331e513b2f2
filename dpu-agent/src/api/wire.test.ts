import t from 'tap';
import { Writable } from 'node:stream';
import { Code, ConnectError } from '@connectrpc/connect';
import { VfState } from '../../../contract/gen/dpu/v1/host_pb.ts';
import { ErrorInfoSchema } from '../../../contract/gen/google/rpc/error_details_pb.ts';
import { HOST_API_REASONS, isWireReason, PORTS_REASONS, reasonOf, WIRE_CODES } from '../../../contract/reasons.ts';
import { HostApiError, OvsdbError, PortsError } from '../errors.ts';
import { createLogger, silentLogger } from '../log.ts';
import type { Attachment } from '../ports/types.ts';
import { attachmentKeyFromWire, attachmentToWire, toWireError } from './wire.ts';

const log = silentLogger();
const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';

t.test('PortsError reasons map per the contract; the pool text never leaves', async (t) => {
  for (const reason of PORTS_REASONS) {
    if (!isWireReason(reason)) continue;
    const code = WIRE_CODES[reason];
    const e = toWireError(new PortsError(reason, 'SECRET ovsdb text pf0vf3 br-int'), log, {});
    t.equal(e.code, code, `${reason} → ${Code[code]}`);
    t.equal(reasonOf(e), reason, 'ErrorInfo reason');
    t.equal(e.metadata.get('dpu-error-reason'), reason, 'reason header');
    t.notMatch(e.message, /SECRET|pf0vf|br-int/, 'no pool text on the wire');
  }
});

t.test('unknown reasons and foreign errors are INTERNAL, cause only in the log', async (t) => {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  for (const err of [
    new PortsError('plug-failed', 'ovs-vsctl: no bridge named br-int'),
    new OvsdbError('constraint violation', 'Interface pf0vf1 duplicate', 2),
    new Error('EPERM: kernel said no'),
    'a string',
    undefined,
  ]) {
    const e = toWireError(err, logger, { method: 'AllocateVf', peer: 'host1' });
    t.equal(e.code, Code.Internal);
    t.equal(e.rawMessage, 'internal error');
    t.equal(reasonOf(e), 'internal');
  }
  const logged = lines.join('');
  t.match(logged, /no bridge named br-int/, 'cause is logged');
  t.match(logged, /"peer":"host1"/);
});

t.test('HostApiError: code per reason, field in ErrorInfo metadata', async (t) => {
  const e = toWireError(new HostApiError('invalid-ifname', 'attachment.ifname: bad', 'attachment.ifname'), log, {});
  t.equal(e.code, Code.InvalidArgument);
  t.equal(reasonOf(e), 'invalid-ifname');
  t.equal(e.findDetails(ErrorInfoSchema)[0]?.metadata['field'], 'attachment.ifname');
  for (const reason of HOST_API_REASONS) {
    const w = toWireError(new HostApiError(reason, 'x'), log, {});
    t.equal(w.code, WIRE_CODES[reason], `${reason} → ${Code[WIRE_CODES[reason]]}`);
    t.equal(reasonOf(w), reason);
  }
  t.equal(toWireError(new ConnectError('client went away', Code.Canceled), log, {}).code, Code.Canceled);
});

t.test('attachmentKeyFromWire names the first bad field', async (t) => {
  const good = { pod: { namespace: 'ns', name: 'web-0', uid: UID }, sandboxId: 'sb1', ifname: 'eth0' };
  const wire = (k: object) => ({ $typeName: 'dpu.v1.AttachmentKey', ...k }) as never;
  t.strictSame(attachmentKeyFromWire(wire(good)), good);
  const cases: [object | undefined, string, string][] = [
    [undefined, 'invalid-attachment', 'attachment'],
    [{ ...good, pod: undefined }, 'invalid-attachment', 'attachment.pod'],
    [{ ...good, pod: { ...good.pod, namespace: 'NS' } }, 'invalid-pod-namespace', 'attachment.pod.namespace'],
    [{ ...good, pod: { ...good.pod, name: '' } }, 'invalid-pod-name', 'attachment.pod.name'],
    [{ ...good, pod: { ...good.pod, uid: 'x' } }, 'invalid-pod-uid', 'attachment.pod.uid'],
    [{ ...good, sandboxId: 'a/b' }, 'invalid-sandbox-id', 'attachment.sandbox_id'],
    [{ ...good, ifname: '..' }, 'invalid-ifname', 'attachment.ifname'],
  ];
  for (const [k, reason, field] of cases) {
    try {
      attachmentKeyFromWire(k ? wire(k) : undefined);
      t.fail(`${field} accepted`);
    } catch (err) {
      t.match(err, { reason, field }, field);
    }
  }
});

t.test('attachmentToWire drops DPU-side facts', async (t) => {
  const a: Attachment = {
    key: { pod: { namespace: 'ns', name: 'p', uid: UID }, sandboxId: 's', ifname: 'eth0' },
    vfIndex: 3,
    pf: 0,
    representor: 'pf0vf3',
    mac: '0a:58:0a:f4:00:0d',
    ips: [{ address: '10.244.0.13/24', gateway: '10.244.0.1' }, { address: 'fd00::d/64' }],
    routes: [{ dst: '0.0.0.0/0', gateway: '10.244.0.1' }],
    mtu: 1400,
    peer: 'host1',
    leaseTime: '2026-01-02T03:04:05.000Z',
    state: 'broken',
  };
  const w = attachmentToWire(a);
  t.equal(w.vfIndex, 3);
  t.strictSame(w.ips, [{ address: '10.244.0.13/24', gateway: '10.244.0.1' }, { address: 'fd00::d/64', gateway: '' }]);
  t.equal(w.state, VfState.BROKEN);
  t.equal(String((w.leaseTime as { seconds: bigint }).seconds), String(Date.parse(a.leaseTime) / 1000));
  t.notMatch(JSON.stringify(w, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)), /pf0vf3|host1/);
  t.notOk('leaseTime' in attachmentToWire({ ...a, leaseTime: 'garbage' }), 'bad time omitted');
});
