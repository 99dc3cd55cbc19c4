// The control plane's API from the page: JSON requests with the bearer token, Server-Sent Events read with fetch
// (EventSource cannot send the token), a stream kept open with backoff, and a poll that runs only while its view is
// mounted (for the metrics-like reads that have no change stream).
import { useEffect, useState } from 'preact/hooks';

export const POLL_MS = 5_000;

export class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.message === 'string' ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(token, method, path, body, signal) {
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    signal,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json;
  try { json = text === '' ? undefined : JSON.parse(text); } catch { json = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** Read a Server-Sent Events stream until it ends; onEvent(name, data) per event. */
export async function streamEvents(path, token, onEvent, signal) {
  const res = await fetch(path, { cache: 'no-store', signal, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  if (!res.ok || res.body === null) {
    let body;
    try { body = await res.json(); } catch { body = undefined; }
    throw new ApiError(res.status, body);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n/g, '\n');
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
    }
  }
}

export const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/** Keep a stream open: connect(signal) runs until the stream ends or fails; then back off and reconnect. */
export function useStream(connect, onStatus, onFatal, deps) {
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      let delay = 500;
      while (!ctl.signal.aborted) {
        try {
          await connect(ctl.signal, () => { delay = 500; onStatus('live'); });
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) { onFatal('The control plane no longer accepts this token.'); return; }
        }
        if (ctl.signal.aborted) return;
        onStatus('reconnecting');
        await sleep(delay, ctl.signal);
        delay = Math.min(delay * 2, 10_000);
      }
    })();
    return () => { ctl.abort(); };
  }, deps);
}

/**
 * GET path every POLL_MS while the calling view is mounted (it unmounts when another view is chosen), one request at
 * a time, the next POLL_MS after the previous answer; a new path asks at once. A 401 logs out; other failures keep the
 * last data and set error. Returns {data, path (of data), error, updated}.
 */
export function usePoll(token, path, onLogout, what) {
  const [state, setState] = useState({ data: undefined, path: undefined, error: undefined, updated: undefined });
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      while (!ctl.signal.aborted) {
        try {
          const data = await api(token, 'GET', path, undefined, ctl.signal);
          if (ctl.signal.aborted) return;
          setState({ data, path, error: undefined, updated: new Date() });
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) { onLogout('The control plane no longer accepts this token.'); return; }
          const why = err instanceof ApiError && err.status === 404 ? 'this control plane does not serve it (404)' : err.message;
          setState((s) => ({ ...s, error: { status: err.status, text: `Cannot read ${what}: ${why}. Retrying every ${POLL_MS / 1000} s.` } }));
        }
        await sleep(POLL_MS, ctl.signal);
      }
    })();
    return () => { ctl.abort(); };
  }, [token, path]);
  return state;
}
