// The web UI's pure helpers (ui/lib/*.js, plain ES modules served to the browser as they are): namespaces read from
// names, the virtualised table's visible range, the graph's layered layout, certificate expiry in words.
import assert from 'node:assert/strict';
import { test } from 'node:test';

const lib = (file: string): string => new URL(`../../../../ui/lib/${file}`, import.meta.url).href;

interface NamespaceLib { namespaceOf(name: string): string; namespacesOf(names: string[], selected: string): string[]; inNamespace(ns: string, name: string): boolean }
interface VirtualLib { visibleRange(count: number, scrollTop: number, viewport: number, rowHeight: number, overscan?: number): [number, number] }
interface Pos { x: number; y: number; rank: number }
interface GraphLib { layoutGraph(nodes: string[], edges: { source: string; destination: string }[]): { pos: Map<string, Pos>; width: number; height: number } }
interface FormatLib { expiry(iso: string | undefined, now?: number): { kind: string; text: string; at: string }; health(rate: number | null): { kind: string; text: string } }

test('namespaces from names: NAME.NAMESPACE, SPIFFE IDs, else default; addresses are not names', async () => {
  const ns = await import(lib('namespace.js')) as NamespaceLib;
  assert.equal(ns.namespaceOf('cart.shop'), 'shop');
  assert.equal(ns.namespaceOf('cart.shop.svc.cluster.local'), 'shop');
  assert.equal(ns.namespaceOf('spiffe://mesh.test/ns/pay/sa/api'), 'pay');
  assert.equal(ns.namespaceOf('web'), 'default');
  assert.equal(ns.namespaceOf('unknown'), 'default');
  assert.equal(ns.namespaceOf('10.1.2.3'), 'default');
  assert.equal(ns.namespaceOf('10.1.2.3:8080'), 'default');
  assert.equal(ns.namespaceOf(''), 'default');
  assert.deepEqual(ns.namespacesOf(['a.x', 'b.y', 'c.x', 'd'], ''), ['default', 'x', 'y']);
  assert.deepEqual(ns.namespacesOf(['a.x'], 'gone'), ['gone', 'x'], 'the selected namespace stays selectable');
  assert.equal(ns.inNamespace('', 'a.x'), true);
  assert.equal(ns.inNamespace('y', 'a.x'), false);
});

test('virtualised rows: only the rows in view plus the overscan, whatever the count', async () => {
  const { visibleRange } = await import(lib('virtual-table.js')) as VirtualLib;
  assert.deepEqual(visibleRange(0, 0, 400, 36), [0, 0]);
  assert.deepEqual(visibleRange(5, 0, 400, 36, 6), [0, 5]);
  const [a, b] = visibleRange(1000, 0, 440, 36, 6);
  assert.equal(a, 0);
  assert.ok(b - a < 40 && b - a >= Math.ceil(440 / 36), `${a}-${b}`);
  // Scrolled to the end: the last row is in the range.
  const [c, d] = visibleRange(1000, 1000 * 36 - 440, 440, 36, 6);
  assert.equal(d, 1000);
  assert.ok(d - c < 40, `${c}-${d}`);
  // In the middle: starts overscan rows above the first visible one.
  assert.deepEqual(visibleRange(1000, 360, 36 * 5, 36, 2), [8, 18]);
});

test('graph layout: callers left of callees, cycles end, no two nodes at one place', async () => {
  const { layoutGraph } = await import(lib('graph-layout.js')) as GraphLib;
  const g = layoutGraph(['web', 'frontend', 'api', 'db'], [
    { source: 'frontend', destination: 'web' }, { source: 'web', destination: 'api' }, { source: 'api', destination: 'db' },
    { source: 'db', destination: 'web' }, { source: 'frontend', destination: 'api' },
  ]);
  const r = (n: string): number => g.pos.get(n)?.rank ?? -1;
  assert.equal(r('frontend'), 0);
  assert.ok(r('web') > r('frontend') && r('api') > r('web'), JSON.stringify([...g.pos]));
  const places = new Set([...g.pos.values()].map((p) => `${p.x},${p.y}`));
  assert.equal(places.size, 4);
  for (const p of g.pos.values()) assert.ok(p.x >= 0 && p.y >= 0 && p.x < g.width && p.y < g.height);
  // A self-loop and an empty graph.
  assert.equal(layoutGraph(['a'], [{ source: 'a', destination: 'a' }]).pos.get('a')?.rank, 0);
  assert.equal(layoutGraph([], []).pos.size, 0);
});

test('expiry and health in words', async () => {
  const f = await import(lib('format.js')) as FormatLib;
  const now = Date.parse('2026-12-01T00:00:00Z');
  assert.equal(f.expiry('2026-12-04T00:00:00Z', now).kind, 'soon');
  assert.deepEqual(f.expiry('2026-12-04T00:00:00Z', now), { kind: 'soon', text: 'expires in 3.0 days', at: '2026-12-04 00:00Z' });
  assert.equal(f.expiry('2026-12-08T00:00:01Z', now).kind, 'ok');
  assert.equal(f.expiry('2026-11-30T23:00:00Z', now).kind, 'expired');
  assert.match(f.expiry('2026-11-30T23:00:00Z', now).text, /^EXPIRED 60 min ago/);
  assert.equal(f.expiry(undefined, now).kind, 'none');
  assert.equal(f.expiry('not a date', now).kind, 'none');
  assert.deepEqual(f.health(0.99), { kind: 'ok', text: 'healthy' });
  assert.deepEqual(f.health(0.9), { kind: 'bad', text: 'failing' });
  assert.deepEqual(f.health(null), { kind: 'idle', text: 'no requests' });
});
