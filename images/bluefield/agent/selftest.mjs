// Native addon self-test, installed as /usr/lib/dpu-agent/selftest.mjs:
//   node /usr/lib/dpu-agent/selftest.mjs
// Loads the two addons exactly as the agent does (resolved from this directory's
// node_modules), opens an rtnetlink socket and dumps the links (same as:
// ip -o link show), and calls libc through koffi. Prints one JSON line; exit 0
// when both work, 1 otherwise. Needs no privileges and changes nothing.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const out = { arch: process.arch, node: process.version };
let ok = true;

try {
  const { createRtNetlink } = require('netlink');
  const rt = createRtNetlink();
  try {
    const links = await rt.getLinks();
    out.netlink = { links: links.map((l) => l.attrs.ifname).sort() };
    if (!out.netlink.links.includes('lo')) throw new Error('link dump has no "lo"');
  } finally {
    rt.socket.close();
  }
} catch (err) {
  ok = false;
  out.netlink = { error: String(err?.message ?? err) };
}

try {
  const koffi = require('koffi');
  const getpid = koffi.load('libc.so.6').func('int getpid()');
  out.koffi = { version: koffi.version, getpid: getpid() === process.pid };
  if (!out.koffi.getpid) throw new Error('getpid() through koffi disagrees with process.pid');
} catch (err) {
  ok = false;
  out.koffi = { ...out.koffi, error: String(err?.message ?? err) };
}

process.stdout.write(`${JSON.stringify({ ok, ...out })}\n`);
process.exitCode = ok ? 0 : 1;
