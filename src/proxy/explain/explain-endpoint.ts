// GET /debug/explain on the admin listener: the query string -> the proxy's explanation (src/proxy/explain/
// explain-planner.ts) of the runtime in force, or 400 with every problem of the query.
import { formatIssue } from '../../config/config-issue.js';
import type { Runtime } from '../runtime.js';
import { paramsOf, parseExplainQuery } from './explain-query.js';
import { planExplain } from './explain-planner.js';

export function explainRequest(rt: Runtime, search: URLSearchParams): { readonly status: number; readonly body: unknown } {
  const parsed = parseExplainQuery(paramsOf(search), 'query string', (name) => name);
  if (!parsed.ok) {
    return {
      status: 400,
      body: { error: 'REMORA_ERR_USAGE', message: parsed.issues.map(formatIssue).join('; '), issues: parsed.issues },
    };
  }
  return { status: 200, body: planExplain(rt, parsed.query) };
}
