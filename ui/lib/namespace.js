// Namespaces of the names the API carries: the golden metrics and the desired state name services and workloads only
// by name, so the namespace is read from the name as Kubernetes writes it (NAME.NAMESPACE[.svc...]) or from a SPIFFE
// ID (spiffe://TD/ns/NAMESPACE/sa/...); anything else is in "default". The selector is shared by the views.
import { html } from './html.js';

export const ALL = '';
const NS_KEY = 'remora.namespace';

export function namespaceOf(name) {
  if (typeof name !== 'string' || name === '') return 'default';
  const spiffe = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\//.exec(name);
  if (spiffe !== null) return spiffe[1];
  if (/^[0-9.]+(:\d+)?$/.test(name) || name.includes(':')) return 'default'; // an address, not NAME.NAMESPACE
  const parts = name.split('.');
  return parts.length >= 2 && parts[1] !== '' ? parts[1] : 'default';
}

export const inNamespace = (ns, name) => ns === ALL || namespaceOf(name) === ns;

export function loadNamespace() {
  try { return sessionStorage.getItem(NS_KEY) ?? ALL; } catch { return ALL; }
}
export function saveNamespace(ns) {
  try { sessionStorage.setItem(NS_KEY, ns); } catch { /* storage unavailable: kept in memory only */ }
}

/** The sorted namespaces of names (the selected one kept even when none of the names is in it). */
export function namespacesOf(names, selected) {
  const set = new Set(names.map(namespaceOf));
  if (selected !== ALL) set.add(selected);
  return [...set].sort();
}

export function NamespaceSelect({ id, value, onChange, names }) {
  const options = namespacesOf(names, value);
  return html`<label for=${id}>Namespace</label>
    <select id=${id} class="namespace-select" value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      <option value=${ALL}>all namespaces (${options.length})</option>
      ${options.map((ns) => html`<option value=${ns}>${ns}</option>`)}
    </select>`;
}
