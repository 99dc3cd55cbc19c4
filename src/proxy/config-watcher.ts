// Notices that the config file changed, however it was changed:
//
//   in-place write     the file's own inode is rewritten;
//   atomic rename      a new file is renamed over the path (editors, `mv`, config management): the path's inode
//                      changes, so a watch on the file itself would go deaf;
//   Kubernetes         the path is a symlink DIR/config.ini -> ..data/config.ini and ..data -> ..2026_12_03_xx.123;
//   ConfigMap          an update writes a new timestamped dir, points a ..data_tmp symlink at it, renames ..data_tmp
//                      over ..data and deletes the old dir: nothing the path names is written, only DIR's entries.
//
// So the directory of the path is watched (fs.watch), and also the directory of what the path resolves to when that
// is elsewhere (an edit of a symlink's target). Only events about the names that matter count (the path's own name,
// the ConfigMap's ..data links, what the path resolves to): a busy log file in the same directory costs nothing. An
// event schedules one check after a quiet period (debounce, 200 ms by default; events meanwhile join it): the check fingerprints what the path resolves to now (realpath, inode, size, mtime, ctime, and a
// sha256 of the content) and calls onChange only when the content differs from the last one seen (a rewrite with
// the same bytes, or an event about another file, is not a change). A slow poll (5 s by default) runs the same check
// as a safety net for missed events (watch limits, network filesystems, a directory replaced). A path that is briefly
// absent or unreadable (between an unlink and a rename) is not a change: the next event or poll looks again.
// Nothing here throws into the event loop; every timer is unref'd (the watcher never keeps the process alive).
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface ConfigWatcherOptions {
  /** Quiet period after an event before the check (default 200 ms). */
  readonly debounceMs?: number;
  /** Interval of the safety-net check (default 5 s). */
  readonly pollMs?: number;
  /**
   * Called after every check with its outcome ('changed': onChange was called; 'unchanged'; 'absent': the path could
   * not be read). For tests and diagnostics; must not throw (if it does, the error is ignored).
   */
  readonly onCheck?: (outcome: 'changed' | 'unchanged' | 'absent') => void;
}

export interface ConfigWatcher {
  close(): void;
}

export const DEFAULT_CONFIG_DEBOUNCE_MS = 200;
export const DEFAULT_CONFIG_POLL_MS = 5_000;

interface Fingerprint {
  /** realpath, inode, size, mtime and ctime: when all equal, the content is taken as unchanged without reading it. */
  readonly stat: string;
  readonly realpath: string;
  readonly sha256: string;
}

function statKey(real: string, st: { ino: number; dev: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${real}\0${st.dev}:${st.ino}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}`;
}

/** What `path` resolves to now; `previous` spares reading an unchanged file. undefined: absent or unreadable. */
function fingerprint(path: string, previous: Fingerprint | undefined): Fingerprint | undefined {
  try {
    const realpath = realpathSync(path);
    const stat = statKey(realpath, statSync(realpath));
    if (previous !== undefined && previous.stat === stat) return previous;
    // The key is the one from before the read: a write racing the read changes ctime after it, so the next check
    // reads the file again rather than trusting a hash of a half-written file.
    const content = readFileSync(realpath);
    return { stat, realpath, sha256: createHash('sha256').update(content).digest('hex') };
  } catch {
    return undefined;
  }
}

/** Watch `path` for changes of its content; onChange is called (never with arguments) after each change. */
export function watchConfigFile(path: string, onChange: () => void, opts: ConfigWatcherOptions = {}): ConfigWatcher {
  const target = resolve(path);
  const debounceMs = Math.max(0, opts.debounceMs ?? DEFAULT_CONFIG_DEBOUNCE_MS);
  const pollMs = Math.max(1, opts.pollMs ?? DEFAULT_CONFIG_POLL_MS);
  let last = fingerprint(target, undefined);
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  const watchers = new Map<string, FSWatcher>();
  const relevant = new Set<string>();

  const report = (outcome: 'changed' | 'unchanged' | 'absent'): void => {
    try { opts.onCheck?.(outcome); } catch { /* a diagnostic hook must not break the watcher */ }
  };

  const check = (): void => {
    if (closed) return;
    const now = fingerprint(target, last);
    arm(now);
    if (now === undefined) {
      report('absent'); // keep `last`: the same content coming back is no change
      return;
    }
    const changed = last === undefined || now.sha256 !== last.sha256;
    last = now;
    if (changed) {
      try { onChange(); } catch { /* the caller's problem; the watcher keeps going */ }
    }
    report(changed ? 'changed' : 'unchanged');
  };

  const schedule = (): void => {
    if (closed || debounce !== undefined) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      check();
    }, debounceMs);
    debounce.unref();
  };

  /** Watch the path's directory and the directory of what it resolves to (re-armed as that moves). */
  const arm = (fp: Fingerprint | undefined): void => {
    if (closed) return;
    const dirs = new Set([dirname(target)]);
    if (fp !== undefined) dirs.add(dirname(fp.realpath));
    for (const [dir, w] of watchers) {
      if (dirs.has(dir)) continue;
      watchers.delete(dir);
      try { w.close(); } catch { /* already closed */ }
    }
    // The names whose events matter, in either directory (a null name: the platform did not say, so look).
    relevant.clear();
    relevant.add(basename(target)).add('..data').add('..data_tmp');
    if (fp !== undefined) relevant.add(basename(fp.realpath));
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || relevant.has(String(name))) schedule();
        });
        w.on('error', () => {
          // The directory went away (an old ConfigMap generation) or the watch broke: drop it, look again soon.
          if (watchers.get(dir) === w) watchers.delete(dir);
          try { w.close(); } catch { /* already closed */ }
          schedule();
        });
        watchers.set(dir, w);
      } catch {
        // Missing directory or no watch available: the poll covers it, and the next check tries again.
      }
    }
  };

  arm(last);
  const poll = setInterval(check, pollMs);
  poll.unref();

  return {
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      if (debounce !== undefined) clearTimeout(debounce);
      debounce = undefined;
      for (const w of watchers.values()) {
        try { w.close(); } catch { /* already closed */ }
      }
      watchers.clear();
    },
  };
}
