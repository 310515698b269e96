/**
 * `sparse-proxskip view PATH...`: the web dashboard over run directories, `compare` outputs and
 * experiments below the PATHs, live while they are being written. Runs until Ctrl-C.
 */
import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { DirectorySource } from '../../web/directory-source.js';
import { DEFAULT_PORT, isLoopback, startDashboard } from '../../web/server.js';

/** The environment variable that may hold the dashboard token instead of --token-file. */
export const TOKEN_ENV = 'SPARSE_PROXSKIP_DASHBOARD_TOKEN';

const port = (v: string): number => {
  const x = Number(v);
  if (!Number.isSafeInteger(x) || x < 0 || x > 65535) throw new InvalidArgumentError(`--port must be an integer in [0, 65535], got '${v}'`);
  return x;
};

export function registerView(program: Command): void {
  program
    .command('view')
    .description('serve a dashboard of the runs and experiments below PATH... (live while they are written); prints its address first')
    .argument('<paths...>', 'run directories, compare outputs, experiment outputs (e.g. docs/results/femnist), or folders holding them')
    .option('--host <host>', 'address to listen on; anything but loopback needs --tls-cert, --tls-key and a token', '127.0.0.1')
    .option('--port <port>', `port, 0 = any free port (default: ${DEFAULT_PORT})`, port)
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (e.g. certs/server.pem from `sparse-proxskip certs`)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--token-file <file>', `file whose first line is the dashboard token (or set ${TOKEN_ENV}); open the address with ?token=TOKEN once`)
    .action(async (paths: string[], o: { host: string; port?: number; tlsCert?: string; tlsKey?: string; tokenFile?: string }) => {
      for (const p of paths) if (!existsSync(p)) throw new UsageError(`view: ${p}: no such file or directory`);
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new UsageError('view: --tls-cert and --tls-key go together');
      const tls = o.tlsCert !== undefined ? { cert: readText(o.tlsCert, '--tls-cert'), key: readText(o.tlsKey!, '--tls-key') } : undefined;
      const token = o.tokenFile !== undefined ? readText(o.tokenFile, '--token-file').split('\n')[0]!.trim() : process.env[TOKEN_ENV];
      if (token !== undefined && token.length < 16) throw new UsageError('view: the dashboard token must have at least 16 characters');
      if (!isLoopback(o.host) && (!tls || token === undefined)) {
        throw new UsageError(`view: --host ${o.host} is not loopback: it needs --tls-cert, --tls-key and a token (--token-file or ${TOKEN_ENV})`);
      }
      const source = new DirectorySource(paths);
      let server;
      try {
        server = await startDashboard({ source, host: o.host, ...(o.port !== undefined && { port: o.port }), ...(tls && { tls }), ...(token !== undefined && { token }) });
      } catch (e) {
        source.close();
        throw e;
      }
      console.log(`view: ${server.url}`);
      const { groups, runs } = source.state();
      console.error(`${runs.length} run(s) in ${groups.filter((g) => g.kind === 'runs').length} group(s), ${groups.filter((g) => g.kind === 'experiment').length} experiment(s); Ctrl-C stops`);
      for (const w of source.warnings) console.error(`warning: ${w}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
      source.close();
    });
}

function readText(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`view: ${option} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}
