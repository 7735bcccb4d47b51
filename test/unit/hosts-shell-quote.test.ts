import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quoteShellArg, quoteShellCommand } from '../../src/hosts/shell-quote.js';

/** What a real POSIX shell makes of a command line: each word printf'd with a NUL after it. */
function shellSplit(commandLine: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${commandLine}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

// Any string a config or a log line can hold: full unicode, shell metacharacters over-weighted.
const arg = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: fc.constantFrom("'", '"', '\\', '$', '`', ' ', '\n', '\t', '*', '?', '[', ']', '~', '#', ';', '&', '|', '(', ')', '<', '>', '!', '{', '}', '-', '=', '%'), maxLength: 12 }),
).filter((s) => !s.includes('\0'));

describe('quoteShellCommand', () => {
  it('round-trips any argv through a real sh -c', () => {
    fc.assert(
      fc.property(fc.array(arg, { minLength: 1, maxLength: 6 }), (argv) => {
        expect(shellSplit(argv.map(quoteShellArg).join(' '))).toEqual(argv);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any argv as a whole command line, program name included', () => {
    fc.assert(
      fc.property(fc.array(arg, { minLength: 1, maxLength: 5 }), (args) => {
        // The program is printf; everything after it comes back exactly.
        const out = execFileSync('sh', ['-c', quoteShellCommand(['printf', '%s\\0', ...args])], { encoding: 'utf8' });
        expect(out.split('\0').slice(0, -1)).toEqual(args);
      }),
      { numRuns: 100 },
    );
  });

  it('never lets the first word be a keyword or an assignment', () => {
    // Unquoted, `if` would be a syntax error and `A=1` an assignment; quoted, both are commands not found (127).
    for (const first of ['if', '!', 'A=1', '{']) {
      let status = 0;
      try {
        execFileSync('sh', ['-c', `${quoteShellCommand([first, 'x'])} 2>/dev/null`]);
      } catch (err) {
        status = (err as { status: number }).status;
      }
      expect(status, first).toBe(127);
    }
  });

  it('leaves plain words readable and quotes the rest', () => {
    expect(quoteShellCommand(['cat', '--', '/proc/net/dev'])).toBe("'cat' -- /proc/net/dev");
    expect(quoteShellArg('a=b')).toBe("'a=b'");
    expect(quoteShellArg('')).toBe("''");
    expect(quoteShellArg("it's")).toBe(`'it'\\''s'`);
    expect(quoteShellArg('$(reboot)')).toBe("'$(reboot)'");
  });

  it('refuses what no shell can carry', () => {
    expect(() => quoteShellArg('a\0b')).toThrow(/NUL/);
    expect(() => quoteShellCommand([])).toThrow(/program name/);
  });
});
