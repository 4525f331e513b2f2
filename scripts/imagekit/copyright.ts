// debian/copyright (DEP-5) for the packages, generated from package-lock.json:
// our code is Apache-2.0; the bundle and node_modules carry the runtime
// dependency closure, each listed with its version and declared license.
// Pure: same lock → same text.

interface LockPkg {
  version?: string;
  license?: string;
  dev?: boolean;
  optional?: boolean;
}

export interface Bundled {
  readonly name: string;
  readonly version: string;
  readonly license: string;
}

/**
 * Runtime (non-dev) packages of the lock, minus koffi's optional per-platform
 * packages for other architectures and type/header-only packages.
 */
export function runtimePackages(lock: unknown, keepPlatform: (name: string) => boolean): Bundled[] {
  const pkgs = (lock as { packages?: Record<string, LockPkg> }).packages ?? {};
  const out = new Map<string, Bundled>();
  for (const [path, p] of Object.entries(pkgs)) {
    if (!path || p.dev || !p.version) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (name.startsWith('@types/') || name === 'node-addon-api') continue;
    if (name.startsWith('@koromix/koffi-') && !keepPlatform(name)) continue;
    out.set(`${name}@${p.version}`, { name, version: p.version, license: p.license ?? 'UNKNOWN' });
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
}

const MIT = `Permission is hereby granted, free of charge, to any person obtaining a
copy of this software and associated documentation files (the "Software"),
to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.`;

const ISC = `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`;

const BSD3 = `Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice,
   this list of conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.
3. Neither the name of the copyright holder nor the names of its contributors
   may be used to endorse or promote products derived from this software
   without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE.`;

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? ' .' : ` ${l}`))
    .join('\n');
}

/** License ids named by the list, e.g. "(Apache-2.0 AND BSD-3-Clause)" → Apache-2.0, BSD-3-Clause. */
export function licenseIds(bundled: readonly Bundled[]): string[] {
  const ids = new Set<string>();
  for (const b of bundled) for (const id of b.license.split(/[\s()]+/)) if (id && !/^(AND|OR|WITH)$/.test(id)) ids.add(id);
  return [...ids].sort();
}

/**
 * The DEP-5 text. `bundle` is the esbuild output (our code plus the list's JS,
 * so all their licenses apply); `addons` are node_modules globs (MIT packages).
 */
export function copyrightText(pkgName: string, year: number, bundled: readonly Bundled[], bundle: string, addons: readonly string[]): string {
  const list = bundled.map((b) => `${b.name} ${b.version} (${b.license})`).join('\n');
  const ids = licenseIds(bundled);
  const unknown = ids.filter((id) => !['Apache-2.0', 'MIT', 'ISC', 'BSD-3-Clause'].includes(id));
  if (unknown.length) throw new Error(`no license text for ${unknown.join(', ')}: add it to scripts/imagekit/copyright.ts`);
  const paras = [
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      `Upstream-Name: ${pkgName}`,
      'Comment: Built from the dpu-agent repository by scripts/build-image.',
      ' The JavaScript bundle and node_modules contain these npm packages',
      ' (name, version, license as declared in package-lock.json):',
      indent(list),
    ].join('\n'),
    ['Files: *', `Copyright: ${year} The dpu-agent authors`, 'License: Apache-2.0'].join('\n'),
    [
      `Files: ${bundle}`,
      `Copyright: ${year} The dpu-agent authors and the authors of the packages listed above`,
      `License: ${['Apache-2.0', ...ids.filter((i) => i !== 'Apache-2.0')].join(' and ')}`,
      'Comment: one file bundling our code and the JavaScript of the packages above,',
      ' each under its own license.',
    ].join('\n'),
  ];
  if (addons.length) {
    paras.push([`Files: ${addons.join('\n ')}`, 'Copyright: the authors of netlink, node-gyp-build and koffi', 'License: MIT'].join('\n'));
  }
  paras.push(
    [
      'License: Apache-2.0',
      ' On Debian systems the full text of the Apache License 2.0 is in',
      ' /usr/share/common-licenses/Apache-2.0.',
    ].join('\n'),
    `License: MIT\n${indent(MIT)}`,
    `License: ISC\n${indent(ISC)}`,
    `License: BSD-3-Clause\n${indent(BSD3)}`,
  );
  return `${paras.join('\n\n')}\n`;
}
