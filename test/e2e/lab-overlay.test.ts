// Two DPUs, a pod on each host: the overlay carries ICMP both ways, 1400-byte
// DF packets, TCP; deny/allow policies apply within a bounded number of probes;
// forged MAC and IP sources are dropped by port security.
import t from 'tap';
import { POD_MTU } from '../../scripts/labkit/plan.ts';
import { addPod } from '../../scripts/labkit/pods.ts';
import { allowPolicy, denyPolicy } from '../../scripts/labkit/policy.ts';
import { ping, spoof, tcpTransfer, triesUntil } from '../../scripts/labkit/probe.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  const run = await labFor(t, 'dplo', { dpus: 2 });
  const { pod: a } = await addPod(run, { namespace: 'web', name: 'a' }, { node: 1 });
  const { pod: b } = await addPod(run, { namespace: 'web', name: 'b' }, { node: 2 });

  t.test('pods on two hosts reach each other over Geneve, both ways', async (t) => {
    // The underlay was warmed by up (DESIGN §6): the first packets must already pass.
    const ab = await ping(a, b.ip, { count: 3 });
    const ba = await ping(b, a.ip, { count: 3 });
    t.equal(ab.received, 3, 'a → b');
    t.equal(ba.received, 3, 'b → a');
  });

  t.test(`a ${POD_MTU}-byte DF packet fits the pod MTU and the Geneve underlay`, async (t) => {
    const ok = await ping(a, b.ip, { count: 2, size: POD_MTU - 28, df: true }); // 20 IP + 8 ICMP
    t.equal(ok.received, 2, `${POD_MTU - 28}-byte payload, DF, delivered`);
    const big = await ping(a, b.ip, { count: 1, size: POD_MTU - 27, df: true });
    t.ok(big.localError, 'one byte more is refused locally by the pod MTU (not lost in the tunnel)');
  });

  t.test('TCP transfer over the overlay', async (t) => {
    const r = await tcpTransfer(a, b, 8 * 1024 * 1024);
    t.equal(r.echoed, r.bytes, `${r.bytes} bytes arrived (${r.mbit} Mbit/s)`);
  });

  t.test('deny then allow takes effect within a bounded number of probes', async (t) => {
    t.equal((await ping(a, b.ip, { count: 1 })).received, 1, 'reachable before');
    await denyPolicy(run, { namespace: 'web', name: 'b' });
    // denyPolicy returns after ovn-nbctl --wait=hv: every chassis has the ACL. Allow
    // 5 probes of 200 ms (one second) for it to show in the datapath.
    const denied = await triesUntil(a, b.ip, 'unreachable', 5);
    t.ok(denied !== undefined, `denied after ${denied} probe(s)`);
    t.equal((await ping(b, a.ip, { count: 1 })).received, 0, 'b → a fails too: the replies to b are dropped');
    await allowPolicy(run, { namespace: 'web', name: 'b' });
    const allowed = await triesUntil(a, b.ip, 'reachable', 5);
    t.ok(allowed !== undefined, `allowed again after ${allowed} probe(s)`);
  });

  t.test('a deny from one source leaves other sources alone', async (t) => {
    const { pod: c } = await addPod(run, { namespace: 'web', name: 'c' }, { node: 1 });
    await denyPolicy(run, { namespace: 'web', name: 'b' }, { namespace: 'web', name: 'a' });
    t.ok((await triesUntil(a, b.ip, 'unreachable', 5)) !== undefined, 'a → b denied');
    t.ok((await triesUntil(c, b.ip, 'reachable', 5)) !== undefined, 'c → b still allowed');
    await allowPolicy(run, { namespace: 'web', name: 'b' }, { namespace: 'web', name: 'a' });
    t.ok((await triesUntil(a, b.ip, 'reachable', 5)) !== undefined, 'a → b allowed again');
  });

  for (const kind of ['mac', 'ip'] as const) {
    t.test(`a forged source ${kind.toUpperCase()} is dropped by port security`, async (t) => {
      const r = await spoof(a, b, kind);
      t.equal(r.sent, 5);
      t.equal(r.delivered, 0, 'the receiver got none of the forged echo requests');
      t.equal(r.controlBefore, 2, 'control: unforged echoes arrive before');
      t.equal(r.controlAfter, 2, 'control: and after');
    });
  }
}
