import { readRegularFile } from '../../data/files.js';
import { LIMIT_KEYS } from '../../data/limits.js';
import { SMALL_FILE_BYTES } from '../../net/security.js';
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { parseClientIds, runClients } from '../../net/client.js';
import { SERVER_DEFAULTS } from '../../net/config.js';
import { readTokens } from '../../net/security.js';

const positive = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
  return x;
};

export function registerClient(program: Command): void {
  program
    .command('client')
    .description('run one client (or a pool of client ids) of a networked run against `sparse-proxskip serve`')
    .requiredOption('--server <host:port>', 'address of the server: HOST:PORT (gRPC), or ws://HOST:PORT, wss://HOST:PORT (WebSocket, on the port of `serve --http`)')
    .option('--client-id <id>', 'this client\'s id (0 .. clients-1)')
    .option('--client-ids <list>', 'host a pool of ids in this process, e.g. 0-99 or 0-9,20')
    .option('--data <spec>', 'the dataset, as `run --dataset` (each id keeps its own shard; default: the server\'s dataset)')
    .option('--data-dir <dir>', 'where this machine keeps blogfeedback/, femnist/, cifar10/ (default: the server\'s dataDir)')
    .option('--own-data <file>', 'a file holding all of this client\'s data, plain or gzip: LIBSVM, CSV rows of the features and the target last (.csv), or a CIFAR-10 batch (.bin) for an image network (labels -1/+1, 0..C-1 or real, as the model)')
    .option('--state-dir <dir>', 'keep h_i and the update in flight here, so a restarted client resumes')
    .option('--ca <file>', 'use TLS, trusting the server certificate signed by this CA (PEM)')
    .option('--cert <file>', 'client certificate (PEM), for servers that require mutual TLS')
    .option('--key <file>', 'client private key (PEM)')
    .option('--token-file <file>', 'file holding the secret token of --client-id (or set SPARSE_PROXSKIP_TOKEN)')
    .option('--token <token>', 'the token itself (visible to other users in `ps`: prefer --token-file or SPARSE_PROXSKIP_TOKEN)')
    .option('--tokens <file>', 'tokens file {"ID": "TOKEN", ...} (for pools)')
    .option('--max-line-bytes <n>', 'longest line of a text data file this client reads (default: the server config\'s)', positive('--max-line-bytes'))
    .option('--max-dimension <n>', 'largest LIBSVM feature index (default: the server config\'s)', positive('--max-dimension'))
    .option('--max-decompressed-mb <mb>', 'most content of one data file after gunzip (default: the server config\'s)', positive('--max-decompressed-mb'))
    .option('--max-message-bytes <n>', `largest message accepted from the server (default: ${SERVER_DEFAULTS.maxMessageBytes})`, positive('--max-message-bytes'))
    .option('--connect-timeout <s>', 'seconds to keep retrying while the server cannot be reached (default: 600)', positive('--connect-timeout'))
    .option('--keepalive-time <s>', `seconds between keepalive pings to the server (default: ${SERVER_DEFAULTS.keepaliveTime})`, positive('--keepalive-time'))
    .option('--keepalive-timeout <s>', `a server that leaves a ping unanswered this long counts as gone (default: ${SERVER_DEFAULTS.keepaliveTimeout})`, positive('--keepalive-timeout'))
    .action(async (o: Record<string, unknown>) => {
      if (!/^(wss?:\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s:\[\]/]+):\d{1,5}\/?$/.test(String(o.server))) {
        throw new UsageError(`--server must be HOST:PORT (gRPC, e.g. 10.0.0.5:50051 or [::1]:50051) or ws://HOST:PORT, wss://HOST:PORT (WebSocket, the dashboard's port), got '${o.server}'`);
      }
      if ((o.clientId === undefined) === (o.clientIds === undefined)) throw new UsageError('give exactly one of --client-id and --client-ids');
      const ids = parseClientIds(String(o.clientId ?? o.clientIds));
      if (o.clientId !== undefined && ids.length !== 1) throw new UsageError(`--client-id takes one id, got '${o.clientId}' (use --client-ids for a pool)`);
      if (o.data && o.ownData) throw new UsageError('give --data (a shard of a shared dataset) or --own-data (this client\'s file), not both');
      if (o.ownData && ids.length !== 1) throw new UsageError('--own-data is the data of one client: give one --client-id');
      if ((o.cert || o.key) && !o.ca) throw new UsageError('--cert/--key need --ca (client certificates go with TLS)');
      const tokens = clientTokens(o, ids);
      if (o.ca) readRegularFile(String(o.ca), SMALL_FILE_BYTES, 'a PEM file is a few KB'); // fail early on a wrong path
      if (tokens && !o.ca) console.error('[client] warning: tokens without TLS (--ca): they cross the network in plain text, where anyone on the path can read and reuse them');
      await runClients({
        server: String(o.server),
        ids,
        data: (o.data as string | undefined) ?? null,
        dataDir: (o.dataDir as string | undefined) ?? null,
        ownData: (o.ownData as string | undefined) ?? null,
        limits: Object.fromEntries(LIMIT_KEYS.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])),
        stateDir: (o.stateDir as string | undefined) ?? null,
        tls: o.ca ? { ca: String(o.ca), cert: (o.cert as string | undefined) ?? null, key: (o.key as string | undefined) ?? null } : null,
        tokens,
        maxMessageBytes: (o.maxMessageBytes as number | undefined) ?? SERVER_DEFAULTS.maxMessageBytes,
        connectTimeout: (o.connectTimeout as number | undefined) ?? 600,
        keepalive: {
          keepaliveTime: (o.keepaliveTime as number | undefined) ?? SERVER_DEFAULTS.keepaliveTime,
          keepaliveTimeout: (o.keepaliveTimeout as number | undefined) ?? SERVER_DEFAULTS.keepaliveTimeout,
        },
      });
    });
}

/** The tokens of `ids`: from --tokens FILE, or for one id from --token-file, SPARSE_PROXSKIP_TOKEN or --token; null without any. */
function clientTokens(o: Record<string, unknown>, ids: number[]): Map<number, string> | null {
  const given = ['tokens', 'tokenFile', 'token'].filter((k) => o[k] !== undefined);
  if (given.length > 1) throw new UsageError('give one of --tokens, --token-file and --token');
  if (o.tokens) return readTokens(String(o.tokens));
  let token: string | undefined;
  if (o.tokenFile !== undefined) {
    const path = String(o.tokenFile);
    try {
      // one line; the line break an editor adds is not part of the token
      token = readRegularFile(path, SMALL_FILE_BYTES, 'a token is one line').toString('utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new UsageError(`cannot read --token-file ${path}: ${(e as Error).message}`);
    }
    if (token === '' || /[\r\n]/.test(token)) throw new UsageError(`--token-file ${path} must hold the token on one line`);
  } else token = (o.token as string | undefined) ?? process.env.SPARSE_PROXSKIP_TOKEN;
  if (token === undefined) return null;
  if (ids.length !== 1) throw new UsageError('a single token is for one --client-id; give a pool --tokens FILE');
  return new Map([[ids[0]!, token]]);
}
