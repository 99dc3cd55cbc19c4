// Test helper: run the HTTP/1.1 request parser over a whole text (in pieces) and collect what it produced.
import { RequestEvent, RequestParser, type ParsedRequestHead } from '../../src/l7/http/http1-request-parser.js';
import { Http1SyntaxError } from '../../src/l7/http/http1-syntax.js';

export interface ParsedMessage {
  head: ParsedRequestHead;
  body: string;
  trailers: string[];
  complete: boolean;
}

export interface ParseOutcome {
  messages: ParsedMessage[];
  error: Http1SyntaxError | undefined;
  /** Bytes after the head of an Upgrade / CONNECT request. */
  rest: string | undefined;
  /** Bytes left in the parser at the end (part of a message). */
  leftover: number;
}

/** Feed `text` in pieces of `step` bytes (0: at once) and collect every message. */
export function parseAll(text: string, step = 0, maxHeadBytes = 1024): ParseOutcome {
  const p = new RequestParser({ maxHeadBytes });
  const out: ParseOutcome = { messages: [], error: undefined, rest: undefined, leftover: 0 };
  const buf = Buffer.from(text, 'latin1');
  const pieces: Buffer[] = [];
  if (step <= 0) pieces.push(buf);
  else for (let i = 0; i < buf.length; i += step) pieces.push(buf.subarray(i, i + step));
  let cur: ParsedMessage | undefined;
  try {
    for (const piece of pieces) {
      p.push(piece);
      for (let guard = 0; guard < 100_000; guard++) {
        const ev = p.next();
        if (ev === RequestEvent.NeedMore) break;
        if (ev === RequestEvent.Head) {
          cur = { head: p.head as ParsedRequestHead, body: '', trailers: [], complete: false };
          out.messages.push(cur);
        } else if (ev === RequestEvent.Body) {
          (cur as ParsedMessage).body += (p.chunk as Buffer).toString('latin1');
        } else if (ev === RequestEvent.End) {
          (cur as ParsedMessage).trailers = p.trailers;
          (cur as ParsedMessage).complete = true;
        } else if (ev === RequestEvent.Tunnel) {
          out.rest = p.rest().toString('latin1');
          return out;
        }
      }
    }
  } catch (err) {
    if (!(err instanceof Http1SyntaxError)) throw err;
    out.error = err;
  }
  out.leftover = p.buffered;
  return out;
}

