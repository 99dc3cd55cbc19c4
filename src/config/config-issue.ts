// One configuration problem: where it came from, which key, the value seen and what was expected.
import { RemoraError } from '../core/errors.js';

export interface ConfigIssue {
  /** "remora.ini:12", "environment", "command line". */
  readonly source: string;
  /** "[proxy] outbound_port", "--outbound-port", "REMORA_OUTBOUND_PORT". */
  readonly key: string;
  readonly value?: string;
  readonly expected: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const value = issue.value === undefined ? '' : ` = ${JSON.stringify(issue.value)}`;
  return `${issue.source}: ${issue.key}${value}: expected ${issue.expected}`;
}

/** All issues in one error, reported together (nothing is applied when there is any). */
export function configError(issues: readonly ConfigIssue[]): RemoraError {
  const lines = issues.map((i) => `  ${formatIssue(i)}`).join('\n');
  return new RemoraError(
    'REMORA_ERR_CONFIG_INVALID',
    `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines}`,
    { details: { issues } },
  );
}
