// The control-plane options of `remora proxy` (--control, --token, --control-ca-file, --spiffe-id, or their [proxy]
// keys and environment variables), read before anything else. Apart from src/cli/proxy-control.ts so that a proxy
// without a control plane never loads the control client, the sync client (node:http2, node:https) or the CSR code
// (@peculiar/x509 and reflect-metadata: ~18 MB of RSS): proxy-command.ts imports that file only when `control` is set.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ConfigIssue } from '../config/config-issue.js';
import type { SnapshotInput } from '../config/load-snapshot.js';
import { findSection, parseIni, type IniSection } from '../config/ini-file.js';
import { resolveOptions } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';

export interface ProxyControlOptions {
  readonly url: string;
  readonly token: string;
  readonly ca: string;
  readonly name: string;
  /** The SPIFFE ID to request a certificate for (spiffe_id): then identity_dir is managed through the control plane. */
  readonly spiffeId?: string;
}

type ControlOption = 'control' | 'controlToken' | 'controlCaFile' | 'spiffeId';

/**
 * The control options of the [proxy] section, the environment and the flags (flags win, as for every option):
 * undefined without `control`, else the options or the problems that need more than one key. A value that does not
 * parse (a bad URL) is the validator's to report, with every other problem: then `{ok: false, issues: []}`.
 */
export function proxyControlOptions(input: SnapshotInput):
  undefined | { ok: true; options: ProxyControlOptions } | { ok: false; issues: ConfigIssue[] } {
  let section: IniSection | undefined;
  if (input.file !== undefined) {
    try {
      section = findSection(parseIni((input.readFile ?? readFileSync)(input.file).toString('utf8'), input.file).doc, 'proxy');
    } catch {
      section = undefined; // an unreadable file: the proxy's load reports it
    }
  }
  const resolved = resolveOptions(proxyOptionSpecs, { flags: input.flags, env: input.env, section, file: input.file });
  const { control, controlToken, controlCaFile, spiffeId } = resolved.values;
  const where = (name: ControlOption): { source: string; key: string } => {
    const spec = proxyOptionSpecs[name];
    switch (resolved.sources[name]) {
      case 'flag': return { source: 'command line', key: `--${spec.flag}` };
      case 'environment': return { source: 'environment', key: spec.env };
      case 'file': return { source: `${input.file ?? 'config'}:${section?.entries.get(spec.key)?.line ?? section?.line ?? 0}`, key: `[proxy] ${spec.key}` };
      default: { // not set: name it the way `control` was given, at its place
        const at = resolved.sources.control === 'default' || name === 'control' ? undefined : where('control');
        if (at === undefined || at.source === 'command line') return { source: 'command line', key: `--${spec.flag}` };
        return at.source === 'environment' ? { source: 'environment', key: spec.env } : { source: at.source, key: `[proxy] ${spec.key}` };
      }
    }
  };
  const controlIssues = resolved.issues.filter((i) => (['control', 'controlToken', 'controlCaFile', 'spiffeId'] as const)
    .some((n) => i.key === `--${proxyOptionSpecs[n].flag}` || i.key === proxyOptionSpecs[n].env || i.key === `[proxy] ${proxyOptionSpecs[n].key}`));
  if (controlIssues.length > 0) return { ok: false, issues: [] };
  if (control === '') {
    const stray = (['controlToken', 'controlCaFile', 'spiffeId'] as const).find((n) => resolved.sources[n] === 'flag');
    if (stray !== undefined) {
      return { ok: false, issues: [{ source: 'command line', key: '--control', expected: 'the control plane URL (https://HOST:15012): --token, --control-ca-file and --spiffe-id go with --control (or [proxy] control)' }] };
    }
    return undefined;
  }
  const issues: ConfigIssue[] = [];
  if (controlToken === '') issues.push({ ...where('controlToken'), expected: 'the bearer token for the control plane (scope sidecar): --token, REMORA_CONTROL_TOKEN or [proxy] control_token' });
  let ca = '';
  if (controlCaFile === '') {
    issues.push({ ...where('controlCaFile'), expected: "the mesh root (PEM) that verifies the control plane's certificate: --control-ca-file, REMORA_CONTROL_CA_FILE or [proxy] control_ca_file" });
  } else {
    try {
      ca = readFileSync(controlCaFile, 'utf8');
    } catch (err) {
      issues.push({ ...where('controlCaFile'), value: controlCaFile, expected: `a readable PEM file (${(err as { code?: string }).code ?? 'EIO'})` });
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  const name = input.env.POD_NAME !== undefined && input.env.POD_NAME !== '' ? input.env.POD_NAME : hostname();
  return { ok: true, options: { url: control, token: controlToken, ca, name, ...(spiffeId !== '' ? { spiffeId } : {}) } };
}
