import { oneLine } from '../errors.js';

/** Bad data or a bad dataset option: the message is one line naming what is wrong and where (PATH:LINE for files). */
export class DataError extends Error {
  override name = 'DataError';
  constructor(message: string) {
    super(oneLine(message));
  }
}
