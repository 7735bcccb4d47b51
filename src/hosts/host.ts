import type { Duplex, Readable } from 'node:stream';

/**
 * Where a signal lives: this machine, a network namespace on this machine (the lab's hosts), or
 * a remote machine over one SSH connection. Sources only ever talk to a Host, never to
 * child_process, net or ssh2 directly, so each works the same on all three; a source given no
 * host works on this machine's LocalHost.
 *
 * One source stays local: fping (sources/ping/fping.ts). Its stdout is a FIFO that this process
 * drains in batches (batched-output.ts, which makes the FIFO with mkfifo), and it may run as
 * another user (spawn's uid/gid): a Host's spawn gives a pipe and the exporter's own user. So
 * fping runs on this machine only, and takes from here only the command line that enters a
 * network namespace (netnsExec in netns.ts).
 */
export interface Host {
  /** The host's name in config, metrics and records. */
  readonly name: string;
  readonly kind: HostKind;
  /** Runs a program with arguments, never through a local shell; over SSH each argument is quoted for the remote shell. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running program whose output is read as it comes (tail, fping, virsh). */
  spawn(argv: readonly string[]): HostProcess;
  /** Reads a small file whole (/proc/net/dev, /sys/class/net/IFACE/statistics/*): as seen from that host's network namespace. */
  readFile(path: string): Promise<Buffer>;
  /** Opens a byte stream to a unix socket on that host (a QMP monitor). */
  connectUnix(path: string): Promise<Duplex>;
  /**
   * Opens a TCP byte stream to `host:port` as that host sees it (a QMP monitor on `tcp:`): over
   * SSH a direct-tcpip channel of the one connection, so 127.0.0.1 is the remote machine's loopback.
   */
  connectTcp(host: string, port: number): Promise<Duplex>;
  /** Whether the host is reachable now (livemig_source_up{source="host"}). */
  readonly up: boolean;
  close(): Promise<void>;
}

export type HostKind = 'local' | 'netns' | 'ssh';

export interface ExecOptions {
  timeoutMs?: number;
  /** Written to the program's stdin, then stdin is closed. */
  input?: string | Buffer;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: string | null;
}

export interface HostProcess {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Its process id on this machine; undefined over SSH (or when it could not start). */
  readonly pid?: number | undefined;
  /** Ends the program (by its PID locally, by closing its channel over SSH). */
  kill(): void;
  /** `error`: why it could not be started at all (an errno such as ENOENT). */
  readonly exited: Promise<{ code: number | null; signal: string | null; error?: string }>;
}
