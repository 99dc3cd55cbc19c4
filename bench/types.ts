// The vocabulary of the benchmark: scenarios (a load against a server) × modes (how the client pod reaches the
// server: directly, through remora, through a peer proxy). Adding a row later (L7 HTTP, h2c, server-first,
// multi-endpoint) means adding a Scenario to bench/scenarios.ts or a Mode to bench/modes.ts; run.ts, the
// measurements of the proxy process and the report stay as they are.
import type { Pod } from '../test/netns/harness.js';

/** What a scenario's headline number is; decides how ratios are formed in the report. */
export type Metric = 'rps' | 'latency' | 'gbps';

/** One load run's result. Undefined fields were not measured by this scenario. */
export interface Measurement {
  /** Requests per second achieved (rps and latency scenarios). */
  readonly rps?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** Bulk throughput in Gbit/s (gbps scenarios). */
  readonly gbps?: number;
  /** Failed requests / socket errors / non-2xx reported by the load generator. */
  readonly errors: number;
  /** Short free text for the report (e.g. "socket errors: read 3"). */
  readonly note?: string;
}

/** Addresses and ports of the services started in the server pod (shared by all scenarios). */
export interface ServerInfo {
  readonly pod: Pod;
  readonly ip4: string;
  readonly ip6: string;
  /** nginx, HTTP/1.1, keep-alive, tiny body "hello from upstream\n". */
  readonly httpPort: number;
  /** A second nginx port with a different body ("hello from upstream 8081\n"): proves original-destination forwarding. */
  readonly httpPort2: number;
  readonly iperfPort: number;
  /** nginx, HTTP/2 with prior knowledge (h2c), tiny body. */
  readonly h2cPort: number;
  /** A server-first banner server (greets at once) in the server pod. */
  readonly bannerPort: number;
  /**
   * The multi-endpoint service: a VIP (nothing listens there; only a proxy's service configuration makes it
   * reachable) whose endpoints are nginx on `servicePort` in the server pod and two more endpoint pods.
   */
  readonly serviceVip: string;
  readonly servicePort: number;
  readonly serviceEndpoints: readonly string[];
}

/** The mesh rows' certificates (made by `remora ca`; owned by uid 1337, which the proxies run as). */
export interface MeshPki {
  /** remora's identity_dir of the client pod's sidecar (cert-chain.pem, key.pem, root-cert.pem). */
  readonly clientDir: string;
  /** remora's identity_dir of the server pod's sidecar. */
  readonly serverDir: string;
  readonly clientId: string;
  readonly serverId: string;
  /** The trust bundle (root-cert.pem), HAProxy's ca-file on both sides. */
  readonly rootPem: string;
  /** HAProxy's `crt` files: the same leaf certificates and keys as remora's, chain and key in one PEM. */
  readonly haproxyClientPem: string;
  readonly haproxyServerPem: string;
}

/**
 * The mesh rows' server pod: a pod of its own (nginx on httpPort) whose inbound rules each mesh mode sets (its
 * server-side sidecar), so that the server pod of the other rows never has rules.
 */
export interface MeshServerInfo {
  readonly pod: Pod;
  readonly ip4: string;
  readonly httpPort: number;
  readonly pki: MeshPki;
}

export interface RunContext {
  readonly client: Pod;
  readonly server: ServerInfo;
  /** Present when a mesh scenario was selected. */
  readonly meshServer?: MeshServerInfo;
  /** Measured seconds of each load. */
  readonly durationS: number;
  /** Unmeasured seconds before each load. */
  readonly warmupS: number;
  /** Private scratch directory of this run (readable by uid 1337). */
  readonly tmpDir: string;
}

export interface Scenario {
  /** Stable id, used on the command line (--scenarios) and in the report. */
  readonly id: string;
  readonly title: string;
  readonly metric: Metric;
  /** The exact load, for the report ("wrk -t2 -c64 -d6s ..."). */
  describe(ctx: RunContext): string;
  /** Optional one-time preparation in the server pod before any mode runs (e.g. a server-first daemon). */
  setup?(ctx: RunContext): Promise<void>;
  /** Modes this scenario runs in (e.g. not `direct` for a VIP only a proxy knows); undefined = all. */
  readonly modes?: readonly string[];
  /** The peer proxy of this scenario's second ratio (an L7 row is compared with HAProxy in http mode); default the run's peer. */
  readonly peer?: string;
  /** The remora mode the goals of this scenario are about; default the run's subject. */
  readonly subject?: string;
  /** 'mesh': the load goes to the mesh server pod (two hops in the mesh modes); default: the server pod. */
  readonly group?: 'mesh';
  /**
   * Rounds of this scenario (every mode back to back per round, order alternating); the cell is their median and
   * keeps the rounds. Default 1; --rounds overrides.
   */
  readonly rounds?: number;
  run(ctx: RunContext): Promise<Measurement>;
}

export interface ModeContext extends RunContext {
  readonly repoRoot: string;
  /** Extra arguments for `remora proxy` (from --remora-args). */
  readonly remoraArgs: readonly string[];
}

/** One process of a mode whose CPU and memory are measured, by role ("client" / "server" sidecar of the mesh rows). */
export interface ModeProcess {
  readonly role: string;
  readonly pid: number;
}

/** A started mode; `pid` is the proxy process (for RSS and CPU), absent for direct. */
export interface RunningMode {
  readonly pid?: number;
  /**
   * Modes of more than one process (a sidecar in each pod): every process, measured separately; then `pid` is
   * absent and the mode's CPU is their sum.
   */
  readonly processes?: readonly ModeProcess[];
  /** Settings worth stating in the report (threads, log level, ...). */
  readonly notes: readonly string[];
  /** Proxy-side counters worth reporting after the runs (e.g. remora /stats). */
  counters?(): Promise<Readonly<Record<string, number>>>;
  /** A check after the transparency check (e.g. "the server sidecar terminated mTLS"); a text = the mode failed. */
  verify?(): Promise<string | undefined>;
  stop(): Promise<void>;
}

export interface Mode {
  /** Stable id: direct, remora, haproxy-l4, ... */
  readonly id: string;
  readonly title: string;
  /** Whether the client pod needs remora's redirect rules (`remora init`) for this mode. */
  readonly redirect: boolean;
  /**
   * The port this mode's proxy listens on for redirected outbound connections (redirect modes). All modes' proxies
   * run side by side for the whole bench; before each load the rules are re-applied with
   * `remora init --outbound-port <port>`, so the modes can be interleaved per scenario.
   */
  readonly outboundPort?: number;
  /** Scenario ids this mode supports; undefined = all. */
  readonly scenarios?: readonly string[];
  /**
   * Mesh modes: the port the mesh server pod's inbound rules (`remora init --inbound-port`) redirect to, i.e. the
   * server-side sidecar. Undefined: that pod has no rules while this mode runs.
   */
  readonly serverInboundPort?: number;
  /** What the transparency check reaches through this mode (default: the server pod's two ports, and the VIP when redirecting). */
  readonly checks?: 'mesh';
  start(ctx: ModeContext): Promise<RunningMode>;
}

/** One cell of the result matrix. */
export interface Cell {
  readonly scenario: string;
  readonly mode: string;
  readonly measurement?: Measurement;
  /** Why there is no measurement (mode failed to start, load failed, ...). */
  readonly failure?: string;
  /** Connections redirected by the nat table during the load (incl. warm-up); undefined in direct mode. */
  readonly redirected?: number;
  /** CPU cores used by the proxy process during the load (incl. warm-up); the sum of a mode's processes. */
  readonly proxyCores?: number;
  /** The same per process role, for modes of several processes (the mesh rows' client and server sidecars). */
  readonly coresByRole?: Readonly<Record<string, number>>;
  /** With several rounds: each round's cell (this cell holds their medians, field by field). */
  readonly rounds?: readonly Cell[];
}

export interface IdleConnectionsSummary {
  readonly held: number;
  readonly errors: number;
  /** RSS growth per held connection once settled (the setup's garbage collected), KB. */
  readonly kbSettled: number;
  /** RSS growth per connection of the second half (the heap already grown), KB. */
  readonly kbMarginal: number;
}

export interface ModeSummary {
  readonly mode: string;
  readonly title: string;
  readonly notes: readonly string[];
  readonly failure?: string;
  readonly rssIdleMb?: number;
  readonly rssAfterMb?: number;
  /** Per process role (modes of several processes; rssIdleMb/rssAfterMb are then their sums). */
  readonly rssIdleByRole?: Readonly<Record<string, number>>;
  readonly rssAfterByRole?: Readonly<Record<string, number>>;
  readonly counters?: Readonly<Record<string, number>>;
  /** Memory per idle connection through the proxy (bench/idle-connections.ts), measured after the loads. */
  readonly idleConnections?: IdleConnectionsSummary;
  /** Result of the transparency check (":8080 and :8081 reached their own servers"). */
  readonly transparency?: string;
}
