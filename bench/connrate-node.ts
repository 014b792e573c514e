/**
 * The Node.js twin of bench/connrate.c's client (connect, send a byte, read it, close;
 * one at a time): bench/connrate.ts runs it once on plain pod → pod to show why the
 * measured client is C. Usage: node dist/bench/connrate-node.js ADDR PORT SECONDS
 */
import { connect } from 'node:net';

const [host, port, seconds] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const start = performance.now();
const end = start + seconds * 1000;
let n = 0;
let errors = 0;
const next = (): void => {
  if (performance.now() >= end || errors >= 1000) {
    console.log(JSON.stringify({ connections: n, seconds: (performance.now() - start) / 1000, errors }));
    return;
  }
  const s = connect({ host, port, noDelay: true }, () => s.write('x'));
  s.once('data', () => {
    n++;
    s.end();
  });
  s.on('error', () => errors++);
  s.on('close', next);
};
next();
