/**
 * A progress bar on stderr for long runs, so stdout stays clean for results and pipes.
 * Off by default where nobody watches a terminal (stderr redirected, or CI), where redraws
 * would only fill logs with control characters.
 */

import cliProgress from 'cli-progress';
import { formatNumber } from './table.js';

export type ProgressPayload = Record<string, string | number>;

export interface Progress {
  /** Sets the number of finished units, and optionally the status shown after the bar. */
  update(done: number, payload?: ProgressPayload): void;
  increment(by?: number, payload?: ProgressPayload): void;
  /** Draws the final state and releases the terminal line; call once at the end. */
  stop(): void;
}

export interface ProgressOptions {
  total: number;
  label: string;
  /** Forces the bar on or off; by default on only when stderr is a terminal and CI is not set. */
  enabled?: boolean;
}

/** Longest status text, so the bar line fits a normal terminal. */
const MAX_STATUS = 60;

const NO_PROGRESS: Progress = {
  update() {},
  increment() {},
  stop() {},
};

export function createProgress(opts: ProgressOptions): Progress {
  if (!(opts.enabled ?? defaultEnabled())) return NO_PROGRESS;
  const bar = new cliProgress.SingleBar(
    {
      format: '{label} |{bar}| {value}/{total} {percentage}% | ETA {eta_formatted} {status}',
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50, // average over many updates: rounds vary in cost
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(opts.total, 0, { label: opts.label, status: '' });
  const withStatus = (payload?: ProgressPayload) => (payload ? { status: statusText(payload) } : {});
  return {
    update: (done, payload) => bar.update(done, withStatus(payload)),
    increment: (by = 1, payload) => bar.increment(by, withStatus(payload)),
    stop: () => bar.stop(),
  };
}

function defaultEnabled(): boolean {
  return process.stderr.isTTY === true && !process.env['CI'];
}

/** `{ loss: 0.01234567, phase: 'eval' }` -> 'loss=0.01235 phase=eval', cut to MAX_STATUS characters. */
export function statusText(payload: ProgressPayload): string {
  const text = Object.entries(payload)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
    .join(' ');
  return text.length > MAX_STATUS ? text.slice(0, MAX_STATUS - 1) + '…' : text;
}
