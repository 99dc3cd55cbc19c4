// The hand-off from the L4 stages to the HTTP engine: a connection detected (or declared) as HTTP/1.x or h2c is
// given, with the bytes detection already read, to whatever the listener runtime names (src/proxy/runtime.ts wires
// the L7 engine in; tests may install their own).
import type { Socket } from 'node:net';
import type { TcpHandle } from '../core/tcp-handle.js';
import type { ConnectionContext } from './connection-context.js';

export interface HttpHandoffContext {
  readonly protocol: 'http1' | 'http2';
  readonly connection: ConnectionContext;
  /** The service whose VIP is the original destination, if any (the engine may still route by Host). */
  readonly service: string | undefined;
}

export interface HttpHandoff {
  /**
   * Take over `socket` (paused, no listener of the L4 stages left on it) whose first bytes `initialBytes` were already
   * read by detection. The client's FIN may already have been read: check `socket.readableEnded` (a paused socket
   * with nothing buffered still emits 'end'). Must never throw and must eventually close the socket.
   */
  handleConnection(socket: Socket, initialBytes: Buffer, ctx: HttpHandoffContext): void;
  /**
   * An HTTP/1.x connection still on its accepted TCP handle (no net.Socket: src/core/tcp-handle.ts), not reading,
   * whose first bytes `initialBytes` were read. `closed` is called once, when the connection is over, with its bytes
   * each way. Must never throw. Absent: such connections are made sockets and go through handleConnection().
   */
  handleHttp1Handle?(handle: TcpHandle, initialBytes: Buffer, ctx: HttpHandoffContext, closed: (bytesIn: number, bytesOut: number) => void): void;
}
