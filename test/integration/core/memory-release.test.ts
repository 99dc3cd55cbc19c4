// The addon's releaseMemory() (native/src/memory_release.cc), in this process: garbage on the V8 heap and freed
// Buffers in the malloc arenas are given back. Checked on V8's heap statistics and on the call's own result (glibc's
// malloc_trim says whether it returned pages); no timing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasMemoryRelease, loadNativeAddon } from '../../../src/core/native-addon.js';

const MB = 1024 * 1024;

test('releaseMemory collects unreachable objects and hands freed Buffers back to the system', () => {
  const addon = loadNativeAddon();
  assert.ok(hasMemoryRelease(addon), 'the addon exports releaseMemory');

  // ~20 MB of small objects on the V8 heap, reachable, then dropped.
  let objects: { i: number; s: string }[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `object ${i}` }));
  const usedWith = process.memoryUsage().heapUsed;
  assert.ok(objects.length === 300_000 && usedWith > 10 * MB);
  objects = undefined;

  // 48 MB of Buffers below glibc's mmap threshold (so in a malloc arena), reachable, then dropped. A small Buffer kept
  // alive after each one (until after the release) stops the freed blocks from merging into the arena's top, which
  // glibc may give back by itself on free: they stay inside the arena, where only malloc_trim returns them.
  const pins: Buffer[] = [];
  let buffers: Buffer[] | undefined = Array.from({ length: 768 }, () => {
    const b = Buffer.allocUnsafeSlow(64 * 1024).fill(1);
    pins.push(Buffer.allocUnsafeSlow(256));
    return b;
  });
  assert.equal(buffers.length, 768);
  buffers = undefined;

  const trimmed = addon.releaseMemory();
  const usedAfter = process.memoryUsage().heapUsed;
  assert.ok(usedAfter < usedWith - 10 * MB, `heap used ${(usedWith / MB).toFixed(1)} -> ${(usedAfter / MB).toFixed(1)} MB`);
  assert.equal(trimmed, 1, 'malloc_trim returned the freed Buffers\' pages');
  assert.equal(objects, undefined);
  assert.equal(buffers, undefined);
  assert.equal(pins.length, 768);
});

test('releaseMemory(false) returns malloc pages only: unreachable objects stay on V8\'s heap', () => {
  const addon = loadNativeAddon();
  assert.ok(hasMemoryRelease(addon));
  // Collect what earlier code left first, so that what follows measures this test's garbage only.
  addon.releaseMemory(true);
  const usedBefore = process.memoryUsage().heapUsed;
  let objects: { i: number; s: string }[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `object ${i}` }));
  const usedWith = process.memoryUsage().heapUsed;
  assert.ok(objects.length === 300_000 && usedWith > usedBefore + 10 * MB,
    `the garbage to be is on the heap: ${(usedBefore / MB).toFixed(1)} -> ${(usedWith / MB).toFixed(1)} MB`);
  objects = undefined;

  const trimmed = addon.releaseMemory(false);
  const usedAfter = process.memoryUsage().heapUsed;
  assert.ok(trimmed === 0 || trimmed === 1);
  assert.ok(usedAfter > usedWith - 2 * MB,
    `no full collection without heap: heap used ${(usedWith / MB).toFixed(1)} -> ${(usedAfter / MB).toFixed(1)} MB`);

  addon.releaseMemory(true);
  const usedCollected = process.memoryUsage().heapUsed;
  assert.ok(usedCollected < usedWith - 10 * MB,
    `with heap the same garbage goes: ${(usedWith / MB).toFixed(1)} -> ${(usedCollected / MB).toFixed(1)} MB`);
});
