/**
 * Ctrl-C stops cleanly (by default: finish the current round and write valid files); a second Ctrl-C
 * exits at once.
 */
export function stopOnSigint(
  onStop: () => void = () => console.error('\ninterrupted: finishing the current round and writing results (Ctrl-C again to quit now)'),
): { requested: () => boolean; dispose: () => void } {
  let requested = false;
  const handler = (): void => {
    if (requested) process.exit(130);
    requested = true;
    onStop();
  };
  process.on('SIGINT', handler);
  return { requested: () => requested, dispose: () => process.off('SIGINT', handler) };
}
