import { accessSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';

/**
 * Integration tests need real system tools (QEMU, virsh, nasm ...). Outside CI a missing tool
 * skips the suite with the reason; in CI (CI=true) it fails, so a broken install can never pass.
 */
export function missingTools(...tools: string[]): string | null {
  const missing = tools.filter((tool) => !onPath(tool));
  return missing.length ? `missing tools: ${missing.join(', ')}` : null;
}

export function needsRoot(): string | null {
  return process.getuid?.() === 0 ? null : 'needs root';
}

/** Returns true when the suite should run; throws in CI when it cannot. */
export function requireEnvironment(...reasons: (string | null)[]): boolean {
  const why = reasons.filter((r): r is string => r !== null);
  if (why.length === 0) return true;
  if (process.env.CI === 'true') throw new Error(`integration prerequisites not met in CI: ${why.join('; ')}`);
  console.error(`skipping integration suite: ${why.join('; ')}`);
  return false;
}

function onPath(tool: string): boolean {
  if (tool.includes('/')) {
    try {
      accessSync(tool, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * For one test that needs a capability (KVM, say): in CI its absence fails the test with the
 * cause; elsewhere the test is skipped with it.
 */
export function requireCapability(ctx: { skip: (note?: string) => never }, problem: string | null): void {
  if (!requireEnvironment(problem)) ctx.skip(problem ?? undefined);
}
