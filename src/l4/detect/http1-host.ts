// The Host of an HTTP/1.x request head, for routing by name at L4 (a destination that matches no VIP but may match a
// service's `hostnames`, while no HTTP engine takes the connection). Pure and bounded: the caller passes the bytes
// read so far (the request line has already been recognised by the sniffer); the scan ends at the blank line that
// closes the head, or at `maxBytes` (then no host: the connection is routed without a name). Obsolete line folding
// and a repeated Host are treated as "no host" (RFC 9112 §3.2: a request with several Host fields is invalid).

export type HostScan =
  | { readonly done: false }
  | { readonly done: true; readonly host: string | undefined };

const NOT_DONE: HostScan = Object.freeze({ done: false });
const CR = 13;
const LF = 10;

/** Index just past the first empty line ("\r\n\r\n" or "\n\n"), or -1. */
function headEnd(buf: Buffer): number {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== LF) continue;
    const next = buf[i + 1];
    if (next === LF) return i + 2;
    if (next === CR && buf[i + 2] === LF) return i + 3;
  }
  return -1;
}

/** Scan `head` (the start of the client stream) for the request head's Host field. */
export function scanHttp1Host(head: Buffer, maxBytes: number): HostScan {
  const end = headEnd(head);
  if (end < 0) return head.length < maxBytes ? NOT_DONE : { done: true, host: undefined };
  const lines = head.toString('latin1', 0, end).split(/\r?\n/);
  let host: string | undefined;
  let seen = 0;
  // lines[0] is the request line.
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') break;
    if (line.startsWith(' ') || line.startsWith('\t')) return { done: true, host: undefined };
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    if (line.slice(0, colon).toLowerCase() !== 'host') continue;
    seen++;
    host = line.slice(colon + 1).trim();
  }
  if (seen !== 1 || host === undefined || host === '') return { done: true, host: undefined };
  return { done: true, host };
}
