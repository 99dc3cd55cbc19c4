// A worker process of `workers = N` (node:cluster, forked by src/proxy/workers/primary.ts): the same proxy as a
// single process (src/proxy/proxy.ts) minus what the primary owns (the admin and metrics listeners, the config file
// and its watchers, the identity files, the signals, the redirect prober). It binds the capture listeners through the
// cluster (SCHED_NONE: every worker accepts on the shared socket, the kernel picks which), drops privileges as a
// single process does, and answers the primary on the IPC channel:
//   note 'hello' (worker -> primary)        the worker listens: the primary answers with
//   note 'init' (primary -> worker, once)   {worker, definitions, version, source, configFile, probes}
//   note 'ready' (worker -> primary)        {inboundIpv6, identity}; 'failed' {error} when the start failed
//   req 'collect' NAME                      a report of src/proxy/workers/report-sources.ts
//   req 'prepare' / 'commit' / note 'abort' the two-phase apply of a snapshot the primary validated
//   note 'count-reload'                     a reload the primary rejected or found unchanged (counted here too)
//   req 'derive-weights' {name, text}       the definitions POST /routes/NAME/weights would apply
//   req 'explain' QUERY                     GET /debug/explain's {status, body}, planned over this worker's runtime
//   note 'probes'                           the primary's probe results (readiness reads them)
//   note 'drain' / req 'shutdown' / 'cut'   the lifecycle, as POST /drain, SIGTERM and a second SIGTERM in a single process
//   req 'probe-check' (worker -> primary)   is this probe connection one the primary dialed?
// The worker exits once its proxy has stopped, and drains at once if the primary goes away.
import type { SnapshotDefinitions, SnapshotSource } from '../../config/config-snapshot.js';
import { createLogger, type LogLevel } from '../../core/log.js';
import type { Direction } from '../../l4/accept-route.js';
import type { ProbeStatusView } from '../probe-responder.js';
import { startIdleHeapTrim } from '../../core/idle-heap-trim.js';
import { explainRequest } from '../explain/explain-endpoint.js';
import { startProxy, type Proxy } from '../proxy.js';
import type { ProbeName, ProbeStatus } from '../readiness.js';
import type { ReloadOutcome } from '../runtime-manager.js';
import { IpcPeer, type IpcChannel } from './ipc-peer.js';
import { readReport } from './report-sources.js';

export interface WorkerInit {
  readonly worker: number;
  readonly definitions: SnapshotDefinitions;
  readonly version: number;
  readonly source: SnapshotSource;
  readonly configFile: string | undefined;
  readonly probes: ProbesNote;
}

export interface ProbesNote {
  readonly intervalMs: number;
  readonly status: readonly (readonly [ProbeName, ProbeStatus])[];
}

export interface PrepareRequest {
  readonly definitions: SnapshotDefinitions;
  readonly version: number;
  readonly source: SnapshotSource;
  readonly trigger: string;
}

export interface ProbeCheckRequest {
  readonly nonce: string;
  readonly listener: Direction;
  readonly address: string;
  readonly port: number;
}

/** How long a worker waits for the primary to answer a probe check. */
const PROBE_CHECK_TIMEOUT_MS = 2_000;

/** The primary's probe results, as this worker last heard them. */
class ProbeMirror implements ProbeStatusView {
  #intervalMs = 0;
  #status: ReadonlyMap<ProbeName, ProbeStatus> = new Map();

  get intervalMs(): number { return this.#intervalMs; }
  status(): ReadonlyMap<ProbeName, ProbeStatus> { return this.#status; }

  update(note: ProbesNote): void {
    this.#intervalMs = note.intervalMs;
    this.#status = new Map(note.status);
  }
}

function waitForInit(peer: IpcPeer): Promise<WorkerInit> {
  const init = new Promise<WorkerInit>((resolve) => { peer.onNote('init', (body) => { resolve(body as WorkerInit); }); });
  peer.note('hello');
  return init;
}

/** The worker's main: runs until its proxy has stopped. */
export async function runWorker(): Promise<void> {
  const peer = new IpcPeer(process as unknown as IpcChannel, 'the primary');
  const init = await waitForInit(peer);
  const log = createLogger({ level: init.definitions.proxy.logLevel as LogLevel, name: 'remora-proxy' }).child({ worker: init.worker });
  const probes = new ProbeMirror();
  probes.update(init.probes);
  peer.onNote('probes', (body) => { probes.update(body as ProbesNote); });
  // The primary handles the signals of the pod (a process-group signal reaches the workers too: SIGINT and SIGHUP
  // are the primary's to act on; a SIGTERM sent to this process alone drains it like a single process).
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  let proxy: Proxy;
  try {
    proxy = await startProxy({
      log, definitions: init.definitions, configFile: init.configFile, handleSignals: false, watchConfig: false,
      worker: {
        version: init.version, source: init.source, probes,
        probeCheck: (nonce, listener, address, port) => peer.request('probe-check', { nonce, listener, address, port } satisfies ProbeCheckRequest, PROBE_CHECK_TIMEOUT_MS)
          .then((ok) => ok === true, () => false),
      },
    });
  } catch (err) {
    log.error({ event: 'worker.start-failed', err }, 'the worker could not start');
    peer.note('failed', { error: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
    process.disconnect?.();
    return;
  }
  const running = proxy;
  // Each worker serves traffic, so each gives its grown heap back when quiet (src/core/idle-heap-trim.ts).
  const trim = startIdleHeapTrim(log);
  void running.stopped.then(() => { trim.stop(); });
  peer.handle('collect', (name) => readReport(running, name));
  // GET /debug/explain: the query string -> status and body, planned over this worker's runtime (src/proxy/explain/).
  peer.handle('explain', (query) => explainRequest(running.runtime, new URLSearchParams(String(query))));
  peer.handle('prepare', (body) => {
    const r = body as PrepareRequest;
    return running.runtimes.prepare(r.definitions, r.version, r.source, r.trigger);
  });
  peer.handle('commit', (trigger) => {
    const outcome = running.runtimes.commitPrepared(String(trigger));
    return { outcome, identity: running.runtime.mesh?.identity.spiffeId ?? '' };
  });
  peer.onNote('abort', () => { running.runtimes.abortPrepared(); });
  peer.onNote('count-reload', (body) => { running.runtimes.countReload(body as ReloadOutcome); });
  peer.handle('derive-weights', (body) => {
    const { name, text } = body as { name: string; text: string };
    return running.runtimes.deriveWeights(name, text);
  });
  peer.onNote('drain', (reason) => { running.drain(String(reason)); });
  // The first request to stop drains; a signal to the whole process group (SIGTERM to the pod's processes) and the
  // primary's request are the same one. Only the primary's 'cut' (a second signal to the primary) ends the drain.
  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= running.shutdown(reason);
    return stopping;
  };
  peer.handle('shutdown', async (reason) => {
    await stop(String(reason));
    return true;
  });
  peer.onNote('cut', (reason) => {
    void stop(String(reason));
    void running.shutdown(String(reason));
  });
  process.on('SIGTERM', () => { void stop('received SIGTERM'); });
  // The primary is gone (killed): drain and exit, as on SIGTERM (the peer has closed itself: nothing waits on it).
  process.on('disconnect', () => {
    void stop('the primary process exited');
  });
  const inbound = (running.stats().listeners['inbound']?.address ?? '').startsWith('[');
  peer.note('ready', { inboundIpv6: inbound && running.stats().listeners['inbound']?.ipv4Only !== true, identity: running.runtime.mesh?.identity.spiffeId ?? '' });
  await running.stopped;
  // The answer to 'shutdown' goes out before the channel closes.
  setImmediate(() => { if (process.connected) process.disconnect?.(); });
}
