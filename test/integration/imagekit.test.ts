// Pure parts of scripts/imagekit (no root, no dpkg): control text, sizes,
// md5sums order, dates, gzip determinism, license list, bf.cfg rendering, man page.
import t from 'tap';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { copyrightText, licenseIds, runtimePackages } from '../../scripts/imagekit/copyright.ts';
import { changelogText, controlText, directories, gzipN, installedSizeKiB, md5sumsText, rfc2822, type DebSpec } from '../../scripts/imagekit/deb.ts';
import { externalsOf, renderBfCfg } from '../../scripts/imagekit/main.ts';
import { manPage, roffLine } from '../../scripts/imagekit/manpage.ts';
import { integrityOf, lockEntry, nodeArch, tarballName } from '../../scripts/imagekit/vendor.ts';

const spec: DebSpec = {
  name: 'dpu-agent',
  version: '1.2.3',
  arch: 'arm64',
  maintainer: 'M <m@example.org>',
  section: 'net',
  priority: 'optional',
  depends: ['nodejs (>= 18.19)', 'ovn-host'],
  summary: 'short',
  description: 'first line\n\nsecond paragraph\n',
  files: [],
};

t.test('control: field order, folded description with " ." for blank lines', async (t) => {
  t.equal(
    controlText(spec, 42),
    [
      'Package: dpu-agent', 'Version: 1.2.3', 'Architecture: arm64', 'Maintainer: M <m@example.org>', 'Installed-Size: 42',
      'Depends: nodejs (>= 18.19), ovn-host', 'Section: net', 'Priority: optional', 'Description: short', ' first line', ' .', ' second paragraph', '',
    ].join('\n'),
  );
});

t.test('sizes, directories, md5sums', async (t) => {
  t.equal(installedSizeKiB([0, 1, 1024, 1025], 3), 0 + 1 + 1 + 2 + 3, 'each file rounded up to a KiB, +1 per dir/link');
  t.same(directories(['/usr/bin/a', '/usr/lib/x/y/b', '/etc/c']), ['/etc', '/usr', '/usr/bin', '/usr/lib', '/usr/lib/x', '/usr/lib/x/y']);
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  t.equal(
    md5sumsText([{ path: '/z', data: Buffer.from('z') }, { path: '/a/b', data: Buffer.from('b') }]),
    `${md5('b')}  a/b\n${md5('z')}  z\n`,
    'sorted by path, no leading slash',
  );
});

t.test('dates and gzip are functions of their input only', async (t) => {
  t.equal(rfc2822(0), 'Thu, 01 Jan 1970 00:00:00 +0000');
  t.equal(rfc2822(1764100000), 'Tue, 25 Nov 2025 19:46:40 +0000');
  t.match(changelogText('p', '1.0', 'M <m@x>', 0, 'note'), /^p \(1\.0\) unstable; urgency=medium\n\n {2}\* note\n\n -- M <m@x> {2}Thu, 01 Jan 1970/);
  const a = gzipN('hello');
  t.ok(a.equals(gzipN('hello')), 'same bytes every time');
  t.equal(a.readUInt32LE(4), 0, 'no mtime');
  t.equal(a[3]! & 0x08, 0, 'no file name');
  t.equal(gunzipSync(a).toString(), 'hello');
});

t.test('vendor: arch names, lock entries, npm tarball names, integrity', async (t) => {
  t.equal(nodeArch('amd64'), 'x64');
  t.equal(nodeArch('arm64'), 'arm64');
  t.throws(() => nodeArch('riscv64'), /unsupported architecture riscv64/);
  const lock = { packages: { 'node_modules/@koromix/koffi-linux-arm64': { version: '3.3.4', integrity: 'sha512-x' } } };
  t.same(lockEntry(lock, '@koromix/koffi-linux-arm64'), { name: '@koromix/koffi-linux-arm64', version: '3.3.4', integrity: 'sha512-x' });
  t.throws(() => lockEntry(lock, 'nope'), /no version\/integrity for nope/);
  t.equal(tarballName({ name: '@koromix/koffi-linux-arm64', version: '3.3.4', integrity: '' }), 'koromix-koffi-linux-arm64-3.3.4.tgz');
  t.equal(integrityOf(Buffer.from('')), 'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==');
});

t.test('copyright: runtime closure only, licenses with texts, unknown license refused', async (t) => {
  const lock = {
    packages: {
      '': { version: '0.1.0' },
      'node_modules/a': { version: '1.0.0', license: 'MIT' },
      'node_modules/b': { version: '2.0.0', license: '(Apache-2.0 AND BSD-3-Clause)' },
      'node_modules/tap': { version: '21.0.0', license: 'BlueOak-1.0.0', dev: true },
      'node_modules/@types/node': { version: '20.0.0', license: 'MIT' },
      'node_modules/@koromix/koffi-linux-x64': { version: '3.3.4', license: 'MIT', optional: true },
      'node_modules/@koromix/koffi-linux-arm64': { version: '3.3.4', license: 'MIT', optional: true },
    },
  };
  const pkgs = runtimePackages(lock, (n) => n.endsWith('-arm64'));
  t.same(pkgs.map((p) => p.name), ['@koromix/koffi-linux-arm64', 'a', 'b']);
  t.same(licenseIds(pkgs), ['Apache-2.0', 'BSD-3-Clause', 'MIT']);
  const text = copyrightText('x', 2026, pkgs, 'usr/lib/x/x.mjs', ['usr/lib/x/node_modules/*']);
  t.match(text, /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\//);
  t.match(text, /Files: usr\/lib\/x\/x\.mjs\nCopyright: 2026 .*\nLicense: Apache-2\.0 and BSD-3-Clause and MIT/);
  t.match(text, /\n b 2\.0\.0 \(\(Apache-2\.0 AND BSD-3-Clause\)\)\n/);
  for (const l of ['MIT', 'ISC', 'BSD-3-Clause']) t.match(text, new RegExp(`\\nLicense: ${l}\\n `));
  t.throws(() => copyrightText('x', 2026, [{ name: 'c', version: '1', license: 'GPL-3.0' }], 'f', []), /no license text for GPL-3\.0/);
});

t.test('bf.cfg rendering: payload wrapped at 76, sha256 of the bytes, unknown @X@ untouched', async (t) => {
  const bytes = Buffer.alloc(200, 7);
  const out = renderBfCfg('v=@VERSION@ a=@ARCH@ d=@DEB@ s=@SHA256@ @OTHER@\n@PAYLOAD@\n', { version: '1', arch: 'arm64', deb: 'x.deb', debBytes: bytes });
  const [head, ...payload] = out.trimEnd().split('\n');
  t.equal(head, `v=1 a=arm64 d=x.deb s=${createHash('sha256').update(bytes).digest('hex')} @OTHER@`);
  t.ok(payload.every((l) => l.length <= 76));
  t.ok(Buffer.from(payload.join(''), 'base64').equals(bytes));
});

t.test('externals a bundle loads', async (t) => {
  t.same(externalsOf('import { RawNetlinkSocket } from "netlink";\nconst k = require("koffi");'), ['koffi', 'netlink']);
  t.same(externalsOf('const s = "netlink is a word"; import x from "./netlink.js";'), []);
});

t.test('man page from --help: roff-escaped', async (t) => {
  t.equal(roffLine('.starts with a dot'), '\\&.starts with a dot');
  t.equal(roffLine("'quote"), "\\&'quote");
  t.equal(roffLine('back\\slash'), 'back\\eslash');
  const m = manPage({ name: 'dpu-agent', section: 8, version: '1', date: '2026-01-01', summary: 's', help: 'Usage: x\n.dot\n' });
  t.match(m, /^\.TH DPU-AGENT 8 "2026-01-01" "dpu-agent 1"\n/);
  t.match(m, /\.nf\nUsage: x\n\\&\.dot\n\.fi\n/);
});
