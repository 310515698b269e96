/**
 * The browser client's page, `/client?id=N&data=SPEC#token=TOKEN` on the port of `serve --http`: it
 * joins the federation on load as client N and trains in a Web Worker (client-worker.ts), on data
 * generated in the tab (`data=file`: on a file the user picks, once picked: LIBSVM, CSV rows with the target last, or a CIFAR-10 batch .bin); it shows the round, the local loss, the bytes sent and received, the density of
 * its updates and its state. The token comes after '#', so it never reaches a server's logs. Leave
 * closes the connection (the server handles it as a client that disconnects).
 */
import type { ClientReport, ClientStart } from './client-protocol.js';

const $ = (id: string): HTMLElement => document.getElementById(id)!;
const params = new URLSearchParams(location.search);
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const id = Number(params.get('id'));
const stats = { sent: 0, received: 0, round: 0, loss: null as number | null, density: null as number | null, state: 'connecting' };

function show(): void {
  $('round').textContent = String(stats.round);
  $('loss').textContent = stats.loss === null ? '—' : stats.loss.toPrecision(6);
  $('sent').textContent = String(stats.sent);
  $('received').textContent = String(stats.received);
  $('density').textContent = stats.density === null ? '—' : stats.density.toPrecision(4);
  $('state').textContent = stats.state;
  document.body.dataset['state'] = stats.state;
}

function log(line: string): void {
  const div = document.createElement('div');
  div.textContent = `${new Date().toISOString()}  ${line}`;
  $('log').append(div);
}

if (!/^(0|[1-9]\d{0,8})$/.test(params.get('id') ?? '')) {
  stats.state = 'error';
  log('the address needs ?id=N (this client id, a plain decimal integer), e.g. /client?id=0&data=synthetic#token=TOKEN');
  show();
} else {
  $('id').textContent = String(id);
  if (params.get('data') === 'file') {
    // a data file of the user's (LIBSVM, .csv, CIFAR-10 .bin): picked, then read in the worker, never uploaded
    const input = Object.assign(document.createElement('input'), { type: 'file', id: 'file' });
    $('data').replaceChildren(input);
    stats.state = 'pick a data file (LIBSVM, .csv or CIFAR-10 .bin)';
    input.addEventListener('change', () => {
      if (input.files?.[0]) run(input.files[0]);
    });
  } else run(null);
  show();
}

function run(file: File | null): void {
  const worker = new Worker('client-worker.js', { type: 'module' });
  const data = params.get('data');
  const start: ClientStart = { id, server: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, data: file ? null : data, file, token, connectTimeout: 600 };
  stats.state = 'connecting';
  worker.onmessage = (e: MessageEvent<ClientReport>) => {
    const r = e.data;
    switch (r.kind) {
      case 'received':
        stats.received += r.bytes;
        if (r.message === 'welcome') stats.state = 'joined';
        if (r.message === 'start') stats.state = 'training';
        if (r.round !== undefined) stats.round = r.round;
        break;
      case 'sent':
        stats.sent += r.bytes;
        if (r.density !== undefined) stats.density = r.density;
        if (r.loss !== undefined) stats.loss = r.loss;
        break;
      case 'data':
        $('data').textContent = `${r.dataset}, ${r.samples} samples`;
        break;
      case 'log':
        log(r.line);
        break;
      case 'end':
        stats.state = r.ok ? 'done' : 'stopped';
        log(r.message);
        break;
    }
    show();
  };
  worker.onerror = (e) => {
    stats.state = 'error';
    log(`the worker failed: ${e.message}`);
    show();
  };
  worker.postMessage(start);
  $('leave').addEventListener('click', () => {
    worker.postMessage('leave');
    stats.state = 'left';
    log('left the federation');
    show();
  });
  show();
}
