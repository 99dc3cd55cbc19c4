// The proxy's half of `remora explain` (GET /debug/explain): given the runtime in force and a query, the path a
// connection (or an HTTP request) to the destination would take through this sidecar, stage by stage, each with its
// decision and the reason — listener, protocol, service, mTLS, authorization, route, endpoint — read from the same
// objects the data path reads (the accept router, the service table, the route table, the clusters' current pickers,
// the compiled authorization policies). Nothing is changed: the endpoint is a peek at the balancer (no round-robin
// step, no load counted), and no counter moves. The rules half (which iptables rule captures the connection) is read
// by the command itself (src/interceptor/rule-trace.ts), which merges both. Pure over the runtime: no I/O.
import type { AuthzExplanation } from '../../authz/authorizer.js';
import { DEFAULT_OPAQUE_PORTS } from '../../l4/detect/protocol-ports.js';
import { inboundTarget, type AcceptRoute, type Declared, type Direction } from '../../l4/accept-route.js';
import type { RequestHead } from '../../l7/request-types.js';
import { requestHashKey } from '../../l7/router/hash-key.js';
import type { RouteExplanation } from '../../l7/router/route-table.js';
import { formatHostPort } from '../../core/addr.js';
import type { Cluster, ClusterEndpointStatus } from '../../upstream/cluster.js';
import type { Runtime } from '../runtime.js';
import { isHttpQuery, type ExplainQuery } from './explain-query.js';

export type StageName = 'listener' | 'protocol' | 'service' | 'mtls' | 'authorization' | 'route' | 'endpoint' | 'traffic-policy' | 'connect';

export interface ExplainStage {
  readonly stage: StageName;
  /** What happens, in a few words ("http1 (HTTP engine)", "service web", "10.0.0.7:8080"). */
  readonly decision: string;
  /** Why. */
  readonly reason: string;
}

/** The endpoint the balancer would pick now, with its health. */
export interface EndpointChoice {
  /** The cluster (service, "service/subset", "passthrough" or "inbound"). */
  readonly cluster: string;
  readonly balancer: string | undefined;
  /** "10.0.0.7:8080", or undefined when no endpoint can be picked. */
  readonly endpoint: string | undefined;
  /** false: the balancer draws at random; this is one sample of what a pick returns. */
  readonly deterministic: boolean;
  /** Why none (no-endpoints, no-healthy-endpoint), or how it was chosen. */
  readonly reason: string;
  readonly health: ClusterEndpointStatus | undefined;
  /** Endpoints in the cluster's picker now / members. */
  readonly inRotation: number;
  readonly members: number;
  /** The route backend's weight, when a weighted route chose among backends. */
  readonly weight?: number;
}

export interface ProxyExplanation {
  readonly configVersion: number;
  readonly configHash: string;
  /** The capture listeners' ports: the REDIRECT port of a rule names one of them. */
  readonly listeners: Readonly<Record<Direction, number>>;
  readonly direction: Direction;
  readonly dst: string;
  readonly listener: { readonly name: Direction; readonly port: number };
  /** The protocol decision: declared:http, declared:opaque, detect, ...; with the assumed outcome of detection. */
  readonly protocol: { readonly declared: Declared; readonly handling: 'http' | 'opaque' | 'detect'; readonly http: boolean };
  /** The service the destination resolves to (undefined: passthrough / inbound / refused). */
  readonly service: { readonly name: string; readonly matchedBy: 'address' | 'hostname' } | undefined;
  /** Where it goes: a service's cluster, passthrough (the destination itself), inbound (the local app), or refused. */
  readonly destination: { readonly kind: 'service' | 'passthrough' | 'inbound' | 'refused'; readonly cluster: string | undefined; readonly reason: string };
  readonly route: RouteExplanation | undefined;
  /** One per route backend (L7), or the one cluster (L4); empty when refused. */
  readonly endpoints: readonly EndpointChoice[];
  /** The upstream transport: plain TCP, TLS origination, mesh mTLS. */
  readonly transport: 'plain' | 'tls' | 'mtls';
  /** Inbound: the mesh mTLS mode of the port; undefined without a workload identity or outbound. */
  readonly mtlsMode: string | undefined;
  readonly authorization: { readonly applies: false; readonly reason: string } | ({ readonly applies: true; readonly as: 'tcp' | 'http' } & AuthzExplanation);
  readonly stages: readonly ExplainStage[];
}

function declaredReason(rt: Runtime, declared: Declared, service: string | undefined, port: number): string {
  const table = rt.clusters.table;
  const spec = service === undefined ? undefined : table.service(service);
  if (spec !== undefined && spec.protocol !== 'auto') return `[service ${spec.name}] protocol = ${spec.protocol}`;
  const declaredPort = table.portProtocol(port);
  if (declaredPort !== undefined) return `[registry] port_protocols declares port ${port} ${declaredPort}`;
  if (declared === 'opaque' && DEFAULT_OPAQUE_PORTS.includes(port)) return `port ${port} is a default opaque (server-first) port`;
  return 'nothing declares this port: the first bytes are sniffed (TLS ClientHello, HTTP/2 preface, HTTP/1.x request line, else opaque)';
}

function headOf(q: ExplainQuery, originalDst: { address: string; port: number }): RequestHead {
  const target = q.path ?? '/';
  const qi = target.indexOf('?');
  const authority = (q.host ?? formatHostPort(q.dst.address, q.dst.port)).toLowerCase();
  return {
    method: q.method ?? 'GET',
    target,
    path: qi < 0 ? target : target.slice(0, qi),
    query: qi < 0 ? '' : target.slice(qi + 1),
    authority,
    headers: [['host', authority], ...q.headers],
    protocol: 'http/1.1',
    sourceAddress: q.src ?? '',
    originalDst,
  };
}

function choose(cluster: Cluster, opts: { subset?: string | undefined; request: boolean; hashKey: string | undefined; sourceAddress: string | undefined; target: { address: string; port: number } | undefined; weight?: number }): EndpointChoice {
  const name = opts.subset === undefined ? cluster.name : `${cluster.name}/${opts.subset}`;
  const balancer = cluster.originalDst ? undefined : (opts.request ? cluster.requestBalancer : cluster.connectionBalancer);
  const members = cluster.members().length;
  const inRotation = cluster.inRotation.size;
  const weight = opts.weight === undefined ? {} : { weight: opts.weight };
  if (cluster.originalDst) {
    const t = opts.target;
    return {
      cluster: name, balancer, endpoint: t === undefined ? undefined : formatHostPort(t.address, t.port), deterministic: true,
      reason: cluster.spec.inboundSource ? 'the local app (inbound delivery), from 127.0.0.6 / ::6' : 'the original destination itself (no balancing)',
      health: undefined, inRotation, members, ...weight,
    };
  }
  const { result, deterministic: drawn } = cluster.peek({ hashKey: opts.hashKey, sourceAddress: opts.sourceAddress, originalDst: opts.target }, opts.subset, opts.request);
  if (result.kind === 'none') {
    return { cluster: name, balancer, endpoint: undefined, deterministic: true, reason: `no endpoint can be picked: ${result.reason}`, health: undefined, inRotation, members, ...weight };
  }
  const key = result.endpoint.key;
  // One endpoint to choose from: any balancer returns it.
  const deterministic = drawn || inRotation <= 1;
  const how = deterministic
    ? `${balancer ?? '?'}: the next pick`
    : `${balancer ?? '?'}: one random sample (another pick may choose another of the ${inRotation} endpoints in rotation)`;
  return { cluster: name, balancer, endpoint: key, deterministic, reason: how, health: cluster.endpointStatus(key), inRotation, members, ...weight };
}

function limit(n: number): string {
  return Number.isFinite(n) ? String(n) : 'unlimited';
}

function outlierText(fiveXx: number, gateway: number, connect: number, baseMs: number, maxPercent: number): string {
  const after = [
    fiveXx > 0 ? `${fiveXx} consecutive 5xx` : undefined,
    gateway > 0 ? `${gateway} consecutive gateway errors` : undefined,
    connect > 0 ? `${connect} consecutive connect failures` : undefined,
  ].filter((x) => x !== undefined);
  if (after.length === 0) return 'outlier detection: off';
  return `outlier detection: eject after ${after.join(' or ')}, for ${baseMs} ms and up, at most ${maxPercent}% ejected`;
}

function healthText(c: EndpointChoice): string {
  const h = c.health;
  if (c.endpoint === undefined) return c.reason;
  if (h === undefined) return c.reason;
  const state = h.inRotation ? 'healthy, in rotation' : h.ejected ? 'ejected' : !h.healthy ? 'unhealthy (active check)' : 'not in rotation';
  return `${c.reason}; ${state}, ${h.active} in flight, ${h.ejectionCount} ejections, weight ${h.weight}${h.weightFactor < 1 ? ` x ${h.weightFactor} (slow start)` : ''}`;
}

/** Explain the path of `q` through the runtime `rt`. */
export function planExplain(rt: Runtime, q: ExplainQuery): ProxyExplanation {
  const p = rt.snapshot.proxy;
  const direction = q.direction;
  const listeners = { outbound: p.outboundPort, inbound: p.inboundPort };
  const lr = rt.listeners[direction];
  const origDst = { family: q.dst.family, address: q.dst.address, port: q.dst.port };
  const dstText = formatHostPort(q.dst.address, q.dst.port);
  const stages: ExplainStage[] = [];
  const httpQuery = isHttpQuery(q);
  const engine = lr.http !== undefined;

  stages.push({
    stage: 'listener', decision: `${direction} listener :${listeners[direction]}`,
    reason: direction === 'outbound' ? 'a connection the pod\'s app opens, redirected by the nat OUTPUT rules' : 'a connection arriving at the pod, redirected by the nat PREROUTING rules',
  });

  const accept: AcceptRoute = lr.router.accept(direction, origDst);
  // The service: by VIP at accept, else (when the bytes may name one) by Host / SNI.
  let service: ProxyExplanation['service'];
  let cluster: Cluster | undefined;
  let target: { address: string; port: number } | undefined;
  let destination: ProxyExplanation['destination'];
  const table = rt.clusters.table;
  if (direction === 'inbound') {
    const t = inboundTarget(origDst, p.inboundDelivery);
    cluster = rt.clusters.inbound;
    target = { address: t.address, port: t.port };
    destination = { kind: 'inbound', cluster: cluster.name, reason: `inbound_delivery = ${p.inboundDelivery}: to the local app at ${formatHostPort(t.address, t.port)}` };
  } else {
    const vip = table.byAddress(q.dst.address, q.dst.port);
    const named = vip === undefined && accept.needName && q.host !== undefined ? lr.router.byName(origDst, q.host) : undefined;
    if (vip !== undefined) {
      service = { name: vip.name, matchedBy: 'address' };
      cluster = rt.clusters.get(vip.name);
      destination = { kind: 'service', cluster: vip.name, reason: `${dstText} is an address of [service ${vip.name}]` };
    } else if (named !== undefined && named.kind === 'cluster') {
      service = { name: named.cluster.name, matchedBy: 'hostname' };
      cluster = named.cluster;
      destination = { kind: 'service', cluster: named.cluster.name, reason: `no service has the address ${dstText}; the host name ${q.host ?? ''} is one of [service ${named.cluster.name}]'s hostnames on port ${q.dst.port}` };
    } else if (accept.destination.kind === 'refuse') {
      destination = { kind: 'refused', cluster: undefined, reason: accept.destination.reason };
    } else {
      cluster = rt.clusters.passthrough;
      destination = {
        kind: 'passthrough', cluster: cluster.name,
        reason: `no service has the address ${dstText}${accept.needName ? (q.host === undefined ? ' (a hostname could still match: give --host)' : ` nor the host name ${q.host}`) : ''}; [registry] mode = passthrough: forwarded to the destination as it is`,
      };
    }
    if (cluster !== undefined && cluster.originalDst) target = { address: q.dst.address, port: q.dst.port };
  }
  stages.push({ stage: 'service', decision: destination.kind === 'service' ? `service ${destination.cluster ?? ''}` : destination.kind, reason: destination.reason });

  // The protocol: declared, or sniffed (the query says what the client would send).
  const declared = accept.declared;
  const svcForProtocol = service?.name;
  let handling: 'http' | 'opaque' | 'detect';
  let protoDecision: string;
  let protoReason = declaredReason(rt, declared, svcForProtocol, q.dst.port);
  if (declared === 'http' || declared === 'http2') {
    handling = engine ? 'http' : 'opaque';
    protoDecision = `declared ${declared}${engine ? ' -> HTTP engine' : ' -> forwarded as opaque TCP (http_engine = off)'}`;
  } else if (declared === 'opaque' || declared === 'tls') {
    handling = 'opaque';
    protoDecision = `declared ${declared} -> forwarded as opaque TCP`;
    if (httpQuery) protoReason += '; the request attributes given are not looked at';
  } else if (httpQuery) {
    handling = engine ? 'http' : 'opaque';
    protoDecision = `detect -> http1 (assumed: an HTTP request was described)${engine ? ' -> HTTP engine' : ' -> opaque TCP (http_engine = off)'}`;
  } else {
    handling = 'detect';
    protoDecision = 'detect -> decided by the first bytes';
    protoReason += '; give --host/--path/--method/--header to explain an HTTP request';
  }
  stages.push({ stage: 'protocol', decision: protoDecision, reason: protoReason });

  // Mesh mTLS: inbound termination per port; outbound, the service's transport.
  let mtlsMode: string | undefined;
  const transport: ProxyExplanation['transport'] = direction === 'outbound' && cluster !== undefined && cluster.tls !== undefined ? cluster.tls.kind : 'plain';
  if (direction === 'inbound') {
    const m = lr.mtls;
    mtlsMode = m === undefined ? undefined : m.modeFor(q.dst.port);
    stages.push({
      stage: 'mtls',
      decision: mtlsMode === undefined ? 'none' : mtlsMode,
      reason: mtlsMode === undefined ? 'no workload identity (identity_dir): inbound mesh mTLS is off'
        : mtlsMode === 'strict' ? `strict on port ${q.dst.port}: only mesh mTLS is accepted${q.identity === undefined ? ' (no --identity given: a plaintext client would be refused)' : ''}`
          : mtlsMode === 'permissive' ? `permissive on port ${q.dst.port}: mesh mTLS is terminated, plaintext is accepted too` : `disable on port ${q.dst.port}`,
    });
  } else if (cluster !== undefined) {
    stages.push({
      stage: 'mtls', decision: transport,
      reason: transport === 'mtls' ? `[service ${cluster.name}] mtls = true: mesh mTLS to the endpoint's sidecar` : transport === 'tls' ? `[service ${cluster.name}] TLS origination` : 'plain TCP to the upstream',
    });
  }

  // Authorization: inbound only.
  let authorization: ProxyExplanation['authorization'];
  if (direction === 'outbound') {
    authorization = { applies: false, reason: 'authorization policies apply to inbound traffic: the destination\'s sidecar decides' };
  } else if (!rt.authorizer.hasPolicies) {
    authorization = { applies: false, reason: 'no [authorization] policy' };
  } else {
    const conn = { peerIdentity: q.identity, sourceIp: q.src ?? '', destinationPort: q.dst.port };
    if (handling === 'http') {
      const head = headOf(q, origDst);
      const headers = new Map<string, string>();
      for (const [n, v] of head.headers) headers.set(n, headers.has(n) ? `${headers.get(n) ?? ''}, ${v}` : v);
      const e = rt.authorizer.explainRequest({ ...conn, method: head.method, path: head.path, host: head.authority, header: (n) => headers.get(n) });
      authorization = { applies: true, as: 'http', ...e };
    } else {
      authorization = { applies: true, as: 'tcp', ...rt.authorizer.explainConnection(conn) };
    }
    const matched = authorization.policies.filter((x) => x.matched).map((x) => `${x.action} ${x.name}`);
    stages.push({
      stage: 'authorization', decision: authorization.decision.allowed ? 'allowed' : 'denied',
      reason: `${authorization.summary} (as ${authorization.as}; matching: ${matched.length === 0 ? 'none' : matched.join(', ')}${q.src === undefined ? '; no --src given: from_cidrs cannot match' : ''}${q.identity === undefined ? '; no --identity: plaintext' : ''})`,
    });
  }

  // Route (HTTP through the engine) and endpoint.
  let route: RouteExplanation | undefined;
  const endpoints: EndpointChoice[] = [];
  const sourceAddress = q.src;
  if (cluster !== undefined && handling === 'http' && service !== undefined) {
    const head = headOf(q, origDst);
    route = rt.routes.explain(head, service.name);
    if (route.matched === undefined || route.decision === undefined) {
      stages.push({ stage: 'route', decision: 'no-route (404)', reason: `[service ${service.name}] has routes and none matches: ${route.routes.map((r) => `${r.route}: ${r.failed ?? '?'} does not hold`).join('; ')}` });
    } else {
      const spec = rt.routes.route(route.matched);
      const hashKey = requestHashKey(spec?.hashOn, head);
      const last = route.routes[route.routes.length - 1];
      stages.push({
        stage: 'route', decision: `route ${route.matched}`,
        reason: route.routes.length === 0 ? `[service ${service.name}] has no routes: forwarded to the service itself`
          : `${route.routes.slice(0, -1).map((r) => `${r.route}: ${r.failed ?? '?'} does not hold; `).join('')}${last?.route ?? ''}: ${last !== undefined && last.conditions.length > 0 ? last.conditions.join(', ') : 'no condition'}`,
      });
      const total = route.decision.backends.reduce((n, b) => n + b.weight, 0);
      for (const b of route.decision.backends) {
        const c = rt.clusters.get(b.service);
        if (c === undefined) continue;
        endpoints.push(choose(c, { subset: b.subset, request: true, hashKey, sourceAddress, target, ...(route.decision.backends.length > 1 ? { weight: b.weight } : {}) }));
        if (route.decision.backends.length > 1) {
          const e = endpoints[endpoints.length - 1] as EndpointChoice;
          stages.push({ stage: 'endpoint', decision: `${b.id} (${Math.round((b.weight / total) * 1000) / 10}%): ${e.endpoint ?? 'none'}`, reason: healthText(e) });
        }
      }
    }
  } else if (cluster !== undefined && handling === 'http') {
    // Passthrough or inbound HTTP: no route table; the request goes to the original destination / the local app.
    stages.push({ stage: 'route', decision: cluster.name, reason: direction === 'inbound' ? 'inbound requests go to the local app' : 'no service: the request goes to its original destination' });
    endpoints.push(choose(cluster, { request: true, hashKey: undefined, sourceAddress, target }));
  } else if (cluster !== undefined) {
    endpoints.push(choose(cluster, { request: false, hashKey: undefined, sourceAddress, target }));
  }
  if (endpoints.length === 1) {
    const e = endpoints[0] as EndpointChoice;
    stages.push({ stage: 'endpoint', decision: e.endpoint ?? 'none', reason: healthText(e) });
  }
  const policyCluster = route?.decision?.backends[0] === undefined ? cluster : (rt.clusters.get(route.decision.backends[0].service) ?? cluster);
  const policySpec = policyCluster?.spec;
  if (policySpec?.service !== undefined) {
    const b = policySpec.policy.breaker;
    const o = policySpec.policy.outlier;
    const r = route?.decision;
    stages.push({
      stage: 'traffic-policy',
      decision: `${policySpec.policy.source === undefined ? 'defaults' : `[traffic-policy ${policySpec.name}]`}`,
      reason: [
        r === undefined ? undefined : `route timeout ${r.timeoutMs === 0 ? 'none' : `${r.timeoutMs} ms`}, ${r.retry.attempts} attempt${r.retry.attempts === 1 ? '' : 's'}${r.retry.on.length === 0 ? '' : ` (retry on ${r.retry.on.join(', ')})`}`,
        `breaker: ${limit(b.maxConnections)} connections, ${limit(b.maxPendingRequests)} pending, ${limit(b.maxRequests)} requests, ${limit(b.maxRetries)} retries`,
        outlierText(o.consecutive5xx, o.consecutiveGatewayErrors, policySpec.service.passiveHealth.ejectAfterFailures, o.baseEjectionMs, o.maxEjectedPercent),
      ].filter((x) => x !== undefined).join('; '),
    });
  }
  if (cluster !== undefined) {
    const timeout = direction === 'inbound' ? rt.clusters.inbound.connectTimeoutMs : cluster.connectTimeoutMs;
    const attempts = cluster.spec.service?.connectAttempts ?? 1;
    stages.push({
      stage: 'connect',
      decision: `${transport}${handling === 'http' ? ', pooled per endpoint by the HTTP engine' : ', one upstream connection per downstream connection'}`,
      reason: `connect timeout ${timeout} ms${handling === 'http' ? '' : attempts === 1 ? ', one attempt' : `, up to ${attempts} attempts on other endpoints`}`,
    });
  }
  return {
    configVersion: rt.snapshot.version, configHash: rt.snapshot.hash, listeners, direction, dst: dstText,
    listener: { name: direction, port: listeners[direction] },
    protocol: { declared, handling, http: httpQuery },
    service, destination, route, endpoints, transport, mtlsMode, authorization, stages,
  };
}
