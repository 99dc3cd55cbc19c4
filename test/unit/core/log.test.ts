import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The logger writes to fd 1 with writeSync: run it in a child process and read its lines.
const LOG_MODULE = fileURLToPath(new URL('../../../src/core/log.js', import.meta.url));

function linesOf(script: string): Record<string, unknown>[] {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    `import { createLogger } from ${JSON.stringify(LOG_MODULE)};\n${script}`], { encoding: 'utf8', timeout: 10_000 });
  return out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a child writes its bindings (rendered at its first line) after the base fields, before the line\'s own', () => {
  const lines = linesOf(`
    const log = createLogger({ name: 'remora-test', level: 'info' });
    const quiet = log.child({ conn: 1 });
    quiet.debug({ x: 1 }, 'not written');
    const c = log.child({ conn: 7, listener: 'outbound' });
    c.info({ event: 'e1' }, 'first');
    c.warn('second');
    const g = c.child({ request: 'r1' });
    g.error({ event: 'e3' }, 'third');
    log.info('parent');
  `);
  assert.equal(lines.length, 4);
  const [first, second, third, parent] = lines;
  assert.deepEqual(Object.keys(first ?? {}), ['level', 'time', 'pid', 'name', 'conn', 'listener', 'event', 'msg']);
  assert.equal(first?.['conn'], 7);
  assert.equal(first?.['listener'], 'outbound');
  assert.equal(first?.['msg'], 'first');
  assert.equal(second?.['level'], 'warn');
  assert.equal(second?.['conn'], 7);
  assert.deepEqual(Object.keys(third ?? {}), ['level', 'time', 'pid', 'name', 'conn', 'listener', 'request', 'event', 'msg']);
  assert.equal(third?.['request'], 'r1');
  assert.equal(parent?.['conn'], undefined, 'the parent does not take its children\'s bindings');
  assert.equal(parent?.['msg'], 'parent');
});

test('a child starts at its parent\'s level and keeps its own afterwards', () => {
  const lines = linesOf(`
    const log = createLogger({ name: 'remora-test', level: 'warn' });
    const c = log.child({ conn: 1 });
    c.info('dropped');
    c.level = 'debug';
    c.debug('kept');
    log.info('dropped too');
    console.log(JSON.stringify({ enabled: c.isLevelEnabled('debug'), parent: log.isLevelEnabled('debug') }));
  `);
  // The console line is written at once, the log lines at the end of the turn.
  assert.equal(lines.length, 2);
  const logged = lines.filter((l) => l['level'] !== undefined);
  assert.equal(logged.length, 1);
  assert.equal(logged[0]?.['msg'], 'kept');
  assert.equal(logged[0]?.['conn'], 1);
  assert.deepEqual(lines.find((l) => l['level'] === undefined), { enabled: true, parent: false });
});
