/** What the browser client's page and its Web Worker tell each other. */
import type { ClientMessage, ServerMessage } from '../../net/messages.js';

/** page → worker: the client to run */
export interface ClientStart {
  id: number;
  /** ws:// or wss:// address of the server's dashboard port */
  server: string;
  /** the dataset spec (generated: synthetic, lsq); null: the server's */
  data: string | null;
  /** a LIBSVM file the user picked: all of this client's data (instead of `data`); read here, never sent */
  file: File | null;
  token: string | null;
  connectTimeout: number;
}

/** worker → page */
export type ClientReport =
  | { kind: 'received'; message: ServerMessage['msg']; bytes: number; round?: number }
  | { kind: 'sent'; message: ClientMessage['msg']; bytes: number; round?: number; density?: number; loss?: number }
  | { kind: 'data'; dataset: string; samples: number }
  | { kind: 'log'; line: string }
  | { kind: 'end'; ok: boolean; message: string };
