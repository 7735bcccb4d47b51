import { spawn, type ChildProcess } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { LivemigError, livemigError } from '../errors.js';
import { accelArgs, detectAccel, type Accel } from './accel.js';
import { GUEST_IMAGE_BYTES } from './guest/build.js';
import { setTimeout as delay } from 'node:timers/promises';

/** The memory-dirtying guest (src/lab/guest/dirty.asm) and its two inputs. */
export interface DirtyGuest {
  /** Image from buildDirtyGuest(). */
  image: string;
  /** N: MiB written again and again, one dword per 4 KiB page per pass. */
  dirtyMiB: number;
  /** F: MiB touched once, before the dirty range. */
  fillMiB: number;
}

/**
 * A Linux kernel and initramfs booted by QEMU's own firmware (`-kernel`, `-initrd`, `-append`),
 * its serial console on QEMU's stdout: the Linux guest of src/lab/guest/linux.ts.
 */
export interface KernelGuest {
  kernel: string;
  initrd: string;
  /** The kernel command line (linuxGuestAppend()); needs console=ttyS0 for the markers. */
  append: string;
}

export interface QemuOptions {
  /** VM name: QEMU's `-name`, and the name in every error. */
  name: string;
  memoryMiB: number;
  guest: DirtyGuest | KernelGuest;
  /** Unix socket paths, one QMP monitor each (an orchestrator and an exporter can share a VM). */
  qmpSockets: string[];
  /** Default: detectAccel(). */
  accel?: Accel;
  /** Start as a migration destination (`-incoming defer`, then QMP `migrate-incoming`). */
  incoming?: boolean;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  qemuBinary?: string;
  ipBinary?: string;
  /** Appended as they are, after the harness's own arguments. */
  extraArgs?: string[];
  /** Time between SIGTERM and SIGKILL in stop(). */
  stopGraceMs?: number;
}

/**
 * Lines the guest writes to its console, in this order: the bare guest's `protected`, or the
 * Linux guest's `ready` (eth0 is up), then `filled` and `dirtying` from both.
 */
export type GuestMarker = 'protected' | 'ready' | 'filled' | 'dirtying';

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
}

export interface QemuHandle {
  readonly name: string;
  readonly pid: number;
  readonly accel: Accel;
  readonly qmpSockets: readonly string[];
  /** The full command line, for logs. */
  readonly argv: readonly string[];
  /** Settles when the process has exited and its output is drained; never rejects. */
  readonly exited: Promise<QemuExit>;
  /** Resolves once every QMP socket file exists. */
  waitForMonitor(timeoutMs?: number): Promise<void>;
  waitForGuest(marker: GuestMarker, timeoutMs?: number): Promise<void>;
  /** The guest has touched its F MiB and is about to start dirtying. */
  waitForFilled(timeoutMs?: number): Promise<void>;
  /** What the guest wrote to its debug console so far. */
  guestOutput(): string;
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after the grace period; resolves with the exit. */
  stop(graceMs?: number): Promise<QemuExit>;
  /** Sends a signal (default SIGKILL) unless the process has already exited. */
  kill(signal?: NodeJS.Signals): void;
}

export const QEMU_BINARY = 'qemu-system-x86_64';
export const DEFAULT_STOP_GRACE_MS = 3_000;
export const DEFAULT_WAIT_MS = 10_000;
/** The guest writes only 32-bit addresses below the PCI hole of the pc machine. */
export const GUEST_ADDRESSABLE_MIB = 3072;
export const GUEST_PARAM_DIRTY_ADDR = 0x500;
export const GUEST_PARAM_FILL_ADDR = 0x504;
const DEBUGCON_PORT = '0x402';
const GUEST_FIRST_MIB = 1;
const SUN_PATH_MAX = 107;
const OUTPUT_KEEP_CHARS = 8 * 1024;
const POLL_MS = 10;

/** The QEMU command line (without the binary) for one VM. Pure; throws on unusable options. */
export function qemuArgs(options: QemuOptions & { accel: Accel }): string[] {
  checkOptions(options);
  const args = [
    '-name', options.name,
    '-machine', 'pc',
    '-m', String(options.memoryMiB),
    '-smp', '1',
    ...accelArgs(options.accel),
    '-display', 'none',
    '-nodefaults',
    '-no-user-config',
    ...guestArgs(options.guest),
  ];
  for (const path of options.qmpSockets) args.push('-qmp', `unix:${path},server=on,wait=off`);
  if (options.incoming) args.push('-incoming', 'defer');
  return [...args, ...(options.extraArgs ?? [])];
}

function guestArgs(guest: DirtyGuest | KernelGuest): string[] {
  // The guest's progress lines arrive on QEMU's stdout.
  const guestConsole = ['-chardev', 'stdio,id=guestlog,signal=off'];
  if (isKernelGuest(guest)) {
    return ['-kernel', guest.kernel, '-initrd', guest.initrd, '-append', guest.append, ...guestConsole, '-serial', 'chardev:guestlog'];
  }
  return [
    '-bios', guest.image,
    '-device', loaderArg(GUEST_PARAM_DIRTY_ADDR, guest.dirtyMiB),
    '-device', loaderArg(GUEST_PARAM_FILL_ADDR, guest.fillMiB),
    ...guestConsole,
    '-device', `isa-debugcon,iobase=${DEBUGCON_PORT},chardev=guestlog`,
  ];
}

export function isKernelGuest(guest: DirtyGuest | KernelGuest): guest is KernelGuest {
  return 'kernel' in guest;
}

function loaderArg(addr: number, value: number): string {
  return `loader,addr=0x${addr.toString(16)},data=${value},data-len=4`;
}

function checkOptions(options: QemuOptions): void {
  const { name, memoryMiB, guest, qmpSockets } = options;
  const fail = (detail: string): never => {
    throw livemigError('LME_LAB_QEMU', name, detail);
  };
  if (!/^[A-Za-z0-9._-]+$/.test(name)) fail(`name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-'`);
  if (!Number.isSafeInteger(memoryMiB) || memoryMiB <= 0) fail(`memoryMiB ${memoryMiB} is not a whole number of MiB`);
  if (isKernelGuest(guest)) {
    for (const path of [guest.kernel, guest.initrd]) if (path.includes(',')) fail(`guest file path ${path} contains ','`);
  } else {
    checkDirtyGuest(guest, memoryMiB, fail);
  }
  if (qmpSockets.length === 0) fail('needs at least one QMP socket');
  for (const path of qmpSockets) {
    if (Buffer.byteLength(path) > SUN_PATH_MAX) fail(`QMP socket path ${path} is longer than ${SUN_PATH_MAX} bytes`);
    if (path.includes(',')) fail(`QMP socket path ${path} contains ',' (QEMU's option separator)`);
  }
}

function checkDirtyGuest(guest: DirtyGuest, memoryMiB: number, fail: (detail: string) => never): void {
  for (const [field, value] of [['guest.dirtyMiB', guest.dirtyMiB], ['guest.fillMiB', guest.fillMiB]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) fail(`${field} ${value} is not a whole number of MiB`);
  }
  const needed = GUEST_FIRST_MIB + guest.fillMiB + guest.dirtyMiB;
  const usable = Math.min(memoryMiB, GUEST_ADDRESSABLE_MIB);
  if (needed > usable) {
    fail(`guest needs 1 + F ${guest.fillMiB} + N ${guest.dirtyMiB} = ${needed} MiB but can use ${usable} MiB (memoryMiB ${memoryMiB})`);
  }
  if (guest.image.includes(',')) fail(`guest image path ${guest.image} contains ','`);
}

/** Starts one VM. Resolves once the process runs; then await waitForMonitor() before QMP. */
export async function startQemu(options: QemuOptions): Promise<QemuHandle> {
  const accel = options.accel ?? detectAccel();
  const args = qemuArgs({ ...options, accel });
  await checkGuestFiles(options.name, options.guest);
  const qemu = options.qemuBinary ?? QEMU_BINARY;
  const ip = options.ipBinary ?? 'ip';
  // QEMU replaces a stale socket file only when it gets there; waitForMonitor must not see the old one.
  await Promise.all(options.qmpSockets.map((path) => rm(path, { force: true })));
  const argv = options.netns ? [ip, 'netns', 'exec', options.netns, qemu, ...args] : [qemu, ...args];
  const [command, ...commandArgs] = argv as [string, ...string[]];
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  await spawned(child, command, options.name);
  return new RunningQemu(child, argv, { ...options, accel });
}

/** QEMU checks its guest files only after it has opened its monitors, then exits: say why up front. */
async function checkGuestFiles(name: string, guest: DirtyGuest | KernelGuest): Promise<void> {
  if (!isKernelGuest(guest)) return checkImage(name, guest.image);
  for (const [role, path] of [['kernel', guest.kernel], ['initrd', guest.initrd]] as const) {
    const problem = await stat(path).then(
      (info) => (info.isFile() ? undefined : 'not a file'),
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    if (problem) throw livemigError('LME_LAB_QEMU', name, `guest ${role} ${path} is unusable (${problem})`);
  }
}

async function checkImage(name: string, image: string): Promise<void> {
  const found = await stat(image).then(
    (info) => `${info.size} bytes`,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
  if (found !== `${GUEST_IMAGE_BYTES} bytes`) {
    throw livemigError('LME_LAB_QEMU', name, `guest image ${image} is not a ${GUEST_IMAGE_BYTES}-byte -bios image (${found})`);
  }
}

function spawned(child: ChildProcess, command: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new LivemigError('LME_LAB_TOOL_MISSING', [command, 'install qemu-system-x86 (and iproute2 for netns)'], { cause: err })
          : new LivemigError('LME_LAB_QEMU', [name, `cannot start ${command}: ${err.message}`], { cause: err }),
      );
    });
  });
}

class RunningQemu implements QemuHandle {
  readonly name: string;
  readonly pid: number;
  readonly accel: Accel;
  readonly qmpSockets: readonly string[];
  readonly exited: Promise<QemuExit>;
  private exit: QemuExit | undefined;
  private stdout = '';
  private stderr = '';
  private readonly stopGraceMs: number;

  constructor(
    private readonly child: ChildProcess,
    readonly argv: readonly string[],
    options: QemuOptions & { accel: Accel },
  ) {
    this.name = options.name;
    this.pid = child.pid as number;
    this.accel = options.accel;
    this.qmpSockets = [...options.qmpSockets];
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout = (this.stdout + chunk).slice(-OUTPUT_KEEP_CHARS);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-OUTPUT_KEEP_CHARS);
    });
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        liveChildren.delete(child);
        this.exit = { code, signal, stderrTail: this.stderr };
        resolve(this.exit);
      });
    });
    killLeftoversOnExit();
  }

  async waitForMonitor(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await this.waitUntil(() => `QMP sockets ${this.qmpSockets.join(', ')}`, timeoutMs, async () => {
      const found = await Promise.all(this.qmpSockets.map(isSocket));
      return found.every(Boolean);
    });
  }

  async waitForGuest(marker: GuestMarker, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    const what = (): string => `guest line "${marker}" (guest output so far: ${JSON.stringify(this.stdout)})`;
    // A serial console ends its lines with CR LF, the debug console with LF.
    await this.waitUntil(what, timeoutMs, () => this.stdout.split(/\r?\n/).slice(0, -1).includes(marker));
  }

  waitForFilled(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return this.waitForGuest('filled', timeoutMs);
  }

  guestOutput(): string {
    return this.stdout;
  }

  stderrTail(): string {
    return this.stderr;
  }

  async stop(graceMs = this.stopGraceMs): Promise<QemuExit> {
    if (this.exit) return this.exit;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exit || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  /** Polls `ready` until true; fails early, with QEMU's stderr, if the process exits first. */
  private async waitUntil(what: () => string, timeoutMs: number, ready: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await ready()) return;
      if (this.exit) throw this.failure(`exited (${describeExit(this.exit)}) while waiting for ${what()}; stderr: ${this.exit.stderrTail.trim()}`);
      if (Date.now() >= deadline) throw this.failure(`waited ${timeoutMs} ms in vain for ${what()}; stderr: ${this.stderr.trim()}`);
      await Promise.race([delay(POLL_MS), this.exited]);
    }
  }

  private failure(detail: string): LivemigError {
    return livemigError('LME_LAB_QEMU', `${this.name} (pid ${this.pid})`, detail);
  }
}

function describeExit(exit: QemuExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}


/** A test runner that dies must not leave guests running: the last resort is SIGKILL at exit. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLeftoversOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}
