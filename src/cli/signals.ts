/** Ctrl-C finishes the current round and writes valid files; a second Ctrl-C exits at once. */
export function stopOnSigint(): { requested: () => boolean; dispose: () => void } {
  let requested = false;
  const handler = (): void => {
    if (requested) process.exit(130);
    requested = true;
    console.error('\ninterrupted: finishing the current round and writing results (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', handler);
  return { requested: () => requested, dispose: () => process.off('SIGINT', handler) };
}
