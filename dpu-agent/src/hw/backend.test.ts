import t from 'tap';
import { silentLogger } from '../log.ts';
import { openHardware } from './backend.ts';
import { BlueFieldHw } from './bluefield.ts';
import { EmulatedHw } from './emulated.ts';

t.test('openHardware builds the backend the config names', async (t) => {
  const bf = openHardware({ backend: 'bluefield', uplink: 'p0' }, { logger: silentLogger() });
  t.equal(bf.backend.kind, 'bluefield');
  t.ok(bf.backend instanceof BlueFieldHw);
  const em = openHardware({ backend: 'emulated', hostNetns: 'lab-host1', uplink: 'p0' }, { logger: silentLogger() });
  t.equal(em.backend.kind, 'emulated');
  t.ok(em.backend instanceof EmulatedHw);
  // Nothing opened yet (sockets are opened on first use): close is a no-op, and safe.
  bf.close();
  em.close();
});

t.test('linksChanged drops the BlueField devlink port cache; a no-op when emulated', async (t) => {
  const bf = openHardware({ backend: 'bluefield', uplink: 'p0' }, { logger: silentLogger() });
  let invalidated = 0;
  (bf.backend as BlueFieldHw).invalidatePorts = () => void invalidated++;
  bf.linksChanged();
  bf.linksChanged();
  t.equal(invalidated, 2);
  const em = openHardware({ backend: 'emulated', hostNetns: 'lab-host1', uplink: 'p0' }, { logger: silentLogger() });
  t.doesNotThrow(() => em.linksChanged());
});
