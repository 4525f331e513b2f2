// `lab up` / `status` / `down` through the CLI: down leaves no netns, link or
// process behind — also after `up` was killed half-way.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { statePath } from '../../scripts/labkit/state.ts';
import { poll } from '../../scripts/labkit/sh.ts';
import { down } from '../../scripts/labkit/topology.ts';
import { labSkipReason, leftovers, uniquePrefix } from '../helpers/lab.ts';

const LAB = fileURLToPath(new URL('../../scripts/lab', import.meta.url));
const lab = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(LAB, args, { encoding: 'utf8', env, timeout: 90_000 });

const rootLinks = () => spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout;
const linkNames = (json: string) => (JSON.parse(json) as { ifname: string }[]).map((l) => l.ifname).sort();

const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  t.test('up, status, exec, idempotent up, down leaves nothing', async (t) => {
    const prefix = uniquePrefix('dplc');
    t.teardown(() => down(prefix));
    const linksBefore = linkNames(rootLinks());

    const u = lab(['up', '--dpus', '2', '--prefix', prefix]);
    t.equal(u.status, 0, `up: ${u.stderr}`);
    t.match(u.stdout, /up in \d+ ms/);

    const s = lab(['status', '--prefix', prefix, '--json']);
    t.equal(s.status, 0, 'status healthy');
    const st = JSON.parse(s.stdout) as { procs: { name: string; alive: boolean }[]; chassis: Record<string, boolean> };
    t.same(st.chassis, { dpu1: true, dpu2: true }, 'the agent configured both chassis');
    t.same(
      st.procs.map((p) => p.name).sort(),
      [
        'central/nb', 'central/northd', 'central/sb0',
        'dpu1/dpu-agent', 'dpu1/ovn-controller', 'dpu1/ovs-vswitchd', 'dpu1/ovsdb-server',
        'dpu2/dpu-agent', 'dpu2/ovn-controller', 'dpu2/ovs-vswitchd', 'dpu2/ovsdb-server',
      ],
    );
    t.ok(st.procs.every((p) => p.alive));

    const e = lab(['exec', 'dpu1', '--prefix', prefix, '--', 'ovs-vsctl', 'get', 'Open_vSwitch', '.', 'external_ids:system-id']);
    t.match(e.stdout.trim(), /^"?dpu1"?$/, 'exec runs in the DPU with its OVS env');
    const h = lab(['exec', 'host2', '--prefix', prefix, '--', 'ip', '-o', 'link', 'show', 'vf7']);
    t.equal(h.status, 0, 'host2 has the VF pool');

    const again = lab(['up', '--dpus', '2', '--prefix', prefix]);
    t.equal(again.status, 0);
    t.match(again.stdout, /already up/, 'up is idempotent');

    const d = lab(['down', '--prefix', prefix]);
    t.equal(d.status, 0, d.stdout + d.stderr);
    t.same(await leftovers(prefix), [], 'no netns, run dir or process left');
    t.same(linkNames(rootLinks()), linksBefore, 'no link in the root netns');
    t.equal(lab(['down', '--prefix', prefix]).status, 0, 'down twice is fine');
  });

  /** Starts `lab up` and SIGKILLs it once some daemons are recorded but before it is done. */
  async function crashUp(prefix: string): Promise<void> {
    const child = spawn(LAB, ['up', '--dpus', '3', '--prefix', prefix], { stdio: 'ignore' });
    await poll(
      'up to record daemons',
      () => {
        if (!existsSync(statePath(prefix))) return undefined;
        const s = JSON.parse(readFileSync(statePath(prefix), 'utf8')) as { procs: unknown[] };
        return s.procs.length >= 5 ? true : undefined;
      },
      { tries: 1000, intervalMs: 10 },
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }

  t.test('down after up was killed half-way leaves nothing', async (t) => {
    const prefix = uniquePrefix('dplk');
    t.teardown(() => down(prefix));
    await crashUp(prefix);
    t.not((await leftovers(prefix)).length, 0, 'the crash left things behind');
    const d = lab(['down', '--prefix', prefix]);
    t.equal(d.status, 0, d.stdout + d.stderr);
    t.same(await leftovers(prefix), [], 'down removed all of it');
  });

  t.test('up after up was killed half-way rebuilds the lab (dead owner lock broken)', async (t) => {
    const prefix = uniquePrefix('dplr');
    t.teardown(() => down(prefix));
    await crashUp(prefix);
    const u = lab(['up', '--dpus', '3', '--prefix', prefix]);
    t.equal(u.status, 0, u.stderr);
    t.match(u.stdout, /incomplete .*tearing it down first/);
    t.equal(lab(['status', '--prefix', prefix]).status, 0, 'healthy');
    t.equal(lab(['down', '--prefix', prefix]).status, 0);
    t.same(await leftovers(prefix), []);
  });

  t.test('a missing prerequisite is a clear error', async (t) => {
    const prefix = uniquePrefix('dplm');
    const r = lab(['up', '--prefix', prefix], { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin' });
    t.equal(r.status, 1);
    t.same(await leftovers(prefix), [], 'and it made nothing');
    t.match(r.stderr, /prerequisites missing/);
    t.match(r.stderr, /command ovsdb-server not found/);
    t.match(r.stderr, /apt-get install -y .*openvswitch-switch/);
  });
}
