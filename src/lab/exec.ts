import { execFile, execFileSync } from 'node:child_process';
import { LivemigError, errorMessage, type ErrorCode } from '../errors.js';

/**
 * Runs the lab's system tools (ip, tc, apt-get, dpkg-deb, gcc) with argument arrays, never a
 * shell. A missing tool becomes LME_LAB_TOOL_MISSING with the Debian package to install;
 * a failing one, the caller's error code (a `%s: %s` template) with its subject, the command
 * line and the tool's stderr.
 */

export interface ToolRun {
  /** The binary, looked up on PATH; also the name in errors. */
  tool: string;
  args: readonly string[];
  /** Debian package that provides the tool, for the "not installed" error. */
  packageName: string;
  /** The error for a tool that ran and failed: `code` with [subject, "COMMAND failed: STDERR"]. */
  failure: { code: ErrorCode; subject: string };
  cwd?: string;
  timeoutMs?: number;
}

export interface ToolOutput {
  stdout: string;
  stderr: string;
}

export const DEFAULT_TOOL_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export function runTool(run: ToolRun): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    const options = { cwd: run.cwd, timeout: run.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' as const };
    execFile(run.tool, [...run.args], options, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      reject(toolError(run, err, stderr));
    });
  });
}

/** The same, blocking: for process-exit hooks, where nothing asynchronous runs any more. */
export function runToolSync(run: ToolRun): ToolOutput {
  try {
    const stdout = execFileSync(run.tool, [...run.args], { cwd: run.cwd, timeout: run.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { stdout, stderr: '' };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '');
    throw toolError(run, err as ExecFailure, stderr);
  }
}

/** `tool arg ...` for messages; arguments with spaces are quoted. */
export function commandLine(tool: string, args: readonly string[]): string {
  return [tool, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word))).join(' ');
}

interface ExecFailure extends Error {
  code?: string | number | null;
  syscall?: string;
  killed?: boolean;
  signal?: string | null;
}

function toolError(run: ToolRun, err: ExecFailure, stderr: string): LivemigError {
  if (err.code === 'ENOENT' && err.syscall?.startsWith('spawn')) {
    return new LivemigError('LME_LAB_TOOL_MISSING', [run.tool, `install Debian package ${run.packageName}`], { cause: err });
  }
  const reason = err.killed ? `killed (${err.signal ?? 'timeout'}) after ${run.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS} ms` : stderr.trim() || errorMessage(err);
  return new LivemigError(run.failure.code, [run.failure.subject, `${commandLine(run.tool, run.args)} failed: ${reason}`], { cause: err });
}
