/**
 * The browser client's Web Worker: one client id of a networked run, trained here with the project's own
 * session, algorithm, model and encoding code (src/net/session.ts and what it imports; networks on
 * TensorFlow.js with the same wasm backend and kernels as Node, src/models/nn) over the
 * WebSocket transport, on data generated here (synthetic, lsq: the same as a Node client makes from the
 * seed) or read here from a file the user picked (LIBSVM, CSV rows or a CIFAR-10 batch, plain or gzip, by the parsers the file readers use, under the run's data limits). Nothing leaves the tab but the protocol's messages. h_i and the update in flight are kept in
 * IndexedDB (client-store.ts), so a reloaded tab resumes. It reports to the page what it sends and
 * receives; the page asks it to leave.
 */
import { loadGenerated, loadOptionsOf } from '../../data/generated.js';
import { blobBytes } from '../../data/blob-bytes.js';
import { pickLimits } from '../../data/limits.js';
import { ownDataChunks } from '../../data/own-data.js';
import { decode } from '../../core/encoding.js';
import { evalReferenceOf, initNnBackend, isNeuralNet, setNnWasmPaths } from '../../models/index.js';
import { encodeClientMessage, encodeServerMessage } from '../../net/codec.js';
import type { ClientConnection, ClientTransport } from '../../net/messages.js';
import { Pool, runSession } from '../../net/session.js';
import { indexedDbStore } from './client-store.js';
import { webSocketTransport } from '../../net/ws-client.js';
import type { ClientReport, ClientStart } from './client-protocol.js';

// a network's TensorFlow.js wasm backend fetches its binary from the page's server, beside this script
setNnWasmPaths(new URL('./', self.location.href).href);

const scope = self as unknown as { postMessage(m: ClientReport): void; onmessage: ((e: MessageEvent<ClientStart | 'leave'>) => void) | null };
const report = (m: ClientReport): void => scope.postMessage(m);

/** A transport that reports every message: bytes as encoded, the density of updates, the local losses. */
function metered(inner: ClientTransport): ClientTransport {
  let dim = 0;
  return {
    open(id, token): ClientConnection {
      if (left) throw new Error('left the federation');
      const c = inner.open(id, token);
      async function* messages() {
        for await (const m of c.messages) {
          report({ kind: 'received', message: m.msg, bytes: encodeServerMessage(m).length, ...(m.msg === 'broadcast' && { round: m.broadcast.round }) });
          yield m;
        }
      }
      return {
        messages: messages(),
        send(m) {
          if (m.msg === 'ready') dim = m.ready.dim;
          const extra =
            m.msg === 'update'
              ? { round: m.update.round, density: decode(m.update.payload, dim).vector.indices.length / dim }
              : m.msg === 'loss'
                ? { round: m.loss.round, loss: m.loss.loss }
                : {};
          c.send(m);
          report({ kind: 'sent', message: m.msg, bytes: encodeClientMessage(m).length, ...extra });
        },
        close: () => c.close(),
      };
    },
    close: () => inner.close(),
  };
}

let transport: ClientTransport | null = null;
let left = false;

scope.onmessage = (e) => {
  if (e.data !== 'leave') return void start(e.data);
  // the session would reconnect a closed connection: once left, it cannot
  left = true;
  transport?.close();
};

async function start(o: ClientStart): Promise<void> {
  transport = metered(webSocketTransport(o.server, (url) => new WebSocket(url)));
  const pool = new Pool(async (config, modelSpec) => {
    if (isNeuralNet(modelSpec)) report({ kind: 'log', line: `a ${modelSpec.kind} network on ${await initNnBackend()}` });
    if (o.file) {
      const file = o.file;
      const limits = pickLimits(config);
      const shard = await ownDataChunks(modelSpec, file.name, () => blobBytes(file, file.name, limits), limits);
      report({ kind: 'data', dataset: file.name, samples: shard.y.length });
      return { shards: new Map([[o.id, shard]]), evalReference: undefined };
    }
    const loaded = await loadGenerated(o.data ?? config.dataset, loadOptionsOf(config));
    const shard = loaded.dataset.clients[o.id];
    if (!shard) throw new Error(`client id ${o.id} is out of range: the data has ${loaded.dataset.clients.length} clients`);
    report({ kind: 'data', dataset: loaded.dataset.name, samples: shard.y.length });
    return { shards: new Map([[o.id, shard]]), evalReference: evalReferenceOf(modelSpec, loaded.dataset.clients) };
  });
  try {
    const store = await indexedDbStore();
    await runSession(o.id, transport, pool, new Map(), store, { server: o.server, connectTimeout: o.connectTimeout, tokens: o.token ? new Map([[o.id, o.token]]) : null }, (line) => report({ kind: 'log', line }));
    await store.forget();
    report({ kind: 'end', ok: true, message: 'the run is done' });
  } catch (err) {
    report({ kind: 'end', ok: false, message: (err as Error).message });
  } finally {
    transport.close();
  }
}
