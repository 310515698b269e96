/**
 * A simulated run's checkpoint: its state after a round (SimState) in one state file, so a run killed
 * after hours (a ResNet18 cell of an experiment) continues from its last checkpoint instead of round 0,
 * with the same records and model as a run that never stopped.
 *
 * Sections: current, average and evaluated model, then the vector of each client that has one; the
 * header holds the configuration it belongs to, the ledger and the records.
 */
import { Ledger } from '../core/ledger.js';
import { DataError } from '../data/errors.js';
import type { RoundRecord, SimState } from './simulate.js';
import { bytesF32, f32bytes, readStateFile, writeStateFile } from './state-file.js';

export const CHECKPOINT_FILE = 'checkpoint.bin';

interface Header {
  version: 1;
  /** the run's configuration, as the caller identifies it */
  config: string;
  round: number;
  seconds: number;
  /** which clients have a vector (their sections follow the three models, in client order) */
  hasVector: boolean[];
  ledger: ReturnType<Ledger['toJSON']>;
  records: RoundRecord[];
}

export function writeCheckpoint(path: string, config: string, state: SimState): void {
  const header: Header = {
    version: 1,
    config,
    round: state.round,
    seconds: state.seconds,
    hasVector: state.h.map((x) => x !== null),
    ledger: state.ledger.toJSON(),
    records: state.records,
  };
  const vectors = [state.current, state.average, state.evalModel, ...state.h.filter((x): x is Float32Array => x !== null)];
  writeStateFile(path, header, vectors.map(f32bytes));
}

/**
 * The state saved at `path` for the run `config` (null when there is no checkpoint, or it belongs to
 * another configuration: the run then starts afresh). A damaged file is a DataError naming it.
 */
export function readCheckpoint(path: string, config: string): SimState | null {
  const file = readStateFile<Header>(path);
  if (!file || file.header.config !== config) return null;
  const { header, sections } = file;
  const bad = (why: string): never => {
    throw new DataError(`${path}: not a checkpoint of this run (${why}); remove it to start the run afresh`);
  };
  if (header.version !== 1 || !Array.isArray(header.hasVector) || !Array.isArray(header.records)) bad('unknown format');
  if (sections.length !== 3 + header.hasVector.filter(Boolean).length) bad('wrong number of sections');
  const [current, average, evalModel, ...rest] = sections.map(bytesF32);
  const d = current!.length;
  if (sections.some((s) => s.byteLength !== d * 4)) bad('vectors of different lengths');
  if (header.records.at(-1)?.round !== header.round) bad(`its records end at round ${header.records.at(-1)?.round}, its state is after round ${header.round}`);
  let next = 0;
  const h = header.hasVector.map((has) => (has ? rest[next++]! : null));
  let ledger: Ledger;
  try {
    ledger = Ledger.fromJSON(header.ledger);
  } catch (e) {
    return bad((e as Error).message);
  }
  return { round: header.round, current: current!, average: average!, evalModel: evalModel!, h, ledger, records: header.records, seconds: header.seconds };
}
