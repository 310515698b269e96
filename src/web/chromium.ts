/**
 * Finds the Chromium that the browser tests and the dashboard benchmark drive (scripts/install-browser.sh
 * installs Debian's): CHROMIUM_PATH, else chromium, chromium-browser or google-chrome on the PATH.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = [
    ...(env['CHROMIUM_PATH'] ? [env['CHROMIUM_PATH']] : []),
    ...(env['PATH'] ?? '').split(delimiter).flatMap((d) => ['chromium', 'chromium-browser', 'google-chrome'].map((n) => join(d, n))),
  ];
  return candidates.find(executable) ?? null;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Headless flags that work as root and in containers (no sandbox, no GPU, /dev/shm may be tiny). */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'];
