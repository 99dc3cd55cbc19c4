// The INI values of objects (the same text `remora ctl get` shows), parsed for display.

/** "10.1.0.1:8080 subset=v1, 10.1.0.2:8080" -> [{address, labels}] */
export function parseEndpoints(text) {
  if (typeof text !== 'string' || text.trim() === '') return [];
  return text.split(',').map((e) => e.trim()).filter((e) => e !== '').map((e) => {
    const [address = '', ...rest] = e.split(/\s+/);
    const labels = {};
    for (const r of rest) {
      const i = r.indexOf('=');
      if (i > 0) labels[r.slice(0, i)] = r.slice(i + 1);
    }
    return { address, labels };
  });
}

/** "web/v1=90, web/v2=10" or "reviews subset=v1 weight=90, ..." -> [{id, weight}] (no weight given: 1). */
export function parseBackends(text) {
  if (typeof text !== 'string' || text.trim() === '') return [];
  return text.split(',').map((b) => b.trim()).filter((b) => b !== '').map((b) => {
    const [first = '', ...rest] = b.split(/\s+/);
    let id = first;
    let weight = 1;
    const eq = first.indexOf('=');
    if (eq > 0) { id = first.slice(0, eq); weight = Number(first.slice(eq + 1)); }
    for (const r of rest) {
      if (r.startsWith('subset=')) id = `${id}/${r.slice(7)}`;
      else if (r.startsWith('weight=')) weight = Number(r.slice(7));
    }
    return { id, weight };
  });
}

export const percent = (w, total) => (total > 0 ? Math.round((w / total) * 1000) / 10 : 0);
