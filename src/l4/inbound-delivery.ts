// Route stage (pure): direction + original destination + options -> the upstream to connect to.
//
// outbound  -> the original destination itself (the proxy's own uid/gid is excluded by the rules, so this
//              connection leaves the pod directly).
// inbound   -> `original-dst` (default): the pod address and port the client dialed, from source 127.0.0.6 (IPv4)
//              or ::6 (IPv6). The rules RETURN traffic from that source on lo, so it reaches the app instead of
//              being captured again. The app sees the same destination as without the mesh, and an app bound to
//              127.0.0.1 only stays unreachable from outside the pod, as it would be without the mesh (Istio's
//              behaviour since 1.10).
//           -> `loopback`: 127.0.0.1 / ::1 at the original port, from the same source (the pre-1.10 Istio behaviour,
//              for apps that listen on localhost only; it exposes them to the network).
import type { OriginalDst } from '../interceptor/original-dst.js';
import type { ConnectTarget } from './connect.js';

export type Direction = 'outbound' | 'inbound';
export type InboundDelivery = 'original-dst' | 'loopback';

export interface RouteOptions {
  readonly inboundDelivery: InboundDelivery;
}

/** Source addresses of inbound delivery; `remora init` returns traffic from them untouched (and adds ::6 to lo). */
export const INBOUND_SOURCE_V4 = '127.0.0.6';
export const INBOUND_SOURCE_V6 = '::6';

export function routeConnection(direction: Direction, origDst: OriginalDst, opts: RouteOptions): ConnectTarget {
  if (direction === 'outbound') return { host: origDst.address, port: origDst.port };
  const v4 = origDst.family === 4;
  const localAddress = v4 ? INBOUND_SOURCE_V4 : INBOUND_SOURCE_V6;
  if (opts.inboundDelivery === 'loopback') return { host: v4 ? '127.0.0.1' : '::1', port: origDst.port, localAddress };
  return { host: origDst.address, port: origDst.port, localAddress };
}
