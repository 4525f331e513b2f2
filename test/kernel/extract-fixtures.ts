// Host side of RECORD_FIXTURES=1: reads a kernel-lane console log on stdin and
// writes every "@@fixture <name> <base64>" line to dpu-agent/src/tc/testdata/<name>.
//   node --import tsx test/kernel/extract-fixtures.ts < lane.log
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../dpu-agent/src/tc/testdata/', import.meta.url));
const chunks: Buffer[] = [];
process.stdin.on('data', (c: Buffer) => chunks.push(c));
process.stdin.on('end', () => {
  let n = 0;
  for (const line of Buffer.concat(chunks).toString('utf8').split(/\r?\n/)) {
    const m = /@@fixture (kernel-[\w.-]+) ([A-Za-z0-9+/=]+)\s*$/.exec(line);
    if (!m) continue;
    writeFileSync(dir + m[1], Buffer.from(m[2]!, 'base64'));
    process.stdout.write(`wrote ${m[1]}\n`);
    n++;
  }
  if (n === 0) {
    process.stderr.write('no @@fixture lines found\n');
    process.exitCode = 1;
  }
});
