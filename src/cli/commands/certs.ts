import { InvalidArgumentError, type Command } from 'commander';
import { makeCerts } from '../../net/security.js';

const count = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!Number.isSafeInteger(x) || x < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
  return x;
};

export function registerCerts(program: Command): void {
  program
    .command('certs')
    .description('make a CA, a server certificate, a client certificate and a tokens file, for trying out TLS')
    .requiredOption('--out <dir>', 'directory for ca.pem, server.pem/.key, client.pem/.key, tokens.json')
    .option('--clients <n>', 'number of client tokens', count('--clients'), 30)
    .option('--host <name...>', 'host names or IP addresses of the server, beside localhost and 127.0.0.1')
    .option('--days <n>', 'validity in days', count('--days'), 30)
    .action((o: { out: string; clients: number; host?: string[]; days: number }) => {
      const files = makeCerts({ out: o.out, clients: o.clients, hosts: o.host ?? [], days: o.days });
      for (const f of files) console.log(f);
    });
}
