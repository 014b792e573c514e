/**
 * What test/e2e/fixtures/flow-client.mjs reports, and what a cut flow looks like: a TCP
 * stream that echoed at first and then stalled (dozens unanswered: a drop, not a reset),
 * and a UDP flow whose lost datagrams are one tail after the first ones came back.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { tcplane, type CliResult } from './cli.js';
import { ROOT } from './paths.js';

const FLOW_CLIENT = `${ROOT}test/e2e/fixtures/flow-client.mjs`;

/** One flow: from a pod, to an address and port. */
export interface FlowSpec {
  from: string;
  ip: string;
  port: number;
}

/**
 * Runs a TCP and a UDP flow (flow-client.mjs, one message per 10 ms) from pods, makes
 * `change` once both echo, lets them go on half a second (dozens of messages), stops
 * them and returns their reports. The control files (prefix `control`) are removed, and
 * the flows stopped, whatever happens.
 */
export async function flowsAcross(control: string, tcp: FlowSpec, udp: FlowSpec, change: () => Promise<unknown>): Promise<[FlowReport, FlowReport]> {
  const flows: Promise<CliResult>[] = [];
  const stop = () => {
    for (const f of ['tcp', 'udp']) writeFileSync(`${control}-${f}.stop`, '');
  };
  try {
    for (const [kind, f] of [['tcp', tcp], ['udp', udp]] as const) {
      flows.push(tcplane(['lab', 'exec', f.from, '--', process.execPath, FLOW_CLIENT, kind, f.ip, String(f.port), `${control}-${kind}`]));
    }
    const start = Date.now();
    while (!(existsSync(`${control}-tcp.ready`) && existsSync(`${control}-udp.ready`))) {
      if (Date.now() - start > 20_000) throw new Error('gave up after 20000 ms waiting until both flows echo');
      await sleep(50);
    }
    await sleep(200);
    await change();
    await sleep(500); // at one message per 10 ms, dozens sent after the change
    stop();
    const [t, u] = (await Promise.all(flows)).map(flowReport);
    return [t!, u!];
  } finally {
    stop();
    await Promise.allSettled(flows);
    for (const f of ['tcp', 'udp']) for (const x of ['ready', 'stop']) rmSync(`${control}-${f}.${x}`, { force: true });
  }
}

export interface FlowReport {
  sent: number;
  echoed: number;
  lost: number[];
  error: string | null;
}

export const flowReport = (r: CliResult) => JSON.parse(r.stdout) as FlowReport;

/** Both flows were cut at one moment, after having worked. */
export function expectCut(tcp: FlowReport, udp: FlowReport): void {
  expect(tcp.echoed).toBeGreaterThan(0);
  expect(tcp.sent - tcp.echoed, JSON.stringify(tcp)).toBeGreaterThan(20);
  expect(udp.lost.length, JSON.stringify(udp)).toBeGreaterThan(20);
  expect(udp.lost[0]).toBeGreaterThan(0);
  expect(udp.lost).toEqual(Array.from({ length: udp.sent - udp.lost[0]! }, (_, i) => udp.lost[0]! + i));
}
