import t from 'tap';
import { VfState } from '../../contract/gen/dpu/v1/host_pb.ts';
import { parseNetConf } from './cni.ts';
import { cmdCheck, type Deps } from './commands.ts';

t.test('CHECK fails (104) when the DPU reports the lease broken, before looking at the pod', async (t) => {
  const vf = { vfIndex: 3, mac: '0a:58:0a:f4:01:07', mtu: 1400, ips: [], routes: [], leaseTime: '', state: VfState.BROKEN };
  const client = { getVf: async () => ({ vf }) } as unknown as Deps['client'];
  const conf = parseNetConf(JSON.stringify({ cniVersion: '1.1.0', name: 'dpu', type: 'dpu-host-shim', agentUrl: 'https://192.0.2.1:50051', tls: { key: '/k', cert: '/c', ca: '/a' }, pf: 'ens1f0' }));
  const env = { command: 'CHECK', containerId: 'sandbox1', netns: '/var/run/netns/p1', ifname: 'eth0', path: [], pod: { namespace: 'ns', name: 'p', uid: '00000000-0000-4000-8000-000000000001' } };
  const net = new Proxy({}, { get: (_o, k) => () => Promise.reject(new Error(`the pod (${String(k)}) must not be needed`)) });
  const d = { env, conf, client, net, warn: () => undefined } as unknown as Deps;
  await t.rejects(cmdCheck(d), { code: 104, message: /lease broken/ });
});
