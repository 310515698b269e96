/**
 * Networked training on loopback at full scale: FEMNIST multinomial logistic regression with all 306
 * writers as clients (hosted by W pool processes), sparse-proxskip, 20 rounds; against the simulator with
 * W worker threads on the same machine. Reports the round latency, the bytes per round (payload, as the
 * ledger counts them, and gRPC messages as sent) and the network's overhead on the round time; checks
 * that both runs wrote the same rounds (all fields but `seconds`).
 * Needs the FEMNIST files (../shared/data/femnist beside the repository, or SPARSE_PROXSKIP_DATA).
 * Standalone: npx tsx bench/net.ts
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_DEFAULTS } from '../src/net/config.js';
import { FederationServer, type NetRecord } from '../src/net/server.js';
import { spawnCli } from '../src/net/testing.js';
import { resolveConfig, type RunConfig } from '../src/sim/config.js';
import { prepareRun, runToDir } from '../src/sim/run.js';
import type { RoundRecord } from '../src/sim/simulate.js';
import type { BenchResult } from './types.js';
import { isMain, median, printResults } from './util.js';

// SPARSE_PROXSKIP_BENCH_ROUNDS: fewer rounds for a quick check
const ROUNDS = Number(process.env.SPARSE_PROXSKIP_BENCH_ROUNDS ?? 20);
const CLIENTS = 306;

function dataDir(): string {
  const dir = process.env.SPARSE_PROXSKIP_DATA ?? fileURLToPath(new URL('../../shared/data', import.meta.url));
  if (!existsSync(join(dir, 'femnist'))) throw new Error(`FEMNIST not found in ${dir} (set SPARSE_PROXSKIP_DATA to the data directory)`);
  return dir;
}

/** Seconds per round: differences of the cumulative `seconds` of rounds.jsonl (training, averaging, evaluation). */
function roundSeconds(records: RoundRecord[]): number[] {
  return records.slice(1).map((r, i) => r.seconds! - records[i]!.seconds!);
}

/** CPU seconds (user + system, all threads) of this process. */
function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds of another process so far, from /proc (Linux; clock ticks of 1/100 s). */
function processCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The first field (but seconds) in which two runs' records differ, or null. */
function firstDifference(a: RoundRecord[], b: RoundRecord[]): string | null {
  if (a.length !== b.length) return `${a.length} against ${b.length} records`;
  for (let i = 0; i < a.length; i++) {
    for (const k of Object.keys(a[i]!) as (keyof RoundRecord)[]) {
      if (k !== 'seconds' && a[i]![k] !== b[i]![k]) return `round ${i} ${k}: ${a[i]![k]} against ${b[i]![k]}`;
    }
  }
  return null;
}

export async function run(): Promise<BenchResult[]> {
  const workers = Math.max(1, Math.min(8, availableParallelism()));
  const config: RunConfig = resolveConfig({ algorithm: 'sparse-proxskip', dataset: 'femnist', dataDir: dataDir(), rounds: ROUNDS, workers, timing: true });
  const prepared = await prepareRun(config);
  if (prepared.dataset.clients.length !== CLIENTS) throw new Error(`expected ${CLIENTS} FEMNIST writers, got ${prepared.dataset.clients.length}`);
  const dir = mkdtempSync(join(tmpdir(), 'spx-bench-net-'));
  const running = new Set<ChildProcess>();
  try {
    // CPU seconds from the record of round 0 to the last: a figure that other jobs on the machine hardly move
    const simCpu = [0, 0];
    const sim = await runToDir(prepared, join(dir, 'sim'), {
      onRound: (r) => {
        if (r.round === 0) simCpu[0] = ownCpu();
        if (r.round === ROUNDS) simCpu[1] = ownCpu();
      },
    });
    const simRounds = roundSeconds(sim.result.records);

    // the server here, the clients in `workers` pool processes, each loading the data and keeping its shards
    const server = await FederationServer.start({
      config: { run: config, server: { ...SERVER_DEFAULTS, host: '127.0.0.1', port: 0, out: join(dir, 'net'), roundTimeout: 600 } },
      prepared,
      log: () => {},
      onRound: (r) => {
        const cpu = ownCpu() + pools.reduce((t, p) => t + processCpu(p.child.pid!), 0);
        if (r.round === 0) netCpu[0] = cpu;
        if (r.round === ROUNDS) netCpu[1] = cpu;
      },
    });
    const netCpu = [0, 0];
    // client i in pool i mod W, as the simulator gives client i to worker i mod W (writers differ in size)
    const pools = Array.from({ length: workers }, (_, k) => {
      const ids = Array.from({ length: CLIENTS }, (_, i) => i).filter((i) => i % workers === k).join(',');
      return spawnCli(['client', '--server', `127.0.0.1:${server.port}`, '--client-ids', ids, '--data', 'femnist'], dir, running);
    });
    const net = await server.done;
    const codes = await Promise.all(pools.map((p) => p.exit));
    if (codes.some((c) => c !== 0)) throw new Error(`a client pool failed: ${pools.map((p) => p.output()).join('\n')}`);
    const netRounds = roundSeconds(net.records);
    const diff = firstDifference(net.records, sim.result.records);
    const same = diff === null;
    const last = net.records.at(-1)!;
    const netLog: NetRecord[] = net.net;
    const simRound = median(simRounds);
    const netRound = median(netRounds);
    const overhead = (netRound - simRound) / simRound;
    const cpuOverhead = (netCpu[1]! - netCpu[0]!) / (simCpu[1]! - simCpu[0]!) - 1;
    const note = `${CLIENTS} clients in ${workers} pool processes against ${workers} simulator workers; median of ${ROUNDS} rounds; rounds.jsonl ${same ? "identical to the simulator's (but for seconds)" : `DIFFERENT from the simulator's: ${diff}`}`;
    return [
      {
        name: `FEMNIST round latency over gRPC loopback (${CLIENTS} clients, sparse-proxskip)`,
        value: netRound,
        unit: 's',
        reference: { name: `simulator, ${workers} workers`, value: simRound, unit: 's' },
        target: 'overhead <= 25% of the simulator round',
        pass: overhead <= 0.25 && same,
        note,
      },
      { name: 'network overhead on the round time', value: 100 * overhead, unit: '%', target: '<= 25%', pass: overhead <= 0.25 },
      {
        name: 'network overhead in CPU time (server + client processes against the simulator)',
        value: 100 * cpuOverhead,
        unit: '%',
        reference: { name: 'simulator CPU per round', value: (simCpu[1]! - simCpu[0]!) / ROUNDS, unit: 's' },
        note: `networked: ${((netCpu[1]! - netCpu[0]!) / ROUNDS).toFixed(2)} CPU s per round; rounds 1-${ROUNDS}, all threads of all processes`,
      },
      { name: 'payload bytes per round, up (ledger)', value: last.uplinkBytes / ROUNDS / 1e6, unit: 'MB' },
      { name: 'payload bytes per round, down (ledger)', value: last.downlinkBytes / ROUNDS / 1e6, unit: 'MB' },
      {
        name: 'gRPC message bytes per round, up + down',
        value: median(netLog.map((r) => r.wireUpBytes + r.wireDownBytes)) / 1e6,
        unit: 'MB',
        note: 'protobuf + 5-byte gRPC prefix; the downlink goes to every client, the ledger counts participants only (all 306 here)',
      },
      { name: 'time to collect the 306 updates (median)', value: median(netLog.map((r) => r.trainSeconds)), unit: 's' },
    ];
  } finally {
    for (const c of running) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) printResults(await run());
