import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { livemigError } from '../../errors.js';
import { runTool } from '../exec.js';
import { newcArchive, type CpioEntry } from './cpio.js';
import { DEFAULT_GUEST_CACHE_DIR } from './build.js';
import { candidatePackage, dependencyMatching, downloadPackage, extractPackage, type DebianPackage } from './debian.js';
import { loadOrder, moduleDepends, moduleName, parseModinfo, parseModulesBuiltin } from './kmod.js';

/**
 * The Linux guest, for scenarios where the VM must answer ping (lab-notes: it boots under TCG
 * only). Built here from Debian's cloud kernel, busybox-static and our own init sources
 * (src/lab/guest/init/): a kernel image and a gzipped newc initramfs, cached in outDir under a
 * hash of every input (package versions, sources, recipe), so a second build downloads nothing.
 */

export interface LinuxGuestImage {
  /** The kernel (`-kernel`). */
  kernel: string;
  /** The initramfs (`-initrd`). */
  initrd: string;
  /** `uname -r` of the kernel, e.g. 6.1.0-56-cloud-amd64. */
  kernelRelease: string;
  /** Debian packages used, name -> version. */
  packages: Record<string, string>;
  /** Modules the init loads, in load order (empty when the kernel has them built in). */
  modules: string[];
}

export interface BuildLinuxGuestOptions {
  /** A kernel metapackage or a kernel image package; default linux-image-cloud-amd64. */
  kernelPackage?: string;
  busyboxPackage?: string;
  /** The C compiler (needs static glibc: Debian libc6-dev). */
  gcc?: string;
  /** Parent of the temporary build directory. */
  workDir?: string;
}

/** What the guest's kernel command line carries (lme.* parameters, read by init.sh and dirty.c). */
export interface LinuxGuestParams {
  /** eth0's address with prefix length, e.g. 198.19.0.10/24. */
  address: string;
  /** net.ipv4.conf.all.arp_notify: announce the guest after a migration. */
  arpNotify: boolean;
  /** F: MiB filled once. */
  fillMiB: number;
  /** N: MiB dirtied forever, one word per 4 KiB page per pass. */
  dirtyMiB: number;
}

export const DEFAULT_KERNEL_PACKAGE = 'linux-image-cloud-amd64';
export const DEFAULT_BUSYBOX_PACKAGE = 'busybox-static';
/** virtio-net on virtio-pci; in Debian's cloud kernel both are modules. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net'] as const;
/** Bump when the way the image is put together changes without any input changing. */
const RECIPE = 'linux-guest-1';
const BUSYBOX_APPLETS = ['sh', 'cat', 'dmesg', 'insmod', 'ip', 'ls', 'mount', 'ps', 'sleep', 'tr'];
const INIT_SOURCES = { init: 'init.sh', dirty: 'dirty.c' } as const;
const MANIFEST = 'guest.json';

export async function buildLinuxGuest(outDir: string = DEFAULT_GUEST_CACHE_DIR, options: BuildLinuxGuestOptions = {}): Promise<LinuxGuestImage> {
  const sources = { init: linuxGuestSource(INIT_SOURCES.init), dirty: linuxGuestSource(INIT_SOURCES.dirty) };
  const [initText, dirtyText] = await Promise.all([readFile(sources.init), readFile(sources.dirty)]);
  const [meta, busyboxPackage] = await Promise.all([
    candidatePackage(options.kernelPackage ?? DEFAULT_KERNEL_PACKAGE),
    candidatePackage(options.busyboxPackage ?? DEFAULT_BUSYBOX_PACKAGE),
  ]);
  // A metapackage (linux-image-cloud-amd64) names the versioned image package it stands for.
  const kernelPackage = /^linux-image-\d/.test(meta.name) ? meta : await candidatePackage(dependencyMatching(meta, /^linux-image-\d/));
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE, kernel: versionOf(kernelPackage), busybox: versionOf(busyboxPackage), modules: GUEST_MODULES, applets: BUSYBOX_APPLETS }))
    .update(initText)
    .update(dirtyText)
    .digest('hex')
    .slice(0, 16);
  const dir = join(outDir, `linux-${key}`);
  const cached = await readManifest(dir);
  if (cached) return cached;

  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(join(options.workDir ?? tmpdir(), 'lme-linux-guest-'));
  // Parallel builders each fill their own directory; the rename into place is atomic.
  const partial = `${dir}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await buildInto(partial, work, { kernelPackage, busyboxPackage, sources, initText, gcc: options.gcc ?? 'gcc' });
    await rename(partial, dir).catch((err: NodeJS.ErrnoException) => {
      // Another builder got there first: its complete copy is in place.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
    const image = await readManifest(dir);
    if (!image) throw livemigError('LME_LAB_GUEST_BUILD', dir, `built, but ${MANIFEST}, vmlinuz or initrd.img is missing`);
    return image;
  } finally {
    await Promise.all([rm(work, { recursive: true, force: true }), rm(partial, { recursive: true, force: true })]);
  }
}

/** The kernel command line for one guest: its console, then the lme.* parameters. */
export function linuxGuestAppend(params: LinuxGuestParams): string {
  const bad = (field: string, why: string): never => {
    throw livemigError('LME_LAB_QEMU', 'linux guest', `${field} ${why}`);
  };
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(params.address);
  if (!match || match.slice(1, 5).some((octet) => Number(octet) > 255) || Number(match[5]) > 32) {
    bad('address', `${JSON.stringify(params.address)} is not IPv4 ADDRESS/PREFIX`);
  }
  for (const [field, value] of [['fillMiB', params.fillMiB], ['dirtyMiB', params.dirtyMiB]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) bad(field, `${value} is not a whole number of MiB`);
  }
  return [
    'console=ttyS0',
    // Warnings and worse only: kernel lines must not cut through the markers.
    'loglevel=4',
    // No IPv6 chatter (router solicitations, MLD): the guest sends frames only when asked to,
    // so only ARP and announcements move the bridges' forwarding entries after a migration.
    'ipv6.disable=1',
    `lme.addr=${params.address}`,
    `lme.arp_notify=${params.arpNotify ? 1 : 0}`,
    `lme.fill=${params.fillMiB}`,
    `lme.dirty=${params.dirtyMiB}`,
  ].join(' ');
}

/** init.sh and dirty.c: next to this module in src/ (tsx) or dist/ (the build copies them), else src/. */
export function linuxGuestSource(file: string): string {
  const candidates = [
    fileURLToPath(new URL(`./init/${file}`, import.meta.url)),
    fileURLToPath(new URL(`../../../src/lab/guest/init/${file}`, import.meta.url)),
  ];
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw livemigError('LME_LAB_GUEST_BUILD', candidates.join(' or '), 'no such file; the build must copy src/lab/guest/init/');
  return found;
}

interface BuildInputs {
  kernelPackage: DebianPackage;
  busyboxPackage: DebianPackage;
  sources: { init: string; dirty: string };
  initText: Buffer;
  gcc: string;
}

/** Downloads, unpacks, compiles and packs into dir: vmlinuz, initrd.img and the manifest. */
async function buildInto(dir: string, work: string, inputs: BuildInputs): Promise<void> {
  const debs = join(work, 'debs');
  const kernelRoot = join(work, 'kernel');
  const busyboxRoot = join(work, 'busybox');
  await Promise.all([debs, kernelRoot, busyboxRoot, dir].map((path) => mkdir(path, { recursive: true })));
  const kernelDeb = await downloadPackage(inputs.kernelPackage, debs);
  const busyboxDeb = await downloadPackage(inputs.busyboxPackage, debs);
  const dirtyBinary = join(work, 'dirty');
  await Promise.all([extractPackage(kernelDeb, kernelRoot), extractPackage(busyboxDeb, busyboxRoot), compileStatic(inputs.gcc, inputs.sources.dirty, dirtyBinary)]);

  const { kernel, release } = await findKernel(kernelRoot, kernelDeb);
  const modules = await guestModules(join(kernelRoot, 'lib', 'modules', release));
  const archive = newcArchive([
    ...['bin', 'sbin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'sys'].map((path): CpioEntry => ({ type: 'dir', path })),
    { type: 'char', path: 'dev/console', major: 5, minor: 1 },
    { type: 'file', path: 'init', data: inputs.initText, mode: 0o755 },
    { type: 'file', path: 'bin/busybox', data: await readExisting(join(busyboxRoot, 'bin', 'busybox'), busyboxDeb), mode: 0o755 },
    ...BUSYBOX_APPLETS.map((applet): CpioEntry => ({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' })),
    { type: 'file', path: 'sbin/dirty', data: await readFile(dirtyBinary), mode: 0o755 },
    ...modules.map(({ name, data }): CpioEntry => ({ type: 'file', path: `lib/modules/${name}.ko`, data })),
    { type: 'file', path: 'etc/lme-modules', data: Buffer.from(modules.map(({ name }) => `${name}\n`).join('')) },
  ]);

  const image: LinuxGuestImage = {
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    kernelRelease: release,
    packages: { [inputs.kernelPackage.name]: inputs.kernelPackage.version, [inputs.busyboxPackage.name]: inputs.busyboxPackage.version },
    modules: modules.map(({ name }) => name),
  };
  await copyFile(kernel, image.kernel);
  await writeFile(image.initrd, gzipSync(archive, { level: 9 }));
  await writeFile(join(dir, MANIFEST), `${JSON.stringify({ ...image, kernel: 'vmlinuz', initrd: 'initrd.img' }, null, 2)}\n`);
}

async function findKernel(root: string, deb: string): Promise<{ kernel: string; release: string }> {
  const boot = join(root, 'boot');
  const images = (await readdir(boot).catch(() => [])).filter((file) => file.startsWith('vmlinuz-'));
  if (images.length !== 1) throw livemigError('LME_LAB_GUEST_BUILD', deb, `expected one boot/vmlinuz-*, found ${images.length ? images.join(', ') : 'none'}`);
  const file = images[0] as string;
  return { kernel: join(boot, file), release: file.slice('vmlinuz-'.length) };
}

/** GUEST_MODULES and what they depend on, from the unpacked /lib/modules/RELEASE, in load order. */
async function guestModules(modulesDir: string): Promise<{ name: string; data: Buffer }[]> {
  const builtin = parseModulesBuiltin(await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => ''));
  const paths = await modulePaths(modulesDir);
  const found = new Map<string, { data: Buffer; depends: string[] }>();
  const pending: string[] = [...GUEST_MODULES];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (builtin.has(name) || found.has(name)) continue;
    const path = paths.get(name);
    if (!path) throw livemigError('LME_LAB_GUEST_BUILD', modulesDir, `module ${name} is neither built in nor a .ko file`);
    const data = await readFile(path);
    const depends = moduleDepends(parseModinfo(data, path));
    found.set(name, { data, depends });
    pending.push(...depends);
  }
  const order = loadOrder(GUEST_MODULES, (name) => found.get(name)?.depends ?? [], builtin);
  return order.flatMap((name) => {
    const module = found.get(name);
    return module ? [{ name, data: module.data }] : [];
  });
}

async function modulePaths(dir: string): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true })) {
    if (entry.endsWith('.ko')) paths.set(moduleName(entry.slice(entry.lastIndexOf('/') + 1)), join(dir, entry));
  }
  return paths;
}

function compileStatic(gcc: string, source: string, output: string): Promise<unknown> {
  return runTool({
    tool: gcc,
    args: ['-static', '-O2', '-Wall', '-o', output, source],
    packageName: 'gcc (and libc6-dev for the static C library)',
    failure: { code: 'LME_LAB_GUEST_BUILD', subject: source },
  });
}

async function readExisting(path: string, from: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw livemigError('LME_LAB_GUEST_BUILD', from, `has no ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** A complete cached build, or undefined (absent, half written or from another layout). */
async function readManifest(dir: string): Promise<LinuxGuestImage | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as LinuxGuestImage;
    const image = { ...manifest, kernel: join(dir, manifest.kernel), initrd: join(dir, manifest.initrd) };
    return existsSync(image.kernel) && existsSync(image.initrd) ? image : undefined;
  } catch {
    return undefined;
  }
}

function versionOf(pkg: DebianPackage): string {
  return `${pkg.name}=${pkg.version}`;
}
