import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { Backoff } from '../backoff.js';
import { LivemigError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ExecOptions, ExecResult, Host, HostProcess } from './host.js';
import { OPEN_ADMINISTRATIVELY_PROHIBITED, channelOpenReason } from './channel-open.js';
import { MAX_EXEC_OUTPUT_BYTES, execFailure } from './child.js';
import { keyTypeOfBlob, knownKeyTypes, parseKnownHosts, verifyHostKey } from './known-hosts.js';
import { quoteShellCommand } from './shell-quote.js';

export interface SshHostOptions {
  name: string;
  address: string;
  port: number;
  user: string;
  /** Private key file; read at each connect, never logged. */
  identityFile?: string;
  /** Passphrase of the identity file, if it has one. */
  passphrase?: string;
  knownHostsFile: string;
  /** Use the SSH agent at this socket path (config `agent: true` means $SSH_AUTH_SOCK). */
  agentSocket?: string;
  keepaliveIntervalMs: number;
  connectTimeoutMs: number;
  backoff?: { baseMs: number; capMs: number };
  random?: () => number;
  logger?: Logger;
}

export interface SshHostEvents {
  up: [];
  down: [reason: Error];
}

const KEEPALIVE_COUNT_MAX = 3;
/**
 * Runs a long-lived program on the remote host so that it ends when the channel's stdin reaches
 * EOF: sshd does not act on SSH "signal" requests for exec channels, and a program that only
 * waits (virsh qemu-monitor-event, tail on a quiet file) would outlive its channel. The program
 * runs in the background (stdin from /dev/null), a watcher reading the channel's stdin (saved as
 * fd 3, since a background list's own stdin is /dev/null) kills it on EOF, and the wrapper exits
 * with the program's status.
 */
const FOLLOW_WRAPPER = 'exec 3<&0; "$@" 3<&- & p=$!; { cat <&3 >/dev/null; kill "$p"; } >/dev/null 2>&1 & w=$!; exec 3<&-; wait "$p"; s=$?; kill "$w" 2>/dev/null; exit "$s"';
const STDERR_KEEP_CHARS = 64 * 1024;
/** What an sshd_config (and the key's authorized_keys line) must say for a direct-tcpip channel. */
const TCP_FORWARD_SETTINGS = 'AllowTcpForwarding yes or local; PermitOpen and authorized_keys options admitting the target';
const DEFAULT_BACKOFF = { baseMs: 500, capMs: 30_000 };
/** Host key algorithms ssh2 negotiates for each key type found in known_hosts. */
const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * A remote machine over ONE SSH connection (ssh2) that carries every channel: commands, followed
 * files, forwarded unix sockets and forwarded TCP connections. The host key must be in the
 * known_hosts file (hashed entries too); an unknown or changed key is refused. A lost connection
 * is re-established with exponential backoff and full jitter; while it is down, calls fail at once
 * rather than wait, so a dead host never holds up the others.
 */
export class SshHost extends EventEmitter<SshHostEvents> implements Host {
  readonly kind = 'ssh' as const;
  readonly name: string;
  private client: Client | undefined;
  private connected = false;
  private connecting: Promise<Client> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastError: Error | undefined;
  private connects = 0;
  private handshaking: Client | undefined;
  /** The SFTP channel of the current connection (readFile), opened on first use. */
  private sftp: { client: Client; channel: Promise<SFTPWrapper | null> } | undefined;
  private readonly backoff: Backoff;
  private readonly logger: Logger | undefined;

  constructor(private readonly options: SshHostOptions) {
    super();
    this.name = options.name;
    this.backoff = new Backoff({ ...(options.backoff ?? DEFAULT_BACKOFF), random: options.random });
    this.logger = options.logger?.child({ host: options.name });
  }

  get up(): boolean {
    return this.connected;
  }

  /** Connections established so far (the first, then each reconnect). */
  get connectCount(): number {
    return this.connects;
  }

  get lastFailure(): Error | undefined {
    return this.lastError;
  }

  /** Starts connecting now (otherwise the first call does); later drops reconnect by themselves. */
  start(): void {
    if (!this.closed && !this.connected && !this.connecting && !this.retryTimer) void this.connect().catch(() => undefined);
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const command = quoteShellCommand(argv);
    const client = await this.ready();
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      client.exec(command, (err, stream) => (err ? reject(this.channelError(argv, err)) : resolve(stream))),
    );
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      let outBytes = 0;
      let stderr = '';
      let code: number | null = null;
      let signal: string | null = null;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        if (err) {
          channel.close();
          reject(err);
        } else resolve({ stdout: Buffer.concat(out), stderr, code, signal });
      };
      if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
        timer = setTimeout(() => {
          channel.signal('KILL');
          finish(new LivemigError('LME_HOST_EXEC', [this.name, argv.join(' '), `no exit within ${options.timeoutMs} ms`]));
        }, options.timeoutMs);
      }
      channel.on('data', (chunk: Buffer) => {
        outBytes += chunk.length;
        if (outBytes > MAX_EXEC_OUTPUT_BYTES) finish(new LivemigError('LME_HOST_EXEC', [this.name, argv.join(' '), `more than ${MAX_EXEC_OUTPUT_BYTES} bytes of output`]));
        else out.push(chunk);
      });
      channel.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < STDERR_KEEP_CHARS) stderr += chunk.toString('utf8');
      });
      channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
        code = typeof exitCode === 'number' ? exitCode : null;
        signal = exitSignal ?? null;
      });
      channel.on('close', () => {
        if (code === null && signal === null) finish(new LivemigError('LME_SSH_CLOSED', [this.name, `channel of "${argv.join(' ')}" ended without an exit status`]));
        else finish(null);
      });
      channel.on('error', (err: Error) => finish(this.channelError(argv, err)));
      channel.end(options.input ?? undefined);
    });
  }

  spawn(argv: readonly string[]): HostProcess {
    const command = quoteShellCommand(['sh', '-c', FOLLOW_WRAPPER, 'sh', ...argv]);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let channel: ClientChannel | undefined;
    let killed = false;
    let resolveExit: (value: { code: number | null; signal: string | null }) => void = () => undefined;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      resolveExit = resolve;
    });
    const end = (code: number | null, signal: string | null) => {
      stdout.end();
      stderr.end();
      resolveExit({ code, signal });
    };
    this.ready()
      .then((client) =>
        client.exec(command, (err, stream) => {
          if (err) {
            stderr.write(`${this.channelError(argv, err).message}\n`);
            return end(null, 'SSH');
          }
          channel = stream;
          if (killed) stream.close();
          let code: number | null = null;
          let signal: string | null = null;
          stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
            code = typeof exitCode === 'number' ? exitCode : null;
            signal = exitSignal ?? null;
          });
          stream.pipe(stdout, { end: false });
          stream.stderr.pipe(stderr, { end: false });
          stream.on('close', () => end(code, code === null && signal === null ? 'SSH' : signal));
          stream.on('error', () => undefined);
          if (killed) stream.end();
        }),
      )
      .catch((err: unknown) => {
        stderr.write(`${errorMessage(err)}\n`);
        end(null, 'SSH');
      });
    return {
      stdout,
      stderr,
      exited,
      kill: () => {
        if (killed) return;
        killed = true;
        // EOF on the channel's stdin makes the wrapper kill the program (sshd ignores signal requests).
        channel?.end();
      },
    };
  }

  /**
   * Reads a file over the connection's one SFTP channel (no process started on the host per
   * read, which matters at one read per second per host); where sshd has no sftp subsystem,
   * with `cat` instead.
   */
  async readFile(path: string): Promise<Buffer> {
    const timeoutMs = Math.max(1000, this.options.connectTimeoutMs);
    const sftp = await this.sftpChannel();
    if (!sftp) {
      const argv = ['cat', '--', path];
      const result = await this.exec(argv, { timeoutMs });
      if (result.code !== 0) throw execFailure(this.name, argv, result);
      return result.stdout;
    }
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LivemigError('LME_HOST_EXEC', [this.name, `sftp read ${path}`, `no answer within ${timeoutMs} ms`])), timeoutMs);
      sftp.readFile(path, (err: Error | null | undefined, data: Buffer) => {
        clearTimeout(timer);
        if (err) reject(new LivemigError('LME_HOST_EXEC', [this.name, `sftp read ${path}`, err.message], { cause: err }));
        else resolve(data);
      });
    });
  }

  /** The connection's SFTP channel, opened on first use; null when the server offers none. */
  private sftpChannel(): Promise<SFTPWrapper | null> {
    return this.ready().then((client) => {
      if (this.sftp?.client === client) return this.sftp.channel;
      const channel = new Promise<SFTPWrapper | null>((resolve) =>
        client.sftp((err, sftp) => {
          if (err) {
            this.logger?.info({ err: err.message }, 'no SFTP on this host: reading files with cat');
            return resolve(null);
          }
          sftp.on('close', () => {
            if (this.sftp?.client === client) this.sftp = undefined;
          });
          sftp.on('error', () => undefined);
          resolve(sftp);
        }),
      );
      this.sftp = { client, channel };
      return channel;
    });
  }

  async connectUnix(path: string): Promise<Duplex> {
    const client = await this.ready();
    return new Promise((resolve, reject) =>
      client.openssh_forwardOutStreamLocal(path, (err, channel) =>
        err ? reject(new LivemigError('LME_SSH_CHANNEL', [this.name, `unix socket ${path}`, err.message], { cause: err })) : resolve(channel),
      ),
    );
  }

  /**
   * A direct-tcpip channel on the one connection: sshd connects to `host:port` from the remote
   * machine (so 127.0.0.1 is its loopback). sshd must allow it (`AllowTcpForwarding`, which is on
   * by default); a refusal is LME_SSH_FORWARD_REFUSED, not a QEMU that is not running.
   */
  async connectTcp(host: string, port: number): Promise<Duplex> {
    const client = await this.ready();
    const target = `${host}:${port}`;
    return new Promise((resolve, reject) =>
      // The originator address and port are informational for sshd (it logs them); nothing listens there.
      client.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
        if (!err) return resolve(channel);
        const what = `TCP to ${target}`;
        if (channelOpenReason(err) === OPEN_ADMINISTRATIVELY_PROHIBITED) {
          reject(new LivemigError('LME_SSH_FORWARD_REFUSED', [this.name, what, err.message, TCP_FORWARD_SETTINGS], { cause: err }));
        } else reject(new LivemigError('LME_SSH_CHANNEL', [this.name, what, err.message], { cause: err }));
      }),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // A handshake under way (a silent host) must not keep the process alive until its timeout.
    this.handshaking?.destroy();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      client.end();
    });
  }

  /** The connected client; while the host is down (between retries) fails at once. */
  private ready(): Promise<Client> {
    if (this.closed) return Promise.reject(new LivemigError('LME_SSH_CLOSED', [this.name, 'host closed by the exporter']));
    if (this.connected && this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    if (this.retryTimer) {
      return Promise.reject(new LivemigError('LME_SSH_DOWN', [this.name, errorMessage(this.lastError ?? 'not connected')]));
    }
    return this.connect();
  }

  private connect(): Promise<Client> {
    const attempt = this.openClient().finally(() => {
      this.connecting = undefined;
    });
    this.connecting = attempt;
    attempt.catch((err: unknown) => this.failed(err instanceof Error ? err : new Error(String(err))));
    return attempt;
  }

  private async openClient(): Promise<Client> {
    const { address, port, user } = this.options;
    const knownHostsText = await readFile(this.options.knownHostsFile, 'utf8').catch((err: unknown) => {
      throw new LivemigError('LME_SSH_KNOWN_HOSTS', [this.options.knownHostsFile, errorMessage(err)], { cause: err });
    });
    const known = parseKnownHosts(knownHostsText);
    for (const bad of known.invalid) this.logger?.warn({ file: this.options.knownHostsFile, line: bad.line, reason: bad.reason }, 'known_hosts line skipped');
    const types = knownKeyTypes(known.entries, address, port);
    const serverHostKey = types.flatMap((t) => ALGORITHMS_FOR_KEY_TYPE[t] ?? []);
    let refusal: LivemigError | undefined;
    const config: ConnectConfig = {
      host: address,
      port,
      username: user,
      readyTimeout: this.options.connectTimeoutMs,
      keepaliveInterval: this.options.keepaliveIntervalMs,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      hostVerifier: (key: Buffer) => {
        const keyType = keyTypeOfBlob(key) ?? '(unreadable key)';
        const verdict = verifyHostKey(known.entries, address, port, keyType, key);
        if (verdict.ok) return true;
        const where = `${address}:${port}`;
        if (verdict.reason === 'unknown') {
          refusal = new LivemigError('LME_SSH_HOST_KEY_UNKNOWN', [this.name, where, keyType, this.options.knownHostsFile]);
        } else if (verdict.reason === 'changed') {
          refusal = new LivemigError('LME_SSH_HOST_KEY_CHANGED', [this.name, where, keyType, this.options.knownHostsFile, verdict.lines.join(', ')]);
        } else {
          refusal = new LivemigError('LME_SSH_HOST_KEY_CHANGED', [this.name, where, keyType, this.options.knownHostsFile, `${verdict.line} (@revoked)`]);
        }
        return false;
      },
      ...(serverHostKey.length ? { algorithms: { serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
    };
    if (this.options.identityFile) {
      config.privateKey = await readFile(this.options.identityFile).catch((err: unknown) => {
        throw new LivemigError('LME_SSH_CONNECT', [this.name, `${address}:${port}`, `identity file ${this.options.identityFile}: ${errorMessage(err)}`]);
      });
      if (this.options.passphrase) config.passphrase = this.options.passphrase;
    }
    if (this.options.agentSocket) config.agent = this.options.agentSocket;

    const client = new Client();
    this.handshaking = client;
    return new Promise<Client>((resolve, reject) => {
      let isReady = false;
      client.once('ready', () => {
        isReady = true;
        this.handshaking = undefined;
        if (this.closed) {
          client.end();
          reject(new LivemigError('LME_SSH_CLOSED', [this.name, 'host closed by the exporter']));
          return;
        }
        this.client = client;
        this.connected = true;
        this.connects++;
        this.backoff.reset();
        this.lastError = undefined;
        this.logger?.info({ address, port, connects: this.connects }, 'SSH connection up');
        this.emit('up');
        resolve(client);
      });
      client.on('error', (err: Error) => {
        if (isReady) {
          this.lastError = new LivemigError('LME_SSH_CLOSED', [this.name, err.message], { cause: err });
          return;
        }
        reject(refusal ?? new LivemigError('LME_SSH_CONNECT', [this.name, `${address}:${port}`, err.message], { cause: err }));
      });
      client.once('close', () => {
        if (this.handshaking === client) this.handshaking = undefined;
        if (!isReady) {
          reject(refusal ?? new LivemigError('LME_SSH_CONNECT', [this.name, `${address}:${port}`, 'connection closed during the handshake']));
          return;
        }
        if (this.client === client) this.client = undefined;
        this.connected = false;
        const reason = this.lastError ?? new LivemigError('LME_SSH_CLOSED', [this.name, 'connection closed']);
        this.lastError = reason;
        this.emit('down', reason);
        if (this.closed) return;
        this.logger?.warn({ err: reason.message }, 'SSH connection lost; reconnecting');
        this.scheduleRetry();
      });
      client.connect(config);
    });
  }

  private failed(err: Error): void {
    const repeated = this.lastError?.message === err.message;
    this.lastError = err;
    if (this.closed) return;
    const level = err instanceof LivemigError && err.code.startsWith('LME_SSH_HOST_KEY') ? 'error' : 'warn';
    if (!repeated) this.logger?.[level]({ err: err.message }, 'SSH connection failed');
    else this.logger?.debug({ err: err.message }, 'SSH connection failed again');
    this.emit('down', err);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.backoff.nextDelayMs();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) void this.connect().catch(() => undefined);
    }, delay);
    this.retryTimer.unref();
  }

  private channelError(argv: readonly string[], err: Error): LivemigError {
    return new LivemigError('LME_SSH_CHANNEL', [this.name, `command "${argv.join(' ')}"`, err.message], { cause: err });
  }
}
