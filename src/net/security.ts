/**
 * Who may join: TLS credentials (optionally mutual), per-client secret tokens, and `certs`, which makes
 * a throw-away CA with server and client certificates for trying it out.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readRegularFile } from '../data/files.js';
import { join } from 'node:path';
import type { TlsOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import forge from 'node-forge';
import { UsageError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../report/io.js';
import type { TlsFiles } from './config.js';

/** Keys, certificates and token files are small: this bounds what a wrong path can make us read. */
export const SMALL_FILE_BYTES = 16 * 2 ** 20;

export function readPem(path: string, what: string): Buffer {
  try {
    return readRegularFile(path, SMALL_FILE_BYTES, 'a PEM file is a few KB');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/**
 * The server's TLS options (the listener does the handshake, see listener.ts), or null for plain text. With
 * requireClientCert, a client must present a certificate signed by `ca`.
 */
export function serverTlsOptions(tls: TlsFiles | null): TlsOptions | null {
  if (!tls) return null;
  return {
    cert: readPem(tls.cert, 'server certificate'),
    key: readPem(tls.key, 'server key'),
    ...(tls.ca ? { ca: readPem(tls.ca, 'CA certificate') } : {}),
    requestCert: tls.requireClientCert,
    rejectUnauthorized: true,
  };
}

/** A client id as the wire and the tokens file spell it: a plain decimal integer (no sign, exponent, hex or leading zero), or null. */
export function parseClientId(text: string): number | null {
  return /^(0|[1-9][0-9]{0,8})$/.test(text) ? Number(text) : null;
}

export interface ClientTls {
  /** CA that signed the server's certificate */
  ca: string;
  /** client certificate and key, for servers that require mutual TLS */
  cert: string | null;
  key: string | null;
}

export function channelCredentials(tls: ClientTls | null): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  if ((tls.cert === null) !== (tls.key === null)) throw new UsageError('--cert and --key go together');
  return grpc.credentials.createSsl(
    readPem(tls.ca, 'CA certificate'),
    tls.key ? readPem(tls.key, 'client key') : null,
    tls.cert ? readPem(tls.cert, 'client certificate') : null,
  );
}

/** Tokens by client id, from a JSON file {"0": "token0", "1": "token1", ...}. */
export function readTokens(path: string): Map<number, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularFile(path, SMALL_FILE_BYTES, 'a tokens file is a few KB per thousand clients').toString('utf8'));
  } catch (e) {
    throw new UsageError(`cannot read tokens file ${path}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`${path}: expected {"CLIENT_ID": "TOKEN", ...}`);
  const out = new Map<number, string>();
  for (const [k, v] of Object.entries(raw)) {
    const id = parseClientId(k);
    if (id === null) throw new UsageError(`${path}: '${k}' is not a client id (a plain decimal integer)`);
    if (typeof v !== 'string' || v.length < 16) throw new UsageError(`${path}: the token of client ${k} must be a string of at least 16 characters`);
    out.set(id, v);
  }
  return out;
}

/** Constant-time comparison (of digests, so the lengths match and leak nothing either). */
export function tokenMatches(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

export interface CertsOptions {
  out: string;
  clients: number;
  /** extra DNS names or IP addresses for the server certificate (localhost and 127.0.0.1 are always in) */
  hosts: string[];
  /** validity in days */
  days: number;
}

/**
 * A CA, a server certificate (SAN localhost, 127.0.0.1 and `hosts`), one client certificate (CN
 * sparse-proxskip-client, shared by the client machines) and a tokens file with a random token per client.
 * For trying TLS out; a deployment uses certificates from its own CA. The private keys and the tokens are
 * readable by their owner only (0600) from the moment they exist; a directory it creates is 0700.
 */
export function makeCerts(opts: CertsOptions): string[] {
  mkdirSync(opts.out, { recursive: true, mode: 0o700 });
  const ca = issue({ cn: 'sparse-proxskip test CA', days: opts.days, isCa: true });
  const hosts = ['localhost', '127.0.0.1', ...opts.hosts.filter((h) => h !== 'localhost' && h !== '127.0.0.1')];
  const server = issue({ cn: hosts[0]!, days: opts.days, isCa: false, issuer: ca, altNames: hosts, usage: 'server' });
  const client = issue({ cn: 'sparse-proxskip-client', days: opts.days, isCa: false, issuer: ca, usage: 'client' });
  const files: [string, string][] = [
    ['ca.pem', forge.pki.certificateToPem(ca.cert)],
    ['server.pem', forge.pki.certificateToPem(server.cert)],
    ['server.key', forge.pki.privateKeyToPem(server.key)],
    ['client.pem', forge.pki.certificateToPem(client.cert)],
    ['client.key', forge.pki.privateKeyToPem(client.key)],
  ];
  for (const [name, pem] of files) writeFileAtomic(join(opts.out, name), pem, name.endsWith('.key') ? 0o600 : 0o644);
  const tokens: Record<string, string> = {};
  for (let i = 0; i < opts.clients; i++) tokens[String(i)] = randomBytes(24).toString('hex');
  writeJsonAtomic(join(opts.out, 'tokens.json'), tokens, 0o600);
  return [...files.map(([name]) => join(opts.out, name)), join(opts.out, 'tokens.json')];
}

interface Issued {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

function issue(o: { cn: string; days: number; isCa: boolean; issuer?: Issued; altNames?: string[]; usage?: 'server' | 'client' }): Issued {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01' + randomBytes(15).toString('hex'); // positive, unique
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + o.days * 86_400_000);
  const subject = [{ name: 'commonName', value: o.cn }];
  cert.setSubject(subject);
  cert.setIssuer(o.issuer ? o.issuer.cert.subject.attributes : subject);
  const ext: object[] = [{ name: 'basicConstraints', cA: o.isCa, critical: true }];
  if (o.isCa) ext.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  else {
    ext.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true });
    ext.push({ name: 'extKeyUsage', serverAuth: o.usage === 'server', clientAuth: o.usage === 'client' });
  }
  if (o.altNames) {
    ext.push({
      name: 'subjectAltName',
      altNames: o.altNames.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? { type: 7, ip: h } : { type: 2, value: h })),
    });
  }
  ext.push({ name: 'subjectKeyIdentifier' });
  cert.setExtensions(ext);
  cert.sign(o.issuer ? o.issuer.key : keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey };
}
