/**
 * Generated inputs through every parser of untrusted text (issue 13, "fuzzing"): QMP framing and
 * the query-migrate parser, nova's and libvirt's log line parsers, /proc/net/dev, and the config
 * loader. Seeded, so a run can be repeated; counts crashes (an exception other than the parser's
 * own named error) and hangs (one input taking longer than --hang-ms), and the slowest input.
 *
 *     node --import tsx bench/fuzz.ts [--inputs 1000000] [--seed 12026] [--hang-ms 1000]
 */
import fc from 'fast-check';
import { parseConfigText } from '../src/config/load.js';
import { parseTimeZone } from '../src/config/timezone.js';
import { LivemigError } from '../src/errors.js';
import { parseLibvirtLine } from '../src/sources/logs/libvirt-parse.js';
import { parseNovaLine } from '../src/sources/logs/nova-parse.js';
import { parseProcNetDev } from '../src/sources/netdev/parse.js';
import { QmpFramer } from '../src/sources/qmp/framing.js';
import { parseQueryMigrate } from '../src/sources/qmp/parse.js';
import { fixed, flag, printHeader, table, verdict } from './common.js';

const INPUTS = flag('inputs', 1_000_000);
const SEED = flag('seed', 12026);
const HANG_MS = flag('hang-ms', 1000);

/** Text that looks like what each parser reads, mutated: real fragments, random glue, odd bytes. */
const fragment = (pieces: string[]) =>
  fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\0', '\t', ' ', '"', '{', '}', '[', ']', ':', ',')), { maxLength: 40 }).map((parts) => parts.join(''));

const QMP_PIECES = ['{"return": {"status": "active", "ram": {"transferred": 1, "remaining": 2}}}', '{"event": "MIGRATION", "data": {"status": "postcopy-active"}, "timestamp": {"seconds": 1, "microseconds": 2}}', '{"QMP": {"version": {}}}', '"total-time": ', '1e400', '-1', 'NaN', '"ram": ', '"status": "completed"'];
const NOVA_PIECES = ['2026-12-02 01:02:03.456 1234 INFO nova.virt.libvirt.driver [req-1 - - - - -] [instance: 0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f] ', 'Migration running for 30 secs, memory 40% remaining; (bytes processed=1, remaining=2, total=3)', 'Switching to post-copy migration mode', 'Migration operation has completed', 'Live Migration failure: ', 'qemu+tcp://dst/system'];
const LIBVIRT_PIECES = ['2026-12-02 01:02:03.456+0000: ', 'starting up libvirt version: 9.0.0', 'shutting down, reason=migrated', 'initiating migration', '-incoming defer'];
const NETDEV_PIECES = ['Inter-|   Receive                                                |  Transmit\n', ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n', '  eth0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n', '18446744073709551616', ' vnet0:'];
const CONFIG_PIECES = ['vms:\n  - name: a\n    monitors: [{host: h, qmp: {unix: /s}}]\n', 'a: &a [x, x]\nb: [*a, *a]\n', 'polling: {idle_interval: 5}\n', 'libvirt: {transport: rpc, hosts: [h]}\n', 'hosts: [{name: h, ssh: {address: 10.0.0.1, user: u}}]\n', '!!js/function "x"', '<<: *a', 'logs_options: {max_line_length: 2048.5}\n'];

const UTC = parseTimeZone('UTC');

interface Target {
  name: string;
  input: fc.Arbitrary<string>;
  /** Runs the parser; throws only its own named error on bad input. */
  run(text: string): void;
  /** The errors the parser is allowed to throw. */
  expected(err: unknown): boolean;
}

const named = (err: unknown) => err instanceof LivemigError;

const TARGETS: Target[] = [
  {
    name: 'QMP framing + query-migrate',
    input: fragment(QMP_PIECES),
    run: (text) => {
      const framer = new QmpFramer('fuzz', { maxLineBytes: 4096 });
      for (const frame of [...framer.push(text), ...framer.finish()]) {
        if (frame.kind !== 'message') continue;
        const ret = (frame.message as { return?: unknown }).return;
        if (ret !== undefined) {
          try {
            parseQueryMigrate(ret, 'fuzz');
          } catch (err) {
            if (!named(err)) throw err;
          }
        }
      }
    },
    expected: named,
  },
  { name: 'nova-compute log line', input: fragment(NOVA_PIECES), run: (text) => void parseNovaLine(text, UTC), expected: () => false },
  { name: 'libvirt log line', input: fragment(LIBVIRT_PIECES), run: (text) => void parseLibvirtLine(text), expected: () => false },
  { name: '/proc/net/dev', input: fragment(NETDEV_PIECES), run: (text) => void parseProcNetDev(text), expected: () => false },
  { name: 'config loader (YAML + schema)', input: fragment(CONFIG_PIECES), run: (text) => void parseConfigText(text, 'fuzz.yml'), expected: named },
];

interface Result {
  inputs: number;
  crashes: number;
  hangs: number;
  slowestMs: number;
  totalMs: number;
  firstCrash: string | null;
}

function fuzz(target: Target, inputs: number, seed: number): Result {
  const result: Result = { inputs: 0, crashes: 0, hangs: 0, slowestMs: 0, totalMs: 0, firstCrash: null };
  const samples = fc.sample(target.input, { numRuns: inputs, seed });
  for (const text of samples) {
    const started = performance.now();
    try {
      target.run(text);
    } catch (err) {
      if (!target.expected(err)) {
        result.crashes++;
        result.firstCrash ??= `${JSON.stringify(text.slice(0, 120))}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
      }
    }
    const ms = performance.now() - started;
    result.totalMs += ms;
    result.slowestMs = Math.max(result.slowestMs, ms);
    if (ms > HANG_MS) result.hangs++;
    result.inputs++;
  }
  return result;
}

await printHeader(`fuzz: ${INPUTS.toLocaleString('en')} generated inputs through the parsers of untrusted text (seed ${SEED})`);
const perTarget = Math.ceil(INPUTS / TARGETS.length);
const rows: string[][] = [];
let crashes = 0;
let hangs = 0;
let total = 0;
const started = Date.now();
for (const [i, target] of TARGETS.entries()) {
  // Generated in batches so memory stays flat whatever the count.
  const batch = 50_000;
  const sum: Result = { inputs: 0, crashes: 0, hangs: 0, slowestMs: 0, totalMs: 0, firstCrash: null };
  for (let done = 0; done < perTarget; done += batch) {
    const r = fuzz(target, Math.min(batch, perTarget - done), SEED + i * 1_000_003 + done);
    sum.inputs += r.inputs;
    sum.crashes += r.crashes;
    sum.hangs += r.hangs;
    sum.totalMs += r.totalMs;
    sum.slowestMs = Math.max(sum.slowestMs, r.slowestMs);
    sum.firstCrash ??= r.firstCrash;
  }
  crashes += sum.crashes;
  hangs += sum.hangs;
  total += sum.inputs;
  rows.push([target.name, sum.inputs.toLocaleString('en'), String(sum.crashes), String(sum.hangs), fixed((sum.totalMs * 1000) / Math.max(1, sum.inputs), 1), fixed(sum.slowestMs, 2)]);
  if (sum.firstCrash) console.log(`${target.name}: first crash ${sum.firstCrash}`);
}
console.log(table(['parser', 'inputs', 'crashes', 'hangs', 'µs per input', 'slowest ms'], rows));
console.log(`\n${total.toLocaleString('en')} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${verdict(crashes === 0)}  0 crashes (got ${crashes})`);
console.log(`${verdict(hangs === 0)}  0 hangs over ${HANG_MS} ms (got ${hangs})`);
