// The one validator, applied to the control plane's desired state: the objects are rendered as one INI document and
// checked by loadSnapshotDefinitions (src/config/load-snapshot.ts), the very function that checks a sidecar's file at
// start and on every reload. Its file:line issues are mapped back to the object and key each line came from.
//
// No environment and no flags take part, except identity_dir: mesh mTLS (mtls_mode = strict, a service's mtls = true)
// needs a workload identity, which every sidecar that uses it has. The validator is given one (a real X.509-SVID the
// control plane issues itself, served from a virtual directory), so that those keys are checked as a sidecar with an
// identity checks them, never refused for want of one. Files named by tls_* keys are read from the local disk.
import { readFileSync } from 'node:fs';
import type { SnapshotDefinitions } from '../config/config-snapshot.js';
import { identityPaths, type IdentityPems } from '../config/identity-files.js';
import { loadSnapshotDefinitions } from '../config/load-snapshot.js';
import type { RawFlag } from '../config/option-set.js';
import { issueOfLine, objectShapeIssues, renderState, type ControlObject, type ObjectIssue } from './control-objects.js';

/** The name the rendered document is validated under (issues name it before they are mapped to objects). */
export const DESIRED_STATE_FILE = 'control:desired-state.ini';
const VIRTUAL_IDENTITY_DIR = '/remora-control/virtual-identity';

export interface StateValidatorOptions {
  /** The identity mTLS keys are checked against; without one, mtls keys are refused as a sidecar without identity_dir refuses them. */
  readonly identity?: IdentityPems;
  /** Reads files named by tls_* keys (default fs.readFileSync). */
  readonly readFile?: (path: string) => Buffer;
  readonly now?: () => number;
}

export type StateValidation =
  | { readonly ok: true; readonly definitions: SnapshotDefinitions; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly issues: readonly ObjectIssue[] };

export class StateValidator {
  #options: StateValidatorOptions;

  constructor(options: StateValidatorOptions = {}) {
    this.#options = options;
  }

  /** Replace the identity mTLS keys are checked against (the control plane renews its own). */
  setIdentity(identity: IdentityPems): void {
    this.#options = { ...this.#options, identity };
  }

  /** Check a whole desired state: the shape of each object, then everything the proxy's validator checks. */
  validate(objects: readonly Pick<ControlObject, 'kind' | 'name' | 'spec'>[]): StateValidation {
    const shape = objects.flatMap((o) => objectShapeIssues(o.kind, o.name, o.spec));
    if (shape.length > 0) return { ok: false, issues: shape };
    const rendered = renderState(objects);
    const identity = this.#options.identity;
    const virtual = new Map<string, string>([[DESIRED_STATE_FILE, rendered.text]]);
    const flags = new Map<string, RawFlag>();
    if (identity !== undefined) {
      const paths = identityPaths(VIRTUAL_IDENTITY_DIR);
      virtual.set(paths.certChain, identity.certChain).set(paths.key, identity.key).set(paths.roots, identity.roots);
      flags.set('identity-dir', { value: VIRTUAL_IDENTITY_DIR });
    }
    const readFile = this.#options.readFile ?? readFileSync;
    const load = loadSnapshotDefinitions({
      file: DESIRED_STATE_FILE,
      flags,
      env: {},
      readFile: (path) => {
        const v = virtual.get(path);
        return v === undefined ? readFile(path) : Buffer.from(v, 'utf8');
      },
      ...(this.#options.now === undefined ? {} : { now: this.#options.now }),
    });
    if (!load.ok) return { ok: false, issues: load.issues.map((i) => issueOfLine(i, rendered, DESIRED_STATE_FILE)) };
    return { ok: true, definitions: load.definitions, warnings: load.warnings };
  }
}
