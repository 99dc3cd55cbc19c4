// The hand-off from the L4 stages to the HTTP engine: a connection detected (or declared) as HTTP/1.x or h2c is
// given, with the bytes detection already read, to whatever the listener runtime names (src/proxy/runtime.ts wires
// the L7 engine in; tests may install their own).
import type { Socket } from 'node:net';
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
}
