// A throw-away certificate authority for TLS tests, made with the openssl CLI in a temp directory: a CA, and leaf
// certificates it signs for given DNS names / IP addresses. Everything expires in 2 days and is deleted by remove().
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  /** PEM file of the CA certificate. */
  readonly caFile: string;
  /** Issue a leaf certificate; returns its cert and key files. */
  issue(name: string, sans: readonly string[]): { certFile: string; keyFile: string };
  remove(): void;
}

/** Why openssl-based tests cannot run, or undefined. */
export function opensslUnavailable(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'needs the openssl CLI';
  }
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new CA named `cn` in its own temp directory (world-readable, so that servers dropping privileges can read it). */
export function createTestCa(cn = 'remora test CA', parent?: string): TestCa {
  const dir = mkdtempSync(join(parent ?? tmpdir(), 'remora-ca-'));
  chmodSync(dir, 0o755);
  const caKey = join(dir, 'ca-key.pem');
  const caFile = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey,
    '-out', caFile, '-days', '2', '-subj', `/CN=${cn}`]);
  let serial = 1;
  return {
    dir,
    caFile,
    issue(name, sans) {
      const keyFile = join(dir, `${name}-key.pem`);
      const csr = join(dir, `${name}.csr`);
      const certFile = join(dir, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      const san = sans.map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
      writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csr,
        '-subj', `/CN=${sans[0] ?? name}`]);
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(serial++), '-out', certFile,
        '-days', '2', '-extfile', ext]);
      for (const f of [keyFile, certFile]) chmodSync(f, 0o644);
      return { certFile, keyFile };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
