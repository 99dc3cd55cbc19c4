// The synchronisation of in-process tests: poll a synchronous condition until it holds, bounded in time.

/** Poll `cond` every `intervalMs` until it holds; throws (naming `what`) after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
