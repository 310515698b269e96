/**
 * The communication ledger: floats, bytes and messages sent up (client to server) and down (server
 * to client). Memory grows with nClients + rounds, never their product: it keeps cumulative totals
 * per client and totals per round, not individual messages.
 */

import { ENCODINGS, type EncodingName } from './encoding.js';

export type Direction = 'up' | 'down';

export interface DirTotals {
  floats: number;
  bytes: number;
  messages: number;
}

export interface Totals {
  up: DirTotals;
  down: DirTotals;
}

export interface ClientTotals {
  client: number;
  upFloats: number;
  upBytes: number;
  downFloats: number;
  downBytes: number;
}

export type EncodingCounts = Record<Direction, Partial<Record<EncodingName, number>>>;

/** The plain-object form written into checkpoints. */
export interface LedgerJSON {
  nClients: number;
  rounds: Array<{ round: number } & Totals>;
  clients: ClientTotals[];
  encodings: EncodingCounts;
}

const DIRECTIONS: readonly Direction[] = ['up', 'down'];

export class Ledger {
  private readonly rounds = new Map<number, Totals>();
  private readonly total: Totals = zeroTotals();
  private readonly clients: ClientTotals[];
  private readonly encodings: EncodingCounts = { up: {}, down: {} };

  constructor(readonly nClients: number) {
    if (!Number.isSafeInteger(nClients) || nClients < 1) {
      throw new RangeError(`Ledger: nClients must be a positive integer, got ${nClients}`);
    }
    this.clients = Array.from({ length: nClients }, (_, client) => zeroClient(client));
  }

  record(round: number, direction: Direction, client: number, floats: number, bytes: number, encoding: EncodingName): void {
    checkCount('Ledger.record', 'round', round);
    if (!DIRECTIONS.includes(direction)) {
      throw new RangeError(`Ledger.record: direction must be 'up' or 'down', got '${direction}'`);
    }
    if (!Number.isSafeInteger(client) || client < 0 || client >= this.nClients) {
      throw new RangeError(`Ledger.record: client must be an integer in [0, ${this.nClients}), got ${client}`);
    }
    checkCount('Ledger.record', 'floats', floats);
    checkCount('Ledger.record', 'bytes', bytes);
    if (!ENCODINGS.includes(encoding)) throw new RangeError(`Ledger.record: unknown encoding '${encoding}'`);

    let perRound = this.rounds.get(round);
    if (perRound === undefined) this.rounds.set(round, (perRound = zeroTotals()));
    addTo(perRound[direction], floats, bytes, 1);
    addTo(this.total[direction], floats, bytes, 1);
    const c = this.clients[client]!;
    if (direction === 'up') {
      c.upFloats += floats;
      c.upBytes += bytes;
    } else {
      c.downFloats += floats;
      c.downBytes += bytes;
    }
    const counts = this.encodings[direction];
    counts[encoding] = (counts[encoding] ?? 0) + 1;
  }

  /** Totals of one round (zeros for a round with no messages). */
  roundTotals(round: number): Totals {
    checkCount('Ledger.roundTotals', 'round', round);
    return copyTotals(this.rounds.get(round) ?? zeroTotals());
  }

  cumulative(): Totals {
    return copyTotals(this.total);
  }

  perClient(): ClientTotals[] {
    return this.clients.map((c) => ({ ...c }));
  }

  /** Messages per encoding, by direction. */
  encodingCounts(): EncodingCounts {
    return { up: { ...this.encodings.up }, down: { ...this.encodings.down } };
  }

  toJSON(): LedgerJSON {
    const rounds = [...this.rounds.keys()].sort((a, b) => a - b).map((round) => ({ round, ...this.roundTotals(round) }));
    return { nClients: this.nClients, rounds, clients: this.perClient(), encodings: this.encodingCounts() };
  }

  /** Rebuilds a ledger from toJSON() output (e.g. a parsed checkpoint), checking that it is consistent. */
  static fromJSON(obj: unknown): Ledger {
    const o = obj as Partial<LedgerJSON> | null;
    if (typeof o !== 'object' || o === null) bad('not an object');
    if (!Number.isSafeInteger(o.nClients) || o.nClients! < 1) bad('nClients must be a positive integer');
    const ledger = new Ledger(o.nClients!);
    if (!Array.isArray(o.rounds)) bad('rounds must be an array');
    for (const r of o.rounds) {
      if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.round) || r.round < 0) bad('bad round entry');
      if (ledger.rounds.has(r.round)) bad(`round ${r.round} appears twice`);
      const totals = zeroTotals();
      for (const dir of DIRECTIONS) {
        const t = r[dir];
        if (typeof t !== 'object' || t === null) bad(`round ${r.round}: missing '${dir}' totals`);
        for (const key of ['floats', 'bytes', 'messages'] as const) {
          if (!isCount(t[key])) bad(`round ${r.round}: ${dir}.${key} must be a non-negative integer`);
        }
        addTo(totals[dir], t.floats, t.bytes, t.messages);
        addTo(ledger.total[dir], t.floats, t.bytes, t.messages);
      }
      ledger.rounds.set(r.round, totals);
    }
    if (!Array.isArray(o.clients) || o.clients.length !== ledger.nClients) bad(`clients must be an array of ${ledger.nClients}`);
    o.clients.forEach((c, i) => {
      if (typeof c !== 'object' || c === null || c.client !== i) bad(`clients[${i}] must have client = ${i}`);
      for (const key of ['upFloats', 'upBytes', 'downFloats', 'downBytes'] as const) {
        if (!isCount(c[key])) bad(`clients[${i}].${key} must be a non-negative integer`);
      }
      const { upFloats, upBytes, downFloats, downBytes } = c;
      ledger.clients[i] = { client: i, upFloats, upBytes, downFloats, downBytes };
    });
    if (typeof o.encodings !== 'object' || o.encodings === null) bad('encodings must be an object');
    for (const dir of DIRECTIONS) {
      const counts = o.encodings[dir];
      if (typeof counts !== 'object' || counts === null) bad(`encodings.${dir} must be an object`);
      for (const [name, n] of Object.entries(counts)) {
        if (!ENCODINGS.includes(name as EncodingName)) bad(`encodings.${dir}: unknown encoding '${name}'`);
        if (!isCount(n)) bad(`encodings.${dir}.${name} must be a non-negative integer`);
        ledger.encodings[dir][name as EncodingName] = n;
      }
    }
    ledger.checkConsistent();
    return ledger;
  }

  /** Per-client and per-encoding figures must add up to the round totals. */
  private checkConsistent(): void {
    const sum = (f: (c: ClientTotals) => number): number => this.clients.reduce((s, c) => s + f(c), 0);
    const expect = (what: string, got: number, want: number): void => {
      if (got !== want) bad(`${what} add up to ${got}, but the rounds say ${want}`);
    };
    expect('clients upFloats', sum((c) => c.upFloats), this.total.up.floats);
    expect('clients upBytes', sum((c) => c.upBytes), this.total.up.bytes);
    expect('clients downFloats', sum((c) => c.downFloats), this.total.down.floats);
    expect('clients downBytes', sum((c) => c.downBytes), this.total.down.bytes);
    for (const dir of DIRECTIONS) {
      const messages = Object.values(this.encodings[dir]).reduce((s, n) => s + n, 0);
      expect(`encodings.${dir} counts`, messages, this.total[dir].messages);
    }
  }
}

function zeroTotals(): Totals {
  return { up: { floats: 0, bytes: 0, messages: 0 }, down: { floats: 0, bytes: 0, messages: 0 } };
}

function zeroClient(client: number): ClientTotals {
  return { client, upFloats: 0, upBytes: 0, downFloats: 0, downBytes: 0 };
}

function copyTotals(t: Totals): Totals {
  return { up: { ...t.up }, down: { ...t.down } };
}

function addTo(t: DirTotals, floats: number, bytes: number, messages: number): void {
  t.floats += floats;
  t.bytes += bytes;
  t.messages += messages;
}

function isCount(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

function checkCount(where: string, name: string, x: number): void {
  if (!isCount(x)) throw new RangeError(`${where}: ${name} must be a non-negative integer, got ${x}`);
}

function bad(message: string): never {
  throw new RangeError(`Ledger.fromJSON: ${message}`);
}
