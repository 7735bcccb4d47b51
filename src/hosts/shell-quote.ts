/**
 * Quoting for a POSIX shell, for the remote side of SSH: the SSH protocol carries one command
 * string that the remote user's shell splits again, so every argument is quoted here, whatever
 * it holds (spaces, quotes, `$`, a leading dash, newlines, non-ASCII bytes).
 */

/**
 * Characters that never need quoting in a POSIX shell word that is not the first. (`=` is left
 * out: `a=b` as a first word would be an assignment.)
 */
const SAFE = /^[A-Za-z0-9_@%+:,./-]+$/;

/** Quotes one argument: single quotes, with each `'` written as `'\''`. */
export function quoteShellArg(arg: string): string {
  if (arg.includes('\0')) throw new TypeError(`a command argument cannot contain a NUL byte: ${JSON.stringify(arg)}`);
  if (arg !== '' && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Joins an argv into one command line that a POSIX shell splits back into exactly that argv. The
 * program name is always quoted: a quoted first word is never a reserved word (`if`, `!`), an
 * alias or an assignment.
 */
export function quoteShellCommand(argv: readonly string[]): string {
  const [program, ...args] = argv;
  if (program === undefined) throw new TypeError('a command needs at least the program name');
  if (program.includes('\0')) throw new TypeError(`a command argument cannot contain a NUL byte: ${JSON.stringify(program)}`);
  return [`'${program.replace(/'/g, `'\\''`)}'`, ...args.map(quoteShellArg)].join(' ');
}
