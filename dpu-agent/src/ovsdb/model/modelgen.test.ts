import t from 'tap';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_TARGETS, generateModels } from '../../../../scripts/ovsdb-modelgen.ts';
import { parseSchema } from '../schema.ts';

// STYLE.md 7: generated code is committed, and regenerating must not change it. The
// schemas are committed copies (generation never depends on the machine's packages);
// the second test tells when the installed OVS/OVN ships another schema version.

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

t.test('npm run gen:ovsdb output equals the committed dpu-agent/src/ovsdb/model', async (t) => {
  const fresh = await generateModels(ROOT);
  t.strictSame([...fresh.keys()].sort(), MODEL_TARGETS.map((m) => m.out).sort());
  for (const [path, text] of fresh) {
    const committed = await readFile(join(ROOT, path), 'utf8').catch(() => '');
    t.ok(committed === text, `${path} is up to date (run \`npm run gen:ovsdb\` and commit)`);
  }
});

const INSTALLED: Record<string, string> = {
  'dpu-agent/src/ovsdb/schemas/vswitch.ovsschema': '/usr/share/openvswitch/vswitch.ovsschema',
  'dpu-agent/src/ovsdb/schemas/ovn-nb.ovsschema': '/usr/share/ovn/ovn-nb.ovsschema',
};

t.test('the committed schemas are the installed versions', async (t) => {
  for (const m of MODEL_TARGETS) {
    const installed = INSTALLED[m.schema];
    t.ok(installed, `${m.schema} has an installed counterpart`);
    if (!installed || !existsSync(installed)) {
      t.comment(`${installed} not installed: nothing to compare`);
      continue;
    }
    const ours = parseSchema(JSON.parse(await readFile(join(ROOT, m.schema), 'utf8')));
    const theirs = parseSchema(JSON.parse(await readFile(installed, 'utf8')));
    t.equal(ours.version, theirs.version, `${m.schema}: same version as ${installed} (copy it and run \`npm run gen:ovsdb\`)`);
    t.equal(ours.cksum, theirs.cksum, `${m.schema}: same cksum as ${installed}`);
  }
});
