import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { watchConfigFile, type ConfigWatcherOptions } from '../../../src/proxy/config-watcher.js';

const root = mkdtempSync(join(tmpdir(), 'remora-watch-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A fresh directory with config.ini holding `content`. */
function setup(content = '[proxy]\nlog_level = info\n'): { dir: string; file: string } {
  const dir = join(root, `d${++dirs}`);
  mkdirSync(dir);
  const file = join(dir, 'config.ini');
  writeFileSync(file, content);
  return { dir, file };
}

/** Wait (bounded: up to 5 s) until `cond` holds; polls, never used as a delay in itself. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A watcher that counts onChange calls and records every check; only events trigger checks (the poll is 1 h). */
function watch(file: string, opts: ConfigWatcherOptions = {}): {
  changes: () => number; checks: string[]; seen: string[]; close: () => void;
} {
  let changes = 0;
  const checks: string[] = [];
  const seen: string[] = [];
  const w = watchConfigFile(file, () => {
    changes++;
    seen.push(readFileSync(file, 'utf8'));
  }, { debounceMs: 20, pollMs: 3_600_000, onCheck: (o) => checks.push(o), ...opts });
  return { changes: () => changes, checks, seen, close: () => w.close() };
}

test('an in-place write fires onChange', async () => {
  const { file } = setup();
  const w = watch(file);
  try {
    writeFileSync(file, '[proxy]\nlog_level = debug\n');
    await until(() => w.changes() === 1, 'the change');
    assert.deepEqual(w.seen, ['[proxy]\nlog_level = debug\n']);
  } finally {
    w.close();
  }
});

test('a rename over the file (new inode) fires onChange, and the watch follows the new file', async () => {
  const { dir, file } = setup();
  const w = watch(file);
  try {
    writeFileSync(join(dir, '.config.ini.swp'), '[proxy]\nlog_level = warn\n');
    renameSync(join(dir, '.config.ini.swp'), file);
    await until(() => w.changes() === 1, 'the rename');
    writeFileSync(file, '[proxy]\nlog_level = error\n');
    await until(() => w.changes() === 2, 'a write into the renamed file');
    assert.deepEqual(w.seen, ['[proxy]\nlog_level = warn\n', '[proxy]\nlog_level = error\n']);
  } finally {
    w.close();
  }
});

test('a Kubernetes ConfigMap update (the ..data symlink swapped to a new timestamped dir) fires onChange, every time', async () => {
  const dir = join(root, `cm${++dirs}`);
  mkdirSync(dir);
  let generation = 0;
  const publish = (content: string): string => {
    const ts = `..2026_12_03_0${++generation}_00_00.${100 + generation}`;
    mkdirSync(join(dir, ts));
    writeFileSync(join(dir, ts, 'config.ini'), content);
    return ts;
  };
  let current = publish('[proxy]\nlog_level = info\n');
  symlinkSync(current, join(dir, '..data'));
  symlinkSync('..data/config.ini', join(dir, 'config.ini'));
  const file = join(dir, 'config.ini');
  const w = watch(file);
  try {
    for (const [n, level] of [[1, 'debug'], [2, 'warn']] as const) {
      // What the kubelet does: new dir, ..data_tmp -> it, rename over ..data, delete the old dir.
      const next = publish(`[proxy]\nlog_level = ${level}\n`);
      symlinkSync(next, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, current), { recursive: true });
      current = next;
      await until(() => w.changes() === n, `ConfigMap update ${n}`);
    }
    assert.deepEqual(w.seen, ['[proxy]\nlog_level = debug\n', '[proxy]\nlog_level = warn\n']);
  } finally {
    w.close();
  }
});

test('another file of the directory, or the same bytes written again, is no change', async () => {
  const content = '[proxy]\nlog_level = info\n';
  const { dir, file } = setup(content);
  const w = watch(file);
  try {
    // Events about other names are ignored (a busy log file next to the config costs nothing), so the other file is
    // followed by an identical rewrite of the config, whose event does bring a check: by then onChange would have
    // fired for either of them.
    writeFileSync(join(dir, 'other.ini'), 'x = 1\n');
    writeFileSync(file, content); // new mtime and ctime, same bytes
    const n = w.checks.length;
    await until(() => w.checks.length > n, 'a check after the other file and the identical rewrite');
    assert.equal(w.changes(), 0, 'another file, and the same content, are no change');
    assert.deepEqual(w.checks.slice(n), w.checks.slice(n).map(() => 'unchanged'));

    // The watcher is alive: a real change is seen (so the zero above was not a deaf watcher).
    writeFileSync(file, '[proxy]\nlog_level = debug\n');
    await until(() => w.changes() === 1, 'the real change');
    assert.equal(w.changes(), 1);
  } finally {
    w.close();
  }
});

test('a file briefly absent is no change and no error; the same content back is none either', async () => {
  const content = '[proxy]\nlog_level = info\n';
  const { file } = setup(content);
  const w = watch(file);
  try {
    unlinkSync(file);
    await until(() => w.checks.includes('absent'), 'a check while the file is absent');
    assert.equal(w.changes(), 0);
    writeFileSync(file, content);
    const n = w.checks.length;
    await until(() => w.checks.slice(n).includes('unchanged'), 'a check after the file is back');
    assert.equal(w.changes(), 0);
    writeFileSync(file, '[proxy]\nlog_level = warn\n');
    await until(() => w.changes() === 1, 'a real change after the absence');
  } finally {
    w.close();
  }
});

test('the slow poll alone notices a change (safety net for missed events)', async () => {
  const { file } = setup();
  // A debounce longer than the test: only the poll can run a check in time.
  const w = watch(file, { debounceMs: 3_600_000, pollMs: 20 });
  try {
    writeFileSync(file, '[proxy]\nlog_level = error\n');
    await until(() => w.changes() === 1, 'the poll');
  } finally {
    w.close();
  }
});

test('an onChange that throws does not stop the watcher', async () => {
  const { file } = setup();
  let calls = 0;
  const w = watchConfigFile(file, () => {
    calls++;
    throw new Error('boom');
  }, { debounceMs: 20, pollMs: 3_600_000 });
  try {
    writeFileSync(file, 'a = 1\n');
    await until(() => calls === 1, 'the first change');
    writeFileSync(file, 'a = 2\n');
    await until(() => calls === 2, 'the second change');
  } finally {
    w.close();
  }
});

test('close() stops it: no check and no call after close, while a live watcher of the same file sees the change', async () => {
  const { file } = setup();
  // The closed watcher reacts faster than the witness, so it would be caught if it still ran.
  const closed = watch(file, { debounceMs: 1 });
  const witness = watch(file, { debounceMs: 100 });
  try {
    closed.close();
    closed.close(); // idempotent
    writeFileSync(file, '[proxy]\nlog_level = debug\n');
    await until(() => witness.changes() === 1, 'the witness');
    assert.equal(closed.changes(), 0);
    assert.deepEqual(closed.checks, []);
  } finally {
    witness.close();
  }
});
