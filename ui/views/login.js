// Login with a token of the control plane (GET /api/v1/whoami tells its scope; a sidecar token is refused).
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { ApiError, api } from '../lib/api.js';

export function Login({ onLogin, message }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(message ?? '');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const who = await api(token.trim(), 'GET', '/api/v1/whoami');
      if (who.scope === 'sidecar') setError('This is a sidecar token: it cannot read the mesh. Use a read or write token.');
      else onLogin(token.trim(), who.scope);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'The control plane does not accept this token.' : `Cannot log in: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="login" onSubmit=${submit} aria-labelledby="login-title">
    <h2 id="login-title">remora control plane</h2>
    <label for="token">Token</label>
    <input id="token" name="token" type="password" autocomplete="off" required value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
    <button class="primary" type="submit" disabled=${busy}>Log in</button>
    <p class="muted">A read token sees everything and changes nothing; a write token can shift traffic. The token is kept in this tab only (sessionStorage).</p>
    ${error !== '' && html`<p class="banner error" role="alert" id="login-error">${error}</p>`}
  </form>`;
}
