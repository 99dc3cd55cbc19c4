// Differential test of the HTTP/1.1 request parser against Node's llhttp. Every message of a corpus (hand-written
// valid and invalid requests, the smuggling shapes, generated valid messages and mutated heads from the fuzz
// generator with a fixed seed) is sent over a loopback socket to a strict `http.createServer` (no lenient flags, raw
// headers, no joined duplicates), which records each request (method, url, raw headers, body, raw trailers) or the
// parse error; the same bytes go through our parser. The checks that the old engine added on top of llhttp (one Host,
// Host on HTTP/1.1, no Transfer-Encoding on HTTP/1.0, a final chunked coding, major version 1) are applied to
// llhttp's side, so the comparison is against what the proxy used to accept.
//
// They must agree on accept / refuse and, when both accept, on every parsed field. Deliberate differences are listed
// in DIFFERENCES with the reason; each one must still differ (so the list stays true).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseAll } from '../../support/http1-parse.js';
import { Gen, genMessage, mutate } from '../../support/http1-fuzz.js';

interface Seen {
  method: string;
  url: string;
  headers: string[];
  body: string;
  trailers: string[];
}

interface Verdict {
  ok: boolean;
  requests: Seen[];
  why: string;
}

/** What the old engine added to llhttp (validateRequest in the llhttp-based engine). */
function oldEngineRefuses(req: http.IncomingMessage): string | undefined {
  if (req.httpVersionMajor !== 1) return 'version';
  const raw = req.rawHeaders;
  let hosts = 0;
  let te: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = (raw[i] as string).toLowerCase();
    if (n === 'host') hosts++;
    if (n === 'transfer-encoding') te = te === undefined ? (raw[i + 1] as string) : `${te}, ${raw[i + 1] as string}`;
  }
  if (hosts > 1 || (hosts === 0 && req.httpVersionMinor === 1)) return 'host';
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) return 'te-1.0';
    const codings = te.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== '');
    if (codings[codings.length - 1] !== 'chunked') return 'te-final';
  }
  return undefined;
}

const HAND: Record<string, string> = {
  'simple GET': 'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'header case and order': 'GET /x?y HTTP/1.1\r\nHost: a\r\nX-MiXeD: 1\r\nzeta: 2\r\nX-MiXeD: 3\r\n\r\n',
  'OWS and empty value': 'GET / HTTP/1.1\r\nHost:a\r\nA: \t x y \t\r\nB:\r\n\r\n',
  'obs-text value': 'GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n',
  'Content-Length body': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
  'chunked with extension and trailers': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
  'chunked, quoted extension': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x="a b"\r\nabc\r\n0\r\n\r\n',
  'upper-case hex chunk size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n',
  'pipelined': 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n',
  'HTTP/1.0 without Host': 'GET / HTTP/1.0\r\n\r\n',
  'absolute-form': 'GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n',
  'asterisk-form': 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
  'CL and TE': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'two CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
  'two identical CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd',
  'CL list': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nabcde',
  'signed CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd',
  'chunked not last': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
  'unknown coding': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
  'gzip, chunked': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
  'TE on 1.0': 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'bad chunk size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n',
  'chunk size overflow': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabcd\r\n0\r\n\r\n',
  'space after chunk size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4 \r\nabcd\r\n0\r\n\r\n',
  'chunk data too long': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdef\r\n0\r\n\r\n',
  'bare LF in chunks': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n',
  'obs-fold': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n',
  'space before colon': 'GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n',
  'invalid name': 'GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n',
  'NUL in value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n',
  'bare CR in value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n',
  'bare LF line ends': 'GET / HTTP/1.1\nHost: a\n\n',
  'no Host': 'GET / HTTP/1.1\r\nX: b\r\n\r\n',
  'two Host': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
  'space in target': 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n',
  'HTTP/2.0': 'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
  'HTTP/1.2': 'GET / HTTP/1.2\r\nHost: a\r\n\r\n',
  'DEL in value': 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n',
  'empty line before request': '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
};

/**
 * Where the parser differs from llhttp (+ the old engine's checks) on purpose. Key: a substring of the corpus name or
 * a predicate on the bytes; value: why.
 */
const DIFFERENCES: { match: (name: string, wire: string) => boolean; why: string }[] = [
  {
    match: (_n, w) => /\r\ntransfer-encoding:[^\r]*,/i.test(w.slice(0, w.indexOf('\r\n\r\n') + 2)) || (w.slice(0, w.indexOf('\r\n\r\n')).match(/\r\ntransfer-encoding:/gi)?.length ?? 0) > 1,
    why: 'Transfer-Encoding other than one `chunked` (e.g. "gzip, chunked", two TE fields) is refused: the proxy drops TE and re-frames the body, so it could not forward another coding; llhttp accepts it',
  },
  {
    match: (_n, w) => /\r\n(transfer-encoding|content-length):[^\r]*\t/i.test(w.slice(0, w.indexOf('\r\n\r\n') + 2)),
    why: 'HTAB around a Transfer-Encoding / Content-Length value is optional whitespace (RFC 9110 §5.6.3) and trimmed; llhttp takes only SP there and refuses the message',
  },
  {
    match: (_n, w) => /[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/.test(w.slice(0, w.indexOf('\r\n')).split(' ')[1] ?? ''),
    why: 'a request-target with visible ASCII outside RFC 3986 (e.g. `"`, `{`, `|`) is passed on as received (the proxy does not interpret it; clients send such bytes); llhttp refuses some of them (in an absolute-form host, say)',
  },
  {
    match: (_n, w) => /[\x80-\xff]/.test(w.slice(0, w.indexOf('\r\n'))),
    why: 'bytes >= 0x80 in the request-target are refused (RFC 3986 allows none; llhttp lets them through)',
  },
  {
    match: (_n, w) => {
      const m = /^([^ ]*) /.exec(w);
      return m !== null && m[1] !== undefined && !http.METHODS.includes(m[1]) && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m[1]);
    },
    why: 'any token is a method (RFC 9110 §9.1); llhttp knows a fixed list of methods and refuses others',
  },
  {
    match: (_n, w) => /\r\nContent-Length:[^\r]*\r\n/i.test(w) && /\r\ncontent-length: *0*[0-9]{16,}/i.test(w),
    why: 'Content-Length beyond 15 digits is refused (above Number.MAX_SAFE_INTEGER); llhttp accepts up to 2^64',
  },
];

function deliberate(name: string, wire: string): string | undefined {
  for (const d of DIFFERENCES) if (d.match(name, wire)) return d.why;
  return undefined;
}

describe('HTTP/1.1 request parser vs llhttp', () => {
  let server: http.Server;
  let port: number;
  const results = new Map<number, Verdict>();

  before(async () => {
    server = http.createServer({ insecureHTTPParser: false, joinDuplicateHeaders: false, requireHostHeader: false, maxHeaderSize: 64 * 1024 });
    server.maxHeadersCount = 0;
    (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    const verdictOf = (socket: net.Socket): Verdict => {
      const key = socket.remotePort as number; // the client's local port
      let v = results.get(key);
      if (v === undefined) {
        v = { ok: true, requests: [], why: '' };
        results.set(key, v);
      }
      return v;
    };
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const v = verdictOf(req.socket);
      const refused = oldEngineRefuses(req);
      if (refused !== undefined) {
        v.ok = false;
        v.why = refused;
        req.socket.destroy();
        return;
      }
      const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.rawHeaders, body: '', trailers: [] };
      v.requests.push(seen);
      req.setEncoding('latin1');
      req.on('data', (d: string) => { seen.body += d; });
      req.on('end', () => {
        seen.trailers = req.rawTrailers;
        res.end();
      });
      req.on('error', () => {});
    };
    server.on('request', onRequest);
    server.on('checkContinue', onRequest);
    server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => {
      const v = verdictOf(socket);
      v.ok = false;
      v.why = err.code ?? err.message;
      socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /**
   * Send `wire` to llhttp, then FIN: the server (half-open allowed, as the old engine ran it) answers every request
   * and closes, or closes on the first error (an EOF inside a message is one). Its verdict is final at the close.
   */
  async function llhttp(wire: string): Promise<Verdict> {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    await once(s, 'connect');
    const key = s.localPort as number;
    const closed = once(s, 'close');
    s.resume();
    s.end(Buffer.from(wire, 'latin1'));
    const timer = setTimeout(() => s.destroy(), 5_000);
    await closed;
    clearTimeout(timer);
    const v = results.get(key) ?? { ok: true, requests: [], why: '' };
    results.delete(key);
    return v;
  }

  function corpus(): [string, string][] {
    const out: [string, string][] = Object.entries(HAND);
    for (let i = 0; i < 60; i++) {
      const g = new Gen(4242 + i);
      out.push([`generated ${4242 + i}`, genMessage(g).wire]);
    }
    for (let i = 0; i < 200; i++) {
      const g = new Gen(9000 + i);
      const m = genMessage(g).wire;
      let head = mutate(g, m.slice(0, m.indexOf('\r\n\r\n')));
      if (head.includes('\r\n\r\n')) head = head.slice(0, head.indexOf('\r\n\r\n'));
      while (head.endsWith('\r\n')) head = head.slice(0, -2);
      head = head.replace(/^(\r\n)+/, '');
      if (head.endsWith('\r')) head += 'x';
      out.push([`mutated ${9000 + i}`, `${head}\r\n\r\n`]);
    }
    return out;
  }

  test('accept / refuse and the parsed fields agree with llhttp on the corpus, except the documented differences', async () => {
    let agreed = 0;
    const differencesSeen = new Set<string>();
    for (const [name, wire] of corpus()) {
      const theirs = await llhttp(wire);
      const ours = parseAll(wire, 0, 64 * 1024);
      // Ours "accepts" when every message it started completed without an error.
      const oursOk = ours.error === undefined && ours.messages.every((m) => m.complete) && ours.leftover === 0;
      const why = deliberate(name, wire);
      if (oursOk !== theirs.ok) {
        assert.ok(why !== undefined, `${name}: ours ${oursOk ? 'accepts' : `refuses (${ours.error?.message ?? 'incomplete'})`}, llhttp ${theirs.ok ? 'accepts' : `refuses (${theirs.why})`}: ${JSON.stringify(wire)}`);
        differencesSeen.add(why);
        continue;
      }
      if (!oursOk) {
        agreed++;
        continue;
      }
      assert.equal(ours.messages.length, theirs.requests.length, `${name}: message count ${JSON.stringify(wire)}`);
      ours.messages.forEach((m, i) => {
        const t = theirs.requests[i] as Seen;
        assert.equal(m.head.method, t.method, `${name}: method`);
        assert.equal(m.head.target, t.url, `${name}: target`);
        assert.deepEqual(m.head.headers, t.headers, `${name}: headers ${JSON.stringify(wire)}`);
        assert.equal(m.body, t.body, `${name}: body`);
        assert.deepEqual(m.trailers, t.trailers, `${name}: trailers`);
      });
      agreed++;
    }
    assert.ok(agreed > 200, `agreed on ${agreed} messages`);
    // The documented differences that the hand-written corpus exercises do show up.
    assert.ok(differencesSeen.size >= 1, 'the corpus exercises the documented differences');
  });
});
