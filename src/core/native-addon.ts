// The only module that loads native/build/Release/remora_native.node (the N-API addon, Linux only). Its users type
// what they need of it: src/interceptor/original-dst.ts (originalDst: SO_ORIGINAL_DST),
// src/l4/native-forwarder.ts (the forwarder thread of opaque TCP, native/src/tcp_forwarder.cc) and
// src/core/idle-heap-trim.ts (releaseMemory, native/src/memory_release.cc).
//
// The addon returns values or a negative errno and never a string. A missing or broken addon is a RemoraError
// REMORA_ERR_NATIVE_LOAD at startup, never per connection.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { OriginalDst } from './addr.js';
import { RemoraError } from './errors.js';

/** What native/src/original_dst.cc exports. */
export interface OriginalDstBinding {
  originalDst(fd: number): OriginalDst | number;
  /**
   * [family, original destination address, its port, client address, client port] or -errno (the client "" and 0
   * when it is already gone). Absent from an addon built before it: then originalDst, and node:net for the client.
   */
  acceptedAddresses?(fd: number): readonly [number, string, number, string, number] | number;
  /** TCP_NODELAY of a socket: 1 or 0, or -errno (the tests' view of what a connection inherits from its listener). */
  tcpNoDelay?(fd: number): number;
}

/**
 * What the forwarding thread reports, in batches (see native/src/tcp_forwarder.cc):
 *   ended: FORWARDER_ENDED_FIELDS numbers per connection: id, bytes downstream->upstream, bytes upstream->downstream,
 *          end kind (0 clean, 1 downstream error, 2 upstream error, 3 idle, 4 aborted), errno;
 *   events: FORWARDER_EVENT_FIELDS numbers per event: kind, id, a, b, c, d (src/l4/native-forwarder.ts NativeEvent);
 *   extras: the events' strings and bytes, in order.
 */
export type ForwarderReport = (ended: Float64Array, events: Float64Array, extras: readonly (string | Buffer)[]) => void;

/** What native/src/tcp_forwarder.cc exports (see its header comment). Every function returns a value or -errno. */
export interface ForwarderBinding {
  forwarderInit(onReport: ForwarderReport): number;
  forwarderAdd(fdDown: number, fdUp: number, idleTimeoutMs: number, pendingToUp: Uint8Array | undefined, pendingToDown: Uint8Array | undefined): number;
  forwarderAbort(id: number): number;
  /** out: bytes down->up, bytes up->down, downstream side flags, upstream side flags (1: FIN read, 2: FIN sent). */
  forwarderBytes(id: number, out: Float64Array): number;
  /** id, +down->up, +up->down for every live connection that moved bytes since the last call. */
  forwarderDeltas(): Float64Array;
  forwarderLive(): number;
  /** Accept on a dup of this listening socket from now on: the listener's handle. */
  forwarderListen(fd: number): number;
  forwarderUnlisten(handle: number): number;
  /** Connect an accepted connection and forward once connected; detectTimeoutMs > 0 reports its first bytes. */
  forwarderConnect(id: number, address: string, port: number, bindAddress: string | undefined, connectTimeoutMs: number,
    idleTimeoutMs: number, detectTimeoutMs: number, notifyConnected: boolean): number;
  /** An accepted connection never asked to connect leaves the thread: its fd (the caller owns it). */
  forwarderRelease(id: number): number;
  /** Detection decided: no more first bytes are reported. */
  forwarderWatchDone(id: number): number;
  readonly FORWARDER_ENDED_FIELDS: number;
  readonly FORWARDER_EVENT_FIELDS: number;
}

/** What native/src/memory_release.cc exports. */
export interface MemoryReleaseBinding {
  /**
   * V8's low-memory notification (not with heap false), then malloc_trim(0): 1 when the C library returned memory,
   * else 0. An addon built before the argument ignores it: the notification every time.
   */
  releaseMemory(heap?: boolean): number;
}

export type NativeAddon = OriginalDstBinding & Partial<ForwarderBinding> & Partial<MemoryReleaseBinding>;

const ADDON_FILE = 'native/build/Release/remora_native.node';

/** <repo>/native/build/Release/remora_native.node, from the compiled (dist/src/core) or source location. */
export function defaultAddonPath(): string {
  const candidates = [
    fileURLToPath(new URL(`../../../${ADDON_FILE}`, import.meta.url)),
    fileURLToPath(new URL(`../../${ADDON_FILE}`, import.meta.url)),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0] ?? ADDON_FILE;
}

function isNativeAddon(value: unknown): value is NativeAddon {
  return typeof value === 'object' && value !== null
    && typeof (value as { originalDst?: unknown }).originalDst === 'function';
}

/** Whether the loaded addon has releaseMemory (an addon built before it has not: the idle trim then uses V8's gc()). */
export function hasMemoryRelease(addon: NativeAddon): addon is OriginalDstBinding & MemoryReleaseBinding {
  return typeof addon.releaseMemory === 'function';
}

/** Whether the loaded addon has the forwarder (an addon built before it has not: the forward then stays in Node). */
export function hasForwarder(addon: NativeAddon): addon is OriginalDstBinding & ForwarderBinding {
  const a = addon as Partial<ForwarderBinding>;
  return typeof a.forwarderInit === 'function' && typeof a.forwarderAdd === 'function' && typeof a.forwarderAbort === 'function'
    && typeof a.forwarderBytes === 'function' && typeof a.forwarderDeltas === 'function' && typeof a.forwarderLive === 'function'
    && typeof a.forwarderListen === 'function' && typeof a.forwarderUnlisten === 'function' && typeof a.forwarderConnect === 'function'
    && typeof a.forwarderRelease === 'function' && typeof a.forwarderWatchDone === 'function'
    && typeof a.FORWARDER_ENDED_FIELDS === 'number' && typeof a.FORWARDER_EVENT_FIELDS === 'number';
}

/** Load the addon; REMORA_ERR_NATIVE_LOAD when it is missing, built for another Node ABI, or has the wrong shape. */
export function loadNativeAddon(path: string = defaultAddonPath()): NativeAddon {
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(path);
  } catch (err) {
    throw new RemoraError('REMORA_ERR_NATIVE_LOAD', `cannot load the native addon ${path}: ${(err as Error).message}`
      + ' (rebuild it with `npm install` or `npx node-gyp rebuild --directory=native`)', { cause: err, details: { path } });
  }
  if (!isNativeAddon(loaded)) {
    throw new RemoraError('REMORA_ERR_NATIVE_LOAD', `the native addon ${path} does not export originalDst()`, { details: { path } });
  }
  return loaded;
}
