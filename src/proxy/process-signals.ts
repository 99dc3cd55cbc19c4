// The pod's signals as a proxy process (single, or the primary of workers) takes them: SIGTERM and SIGINT stop
// (drain), SIGHUP reloads.

/** Install the handlers; returns the function that removes them. */
export function installProcessSignals(onStop: (signal: NodeJS.Signals) => void, onHangup: () => void): () => void {
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHangup);
  return () => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHangup);
  };
}
