// Where the mesh graph's nodes go: a layered drawing (callers left of what they call). Pure, no DOM.
// Rank = the longest call path reaching a node, cycles broken first (and the passes bounded); within a column nodes are ordered by
// the mean row of their callers (one barycentre pass), then by name. Edges to the same or an earlier column are
// "back" edges and are drawn below the nodes.

export const NODE_W = 170;
export const NODE_H = 52;
export const COL_GAP = 220;
export const ROW_GAP = 46;
export const PAD = 24;
const MAX_PASSES = 40;

/** nodes: names; edges: [{source, destination}] -> {pos: Map(name -> {x, y, rank}), width, height} */
export function layoutGraph(nodes, edges) {
  const rank = new Map(nodes.map((n) => [n, 0]));
  const links = edges.filter((e) => e.source !== e.destination && rank.has(e.source) && rank.has(e.destination));
  // Break cycles: a depth-first walk from the nodes nobody calls (then from any left) marks the edges that go back to
  // a node on the walk's path; those are left out of the ranking (and drawn as back edges).
  const out = new Map(nodes.map((n) => [n, []]));
  for (const e of links) out.get(e.source).push(e);
  const called = new Set(links.map((e) => e.destination));
  const state = new Map(); // 1 = on the path, 2 = done
  const back = new Set();
  const visit = (n) => {
    state.set(n, 1);
    for (const e of out.get(n)) {
      const st = state.get(e.destination);
      if (st === 1) back.add(e);
      else if (st === undefined) visit(e.destination);
    }
    state.set(n, 2);
  };
  const sorted = [...nodes].sort();
  for (const n of [...sorted.filter((x) => !called.has(x)), ...sorted]) if (!state.has(n)) visit(n);
  const forward = links.filter((e) => !back.has(e));
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let changed = false;
    for (const e of forward) {
      const r = rank.get(e.source) + 1;
      if (r > rank.get(e.destination) && r <= MAX_PASSES) { rank.set(e.destination, r); changed = true; }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of [...nodes].sort()) {
    const r = rank.get(n);
    (columns[r] ??= []).push(n);
  }
  const dense = columns.filter((c) => c !== undefined);
  const row = new Map();
  dense.forEach((col, ci) => {
    if (ci > 0) {
      const score = (n) => {
        const ys = links.filter((e) => e.destination === n && row.has(e.source)).map((e) => row.get(e.source));
        return ys.length === 0 ? Number.MAX_SAFE_INTEGER : ys.reduce((a, b) => a + b, 0) / ys.length;
      };
      const scores = new Map(col.map((n) => [n, score(n)]));
      col.sort((a, b) => scores.get(a) - scores.get(b) || (a < b ? -1 : 1));
    }
    col.forEach((n, i) => row.set(n, i));
  });
  const pos = new Map();
  dense.forEach((col, ci) => col.forEach((n, i) => {
    pos.set(n, { x: PAD + ci * (NODE_W + COL_GAP), y: PAD + i * (NODE_H + ROW_GAP), rank: ci });
  }));
  const tallest = Math.max(0, ...dense.map((c) => c.length));
  const hasBack = links.some((e) => pos.get(e.destination).rank <= pos.get(e.source).rank);
  return {
    pos,
    width: PAD * 2 + Math.max(1, dense.length) * NODE_W + Math.max(0, dense.length - 1) * COL_GAP,
    height: PAD * 2 + tallest * NODE_H + Math.max(0, tallest - 1) * ROW_GAP + (hasBack ? 90 : 0),
  };
}

/** An edge's path (SVG d) and the point for its label, from the source's box to the destination's. */
export function edgePath(a, b, bottom) {
  if (b.rank > a.rank) {
    const x0 = a.x + NODE_W; const y0 = a.y + NODE_H / 2; const x3 = b.x; const y3 = b.y + NODE_H / 2;
    const dx = (x3 - x0) / 2;
    return { d: `M${x0},${y0} C${x0 + dx},${y0} ${x3 - dx},${y3} ${x3},${y3}`, lx: (x0 + x3) / 2, ly: (y0 + y3) / 2 };
  }
  // Back or same-column edge: out of the source's bottom, under the nodes, into the destination's bottom.
  const x0 = a.x + NODE_W * 0.6; const y0 = a.y + NODE_H; const x3 = b.x + NODE_W * 0.4; const y3 = b.y + NODE_H;
  const low = Math.max(bottom, y0, y3) + 60;
  return { d: `M${x0},${y0} C${x0},${low} ${x3},${low} ${x3},${y3}`, lx: (x0 + x3) / 2, ly: (y0 + y3) / 8 + (low * 3) / 4 };
}
