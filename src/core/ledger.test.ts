import { describe, expect, it } from 'vitest';
import { Ledger } from './ledger.js';

/** Two rounds of a 3-client run, hand-checked below. */
function sample(): Ledger {
  const l = new Ledger(3);
  // round 0: clients 0 and 2 upload, the server broadcasts to all three
  l.record(0, 'up', 0, 100, 809, 'coo');
  l.record(0, 'up', 2, 50, 310, 'delta-varint');
  for (const c of [0, 1, 2]) l.record(0, 'down', c, 1000, 4009, 'dense');
  // round 1: client 1 uploads, the server sends to client 1 only
  l.record(1, 'up', 1, 120, 600, 'rice');
  l.record(1, 'down', 1, 200, 1609, 'coo');
  return l;
}

describe('Ledger', () => {
  it('totals per round', () => {
    const l = sample();
    expect(l.roundTotals(0)).toEqual({
      up: { floats: 150, bytes: 1119, messages: 2 },
      down: { floats: 3000, bytes: 12027, messages: 3 },
    });
    expect(l.roundTotals(1)).toEqual({
      up: { floats: 120, bytes: 600, messages: 1 },
      down: { floats: 200, bytes: 1609, messages: 1 },
    });
    expect(l.roundTotals(7)).toEqual({
      up: { floats: 0, bytes: 0, messages: 0 },
      down: { floats: 0, bytes: 0, messages: 0 },
    });
  });

  it('cumulative totals', () => {
    expect(sample().cumulative()).toEqual({
      up: { floats: 270, bytes: 1719, messages: 3 },
      down: { floats: 3200, bytes: 13636, messages: 4 },
    });
  });

  it('per-client totals', () => {
    expect(sample().perClient()).toEqual([
      { client: 0, upFloats: 100, upBytes: 809, downFloats: 1000, downBytes: 4009 },
      { client: 1, upFloats: 120, upBytes: 600, downFloats: 1200, downBytes: 5618 },
      { client: 2, upFloats: 50, upBytes: 310, downFloats: 1000, downBytes: 4009 },
    ]);
  });

  it('message counts per encoding and direction', () => {
    expect(sample().encodingCounts()).toEqual({
      up: { coo: 1, 'delta-varint': 1, rice: 1 },
      down: { dense: 3, coo: 1 },
    });
  });

  it('returns copies that callers cannot use to change the ledger', () => {
    const l = sample();
    l.cumulative().up.floats = -1;
    l.roundTotals(0).down.bytes = -1;
    l.perClient()[0]!.upBytes = -1;
    l.encodingCounts().up.coo = 99;
    expect(l.cumulative().up.floats).toBe(270);
    expect(l.roundTotals(0).down.bytes).toBe(12027);
    expect(l.perClient()[0]!.upBytes).toBe(809);
    expect(l.encodingCounts().up.coo).toBe(1);
  });

  it('round-trips through JSON and keeps counting after a resume', () => {
    const l = sample();
    const json = JSON.parse(JSON.stringify(l)) as unknown;
    const back = Ledger.fromJSON(json);
    expect(back.toJSON()).toEqual(l.toJSON());
    expect(back.nClients).toBe(3);
    back.record(2, 'up', 0, 10, 89, 'coo');
    l.record(2, 'up', 0, 10, 89, 'coo');
    expect(back.toJSON()).toEqual(l.toJSON());
    expect(back.cumulative().up).toEqual({ floats: 280, bytes: 1808, messages: 4 });
  });

  it('lists rounds in order in toJSON', () => {
    const l = new Ledger(1);
    l.record(5, 'up', 0, 1, 13, 'coo');
    l.record(2, 'up', 0, 1, 13, 'coo');
    expect(l.toJSON().rounds.map((r) => r.round)).toEqual([2, 5]);
  });

  it('validates record arguments', () => {
    const l = new Ledger(2);
    expect(() => l.record(0, 'up', 2, 1, 1, 'coo')).toThrow(/client must be an integer in \[0, 2\), got 2/);
    expect(() => l.record(0, 'up', -1, 1, 1, 'coo')).toThrow(RangeError);
    expect(() => l.record(-1, 'up', 0, 1, 1, 'coo')).toThrow(/round must be a non-negative integer, got -1/);
    expect(() => l.record(0.5, 'up', 0, 1, 1, 'coo')).toThrow(/round/);
    expect(() => l.record(0, 'up', 0, -3, 1, 'coo')).toThrow(/floats must be a non-negative integer, got -3/);
    expect(() => l.record(0, 'up', 0, 1, 2.5, 'coo')).toThrow(/bytes must be a non-negative integer, got 2.5/);
    expect(() => l.record(0, 'sideways' as 'up', 0, 1, 1, 'coo')).toThrow(/direction/);
    expect(() => l.record(0, 'up', 0, 1, 1, 'gzip' as 'coo')).toThrow(/unknown encoding 'gzip'/);
    expect(() => l.roundTotals(-2)).toThrow(/Ledger.roundTotals: round/);
    expect(() => new Ledger(0)).toThrow(RangeError);
    expect(() => new Ledger(1.5)).toThrow(RangeError);
    // nothing was recorded by the failed calls
    expect(l.cumulative().up.messages).toBe(0);
  });

  it('fromJSON rejects malformed or inconsistent input', () => {
    const good = (): ReturnType<Ledger['toJSON']> => JSON.parse(JSON.stringify(sample().toJSON()));
    expect(() => Ledger.fromJSON(null)).toThrow(/not an object/);
    expect(() => Ledger.fromJSON({ ...good(), nClients: 0 })).toThrow(/nClients/);
    expect(() => Ledger.fromJSON({ ...good(), rounds: 'x' })).toThrow(/rounds must be an array/);
    const dup = good();
    dup.rounds.push(dup.rounds[0]!);
    expect(() => Ledger.fromJSON(dup)).toThrow(/round 0 appears twice/);
    const negative = good();
    negative.rounds[1]!.up.bytes = -5;
    expect(() => Ledger.fromJSON(negative)).toThrow(/round 1: up.bytes must be a non-negative integer/);
    const fewClients = good();
    fewClients.clients.pop();
    expect(() => Ledger.fromJSON(fewClients)).toThrow(/clients must be an array of 3/);
    const inconsistent = good();
    inconsistent.clients[2]!.upFloats += 1;
    expect(() => Ledger.fromJSON(inconsistent)).toThrow(/clients upFloats add up to 271, but the rounds say 270/);
    const badEncoding = good();
    (badEncoding.encodings.up as Record<string, number>).zip = 1;
    expect(() => Ledger.fromJSON(badEncoding)).toThrow(/unknown encoding 'zip'/);
    const miscounted = good();
    miscounted.encodings.down.dense = 2;
    expect(() => Ledger.fromJSON(miscounted)).toThrow(/encodings.down counts add up to 3, but the rounds say 4/);
  });

  it('keeps memory independent of nClients x rounds', () => {
    const l = new Ledger(1000);
    for (let r = 0; r < 50; r++) for (let c = 0; c < 1000; c++) l.record(r, 'up', c, 1, 13, 'coo');
    const json = l.toJSON();
    expect(json.rounds).toHaveLength(50);
    expect(json.clients).toHaveLength(1000);
    expect(l.cumulative().up).toEqual({ floats: 50_000, bytes: 650_000, messages: 50_000 });
    expect(l.perClient()[999]).toEqual({ client: 999, upFloats: 50, upBytes: 650, downFloats: 0, downBytes: 0 });
  });
});
