import t, { type Test } from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentConfig, ENV_KEYS, loadConfig, parseConfig } from './config.ts';
import { ConfigError } from './errors.ts';

const MINIMAL = {
  chassis: { systemId: 'dpu-0', ovnRemote: 'tcp:10.0.0.1:6642', encapIp: '192.0.2.10' },
};

/** A fresh copy, so no test can see another's edits. */
const minimal = (): Record<string, Record<string, unknown>> => structuredClone(MINIMAL);

/** Asserts `fn` throws a ConfigError naming `key`. */
function throwsKey(t: Test, fn: () => unknown, key: string, msg?: RegExp): void {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof ConfigError, `ConfigError for ${key}`);
    t.equal((err as ConfigError).key, key, `names ${key}`);
    t.equal((err as ConfigError).code, 'DPU_ERR_CONFIG');
    t.match((err as Error).message, new RegExp(`^config ${key.replace(/[.()]/g, '\\$&')}: `));
    if (msg) t.match((err as Error).message, msg);
    return;
  }
  t.fail(`expected a ConfigError for ${key}`);
}

/** The ConfigError a promise rejects with (undefined if it resolves; rethrows anything else). */
async function rejection(p: Promise<unknown>): Promise<ConfigError | undefined> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  return undefined;
}

function isDeepFrozen(v: unknown, path = '(root)'): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (!Object.isFrozen(v)) return path;
  for (const [k, x] of Object.entries(v)) {
    const bad = isDeepFrozen(x, `${path}.${k}`);
    if (bad) return bad;
  }
  return undefined;
}

t.test('defaults: only the three chassis keys with no default are required', async (t) => {
  const c = parseConfig(minimal());
  t.strictSame(c, {
    ovsdb: { remote: 'unix:/var/run/openvswitch/db.sock', tls: undefined, requestTimeoutMs: 10_000 },
    chassis: {
      systemId: 'dpu-0',
      hostname: hostname(),
      ovnRemote: 'tcp:10.0.0.1:6642',
      encapType: 'geneve',
      encapIp: '192.0.2.10',
      bridge: 'br-int',
      datapathType: 'system',
      transportZones: [],
      hwOffload: true,
      tcPolicy: 'none',
    },
    reconcile: { repairDrift: true, auditBridge: true },
    log: { level: 'info' },
    api: undefined,
    metrics: { listenAddress: '127.0.0.1', port: 9110 },
    ovn: { nbRemote: undefined, tls: undefined, podUidKey: 'dpu-agent/pod-uid', controllerRundir: '/var/run/ovn' },
    ports: { mtu: 1400, ovnInstalledTimeoutMs: 10_000, maxLeasesPerHost: 256, orphanGraceMs: 60_000, gcIntervalMs: 10_000, hostSilenceMs: 60_000, hostReturnGraceMs: 120_000 },
    hw: { backend: 'bluefield', uplink: 'p0' },
    offload: { tcQuarantine: true, tcAudit: true, tcAuditIntervalMs: 30_000, statsIntervalMs: 5000, ovsRundir: '/var/run/openvswitch' },
  } satisfies AgentConfig);
});

t.test('parseConfig does not read process.env unless given it', async (t) => {
  const saved = process.env['DPU_AGENT_LOG_LEVEL'];
  process.env['DPU_AGENT_LOG_LEVEL'] = 'debug';
  t.teardown(() => {
    if (saved === undefined) delete process.env['DPU_AGENT_LOG_LEVEL'];
    else process.env['DPU_AGENT_LOG_LEVEL'] = saved;
  });
  t.equal(parseConfig(minimal()).log.level, 'info');
});

t.test('every key set in the file', async (t) => {
  const c = parseConfig({
    ovsdb: { remote: 'ssl:192.0.2.1:6640', tls: { key: '/k.pem', cert: '/c.pem', ca: '/ca.pem' }, requestTimeoutMs: 2500 },
    chassis: {
      systemId: 'dpu-7.a_b',
      hostname: 'host7',
      ovnRemote: 'ssl:10.0.0.1:6642,ssl:10.0.0.2:6642,ssl:10.0.0.3:6642',
      encapType: 'vxlan',
      encapIp: '2001:db8::7',
      bridge: 'br-dpu',
      datapathType: 'netdev',
      transportZones: ['tz1', 'tz2'],
      hwOffload: false,
      tcPolicy: 'skip_sw',
    },
    reconcile: { repairDrift: false },
    log: { level: 'silent' },
  });
  t.strictSame(c.ovsdb, { remote: 'ssl:192.0.2.1:6640', tls: { key: '/k.pem', cert: '/c.pem', ca: '/ca.pem' }, requestTimeoutMs: 2500 });
  t.strictSame(c.chassis, {
    systemId: 'dpu-7.a_b',
    hostname: 'host7',
    ovnRemote: 'ssl:10.0.0.1:6642,ssl:10.0.0.2:6642,ssl:10.0.0.3:6642',
    encapType: 'vxlan',
    encapIp: '2001:db8::7',
    bridge: 'br-dpu',
    datapathType: 'netdev',
    transportZones: ['tz1', 'tz2'],
    hwOffload: false,
    tcPolicy: 'skip_sw',
  });
  t.equal(c.reconcile.repairDrift, false);
  t.equal(c.log.level, 'silent');
});

t.test('env overrides win over the file and are parsed from strings', async (t) => {
  const file = minimal();
  file['chassis'] = { ...file['chassis'], encapIp: '192.0.2.10', transportZones: ['file-zone'] };
  const c = parseConfig(file, {
    DPU_AGENT_CHASSIS_ENCAP_IP: '198.51.100.5',
    DPU_AGENT_CHASSIS_SYSTEM_ID: 'from-env',
    DPU_AGENT_CHASSIS_TRANSPORT_ZONES: ' a, b ,,c ',
    DPU_AGENT_CHASSIS_HW_OFFLOAD: 'false',
    DPU_AGENT_CHASSIS_TC_POLICY: 'skip_hw',
    DPU_AGENT_CHASSIS_ENCAP_TYPE: 'vxlan',
    DPU_AGENT_CHASSIS_BRIDGE: 'br-x',
    DPU_AGENT_CHASSIS_DATAPATH_TYPE: 'netdev',
    DPU_AGENT_CHASSIS_HOSTNAME: 'h1',
    DPU_AGENT_CHASSIS_OVN_REMOTE: 'tcp:[2001:db8::1]:6642',
    DPU_AGENT_OVSDB_REMOTE: 'tcp:127.0.0.1:6640',
    DPU_AGENT_OVSDB_REQUEST_TIMEOUT_MS: '1500',
    DPU_AGENT_RECONCILE_REPAIR_DRIFT: 'false',
    DPU_AGENT_LOG_LEVEL: 'warn',
    UNRELATED_VAR: 'ignored',
  });
  t.strictSame(c.chassis, {
    systemId: 'from-env',
    hostname: 'h1',
    ovnRemote: 'tcp:[2001:db8::1]:6642',
    encapType: 'vxlan',
    encapIp: '198.51.100.5',
    bridge: 'br-x',
    datapathType: 'netdev',
    transportZones: ['a', 'b', 'c'],
    hwOffload: false,
    tcPolicy: 'skip_hw',
  });
  t.strictSame(c.ovsdb, { remote: 'tcp:127.0.0.1:6640', tls: undefined, requestTimeoutMs: 1500 });
  t.equal(c.reconcile.repairDrift, false);
  t.equal(c.log.level, 'warn');
  t.strictSame(file['chassis'], { ...MINIMAL.chassis, transportZones: ['file-zone'] }, 'the input object is not modified');
});

t.test('env alone is enough (no file)', async (t) => {
  const c = parseConfig({}, {
    DPU_AGENT_CHASSIS_SYSTEM_ID: 'dpu-1',
    DPU_AGENT_CHASSIS_OVN_REMOTE: 'tcp:10.0.0.1:6642',
    DPU_AGENT_CHASSIS_ENCAP_IP: '10.1.1.1',
  });
  t.equal(c.chassis.systemId, 'dpu-1');
  t.equal(c.chassis.encapIp, '10.1.1.1');
});

t.test('an empty env transport-zone list means no zones', async (t) => {
  const file = minimal();
  file['chassis'] = { ...file['chassis'], transportZones: ['tz1'] };
  t.strictSame(parseConfig(file, { DPU_AGENT_CHASSIS_TRANSPORT_ZONES: '' }).chassis.transportZones, []);
});

t.test('the result is deeply frozen', async (t) => {
  const c = parseConfig({
    ...minimal(),
    ovsdb: { remote: 'ssl:192.0.2.1:6640', tls: { key: '/k', cert: '/c', ca: '/ca' } },
    chassis: { ...MINIMAL.chassis, transportZones: ['tz1'] },
  });
  t.equal(isDeepFrozen(c), undefined, 'every nested object and array is frozen');
  t.throws(() => {
    (c.chassis as { encapIp: string }).encapIp = '1.2.3.4';
  }, TypeError);
  t.throws(() => {
    (c.chassis.transportZones as string[]).push('x');
  }, TypeError);
  t.throws(() => {
    (c.ovsdb.tls as { key: string }).key = '/evil';
  }, TypeError);
});

t.test('each validation error names its key', async (t) => {
  const withChassis = (extra: Record<string, unknown>): unknown => ({ chassis: { ...MINIMAL.chassis, ...extra } });

  t.test('root must be an object', async (t) => {
    throwsKey(t, () => parseConfig(null), '(root)');
    throwsKey(t, () => parseConfig([]), '(root)');
    throwsKey(t, () => parseConfig('x'), '(root)');
  });

  t.test('unknown keys, at every level', async (t) => {
    throwsKey(t, () => parseConfig({ ...minimal(), chasis: {} }), 'chasis', /unknown key/);
    throwsKey(t, () => parseConfig(withChassis({ encapIP: '1.2.3.4' })), 'chassis.encapIP', /unknown key/);
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { remoteUrl: 'x' } }), 'ovsdb.remoteUrl', /unknown key/);
    throwsKey(t, () => parseConfig({ ...minimal(), reconcile: { repair: true } }), 'reconcile.repair', /unknown key/);
    throwsKey(t, () => parseConfig({ ...minimal(), log: { lvl: 'info' } }), 'log.lvl', /unknown key/);
    throwsKey(
      t,
      () => parseConfig({ ...minimal(), ovsdb: { remote: 'ssl:1.2.3.4', tls: { key: 'k', cert: 'c', ca: 'a', verify: false } } }),
      'ovsdb.tls.verify',
      /unknown key/,
    );
  });

  t.test('sections must be objects', async (t) => {
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: 'unix:/x' }), 'ovsdb', /must be an object/);
    throwsKey(t, () => parseConfig({ ...minimal(), log: ['info'] }), 'log', /must be an object/);
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { tls: 'yes' } }), 'ovsdb.tls');
  });

  t.test('an env override does not hide a malformed section in the file', async (t) => {
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: ['ssl:192.0.2.1'] }, { DPU_AGENT_OVSDB_REMOTE: 'unix:/x' }), 'ovsdb', /must be an object/);
    throwsKey(t, () => parseConfig({ chassis: 'oops' }, { DPU_AGENT_CHASSIS_ENCAP_IP: '192.0.2.1' }), 'chassis', /must be an object/);
  });

  t.test('required keys', async (t) => {
    for (const key of ['systemId', 'ovnRemote', 'encapIp'] as const) {
      const c = minimal();
      delete c['chassis']?.[key];
      throwsKey(t, () => parseConfig(c), `chassis.${key}`, /is required/);
    }
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { remote: 'ssl:1.2.3.4', tls: { key: 'k', cert: 'c' } } }), 'ovsdb.tls.ca', /is required/);
  });

  t.test('strings must be non-empty strings', async (t) => {
    throwsKey(t, () => parseConfig(withChassis({ hostname: '' })), 'chassis.hostname', /non-empty string/);
    throwsKey(t, () => parseConfig(withChassis({ encapIp: 42 })), 'chassis.encapIp', /non-empty string/);
  });

  t.test('bad IP', async (t) => {
    for (const ip of ['10.0.0', '10.0.0.256', 'dpu.example', '192.0.2.1/24', '::g']) {
      throwsKey(t, () => parseConfig(withChassis({ encapIp: ip })), 'chassis.encapIp', /not an IP address/);
    }
    throwsKey(t, () => parseConfig(minimal(), { DPU_AGENT_CHASSIS_ENCAP_IP: 'nope' }), 'chassis.encapIp');
  });

  t.test('bad systemId', async (t) => {
    for (const id of ['-dpu', 'dpu 0', 'dpu/0', 'a'.repeat(64), 'dpü']) {
      throwsKey(t, () => parseConfig(withChassis({ systemId: id })), 'chassis.systemId', /must match/);
    }
    t.equal(parseConfig(withChassis({ systemId: 'a'.repeat(63) })).chassis.systemId.length, 63, '63 chars is the limit');
  });

  t.test('bad bridge and transport zone names', async (t) => {
    throwsKey(t, () => parseConfig(withChassis({ bridge: 'br-int-too-long-x' })), 'chassis.bridge', /not a valid bridge name/);
    throwsKey(t, () => parseConfig(withChassis({ bridge: 'br int' })), 'chassis.bridge');
    throwsKey(t, () => parseConfig(withChassis({ transportZones: ['ok', 'not ok'] })), 'chassis.transportZones', /must match/);
    throwsKey(t, () => parseConfig(withChassis({ transportZones: ['a', 1] })), 'chassis.transportZones', /list of strings/);
    throwsKey(t, () => parseConfig(withChassis({ transportZones: { a: 1 } })), 'chassis.transportZones', /list of strings/);
  });

  t.test('bad remote', async (t) => {
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { remote: 'db.sock' } }), 'ovsdb.remote');
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { remote: 'punix:/x' } }), 'ovsdb.remote', /unsupported/);
    throwsKey(t, () => parseConfig(withChassis({ ovnRemote: 'tcp:10.0.0.1:99999' })), 'chassis.ovnRemote', /out of range/);
    throwsKey(t, () => parseConfig(withChassis({ ovnRemote: 'tcp:10.0.0.1:6642,bogus' })), 'chassis.ovnRemote');
    throwsKey(t, () => parseConfig(withChassis({ ovnRemote: 'tcp:::1:6642' })), 'chassis.ovnRemote');
  });

  t.test('ssl remote without tls', async (t) => {
    throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { remote: 'ssl:192.0.2.1:6640' } }), 'ovsdb.tls', /required for an ssl: remote/);
    throwsKey(
      t,
      () => parseConfig({ ...minimal(), ovsdb: { remote: 'tcp:192.0.2.1:6640,ssl:192.0.2.2:6640' } }),
      'ovsdb.tls',
      /required for an ssl: remote/,
    );
    throwsKey(t, () => parseConfig(minimal(), { DPU_AGENT_OVSDB_REMOTE: 'ssl:192.0.2.1' }), 'ovsdb.tls');
    const unix = parseConfig({ ...minimal(), ovsdb: { remote: 'unix:/run/ssl:db.sock' } });
    t.equal(unix.ovsdb.remote, 'unix:/run/ssl:db.sock', 'a unix path containing "ssl:" needs no tls');
  });

  t.test('bad enum', async (t) => {
    throwsKey(t, () => parseConfig(withChassis({ encapType: 'gre' })), 'chassis.encapType', /must be one of geneve, vxlan/);
    throwsKey(t, () => parseConfig(withChassis({ datapathType: 'dpdk' })), 'chassis.datapathType', /must be one of/);
    throwsKey(t, () => parseConfig(withChassis({ tcPolicy: 'skip-hw' })), 'chassis.tcPolicy', /must be one of/);
    throwsKey(t, () => parseConfig(minimal(), { DPU_AGENT_LOG_LEVEL: 'verbose' }), 'log.level', /must be one of/);
    throwsKey(t, () => parseConfig({ ...minimal(), log: { level: 1 } }), 'log.level');
  });

  t.test('bad bool', async (t) => {
    throwsKey(t, () => parseConfig(withChassis({ hwOffload: 'yes' })), 'chassis.hwOffload', /true or false/);
    throwsKey(t, () => parseConfig(minimal(), { DPU_AGENT_RECONCILE_REPAIR_DRIFT: '1' }), 'reconcile.repairDrift', /true or false/);
  });

  t.test('bad int', async (t) => {
    for (const v of [99, 600_001, 1.5, '10s', '-5', '', true, null]) {
      throwsKey(t, () => parseConfig({ ...minimal(), ovsdb: { requestTimeoutMs: v } }), 'ovsdb.requestTimeoutMs', /integer in \[100, 600000\]/);
    }
    throwsKey(t, () => parseConfig(minimal(), { DPU_AGENT_OVSDB_REQUEST_TIMEOUT_MS: '1e4' }), 'ovsdb.requestTimeoutMs');
    t.equal(parseConfig({ ...minimal(), ovsdb: { requestTimeoutMs: 100 } }).ovsdb.requestTimeoutMs, 100, 'bounds are inclusive');
    t.equal(parseConfig({ ...minimal(), ovsdb: { requestTimeoutMs: 600_000 } }).ovsdb.requestTimeoutMs, 600_000);
  });
});

t.test('loadConfig', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dpu-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  t.test('reads and validates a JSON file, env on top', async (t) => {
    const file = join(dir, 'ok.json');
    await writeFile(file, JSON.stringify(MINIMAL));
    const c = await loadConfig(file, { DPU_AGENT_LOG_LEVEL: 'error' });
    t.equal(c.chassis.systemId, 'dpu-0');
    t.equal(c.log.level, 'error');
    t.ok(Object.isFrozen(c));
  });

  t.test('no file: env only', async (t) => {
    const c = await loadConfig(undefined, {
      DPU_AGENT_CHASSIS_SYSTEM_ID: 'dpu-2',
      DPU_AGENT_CHASSIS_OVN_REMOTE: 'tcp:10.0.0.1:6642',
      DPU_AGENT_CHASSIS_ENCAP_IP: '10.0.0.2',
    });
    t.equal(c.chassis.systemId, 'dpu-2');
  });

  t.test('missing file → ConfigError --config', async (t) => {
    const err = await rejection(loadConfig(join(dir, 'absent.json'), {}));
    t.ok(err instanceof ConfigError);
    t.equal(err?.key, '--config');
    t.match(err?.message, /cannot read .*absent\.json/);
  });

  t.test('bad JSON → ConfigError --config', async (t) => {
    const file = join(dir, 'bad.json');
    await writeFile(file, '{"chassis": {"systemId": "dpu-0",}');
    const err = await rejection(loadConfig(file, {}));
    t.ok(err instanceof ConfigError);
    t.equal(err?.key, '--config');
    t.match(err?.message, /bad\.json is not valid JSON/);
  });

  t.test('valid JSON but invalid config names the key, not --config', async (t) => {
    const file = join(dir, 'invalid.json');
    await writeFile(file, JSON.stringify({ chassis: { ...MINIMAL.chassis, encapIp: '999.1.1.1' } }));
    t.equal((await rejection(loadConfig(file, {})))?.key, 'chassis.encapIp');
  });

  t.test('a JSON array file is rejected at the root', async (t) => {
    const file = join(dir, 'array.json');
    await writeFile(file, '[]');
    t.equal((await rejection(loadConfig(file, {})))?.key, '(root)');
  });
});

t.test('ovn / ports / hw sections', async (t) => {
  const c = parseConfig({ ...minimal(), ovn: { nbRemote: 'tcp:192.0.2.1:6641' }, ports: { mtu: 1450 }, hw: { backend: 'emulated', hostNetns: 'lab-host1' } });
  t.equal(c.ovn.nbRemote, 'tcp:192.0.2.1:6641');
  t.equal(c.ports.mtu, 1450);
  t.same(c.hw, { backend: 'emulated', hostNetns: 'lab-host1', uplink: 'p0' });
  t.throws(() => parseConfig({ ...minimal(), hw: { backend: 'emulated' } }), { code: 'DPU_ERR_CONFIG', key: 'hw.hostNetns' }, 'emulated needs the host netns');
  t.throws(() => parseConfig({ ...minimal(), hw: { hostNetns: 'lab-host1' } }), { code: 'DPU_ERR_CONFIG', key: 'hw.hostNetns' }, 'bluefield has no host netns');
  t.same(parseConfig({ ...minimal(), hw: { backend: 'bluefield', uplink: 'p1' } }).hw, { backend: 'bluefield', uplink: 'p1' });
  t.throws(() => parseConfig({ ...minimal(), ovn: { nbRemote: 'ssl:192.0.2.1:6641' } }), { code: 'DPU_ERR_CONFIG', key: 'ovn.tls' }, 'ssl NB needs TLS');
  t.throws(() => parseConfig({ ...minimal(), ovn: { nbRemote: 'bogus' } }), { code: 'DPU_ERR_CONFIG', key: 'ovn.nbRemote' }, 'bad remote');
  t.throws(() => parseConfig({ ...minimal(), ports: { mtu: 100 } }), { code: 'DPU_ERR_CONFIG', key: 'ports.mtu' }, 'mtu bounds');
  t.equal(parseConfig(minimal(), { DPU_AGENT_OVN_NB_REMOTE: 'unix:/run/ovn/ovnnb_db.sock' }).ovn.nbRemote, 'unix:/run/ovn/ovnnb_db.sock');
});

t.test('api and metrics sections', async (t) => {
  const api = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    ...minimal(),
    api: { listenAddress: '192.0.2.20', tls: { key: '/k', cert: '/c', clientCa: '/ca' }, ...extra },
  });

  t.test('defaults and limits', async (t) => {
    const c = parseConfig(api());
    t.equal(c.api?.listenAddress, '192.0.2.20');
    t.equal(c.api?.port, 50051);
    t.strictSame(c.api?.tls, { key: '/k', cert: '/c', clientCa: '/ca', crl: undefined, reloadPollMs: 10_000, expiryWarningDays: 14 });
    t.strictSame(c.api?.peer, { identity: c.chassis.hostname, uri: undefined }, 'accepted host defaults to the chassis hostname (the node name)');
    t.equal(c.api?.limits.keepalivePingMs, 10_000);
    t.equal(c.api?.limits.maxMessageBytes, 256 * 1024);
    t.equal(c.api?.limits.maxDeadlineMs, 120_000);
    t.equal(c.api?.limits.requestBodyTimeoutMs, 5_000);
    t.strictSame(c.metrics, { listenAddress: '127.0.0.1', port: 9110 });
    t.equal(isDeepFrozen(c), undefined, 'api section frozen too');
    const l = parseConfig(api({ limits: { ratePerSecond: 5, rateBurst: 5, maxMessageBytes: 4096 } })).api?.limits;
    t.equal(l?.ratePerSecond, 5);
    t.equal(l?.maxMessageBytes, 4096);
  });

  t.test('validation names the key', async (t) => {
    throwsKey(t, () => parseConfig({ ...minimal(), api: { tls: { key: '/k', cert: '/c', clientCa: '/ca' } } }), 'api.listenAddress', /required/);
    throwsKey(t, () => parseConfig(api({ listenAddress: '0.0.0.0' })), 'api.listenAddress', /wildcard/);
    throwsKey(t, () => parseConfig(api({ listenAddress: '::' })), 'api.listenAddress', /wildcard/);
    throwsKey(t, () => parseConfig(api({ listenAddress: 'dpu.example' })), 'api.listenAddress', /not an IP/);
    throwsKey(t, () => parseConfig({ ...minimal(), api: { listenAddress: '192.0.2.20' } }), 'api.tls', /required/);
    throwsKey(t, () => parseConfig(api({ tls: { key: '/k', cert: '/c' } })), 'api.tls.clientCa', /required/);
    throwsKey(t, () => parseConfig(api({ tls: { key: '/k', cert: '/c', clientCa: '/ca', ca: '/x' } })), 'api.tls.ca', /unknown key/);
    throwsKey(t, () => parseConfig(api({ port: 70000 })), 'api.port');
    throwsKey(t, () => parseConfig(api({ peer: { identity: 'system:node:host1' } })), 'api.peer.identity', /host name/);
    throwsKey(t, () => parseConfig(api({ peer: { identity: 'host1', uri: 'spiffe://x/a,b' } })), 'api.peer.uri', /commas/);
    throwsKey(t, () => parseConfig(api({ peer: { name: 'host1' } })), 'api.peer.name', /unknown key/);
    throwsKey(t, () => parseConfig(api({ tls: { key: '/k', cert: '/c', clientCa: '/ca', reloadPollMs: 10 } })), 'api.tls.reloadPollMs');
    const p = parseConfig(api({ peer: { identity: 'node-7.example', uri: 'spiffe://cluster.local/ns/dpu/node/node-7' }, tls: { key: '/k', cert: '/c', clientCa: '/ca', crl: '/crl.pem' } })).api;
    t.strictSame(p?.peer, { identity: 'node-7.example', uri: 'spiffe://cluster.local/ns/dpu/node/node-7' });
    t.equal(p?.tls.crl, '/crl.pem');
    throwsKey(t, () => parseConfig(api({ limits: { maxMessageBytes: 10 } })), 'api.limits.maxMessageBytes');
    throwsKey(t, () => parseConfig(api({ limits: { maxMessageSize: 10 } })), 'api.limits.maxMessageSize', /unknown key/);
    throwsKey(t, () => parseConfig(api({ limits: { ratePerSecond: 50, rateBurst: 10 } })), 'api.limits.rateBurst');
    throwsKey(t, () => parseConfig(api({ limits: 'x' })), 'api.limits', /object/);
    throwsKey(t, () => parseConfig({ ...minimal(), metrics: { listenAddress: '0.0.0.0' } }), 'metrics.listenAddress', /wildcard/);
    throwsKey(t, () => parseConfig({ ...minimal(), metrics: { bind: 'x' } }), 'metrics.bind', /unknown key/);
    throwsKey(
      t,
      () => parseConfig({ ...api({ port: 9000 }), metrics: { listenAddress: '192.0.2.20', port: 9000 } }),
      'metrics.port',
      /must not share/,
    );
    t.equal(parseConfig({ ...api({ port: 0 }), metrics: { listenAddress: '192.0.2.20', port: 0 } }).metrics.port, 0, 'ephemeral ports may coincide');
  });

  t.test('env overrides, including nested tls and limits keys', async (t) => {
    const c = parseConfig(minimal(), {
      DPU_AGENT_API_LISTEN_ADDRESS: '2001:db8::1',
      DPU_AGENT_API_PORT: '7443',
      DPU_AGENT_API_TLS_KEY: '/etc/dpu/api.key',
      DPU_AGENT_API_TLS_CERT: '/etc/dpu/api.crt',
      DPU_AGENT_API_TLS_CLIENT_CA: '/etc/dpu/hosts-ca.crt',
      DPU_AGENT_API_TLS_CRL: '/etc/dpu/hosts-ca.crl',
      DPU_AGENT_API_PEER_IDENTITY: 'worker-3',
      DPU_AGENT_API_LIMITS_MAX_SESSION_MEMORY_MB: '20',
      DPU_AGENT_API_LIMITS_REQUEST_BODY_TIMEOUT_MS: '1500',
      DPU_AGENT_METRICS_LISTEN_ADDRESS: '10.0.0.5',
      DPU_AGENT_METRICS_PORT: '9200',
    });
    t.equal(c.api?.listenAddress, '2001:db8::1');
    t.equal(c.api?.port, 7443);
    t.strictSame(c.api?.tls, { key: '/etc/dpu/api.key', cert: '/etc/dpu/api.crt', clientCa: '/etc/dpu/hosts-ca.crt', crl: '/etc/dpu/hosts-ca.crl', reloadPollMs: 10_000, expiryWarningDays: 14 });
    t.equal(c.api?.peer.identity, 'worker-3');
    t.equal(c.api?.limits.maxSessionMemoryMb, 20);
    t.equal(c.api?.limits.requestBodyTimeoutMs, 1500);
    t.strictSame(c.metrics, { listenAddress: '10.0.0.5', port: 9200 });
    t.equal(parseConfig(api(), { DPU_AGENT_API_LIMITS_RATE_BURST: '100' }).api?.limits.rateBurst, 100, 'env wins over the file');
    throwsKey(t, () => parseConfig(api({ tls: 'x' }), { DPU_AGENT_API_TLS_KEY: '/k' }), 'api.tls', /object/);
    throwsKey(t, () => parseConfig(api(), { DPU_AGENT_API_LIMITS_MAX_CONNECTIONS: 'many' }), 'api.limits.maxConnections');
    t.ok(Object.keys(ENV_KEYS).includes('DPU_AGENT_API_LIMITS_MAX_DEADLINE_MS'), 'every limit has an env key');
  });
});
