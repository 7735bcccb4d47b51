import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import type { Duplex } from 'node:stream';
import { LivemigError } from '../errors.js';
import type { ExecOptions, ExecResult, HostProcess } from './host.js';

/** Output kept from one exec; /proc and /sys files and command replies are far smaller. */
export const MAX_EXEC_OUTPUT_BYTES = 16 * 1024 * 1024;
const STDERR_KEEP_BYTES = 64 * 1024;

/** Runs argv on this machine without a shell; collects stdout (bytes) and stderr (text). */
export function execLocal(host: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const [program, ...args] = argv;
  if (!program) return Promise.reject(new TypeError('a command needs at least the program name'));
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
      timer = setTimeout(() => fail(new LivemigError('LME_HOST_EXEC', [host, argv.join(' '), `no exit within ${options.timeoutMs} ms`])), options.timeoutMs);
    }
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_EXEC_OUTPUT_BYTES) fail(new LivemigError('LME_HOST_EXEC', [host, argv.join(' '), `more than ${MAX_EXEC_OUTPUT_BYTES} bytes of output`]));
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_KEEP_BYTES) stderr += chunk.toString('utf8');
    });
    child.once('error', (err) => fail(new LivemigError('LME_HOST_EXEC', [host, argv.join(' '), err.message], { cause: err })));
    child.once('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr, code, signal });
    });
    child.stdin.on('error', () => {
      // the program may exit without reading its input: not an error of the exec
    });
    child.stdin.end(options.input ?? undefined);
  });
}

/** Starts a long-running program on this machine; its output is read as it comes. */
export function spawnLocal(argv: readonly string[]): HostProcess {
  const [program, ...args] = argv;
  if (!program) throw new TypeError('a command needs at least the program name');
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: string | null; error?: string }>((resolve) => {
    let spawnError: NodeJS.ErrnoException | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    child.once('close', (code, signal) =>
      resolve({ code: code ?? (spawnError ? 127 : null), signal, ...(spawnError ? { error: spawnError.code ?? spawnError.message } : {}) }),
    );
  });
  return {
    stdout: child.stdout,
    stderr: child.stderr,
    pid: child.pid,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

/** Connects to a unix socket of this machine (file-system sockets are not per network namespace). */
export function connectUnixLocal(path: string, timeoutMs = 5_000): Promise<Duplex> {
  return connectLocal({ path }, path, timeoutMs);
}

/** Connects to a TCP address from this machine's (the exporter's) network namespace. */
export function connectTcpLocal(host: string, port: number, timeoutMs = 5_000): Promise<Duplex> {
  return connectLocal({ host, port }, `${host}:${port}`, timeoutMs);
}

function connectLocal(options: { path: string } | { host: string; port: number }, target: string, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(options);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${target}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
  });
}

/** A failed exec as an error naming the host, the command and what it said. */
export function execFailure(host: string, argv: readonly string[], result: ExecResult): LivemigError {
  const how = result.code !== null ? `exit status ${result.code}` : `signal ${result.signal ?? '?'}`;
  return new LivemigError('LME_HOST_EXEC', [host, argv.join(' '), `${how}: ${result.stderr.trim().slice(0, 500) || '(no stderr)'}`]);
}
