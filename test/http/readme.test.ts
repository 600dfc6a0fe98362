// The README's quick-start examples, run as written against the server that `npm start` runs: the
// compiled server on the shipped models with the default configuration (EXECUTION_PROVIDER=auto,
// so CPU here), each command line of the README's first curl block through sh with its port
// changed, in a folder holding the images the commands name. The README cannot drift from what the
// service answers. Needs curl and jq (.ci/run installs them).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startServer } from '../../scripts/server-process.js';
import { decodePng, ROOT } from './helpers.js';

/** The command lines of the README's first sh block that uses curl (a line ending in `|` goes on). */
function quickStartCommands(readme: string): string[] {
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes('curl -s localhost:8080/models'));
  if (!block) throw new Error('the README has no quick-start curl block');
  const commands: string[] = [];
  let pending = '';
  for (const line of block.split('\n')) {
    if (!line.trim()) continue;
    pending += (pending ? '\n' : '') + line;
    if (!/\|\s*$/.test(line)) {
      commands.push(pending);
      pending = '';
    }
  }
  return commands;
}

t.test('the README\'s quick-start commands, against the server on the shipped models', async (t) => {
  const commands = quickStartCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  t.ok(commands.length >= 6, `${commands.length} commands`);
  const { proc, base } = await startServer({ EXECUTION_PROVIDER: 'auto', LOG_LEVEL: 'error' });
  t.teardown(() => void proc.kill('SIGKILL'));
  const dir = mkdtempSync(join(tmpdir(), 'spn-readme-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // (the images the commands score are made by the block itself: a new user has none)
  const outputs: string[] = [];
  for (const command of commands) {
    const run = command.replaceAll('localhost:8080', base.replace('http://', ''));
    let out = '';
    try {
      out = execFileSync('sh', ['-c', `set -e; ${run}`], { cwd: dir, encoding: 'latin1', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      t.fail(`${command}: ${(err as Error).message}`);
    }
    outputs.push(out);
  }
  const byText = (part: string) => outputs[commands.findIndex((c) => c.includes(part))] ?? '';
  for (const f of ['garment', 'a', 'b']) {
    const img = await decodePng(readFileSync(join(dir, `${f}.png`)));
    t.same([img.width, img.height, img.channels], [28, 28, 1], `${f}.png: a 28x28 grey sample, made by the block`);
  }

  const shipped = readdirSync(join(ROOT, 'models')).filter((d) => existsSync(join(ROOT, 'models', d, 'manifest.json'))).sort();
  t.ok(shipped.includes('mu-fmnist') && shipped.includes('spn8-fmnist'));
  t.same(JSON.parse(`[${byText('/models |').trim().split('\n').join(',')}]`).sort(), shipped, `every shipped model is listed (${shipped.join(', ')})`);
  const grid = await decodePng(readFileSync(join(dir, 'grid.png')));
  t.same([grid.width, grid.height], [118, 118], 'a 4x4 grid of 28x28 samples with 2-pixel gaps');
  const stream = byText('text/event-stream');
  t.equal(stream.match(/^event: slice$/gm)?.length, 8, 'eight slice events (1 + 3 + 4 over the three stages)');
  t.match(stream, /^event: done$/m, 'and done');
  // four upscalings of garment.png: each keeps the 3 high bits of its slice (0, 0), the small image
  const garment = await decodePng(readFileSync(join(dir, 'garment.png')));
  const upscaled = await decodePng(readFileSync(join(dir, 'upscaled.png')));
  t.same([upscaled.width, upscaled.height], [58, 58], 'a 2x2 grid');
  let kept = 0;
  let same = 0;
  for (const [oy, ox] of [[0, 0], [0, 30], [30, 0], [30, 30]]) {
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = upscaled.data[(oy + y) * 58 + ox + x];
        const g = garment.data[y * 28 + x];
        if (y % 2 === 0 && x % 2 === 0) kept += Number((v & 0xe0) === (g & 0xe0));
        same += Number(v === g);
      }
    }
  }
  t.equal(kept, 4 * 14 * 14, 'every sample keeps the small image (slice 0, high 3 bits)');
  t.ok(same < 4 * 28 * 28 * 0.9, `and generates the rest (${same} of ${4 * 28 * 28} pixels equal to the original)`);
  const bits = Number(byText('perPixel=true').trim());
  t.ok(bits > 0.5 && bits < 8, `garment.png scores ${bits} bits/dim`);
  // jq prints the mean on one line, then the array over several
  const batchOut = byText('images: [$a, $b]').trim();
  const mean = Number(batchOut.slice(0, batchOut.indexOf('\n')));
  const each = JSON.parse(batchOut.slice(batchOut.indexOf('\n') + 1)) as number[];
  t.equal(each.length, 2, 'the JSON batch scores both images');
  t.ok(Math.abs(mean - (each[0] + each[1]) / 2) < 1e-9, `and their mean (${mean})`);
  t.same(JSON.parse(byText('images=@a.png').replace(/\s+/g, '')), each, 'the multipart batch scores them the same');
  t.equal(proc.exitCode, null, 'the server is still running');
});
