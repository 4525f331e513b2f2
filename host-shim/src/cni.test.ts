import t from 'tap';
import { readFile } from 'node:fs/promises';
import { CNI_ERR } from '../../contract/cni.ts';
import { formatResult, parseCniArgs, parseEnv, parseNetConf, versionResult } from './cni.ts';
import { CniError } from './errors.ts';

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const ARGS = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=${UID}`;
const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/var/run/netns/cni-1', CNI_IFNAME: 'eth0', CNI_ARGS: ARGS, CNI_PATH: '/opt/cni/bin' };
const CONF = {
  cniVersion: '1.1.0',
  name: 'dpu',
  type: 'dpu-host-shim',
  agentUrl: 'https://192.0.2.1:50051',
  tls: { key: '/k', cert: '/c', ca: '/ca' },
  pf: 'ens1f0',
};

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err.code;
    throw err;
  }
  return undefined;
}

t.test('CNI_ARGS', async (t) => {
  const m = parseCniArgs(ARGS);
  t.equal(m.get('K8S_POD_NAME'), 'web-0');
  t.equal(m.get('IgnoreUnknown'), '1');
  t.equal(parseCniArgs('').size, 0);
  t.equal(parseCniArgs('A=b=c').get('A'), 'b=c', 'value may contain =');
  t.equal(code(() => parseCniArgs('novalue')), CNI_ERR.INVALID_ENV);
});

t.test('env: ADD/DEL/CHECK need container, ifname, pod args', async (t) => {
  t.strictSame(parseEnv(ENV), {
    command: 'ADD',
    containerId: 'abc123',
    netns: '/var/run/netns/cni-1',
    ifname: 'eth0',
    pod: { namespace: 'default', name: 'web-0', uid: UID },
  });
  t.equal(parseEnv({ CNI_COMMAND: 'VERSION' }).command, 'VERSION', 'VERSION needs nothing else');
  t.equal(parseEnv({ CNI_COMMAND: 'STATUS' }).command, 'STATUS');
  t.equal(parseEnv({ CNI_COMMAND: 'GC' }).command, 'GC');
  t.equal(parseEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '', CNI_ARGS: '' }).pod, undefined, 'DEL tolerates no netns and no pod args');
  const bad: [Record<string, string>, string][] = [
    [{ ...ENV, CNI_COMMAND: 'FROB' }, 'unknown command'],
    [{ ...ENV, CNI_COMMAND: '' }, 'no command'],
    [{ ...ENV, CNI_CONTAINERID: '' }, 'no container'],
    [{ ...ENV, CNI_CONTAINERID: 'a/b' }, 'bad container'],
    [{ ...ENV, CNI_IFNAME: 'x'.repeat(16) }, 'long ifname'],
    [{ ...ENV, CNI_IFNAME: 'a b' }, 'ifname with space'],
    [{ ...ENV, CNI_IFNAME: '..' }, 'ifname ..'],
    [{ ...ENV, CNI_NETNS: '' }, 'ADD without netns'],
    [{ ...ENV, CNI_NETNS: 'relative/ns' }, 'relative netns'],
    [{ ...ENV, CNI_ARGS: 'K8S_POD_NAMESPACE=default' }, 'partial pod args'],
    [{ ...ENV, CNI_ARGS: ARGS.replace('default', 'Default') }, 'bad namespace'],
    [{ ...ENV, CNI_ARGS: ARGS.replace(UID, 'nope') }, 'bad uid'],
    [{ ...ENV, CNI_ARGS: '' }, 'ADD without pod args'],
  ];
  for (const [env, what] of bad) t.equal(code(() => parseEnv(env)), CNI_ERR.INVALID_ENV, what);
});

t.test('network config', async (t) => {
  const c = parseNetConf(JSON.stringify(CONF));
  t.equal(c.agentUrl, 'https://192.0.2.1:50051');
  t.equal(c.sysfsRoot, '/sys');
  t.equal(c.stateDir, '/var/lib/cni/dpu-host-shim');
  t.equal(c.timeouts.statusMs, 2000);
  t.strictSame(c.validAttachments, []);
  const gc = parseNetConf(JSON.stringify({ ...CONF, 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }], timeouts: { statusMs: 500 }, sysfsRoot: '/tmp/sys' }));
  t.strictSame(gc.validAttachments, [{ containerId: 'a', ifname: 'eth0' }]);
  t.equal(gc.timeouts.statusMs, 500);
  t.equal(gc.timeouts.addMs, 60_000);
  t.equal(gc.sysfsRoot, '/tmp/sys');
  t.equal(parseNetConf(JSON.stringify({ ...CONF, prevResult: {}, runtimeConfig: {}, args: {} })).name, 'dpu', 'spec keys allowed');

  t.equal(code(() => parseNetConf('{')), CNI_ERR.DECODE_FAILURE);
  t.equal(code(() => parseNetConf('[]')), CNI_ERR.DECODE_FAILURE);
  t.equal(code(() => parseNetConf(JSON.stringify({ ...CONF, cniVersion: '0.3.1' }))), CNI_ERR.INCOMPATIBLE_VERSION);
  t.equal(code(() => parseNetConf(JSON.stringify({ ...CONF, ipam: { type: 'host-local' } }))), CNI_ERR.UNSUPPORTED_FIELD);
  const invalid: [object, string][] = [
    [{ ...CONF, agentUrl: 'http://192.0.2.1:50051' }, 'plain http'],
    [{ ...CONF, agentUrl: 'https://192.0.2.1:50051/x' }, 'path'],
    [{ ...CONF, agentUrl: 'nope' }, 'not a URL'],
    [{ ...CONF, tls: { key: '/k', cert: '/c' } }, 'no CA'],
    [{ ...CONF, tls: { key: '/k', cert: '/c', ca: '/ca', insecure: true } }, 'unknown tls key'],
    [{ ...CONF, pf: 'a/b' }, 'bad pf'],
    [{ ...CONF, sysfsRoot: 'sys' }, 'relative sysfs'],
    [{ ...CONF, timeouts: { addMs: 5 } }, 'timeout too small'],
    [{ ...CONF, timeouts: { addSeconds: 5 } }, 'unknown timeout'],
    [{ ...CONF, agentURL: 'x' }, 'typo in a key'],
    [{ ...CONF, 'cni.dev/valid-attachments': [{ containerID: 1 }] }, 'bad valid attachment'],
  ];
  for (const [conf, what] of invalid) t.equal(code(() => parseNetConf(JSON.stringify(conf))), CNI_ERR.INVALID_CONFIG, what);
});

t.test('the shipped example.conflist parses', async (t) => {
  const list = JSON.parse(await readFile(new URL('../example.conflist', import.meta.url), 'utf8')) as { cniVersion: string; name: string; plugins: object[] };
  const c = parseNetConf(JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] }));
  t.equal(c.type, 'dpu-host-shim');
  t.equal(c.serverName, 'dpu-agent');
});

t.test('results per version', async (t) => {
  const i = {
    ifname: 'eth0',
    mac: '0a:58:0a:f4:00:0a',
    mtu: 1400,
    netns: '/var/run/netns/cni-1',
    ips: [{ address: '10.244.0.10/24', gateway: '10.244.0.1' }, { address: 'fd00::a/64', gateway: '' }],
    routes: [{ dst: '0.0.0.0/0', gateway: '10.244.0.1' }, { dst: '10.96.0.0/12', gateway: '' }],
  };
  t.strictSame(formatResult('1.1.0', i), {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:00:0a', sandbox: '/var/run/netns/cni-1', mtu: 1400 }],
    ips: [{ address: '10.244.0.10/24', gateway: '10.244.0.1', interface: 0 }, { address: 'fd00::a/64', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.244.0.1' }, { dst: '10.96.0.0/12' }],
    dns: {},
  });
  const v1 = formatResult('1.0.0', i) as { interfaces: object[] };
  t.notOk('mtu' in (v1.interfaces[0] as object), 'interface mtu is 1.1 only');
  const v04 = formatResult('0.4.0', i) as { ips: { version: string }[] };
  t.strictSame(v04.ips.map((x) => x.version), ['4', '6'], '0.4.0 ips carry version');
  t.strictSame(versionResult(), { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
});

t.test('CniError JSON', async (t) => {
  t.strictSame(new CniError(CNI_ERR.TRY_AGAIN_LATER, 'busy', 'reason rate-limited').toJSON('1.1.0'), { cniVersion: '1.1.0', code: 11, msg: 'busy', details: 'reason rate-limited' });
  t.strictSame(new CniError(CNI_ERR.IO_FAILURE, 'x').toJSON('1.0.0'), { cniVersion: '1.0.0', code: 5, msg: 'x' });
});
