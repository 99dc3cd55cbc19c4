// Clients of the drain netns tests, run inside pods: `node dist/test/netns/lifecycle-tools.js <tool> ...`. They print
// "ready" after their first answer and one JSON line with their result at the end; every run is bounded in time.
import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';

const [tool = '', ...args] = process.argv.slice(2);
const arg = (i: number, name: string): string => {
  const v = args[i];
  if (v === undefined) throw new Error(`${tool}: missing ${name}`);
  return v;
};
const bump = (m: Record<string, number>, k: string): void => { m[k] = (m[k] ?? 0) + 1; };

switch (tool) {
  // drain-client h1|h2 URL PAUSE_MIN_MS PAUSE_MAX_MS [AFTER_MS [MIN_AFTER]]: one request at a time on a keep-alive
  // connection (an HTTP/1.1 agent with one socket, or one h2c session), PAUSE ms apart (random in [MIN, MAX]; 0 0 =
  // back to back). SIGUSR2 says "the proxy got SIGTERM now": the client goes on for AFTER_MS (default 2500) and until
  // it has sent MIN_AFTER requests after the signal (default 1; at most 6 s in all: a count, not the machine's speed,
  // decides how many requests meet the drain), then stops, waits for the request in flight and prints its result.
  // A well-behaved client:
  //   - HTTP/1.1: a connection answered with Connection: close is not reused (Node's agent); a request that failed on
  //     a reused connection before any byte of its answer is sent again once (RFC 9112 §9.3.1), counted in retries;
  //   - HTTP/2: after GOAWAY the next request opens a new session; a stream the server did not process
  //     (REFUSED_STREAM, above GOAWAY's last stream id) is sent again (RFC 9113 §8.7), counted in retries.
  // Anything else is a failure. SIGTERM stops at once (reporting what it has).
  case 'drain-client': {
    const proto = arg(0, 'h1|h2');
    const url = new URL(arg(1, 'URL'));
    const min = Number(arg(2, 'PAUSE_MIN_MS'));
    const max = Number(arg(3, 'PAUSE_MAX_MS'));
    const afterMs = Number(args[4] ?? '2500');
    const minAfter = Number(args[5] ?? '1');
    const capMs = 6_000;
    let timeUp = false;
    let sent = 0;
    let ok = 0;
    let retries = 0;
    let connections = 0;
    let goaways = 0;
    const failures: Record<string, number> = {};
    /** Why requests were sent again (each a request the server never processed). */
    const retryReasons: Record<string, number> = {};
    // after: requests sent after the signal; spanning: sent before it and answered after it (in flight across it).
    const after = { sent: 0, ok: 0, closeAnswers: 0, spanning: 0 };
    /** The request in flight was sent before the signal. */
    let sentBeforeDrain = false;
    let drainAt: number | undefined;
    let stopping = false;
    let inflight = false;
    let readyShown = false;
    let reported = false;
    const report = (): void => {
      if (reported) return;
      reported = true;
      process.stdout.write(`${JSON.stringify({ proto, sent, ok, failures, retries, retryReasons, connections, goaways, after })}\n`);
      process.exit(0);
    };
    const maybeEnd = (): void => { if (stopping && !inflight) report(); };
    /** After the signal: stop once AFTER_MS passed and MIN_AFTER requests were sent since (or at the cap). */
    const checkStop = (): void => {
      if (timeUp && after.sent >= minAfter) stopping = true;
    };
    setTimeout(() => { bump(failures, 'deadline'); report(); }, 120_000).unref();
    process.on('SIGUSR2', () => {
      drainAt ??= Date.now();
      setTimeout(() => { timeUp = true; checkStop(); maybeEnd(); }, afterMs);
      setTimeout(() => { stopping = true; maybeEnd(); }, capMs);
    });
    process.on('SIGTERM', () => { stopping = true; maybeEnd(); setTimeout(report, 5_000).unref(); });
    const pause = (): number => min + Math.random() * (max - min);
    const answered = (closeAnswer: boolean): void => {
      ok++;
      if (drainAt !== undefined) {
        if (sentBeforeDrain) after.spanning++;
        else after.ok++;
        if (closeAnswer) after.closeAnswers++;
      }
      if (!readyShown) { readyShown = true; process.stdout.write('ready\n'); }
    };
    const next = (): void => {
      inflight = false;
      checkStop();
      if (stopping) { maybeEnd(); return; }
      setTimeout(one, pause());
    };
    /** Send one request (attempt 0: the first; retries count up). Set below per protocol. */
    let send: (attempt: number) => void;
    const one = (): void => {
      inflight = true;
      sent++;
      sentBeforeDrain = drainAt === undefined;
      if (!sentBeforeDrain) after.sent++;
      send(0);
    };

    if (proto === 'h1') {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen = new WeakSet<Socket>();
      send = (attempt: number): void => {
        const req = http.get(url, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => { body += d; });
          res.on('end', () => {
            if (res.statusCode !== 200 || body === '') bump(failures, `status-${res.statusCode ?? 0}`);
            else answered(res.headers.connection === 'close');
            next();
          });
          res.on('error', (err: NodeJS.ErrnoException) => { bump(failures, `response-${err.code ?? err.message}`); next(); });
        });
        req.on('socket', (s: Socket) => {
          if (seen.has(s)) return;
          seen.add(s);
          connections++;
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          if (req.reusedSocket && attempt === 0 && (err.code === 'ECONNRESET' || err.message === 'socket hang up')) {
            retries++;
            bump(retryReasons, `reused-socket-${err.code ?? err.message}`);
            send(1);
            return;
          }
          bump(failures, err.code ?? err.message);
          next();
        });
        req.setTimeout(15_000, () => { req.destroy(new Error('timeout')); });
      };
    } else {
      let session: http2.ClientHttp2Session | undefined;
      const fresh = (): http2.ClientHttp2Session => {
        const s = http2.connect(url.origin);
        connections++;
        s.on('error', () => undefined);
        s.on('goaway', () => {
          goaways++;
          if (session === s) session = undefined;
        });
        s.on('close', () => { if (session === s) session = undefined; });
        session = s;
        return s;
      };
      send = (attempt: number): void => {
        const retry = (why: string): void => {
          if (attempt >= 3) {
            bump(failures, why);
            next();
            return;
          }
          retries++;
          bump(retryReasons, why);
          send(attempt + 1);
        };
        let st: http2.ClientHttp2Stream;
        try {
          const s = session !== undefined && !session.closed && !session.destroyed ? session : fresh();
          st = s.request({ ':path': url.pathname });
        } catch (err) {
          // The session went away between our check and the request (GOAWAY): not sent, so send it on a new one.
          session = undefined;
          retry(`request-${(err as NodeJS.ErrnoException).code ?? 'error'}`);
          return;
        }
        let status = 0;
        let body = '';
        let settled = false;
        st.on('response', (h) => { status = Number(h[':status']); });
        st.setEncoding('utf8').on('data', (d: string) => { body += d; });
        st.on('end', () => {
          if (settled) return;
          settled = true;
          if (status !== 200 || body === '') bump(failures, `status-${status}`);
          else answered(false);
          next();
        });
        st.on('error', () => undefined);
        st.on('close', () => {
          if (settled) return;
          settled = true;
          if (status === 0 && st.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) retry('refused-stream');
          else {
            bump(failures, `stream-closed-${st.rstCode ?? 'x'}-status-${status}`);
            next();
          }
        });
        st.setTimeout(15_000, () => { st.close(http2.constants.NGHTTP2_CANCEL); });
        st.end();
      };
    }
    one();
    break;
  }
  default:
    process.stderr.write(`lifecycle-tools: unknown tool "${tool}"\n`);
    process.exit(2);
}
