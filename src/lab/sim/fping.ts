/**
 * SIMULATED fping for the lab's sim engine: answers `fping -l -D -e -o -p P -t T -i I -- ADDR...`
 * as fping 5.1 prints it (a reply line per answered probe, a `timed out` line per lost one, the
 * summary on stderr at exit), from the sim cloud's ping state file (env LIVEMIG_SIM_PING_STATE:
 * which addresses answer now). Never sends a packet.
 */
import { readFileSync } from 'node:fs';

const RTT_MS = 0.3;

interface Target {
  address: string;
  sent: number;
  received: number;
  lostMs: number;
}

function option(args: string[], flag: string, fallback: number): number {
  const at = args.indexOf(flag);
  return at >= 0 ? Number(args[at + 1]) : fallback;
}

function answering(path: string | undefined, address: string): boolean {
  if (!path) return false;
  try {
    const state = JSON.parse(readFileSync(path, 'utf8')) as { answering?: Record<string, boolean> };
    return state.answering?.[address] === true;
  } catch {
    return false;
  }
}

function stamp(ms: number): string {
  return `[${(ms / 1000).toFixed(5)}]`;
}

function lossPercent(t: Target): number {
  return t.sent === 0 ? 0 : Math.round(((t.sent - t.received) * 100) / t.sent);
}

function main(): void {
  const args = process.argv.slice(2);
  const dash = args.indexOf('--');
  const addresses = dash >= 0 ? args.slice(dash + 1) : args.filter((a) => !a.startsWith('-'));
  const periodMs = option(args, '-p', 1000);
  const timeoutMs = option(args, '-t', 500);
  const statePath = process.env.LIVEMIG_SIM_PING_STATE;
  const targets: Target[] = addresses.map((address) => ({ address, sent: 0, received: 0, lostMs: 0 }));
  const timers: NodeJS.Timeout[] = [];
  targets.forEach((target, index) => {
    const probe = (): void => {
      const seq = target.sent++;
      const sentAt = Date.now();
      if (answering(statePath, target.address)) {
        setTimeout(() => {
          target.received++;
          process.stdout.write(`${stamp(sentAt + RTT_MS)} ${target.address} : [${seq}], 64 bytes, ${RTT_MS.toFixed(3)} ms (${RTT_MS.toFixed(3)} avg, ${lossPercent(target)}% loss)\n`);
        }, 1);
      } else {
        setTimeout(() => {
          target.lostMs += periodMs;
          process.stdout.write(`${stamp(sentAt + timeoutMs)} ${target.address} : [${seq}], timed out (${RTT_MS.toFixed(3)} avg, ${lossPercent(target)}% loss)\n`);
        }, timeoutMs);
      }
    };
    // fping spreads its targets by -i; one period each.
    timers.push(setTimeout(() => {
      probe();
      timers.push(setInterval(probe, periodMs));
    }, index));
  });
  const stop = (): void => {
    for (const timer of timers) clearTimeout(timer);
    process.stderr.write('\n');
    for (const t of targets) {
      process.stderr.write(`${t.address} : xmt/rcv/%loss = ${t.sent}/${t.received}/${lossPercent(t)}%, outage(ms) = ${t.lostMs}, min/avg/max = ${RTT_MS}/${RTT_MS}/${RTT_MS}\n`);
    }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
