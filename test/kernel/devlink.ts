// Our devlink generic netlink client (dpu-agent/src/devlink/) against the lane's real
// kernel. Debian's 6.1 kernel is built without netdevsim (# CONFIG_NETDEVSIM is not
// set), and the lane has no other devlink device, so no port exists here to set a
// hw_addr on: this checks what a kernel with devlink but no ports answers — the
// family lookup through nlctrl, a port dump equal to `devlink -j port show`'s (empty),
// ENODEV for a port of no device, an unknown family's ENOENT, and a request the
// genetlink policy rejects with its extack and the offending attribute's offset.
// The set-then-get path is covered by the codec tests and the hand-made BlueField
// fixture (dpu-agent/src/devlink/testdata/).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Devlink } from '../../dpu-agent/src/devlink/client.ts';
import { DEVLINK_ATTR_BUS_NAME, DEVLINK_ATTR_DEV_NAME, DEVLINK_ATTR_PORT_INDEX, DEVLINK_CMD_PORT_GET } from '../../dpu-agent/src/devlink/codec.ts';
import { asIproute2Prints, parseDevlinkPortsJson } from '../../dpu-agent/src/devlink/iproute2.ts';
import { DevlinkError } from '../../dpu-agent/src/errors.ts';
import { check, kernelTest } from '../helpers/kernel.ts';

/** The DevlinkError `p` rejects with (fails the test if it resolves or throws something else). */
async function devlinkFailure(p: Promise<unknown>, what: string): Promise<DevlinkError> {
  try {
    await p;
  } catch (err) {
    check(err instanceof DevlinkError, `${what}: expected a DevlinkError, got ${String(err)}`);
    return err;
  }
  throw new Error(`${what}: expected a DevlinkError, it succeeded`);
}

await kernelTest('devlink', async (defer) => {
  // Say what the lane offers, so a kernel that gains netdevsim is noticed.
  const nsim = spawnSync('modprobe', ['netdevsim'], { encoding: 'utf8' });
  console.log(`devlink: modprobe netdevsim: ${nsim.status === 0 ? 'loaded' : `unavailable (${nsim.stderr.trim()})`}; /sys/bus/netdevsim ${existsSync('/sys/bus/netdevsim') ? 'present' : 'absent'}`);

  const dl = new Devlink({ timeoutMs: 10_000 });
  defer(() => dl.close());
  check(dl.nl.extAck, 'NETLINK_EXT_ACK could not be enabled on the generic netlink socket');

  const family = await dl.familyInfo();
  check(family.name === 'devlink' && family.id >= 0x10 && family.version >= 1, `devlink family: ${JSON.stringify(family)}`);
  const missing = await devlinkFailure(dl.resolveFamily('dpu-nosuchfam'), 'unknown family');
  check(missing.errnoName === 'ENOENT', `unknown family: ${missing.message}`);
  // nlctrl's policy caps a family name at GENL_NAMSIZ (16 with its NUL): EINVAL + extack.
  const long = await devlinkFailure(dl.resolveFamily('dpu-no-such-family'), 'family name too long');
  check(long.errnoName === 'EINVAL' && /policy/i.test(long.extack ?? ''), `family name too long: ${long.message}`);

  // The dump, against iproute2's view of the same kernel.
  const ours = (await dl.ports()).map(asIproute2Prints);
  const ip = spawnSync('devlink', ['-j', 'port', 'show'], { encoding: 'utf8' });
  check(ip.status === 0, `devlink -j port show: ${ip.stderr}`);
  const theirs = parseDevlinkPortsJson(ip.stdout || '{}');
  check(JSON.stringify(ours) === JSON.stringify(theirs), `port dump differs from devlink -j port show:\n ours   ${JSON.stringify(ours)}\n theirs ${JSON.stringify(theirs)}`);

  // A port of a device that does not exist.
  const handle = 'pci/0000:00:1f.7/4097';
  check((await dl.port(handle)) === undefined, 'a port of no device was found');
  const set = await devlinkFailure(dl.setHwAddr(handle, '0a:58:0a:f4:01:05'), 'set on no device');
  check(set.errnoName === 'ENODEV' && set.handle === handle && set.op === 'port function set', `set on no device: ${set.message}`);

  // The policy rejects a u16 where DEVLINK_ATTR_PORT_INDEX is a u32: ERANGE on 6.1
  // (validate_nla: shorter than the type's minimum), the extack text, and the
  // attribute's offset in our request: nlmsghdr 16 + genlmsghdr 4 + BUS_NAME "pci\0" 8
  // + DEV_NAME "0000:00:1f.7\0" 20 = 48.
  const bad = await devlinkFailure(
    dl.request(DEVLINK_CMD_PORT_GET, (w) => w.string(DEVLINK_ATTR_BUS_NAME, 'pci').string(DEVLINK_ATTR_DEV_NAME, '0000:00:1f.7').u16(DEVLINK_ATTR_PORT_INDEX, 1), 'port get (bad index)'),
    'malformed port get',
  );
  check(bad.errnoName === 'ERANGE' && /policy/i.test(bad.extack ?? '') && bad.extackOffset === 48, `malformed port get: ${bad.message} (offset ${bad.extackOffset})`);
  console.log(`devlink: family id ${family.id}, ${ours.length} ports (same as devlink -j port show); ENODEV on no device; extack "${bad.extack}" at offset ${bad.extackOffset}`);
});
