import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadServeConfig, parseHttpAddress, SERVER_DEFAULTS, type ServerOptions } from '../../net/config.js';
import { DASHBOARD_TOKEN_ENV } from '../../net/dashboard.js';
import { FederationServer } from '../../net/server.js';
import { formatNumber } from '../../report/table.js';
import { stopOnSigint } from '../signals.js';

const positive = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
  return x;
};
const integer = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!Number.isSafeInteger(x) || x < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
  return x;
};

const httpAddress = (v: string): string => {
  try {
    parseHttpAddress(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^http: /, '--http: '));
  }
  return v;
};

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the server of a networked run: clients (`sparse-proxskip client`) join over gRPC; writes OUT/rounds.jsonl, net.jsonl, summary.json')
    .requiredOption('--config <file>', 'JSON file: the options of `run` (algorithm, dataset, rounds, ...) and the server options (see docs/network.md)')
    .option('--resume', 'continue from the checkpoint of an interrupted run')
    .option('--host <host>', 'address to listen on (default: 0.0.0.0)')
    .option('--port <port>', 'port to listen on, 0 = any free port (default: 50051)', integer('--port'))
    .option('--port-file <file>', 'write the bound port into this file')
    .option('--out <dir>', 'output directory (default: runs/net-ALGORITHM beside the config)')
    .option('--checkpoint-dir <dir>', 'where the per-round checkpoint goes (default: the output directory)')
    .option('--round-timeout <s>', 'seconds to wait for the clients in each round (default: 300)', positive('--round-timeout'))
    .option('--allow-partial', 'on a round timeout, go on with the clients that answered (default: abort the run)')
    .option('--max-message-bytes <n>', 'largest accepted update payload (default: 67108864)', integer('--max-message-bytes'))
    .option('--max-connections <n>', `most connections open at once (default: ${SERVER_DEFAULTS.maxConnections})`, integer('--max-connections'))
    .option('--idle-timeout <s>', `close a connection that carries no accepted client for this long (default: ${SERVER_DEFAULTS.idleTimeout})`, positive('--idle-timeout'))
    .option('--keepalive-time <s>', `seconds between keepalive pings to each client (default: ${SERVER_DEFAULTS.keepaliveTime})`, positive('--keepalive-time'))
    .option('--keepalive-timeout <s>', `a client that leaves a ping unanswered this long is dropped (default: ${SERVER_DEFAULTS.keepaliveTimeout})`, positive('--keepalive-timeout'))
    .option('--http <[host:]port>', 'serve the live dashboard there (host default 127.0.0.1; port 0 = any free port); elsewhere than loopback it needs tls and a dashboard token', httpAddress)
    .option('--http-token-file <file>', `file whose first line is the dashboard token (or set ${DASHBOARD_TOKEN_ENV})`)
    .action(async (o: Record<string, unknown>) => {
      const overrides: Partial<ServerOptions> = {
        host: o.host as string | undefined,
        port: o.port as number | undefined,
        portFile: o.portFile as string | undefined,
        out: o.out as string | undefined,
        checkpointDir: o.checkpointDir as string | undefined,
        roundTimeout: o.roundTimeout as number | undefined,
        allowPartial: o.allowPartial as boolean | undefined,
        maxMessageBytes: o.maxMessageBytes as number | undefined,
        maxConnections: o.maxConnections as number | undefined,
        idleTimeout: o.idleTimeout as number | undefined,
        keepaliveTime: o.keepaliveTime as number | undefined,
        keepaliveTimeout: o.keepaliveTimeout as number | undefined,
        http: o.http as string | undefined,
        httpTokenFile: o.httpTokenFile as string | undefined,
      };
      // command-line paths are relative to the working directory, not to the config file
      for (const k of ['portFile', 'out', 'checkpointDir', 'httpTokenFile'] as const) if (overrides[k]) overrides[k] = resolve(overrides[k]!);
      const config = loadServeConfig(String(o.config), overrides);
      const server = await FederationServer.start({
        config,
        resume: o.resume === true,
        onRound: (r) => {
          const loss = r.trainLoss === null ? '' : `, train loss ${formatNumber(r.trainLoss)}`;
          console.error(`[serve] round ${r.round}/${config.run.rounds}${loss}, nnz ${r.nnz}, uplink ${formatNumber(r.uplinkBytes / 1e6)} MB`);
        },
      });
      console.log(`listening on ${config.server.host}:${server.port}`);
      if (server.dashboardUrl) console.log(`dashboard: ${server.dashboardUrl}`);
      const stop = stopOnSigint(() => server.stop('interrupted; `sparse-proxskip serve --resume` continues from the last checkpoint'));
      try {
        const res = await server.done;
        const f = res.records.filter((r) => r.trainLoss !== null).at(-1);
        console.log(`${config.run.algorithm}: ${res.records.length - 1} rounds over the network, train loss ${formatNumber(f?.trainLoss ?? NaN)} -> ${res.out}`);
      } finally {
        stop.dispose();
      }
    });
}
