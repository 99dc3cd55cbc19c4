// What a sidecar subscribed to the control plane validates and applies: the pushed desired state (rendered INI), with
// the [proxy] keys of the sidecar's own file (--config) under it — the per-pod keys (listeners, uid/gid, admin_address,
// identity_dir, ...) and any mesh-wide key the control plane does not set; the control plane's keys win. The other
// sections of the local file are not used once a snapshot has been applied (the control plane owns services, routes,
// policies). Flags and the environment still override everything, as in the static mode.
import { parseIni } from '../config/ini-file.js';
import { iniValue } from './control-objects.js';

function line(key: string, value: string): string {
  return `${key} = ${iniValue(value) ?? JSON.stringify(value)}`;
}

export function sidecarDocument(pushedIni: string, localText: string | undefined, localFile: string): string {
  const pushed = parseIni(pushedIni, 'control').doc;
  const proxy = new Map<string, string>();
  if (localText !== undefined) {
    for (const e of parseIni(localText, localFile).doc.sections.find((s) => s.name === 'proxy')?.entries.values() ?? []) proxy.set(e.key, e.value);
  }
  for (const e of pushed.sections.find((s) => s.name === 'proxy')?.entries.values() ?? []) proxy.set(e.key, e.value);
  const out: string[] = [];
  if (proxy.size > 0) out.push('[proxy]', ...[...proxy].map(([k, v]) => line(k, v)), '');
  for (const section of pushed.sections) {
    if (section.name === '' || section.name === 'proxy') continue;
    out.push(`[${section.name}]`, ...[...section.entries.values()].map((e) => line(e.key, e.value)), '');
  }
  return out.join('\n');
}
