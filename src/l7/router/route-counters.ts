// Requests per route and backend, as the route filter sent them (for the control plane's live traffic split,
// GET /api/v1/routes/split). One RouteCounters lives as long as the proxy; each compiled route table asks it once per
// (route, backend) for its counter and keeps it in the backend's frozen forward decision, so the request path does one
// integer increment through a reference it already holds: no lookup, no string built per request. Counters are
// cumulative for the life of the process (a reload or a weight change keeps them: the same route and backend get the
// same counter); the control plane takes deltas per window.
export class RouteCounter {
  #requests = 0;

  hit(): void {
    this.#requests++;
  }

  get requests(): number {
    return this.#requests;
  }
}

export class RouteCounters {
  readonly #byKey = new Map<string, RouteCounter>();

  /** The counter of `backend` (its id: "web-v1", "web/v2") of route `route`; the same object for the same pair. */
  counter(route: string, backend: string): RouteCounter {
    const key = `${route}\u0000${backend}`;
    let c = this.#byKey.get(key);
    if (c === undefined) {
      c = new RouteCounter();
      this.#byKey.set(key, c);
    }
    return c;
  }

  /** Requests sent to `backend` of `route` so far (0 when never routed). */
  requests(route: string, backend: string): number {
    return this.#byKey.get(`${route}\u0000${backend}`)?.requests ?? 0;
  }
}
