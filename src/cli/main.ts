/** The entry point of the `sparse-proxskip` command (bin/sparse-proxskip.js runs its build). */
import { main } from './program.js';

// A closed pipe (`sparse-proxskip algorithms | head`) is the reader being done, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

process.exitCode = await main(process.argv);
