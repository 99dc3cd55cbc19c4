// The OpenAPI 3.1 description of the control plane's API, served at GET /api/v1/openapi.json. Kept next to the
// handler (control-api.ts); an integration test checks that every path the handler answers is described here.
import { KINDS, OBJECT_KINDS } from './control-objects.js';

const json = (schema: object): object => ({ 'application/json': { schema } });
const ref = (name: string): object => ({ $ref: `#/components/schemas/${name}` });
const error = (description: string): object => ({ description, content: json(ref('Error')) });
const bearer = [{ bearer: [] }];
const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };

function kindPaths(): Record<string, object> {
  const paths: Record<string, object> = {};
  for (const kind of OBJECT_KINDS) {
    const plural = KINDS[kind].plural;
    paths[`/api/v1/${plural}`] = {
      get: { summary: `list ${kind} objects`, security: bearer, responses: { 200: { description: 'the objects', content: json(ref('ObjectList')) }, 401: error('no valid token') } },
    };
    paths[`/api/v1/${plural}/{name}`] = {
      parameters: [nameParam],
      get: { summary: `get one ${kind}`, security: bearer, responses: { 200: { description: 'the object', content: json(ref('Object')) }, 404: error('no such object') } },
      put: {
        summary: `create (version 0) or replace (the current version) a ${kind}`,
        security: bearer,
        requestBody: { required: true, content: json(ref('PutBody')) },
        responses: {
          200: { description: 'stored', content: json(ref('WriteResult')) },
          400: error('malformed body'), 401: error('no valid token'), 403: error('the token cannot write'),
          409: error('version conflict'), 503: error('the store cannot take writes now (etcd: no member answers or no quorum); nothing promised stored'), 422: error('the desired state would be invalid: issues name object, field, expected'),
        },
      },
      delete: {
        summary: `delete a ${kind} at the version read`,
        security: bearer,
        parameters: [{ name: 'version', in: 'query', required: true, schema: { type: 'integer', minimum: 1 } }],
        responses: { 200: { description: 'deleted', content: json(ref('WriteResult')) }, 404: error('no such object'), 409: error('version conflict'), 503: error('the store cannot take writes now (etcd: no member answers or no quorum); nothing promised stored'), 422: error('the rest would be invalid without it') },
      },
    };
  }
  return paths;
}

export function openApiDocument(version: string): object {
  return {
    openapi: '3.1.0',
    info: { title: 'remora control plane', version, description: 'The mesh desired state: the INI sections of the static configuration as objects (docs/control-plane.md).' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token given to remora control --token (scopes read, write, sidecar)' } },
      schemas: {
        Spec: { type: 'object', additionalProperties: { type: 'string' }, description: 'the keys and values of the INI section, as text' },
        Object: { type: 'object', required: ['kind', 'name', 'spec', 'version'], properties: { kind: { enum: [...OBJECT_KINDS] }, name: { type: 'string' }, spec: ref('Spec'), version: { type: 'integer', description: 'the revision that last changed it' } } },
        ObjectList: { type: 'object', properties: { revision: { type: 'integer' }, items: { type: 'array', items: ref('Object') } } },
        PutBody: { type: 'object', required: ['spec', 'version'], properties: { spec: ref('Spec'), version: { type: 'integer', minimum: 0, description: '0 to create, else the version read' } } },
        ApplyBody: {
          type: 'object',
          properties: {
            writes: { type: 'array', items: { type: 'object', required: ['kind', 'name', 'spec', 'version'], properties: { kind: { enum: [...OBJECT_KINDS] }, name: { type: 'string' }, spec: ref('Spec'), version: { type: 'integer', minimum: 0 } } } },
            deletes: { type: 'array', items: { type: 'object', required: ['kind', 'name', 'version'], properties: { kind: { enum: [...OBJECT_KINDS] }, name: { type: 'string' }, version: { type: 'integer', minimum: 1 } } } },
          },
        },
        WriteResult: {
          type: 'object',
          properties: {
            revision: { type: 'integer' }, dryRun: { type: 'boolean' }, object: ref('Object'),
            changes: { type: 'array', items: { type: 'object', properties: { type: { enum: ['put', 'delete'] }, kind: { type: 'string' }, name: { type: 'string' }, version: { type: 'integer' } } } },
          },
        },
        Issue: { type: 'object', required: ['expected'], properties: { kind: { type: 'string' }, name: { type: 'string' }, field: { type: 'string' }, value: { type: 'string' }, expected: { type: 'string' } } },
        Error: {
          type: 'object', required: ['error', 'message'],
          properties: {
            error: { type: 'string', description: 'a REMORA_ERR_* code (docs/errors.md)' }, message: { type: 'string' },
            issues: { type: 'array', items: ref('Issue') },
            conflicts: { type: 'array', items: { type: 'object', properties: { kind: { type: 'string' }, name: { type: 'string' }, expected: { type: 'integer' }, found: { type: 'integer' } } } },
          },
        },
        Sidecar: {
          type: 'object',
          properties: {
            name: { type: 'string' }, identity: { type: 'string' }, connected: { type: 'boolean' }, status: { enum: ['SYNCED', 'STALE', 'NACKED', 'NOT SENT'] },
            versionSent: { type: 'integer' }, versionApplied: { type: 'integer' }, lastNackVersion: { type: 'integer' }, lastNackError: { type: 'string' }, lastSeen: { type: 'string' },
            ready: { type: ['boolean', 'null'], description: 'the sidecar\'s /ready verdict in its last status report; null before the first' },
            certificate: { oneOf: [ref('Certificate'), { type: 'null' }], description: 'the workload certificate in force (null: none, or no status report yet)' },
            rootsNotAfter: { type: 'array', items: { type: 'string', format: 'date-time' }, description: 'each trust-bundle root\'s expiry, earliest first' },
            statusAt: { type: ['string', 'null'], format: 'date-time', description: 'when the last status report arrived' },
          },
        },
        Certificate: {
          type: 'object', required: ['identity', 'notAfter', 'serial'],
          properties: { identity: { type: 'string', description: 'the SPIFFE ID' }, notAfter: { type: 'string', format: 'date-time' }, serial: { type: 'string', description: 'hex, lower case' } },
        },
        Window: { type: 'string', enum: ['1m', '5m', '15m'], default: '1m' },
      },
    },
    paths: {
      ...kindPaths(),
      '/api/v1/apply': {
        post: {
          summary: 'write and delete several objects at once: all or nothing, one revision',
          security: bearer,
          parameters: [{ name: 'dryRun', in: 'query', schema: { type: 'boolean' } }],
          requestBody: { required: true, content: json(ref('ApplyBody')) },
          responses: { 200: { description: 'applied (or, dryRun, would be)', content: json(ref('WriteResult')) }, 400: error('malformed'), 409: error('version conflict'), 503: error('the store cannot take writes now (etcd: no member answers or no quorum); nothing promised stored'), 422: error('invalid') },
        },
      },
      '/api/v1/routes/{name}/weights': {
        parameters: [nameParam],
        post: {
          summary: 'set the weights of every backend of a route (canary, blue-green)',
          security: bearer,
          requestBody: { required: true, content: json({ type: 'object', required: ['weights', 'version'], properties: { weights: { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 10000 } }, version: { type: 'integer', minimum: 1 } } }) },
          responses: { 200: { description: 'stored', content: json(ref('WriteResult')) }, 404: error('no such route'), 409: error('version conflict'), 503: error('the store cannot take writes now (etcd: no member answers or no quorum); nothing promised stored'), 422: error('weights not accepted') },
        },
      },
      '/api/v1/state': {
        get: {
          summary: 'every object and the revision (format=ini: the desired state as one INI document)', security: bearer,
          parameters: [{ name: 'format', in: 'query', schema: { enum: ['json', 'ini'] } }],
          responses: { 200: { description: 'the state', content: { ...json({ type: 'object', properties: { revision: { type: 'integer' }, objects: { type: 'array', items: ref('Object') } } }), 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/api/v1/watch': {
        get: {
          summary: 'Server-Sent Events: one "change" event per revision after `since` (id = revision)', security: bearer,
          parameters: [{ name: 'since', in: 'query', schema: { type: 'integer', minimum: 0 } }],
          responses: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, 410: error('`since` is older than the kept history: list again, then watch from its revision') },
        },
      },
      '/api/v1/sidecars': {
        get: { summary: 'the subscribed sidecars and their sync state', security: bearer, responses: { 200: { description: 'the sidecars', content: json({ type: 'object', properties: { sidecars: { type: 'array', items: ref('Sidecar') } } }) } } },
      },
      '/api/v1/sidecars/watch': {
        get: { summary: 'Server-Sent Events: a "sidecars" event {revision, sidecars} now and after every change of a sidecar\'s sync state (the web UI)', security: bearer, responses: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } } },
      },
      '/api/v1/whoami': {
        get: { summary: 'the scope of the token sent: {"scope": "read" | "write" | "sidecar"} (the web UI disables writes for read tokens)', security: bearer, responses: { 200: { description: 'the scope', content: json({ type: 'object', properties: { scope: { type: 'string', enum: ['read', 'write', 'sidecar'] } } }) } } },
      },
      '/api/v1/sync': {
        get: {
          summary: 'a sidecar subscribes: Server-Sent Events, a "snapshot" event {version, nonce, ini} whenever it is behind (scope sidecar)', security: bearer,
          parameters: [
            { name: 'name', in: 'query', required: true, schema: { type: 'string' } }, { name: 'identity', in: 'query', schema: { type: 'string' } },
            { name: 'version', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'the version the sidecar has applied' },
          ],
          responses: { 200: { description: 'the stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
        },
      },
      '/api/v1/sync/ack': {
        post: {
          summary: 'ACK (no error) or NACK (error: the validation issues) of a snapshot version (scope sidecar)', security: bearer,
          requestBody: { required: true, content: json({ type: 'object', required: ['name', 'version'], properties: { name: { type: 'string' }, identity: { type: 'string' }, version: { type: 'integer' }, nonce: { type: 'string' }, error: { type: 'string' } } }) },
          responses: { 200: { description: 'recorded' }, 404: error('no such sidecar subscribed') },
        },
      },
      '/api/v1/sync/metrics': {
        post: {
          summary: 'a sidecar\'s golden metrics, cumulative per edge, every 5 s on the sync connection (scope sidecar)', security: bearer,
          requestBody: {
            required: true,
            content: json({
              type: 'object', required: ['name', 'epoch', 'seq', 'edges'],
              properties: {
                name: { type: 'string' }, identity: { type: 'string' }, epoch: { type: 'string', description: 'one per sidecar process (its counters start over)' },
                seq: { type: 'integer', minimum: 1 },
                edges: {
                  type: 'array', maxItems: 10000,
                  items: {
                    type: 'object', required: ['reporter', 'source', 'destination', 'mtls', 'requests', 'latency', 'tcpOpened', 'tcpClosed', 'tcpBytes'],
                    properties: {
                      reporter: { enum: ['source', 'destination'] }, source: { type: 'string' }, destination: { type: 'string' }, mtls: { type: 'boolean' },
                      requests: { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4, description: 'cumulative requests by class: 2xx, 3xx, 4xx, 5xx (no response counts as 5xx)' },
                      latency: { type: 'array', items: { type: 'number' }, maxItems: 20, description: 'cumulative duration bucket counts (ms, Envoy default buckets then +Inf), non-cumulative across buckets' },
                      tcpOpened: { type: 'number' }, tcpClosed: { type: 'number' }, tcpBytes: { type: 'number' },
                    },
                  },
                },
              },
            }),
          },
          responses: { 200: { description: 'recorded' }, 400: error('malformed report'), 429: error('too many sidecars report metrics') },
        },
      },
      '/api/v1/metrics': {
        get: {
          summary: 'the sidecars\' aggregated golden metrics per service and per edge over a window (poll it: no change stream)', security: bearer,
          parameters: [{ name: 'window', in: 'query', schema: { enum: ['1m', '5m', '15m'], default: '1m' } }],
          responses: {
            200: {
              description: 'rates per second, success rate (non-5xx / all; null without requests), latency quantiles in ms (null without requests)',
              content: json({
                type: 'object',
                properties: {
                  window: { type: 'string' }, sidecars: { type: 'integer' }, droppedEdges: { type: 'integer' },
                  services: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, rps: { type: 'number' }, successRate: { type: ['number', 'null'] }, p50: { type: ['number', 'null'] }, p95: { type: ['number', 'null'] }, p99: { type: ['number', 'null'] }, tcpConnections: { type: 'integer' }, requests: { type: 'number' } } } },
                  edges: { type: 'array', items: { type: 'object', properties: { source: { type: 'string' }, destination: { type: 'string' }, reporter: { enum: ['source', 'destination'] }, rps: { type: 'number' }, successRate: { type: ['number', 'null'] }, p50: { type: ['number', 'null'] }, p95: { type: ['number', 'null'] }, p99: { type: ['number', 'null'] }, mtls: { type: 'boolean' }, requests: { type: 'number' } } } },
                },
              }),
            },
            400: error('unknown window'),
          },
        },
      },
      '/api/v1/sync/status': {
        post: {
          summary: 'a sidecar\'s status, every 5 s on the sync connection (scope sidecar): readiness, certificate, endpoints, cumulative counters per policy and per route backend', security: bearer,
          requestBody: {
            required: true,
            content: json({
              type: 'object', required: ['name', 'epoch', 'seq', 'ready', 'readyReason', 'certificate', 'rootsNotAfter', 'endpoints', 'policies', 'routes'],
              properties: {
                name: { type: 'string' }, identity: { type: 'string' }, epoch: { type: 'string', description: 'one per sidecar process (its counters start over)' },
                seq: { type: 'integer', minimum: 1 }, ready: { type: 'boolean' }, readyReason: { type: 'string', description: 'the body of /ready' },
                certificate: { oneOf: [ref('Certificate'), { type: 'null' }] },
                rootsNotAfter: { type: 'array', maxItems: 64, items: { type: 'string', format: 'date-time' } },
                endpoints: {
                  type: 'array', maxItems: 10000,
                  items: {
                    type: 'object', required: ['service', 'address', 'labels', 'weight', 'healthy', 'ejected', 'ejections', 'activeConnections'],
                    properties: {
                      service: { type: 'string' }, address: { type: 'string' }, labels: { type: 'object', maxProperties: 16, additionalProperties: { type: 'string' } },
                      weight: { type: 'integer' }, healthy: { type: 'boolean' }, ejected: { type: 'boolean' }, ejections: { type: 'integer', description: 'cumulative' },
                      activeConnections: { type: 'integer' },
                    },
                  },
                },
                endpointsTruncated: { type: 'boolean' },
                policies: {
                  type: 'array', maxItems: 2000,
                  items: { type: 'object', required: ['name', 'action', 'allowed', 'denied', 'audited', 'wouldDeny'], properties: { name: { type: 'string' }, action: { enum: ['allow', 'deny', 'audit'] }, allowed: { type: 'integer' }, denied: { type: 'integer' }, audited: { type: 'integer' }, wouldDeny: { type: 'integer' } } },
                },
                routes: {
                  type: 'array', maxItems: 2000,
                  items: {
                    type: 'object', required: ['route', 'service', 'backends'],
                    properties: { route: { type: 'string' }, service: { type: 'string' }, backends: { type: 'array', maxItems: 64, items: { type: 'object', required: ['backend', 'weight', 'requests'], properties: { backend: { type: 'string' }, weight: { type: 'integer' }, requests: { type: 'integer', description: 'cumulative' } } } } },
                  },
                },
              },
            }),
          },
          responses: { 200: { description: 'recorded' }, 400: error('malformed report (what was expected where)'), 429: error('too many sidecars report status') },
        },
      },
      '/api/v1/endpoints': {
        get: {
          summary: 'every service endpoint as the sidecars that reported status in the last 30 s see it', security: bearer,
          parameters: [{ name: 'service', in: 'query', schema: { type: 'string' }, description: 'only this service\'s endpoints' }],
          responses: {
            200: {
              description: 'healthy / ejected: how many reporting sidecars see it healthy / have it ejected now; ejections: the sum of their ejection counts; sidecars: how many reported it',
              content: json({
                type: 'object',
                properties: {
                  endpoints: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        service: { type: 'string' }, address: { type: 'string' }, labels: { type: 'object', additionalProperties: { type: 'string' } }, weight: { type: 'integer' },
                        healthy: { type: 'integer' }, ejected: { type: 'integer' }, ejections: { type: 'integer' }, sidecars: { type: 'integer' }, activeConnections: { type: 'integer' },
                      },
                    },
                  },
                },
              }),
            },
          },
        },
      },
      '/api/v1/policies/stats': {
        get: {
          summary: 'authorization decisions per policy in the window, summed over the sidecars', security: bearer,
          parameters: [{ name: 'window', in: 'query', schema: ref('Window') }],
          responses: {
            200: {
              description: 'allowed / denied: decisions in which the policy decided; audited: connections and requests an audit policy matched; wouldDeny: of those, the ones that were allowed (what making it a deny policy would newly deny)',
              content: json({
                type: 'object',
                properties: {
                  window: { type: 'string' },
                  policies: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, action: { enum: ['allow', 'deny', 'audit'] }, allowed: { type: 'integer' }, denied: { type: 'integer' }, audited: { type: 'integer' }, wouldDeny: { type: 'integer' } } } },
                },
              }),
            },
            400: error('unknown window'),
          },
        },
      },
      '/api/v1/routes/split': {
        get: {
          summary: 'the live traffic split: requests the sidecars\' routers sent to each backend of each route in the window (GET only: a route named "split" is read as GET /api/v1/routes?…, see docs)', security: bearer,
          parameters: [{ name: 'window', in: 'query', schema: ref('Window') }],
          responses: {
            200: {
              description: 'weight: configured now; requests: in the window, summed over the sidecars; share: requests / the route\'s requests (0 without traffic)',
              content: json({
                type: 'object',
                properties: {
                  window: { type: 'string' },
                  routes: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        route: { type: 'string' }, service: { type: 'string' },
                        backends: { type: 'array', items: { type: 'object', properties: { backend: { type: 'string' }, weight: { type: 'integer' }, requests: { type: 'integer' }, share: { type: 'number' } } } },
                      },
                    },
                  },
                },
              }),
            },
            400: error('unknown window'),
          },
        },
      },
      '/api/v1/certificates': {
        post: {
          summary: 'sign a workload CSR (PKCS#10 PEM, ECDSA P-256, one URI SAN: a SPIFFE ID of the trust domain) as an X.509-SVID (scope sidecar)', security: bearer,
          requestBody: { required: true, content: json({ type: 'object', required: ['csr'], properties: { csr: { type: 'string' }, ttlSeconds: { type: 'integer', minimum: 60, maximum: 86400 } } }) },
          responses: {
            200: { description: 'the certificate and the trust bundle', content: json({ type: 'object', properties: { spiffeId: { type: 'string' }, certChain: { type: 'string' }, roots: { type: 'string' }, serial: { type: 'string' }, notAfter: { type: 'string' } } }) },
            422: error('the request was refused (which check failed)'),
          },
        },
      },
      '/api/v1/ca/root': { get: { summary: 'the mesh trust bundle (PEM); no token needed', responses: { 200: { description: 'PEM certificates', content: { 'application/x-pem-file': { schema: { type: 'string' } } } } } } },
      '/api/v1/openapi.json': { get: { summary: 'this document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
    },
  };
}
