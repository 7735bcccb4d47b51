/**
 * A QMP peer that replays captured QEMU replies, run as a CHILD of bench/qmp-poll.ts so its CPU
 * is not counted as the exporter's. It greets like QEMU 7.2, accepts qmp_capabilities and
 * answers query-migrate and query-status with the fixtures named on the command line, in QEMU's
 * own layout (`{"return": ..., "id": N}` + CRLF). Any number of connections, one after another
 * or at once.
 *
 *   node --import tsx bench/qmp-replay-peer.ts SOCKET QUERY_MIGRATE_FIXTURE QUERY_STATUS_FIXTURE
 *
 * Prints "ready" once listening; on SIGTERM, or when its stdin closes (the parent died), it
 * prints its own CPU time as JSON, removes the socket and exits.
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { qemuJson, readFixture } from './common.js';

const args = process.argv.slice(2);
if (args.length !== 3) {
  console.error('usage: qmp-replay-peer.ts SOCKET QUERY_MIGRATE_FIXTURE QUERY_STATUS_FIXTURE');
  process.exit(2);
}
const [socketPath, migrateFixture, statusFixture] = args as [string, string, string];

const GREETING = `${qemuJson({
  QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' }, capabilities: ['oob'] },
})}\r\n`;

/** The `return` body of each command, serialised once. */
const RETURNS = new Map<string, string>([
  ['qmp_capabilities', '{}'],
  ['query-migrate', qemuJson(readFixture(migrateFixture))],
  ['query-status', qemuJson(readFixture(statusFixture))],
]);

let served = 0;

function answer(socket: Socket, line: string): void {
  let request: { execute?: unknown; id?: unknown };
  try {
    request = JSON.parse(line) as { execute?: unknown; id?: unknown };
  } catch {
    socket.write(`${qemuJson({ error: { class: 'GenericError', desc: 'JSON parse error' } })}\r\n`);
    return;
  }
  const id = request.id === undefined ? '' : `, "id": ${qemuJson(request.id)}`;
  const body = typeof request.execute === 'string' ? RETURNS.get(request.execute) : undefined;
  if (body === undefined) {
    const desc = `The command ${String(request.execute)} has not been found`;
    socket.write(`{"error": ${qemuJson({ class: 'CommandNotFound', desc })}${id}}\r\n`);
    return;
  }
  served++;
  socket.write(`{"return": ${body}${id}}\r\n`);
}

const server = createServer((socket) => {
  let partial = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    partial += chunk;
    let newline: number;
    while ((newline = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, newline).trim();
      partial = partial.slice(newline + 1);
      if (line !== '') answer(socket, line);
    }
  });
  socket.on('error', () => socket.destroy());
  socket.write(GREETING);
});

rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write('ready\n'));

let ending = false;
function end(): void {
  if (ending) return;
  ending = true;
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ served, cpuUserUs: cpu.user, cpuSystemUs: cpu.system })}\n`);
  server.close();
  rmSync(socketPath, { force: true });
  process.exit(0);
}
process.on('SIGTERM', end);
process.stdin.on('end', end);
process.stdin.on('close', end);
process.stdin.resume();
