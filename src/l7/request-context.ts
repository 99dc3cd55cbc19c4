// The request context: one per HTTP request, created by the downstream engine at the request head and passed along
// the request chain (filters -> router -> cluster). It holds what the engine received (the downstream request), the
// runtime in force at the head (a reload affects the next requests, never one in flight), and the attributes that
// filters establish for the stages after them, in chain order:
//   requestId  the request-id filter (x-request-id);
//   trace      the tracing filter (tracing = on): the sidecar's span (trace id, span id, parent, sampled);
//   service, route, cluster
//              the route filter: the service (VIP, else Host / :authority), the route decision, and the cluster (or
//              subset view) of the chosen backend;
//   upstreamHost, attempts, resetCause
//              the router, for the observers (the stats filter's observation: metrics, access log): the endpoint of
//              the last attempt, the policy attempts made, and why a response already started was reset.
// The router reads them; nothing travels outside the context.
import type { ClusterView } from '../upstream/cluster.js';
import type { HeaderList } from '../config/route-spec.js';
import type { EngineCore } from './engine/engine-core.js';
import type { HttpRuntime } from './http-runtime.js';
import type { TraceContext } from './trace-context.js';
import type { DownstreamRequest, ForwardDecision, RequestHead } from './request-types.js';

/** RequestHead with the header tuples built only when a policy reads them. */
class Head implements RequestHead {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  readonly authority: string;
  readonly protocol: 'http/1.1' | 'h2';
  readonly sourceAddress: string;
  readonly originalDst: { readonly address: string; readonly port: number };
  readonly #flat: readonly string[];
  #tuples: HeaderList | undefined;

  constructor(req: DownstreamRequest) {
    this.method = req.method;
    this.target = req.target;
    this.protocol = req.protocol;
    this.sourceAddress = req.conn.sourceAddress;
    this.originalDst = req.conn.originalDst;
    this.#flat = req.headers;
    let authority = req.authority;
    let pathAndQuery = req.target;
    if (req.method === 'CONNECT') {
      pathAndQuery = '';
      if (authority === '') authority = req.target;
    } else if (pathAndQuery.charCodeAt(0) !== 47 /* / */ && pathAndQuery !== '*') {
      // absolute-form
      try {
        const u = new URL(pathAndQuery);
        pathAndQuery = `${u.pathname}${u.search}`;
        if (authority === '') authority = u.host;
      } catch {
        // keep it as it came
      }
    }
    const q = pathAndQuery.indexOf('?');
    this.path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
    this.query = q < 0 ? '' : pathAndQuery.slice(q + 1);
    this.authority = authority.toLowerCase();
  }

  get headers(): HeaderList {
    if (this.#tuples === undefined) {
      const t: (readonly [string, string])[] = [];
      for (let i = 0; i < this.#flat.length; i += 2) t.push([this.#flat[i] as string, this.#flat[i + 1] as string]);
      this.#tuples = t;
    }
    return this.#tuples;
  }
}

/** Why the router reset a response it had started. */
export type RequestResetCause = 'upstream-reset' | 'upstream-timeout' | 'upstream-refused';

/** Hears that the client went away before the request was done (RequestContext.watchAbort). */
export interface AbortWatcher {
  onDownstreamAbort(): void;
}

export class RequestContext {
  readonly downstream: DownstreamRequest;
  readonly core: EngineCore;
  readonly runtime: HttpRuntime;
  /** Set by the request-id filter. */
  requestId = '';
  /** Set by the tracing filter (tracing = on): the sidecar's span of this request. */
  trace: TraceContext | undefined;
  /** Set by the route filter: the service the request is for (undefined: passthrough). */
  service: string | undefined;
  /** Set by the route filter. */
  route: ForwardDecision | undefined;
  /** Set by the route filter: the cluster (or subset view) of route.backend. */
  cluster: ClusterView | undefined;
  /** Set by the router: the endpoint of the last attempt ("10.0.0.7:8080"). */
  upstreamHost: string | undefined;
  /** Set by the router: the policy attempts made (the transparent stale-connection retry is not one). */
  attempts = 0;
  /** Set by the router when it resets a response it had started (or an HTTP/2 stream the upstream refused): why. */
  resetCause: RequestResetCause | undefined;
  #head: Head | undefined;
  #onAbort: ((h2Code: number | undefined) => void) | undefined;
  #abortWatcher: AbortWatcher | undefined;
  #done = false;

  constructor(downstream: DownstreamRequest, core: EngineCore, runtime: HttpRuntime) {
    this.downstream = downstream;
    this.core = core;
    this.runtime = runtime;
  }

  /** The head as routing reads it (built on first use). */
  get head(): RequestHead {
    this.#head ??= new Head(this.downstream);
    return this.#head;
  }

  /** The request was answered (or abandoned): nothing may answer it again. */
  get done(): boolean {
    return this.#done;
  }

  /** Mark the request as over (the stage that answered it does). */
  finish(): void {
    this.#done = true;
  }

  /** The stage now serving the request asks to hear when the client goes away. */
  onAbort(handler: (h2Code: number | undefined) => void): void {
    this.#onAbort = handler;
  }

  /**
   * An observer (the stats filter) asks to hear when the client goes away before the request is done; unlike
   * onAbort, the stage serving the request does not replace it.
   */
  watchAbort(watcher: AbortWatcher): void {
    this.#abortWatcher = watcher;
  }

  /** The engine: the client went away (HTTP/1.1 connection closed, HTTP/2 stream reset). */
  downstreamAborted(h2Code?: number): void {
    if (this.#done) return;
    this.#abortWatcher?.onDownstreamAbort();
    const h = this.#onAbort;
    if (h !== undefined) h(h2Code);
    else this.#done = true;
  }
}
