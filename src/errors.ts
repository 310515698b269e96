/**
 * Control characters (C0, DEL, C1, U+2028/U+2029) escaped: a message quoting user text stays one line,
 * and a carriage return in a cell cannot move the cursor back over the file name on a terminal.
 */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** User text for a message: escaped (see oneLine) and cut to about `max` characters. */
export function excerpt(text: string, max = 40): string {
  return text.length > max ? `${oneLine(text.slice(0, max))}... (${text.length} characters)` : oneLine(text);
}

/** Bad input from the user (options, files): reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(message: string) {
    super(oneLine(message));
  }
}
