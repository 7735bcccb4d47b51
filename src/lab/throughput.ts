import { spawn, type ChildProcess } from 'node:child_process';
import { livemigError } from '../errors.js';
import type { Host, LabNetwork } from './netns.js';

/**
 * Measures the migration link: a TCP copy of N bytes from one host namespace to the other, by
 * two Node processes started there with `ip netns exec` (no iperf). The rate is taken at the
 * receiver, from its first byte to its last, so connection setup does not count.
 */

export interface ThroughputOptions {
  network: LabNetwork;
  bytes: number;
  /** Default src -> dst, the direction of a migration. */
  from?: Host;
  timeoutMs?: number;
  /** The Node binary run in the namespaces; default this process's. */
  node?: string;
}

export interface ThroughputResult {
  bytes: number;
  seconds: number;
  /** Payload bytes per second (1 MB = 10^6 bytes, as lab-notes' 119.3 MB/s). */
  bytesPerSecond: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const CHUNK_BYTES = 1024 * 1024;

/** Run with argv [host]: prints "port N", then, after the sender closes, one JSON line. */
const RECEIVER = `
const net = require('node:net');
let bytes = 0, first, last;
const server = net.createServer((socket) => {
  socket.on('data', (chunk) => {
    const now = process.hrtime.bigint();
    if (first === undefined) first = now;
    last = now;
    bytes += chunk.length;
  });
  socket.on('end', () => {
    console.log(JSON.stringify({ bytes, ns: String(last === undefined ? 0n : last - first) }));
    server.close();
  });
});
server.listen(0, process.argv[1], () => console.log('port ' + server.address().port));
`;

/** Run with argv [host, port, bytes, chunk]: sends that many bytes and closes. */
const SENDER = `
const net = require('node:net');
const [host, port, total, chunkBytes] = process.argv.slice(1);
const chunk = Buffer.alloc(Number(chunkBytes), 0x5a);
let left = Number(total);
const socket = net.connect(Number(port), host, function write() {
  while (left > 0) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= part.length;
    if (!socket.write(part)) return void socket.once('drain', write);
  }
  socket.end();
});
`;

export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const { network, bytes } = options;
  const from = options.from ?? 'src';
  const to: Host = from === 'src' ? 'dst' : 'src';
  const target = `${network.namespaces[from]} -> ${network.migrationAddress(to)}`;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw livemigError('LME_LAB_PROBE', target, `bytes ${bytes} is not a positive whole number`);
  const node = options.node ?? process.execPath;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const children: ChildProcess[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(livemigError('LME_LAB_PROBE', target, `copy of ${bytes} bytes not done within ${timeoutMs} ms`)), timeoutMs);
  });
  const copy = async (): Promise<ThroughputResult> => {
    const receiver = start(network.execArgv(to, node, ['-e', RECEIVER, network.migrationAddress(to)]), children);
    const port = Number((await firstLine(receiver, target, /^port (\d+)$/))[1]);
    const sender = start(network.execArgv(from, node, ['-e', SENDER, network.migrationAddress(to), String(port), String(bytes), String(CHUNK_BYTES)]), children);
    const [report] = await Promise.all([firstLine(receiver, target, /^(\{.*\})$/), exitOk(sender, target)]);
    const { bytes: received, ns } = JSON.parse(report[1] ?? '{}') as { bytes: number; ns: string };
    if (received !== bytes) throw livemigError('LME_LAB_PROBE', target, `receiver got ${received} of ${bytes} bytes`);
    const seconds = Number(BigInt(ns)) / 1e9;
    return { bytes, seconds, bytesPerSecond: bytes / seconds };
  };
  try {
    return await Promise.race([copy(), timeout]);
  } finally {
    clearTimeout(timer);
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function start(argv: [string, ...string[]], children: ChildProcess[]): ChildProcess {
  const [command, ...args] = argv;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

/** The first stdout line matching `pattern`; rejects with stderr if the process exits first. */
function firstLine(child: ChildProcess, target: string, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      for (const line of out.split('\n')) {
        const match = pattern.exec(line.trim());
        if (match) return resolve(match);
      }
    });
    child.once('error', (error) => reject(livemigError('LME_LAB_PROBE', target, `cannot start: ${error.message}`)));
    child.once('close', (code, signal) => reject(livemigError('LME_LAB_PROBE', target, `exited (${signal ?? code}) before printing ${pattern}: ${err.trim() || out.trim()}`)));
  });
}

function exitOk(child: ChildProcess, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.once('error', (error) => reject(livemigError('LME_LAB_PROBE', target, `cannot start sender: ${error.message}`)));
    child.once('close', (code, signal) => (code === 0 ? resolve() : reject(livemigError('LME_LAB_PROBE', target, `sender exited (${signal ?? code}): ${err.trim()}`))));
  });
}
