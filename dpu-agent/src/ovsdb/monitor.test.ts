import t from 'tap';
import { eq } from './ops.ts';
import { coversRequests, mergeMonitorRequests } from './monitor.ts';

t.test('merge: column union per table; "all columns" absorbs any list', async (t) => {
  const m = mergeMonitorRequests(
    { Bridge: { columns: ['name', 'ports'] }, Interface: { columns: ['name', 'type'] } },
    { Bridge: { columns: ['ports', 'fail_mode'] }, Interface: {}, Port: { columns: ['name'] } },
  );
  t.strictSame(m, { Bridge: { columns: ['name', 'ports', 'fail_mode'] }, Interface: {}, Port: { columns: ['name'] } });
  t.strictSame(mergeMonitorRequests({ Port: {} }, { Port: { columns: ['x'] } }), { Port: {} }, 'either order');
  t.throws(() => mergeMonitorRequests({ Port: { where: [eq('name', 'a')] } }), /conditional/, 'a condition cannot be merged');
});

t.test('covers: every table and column needed is there', async (t) => {
  const have = { Bridge: { columns: ['name', 'ports'] }, Interface: {} };
  t.ok(coversRequests(have, { Bridge: { columns: ['ports'] }, Interface: { columns: ['ofport'] } }));
  t.notOk(coversRequests(have, { Bridge: { columns: ['fail_mode'] } }), 'a missing column');
  t.notOk(coversRequests(have, { Port: { columns: ['name'] } }), 'a missing table');
  t.notOk(coversRequests(have, { Bridge: {} }), 'all columns wanted, a list given');
});
