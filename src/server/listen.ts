import { createServer, type IncomingMessage, type RequestListener, type ServerResponse, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { livemigError } from '../errors.js';
import type { ListenAddress } from './listen-address.js';

/**
 * How long a client may take, and how many may hold a connection. Node's defaults (60 s for the
 * headers, 300 s for a request, no cap) let a few thousand half-open connections hold the
 * exporter's file descriptors for minutes, so that scrapes fail (issue 13, item 9).
 */
export interface ConnectionLimits {
  /** Headers must be complete within this. */
  headersTimeoutMs: number;
  /** The whole request within this. */
  requestTimeoutMs: number;
  /** A connection with no request in flight is closed after this. */
  idleTimeoutMs: number;
  /** Open connections at most; past it the oldest idle one is closed to make room, so a new scrape is served. */
  maxConnections: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, idleTimeoutMs: 15_000, maxConnections: 512 };

export type Server = HttpServer | HttpsServer;

/** HTTPS instead of HTTP (--web.config.file's tls_server_config). */
export interface TlsHooks {
  /** The TLS options at start: cert, key, ca, versions, ciphers, requestCert, rejectUnauthorized. */
  options: HttpsOptions;
  /** Before each new connection's handshake (synchronous): may give the server a new secure context. */
  beforeHandshake?(server: HttpsServer): void;
  /** After the handshake: false closes the connection (a client certificate the policy refuses). */
  accept?(socket: TLSSocket): boolean;
}

/** Listens on the address; resolves with the server and its base URL (e.g. http://127.0.0.1:10027, https:// with TLS). */
export function listen(app: RequestListener, address: ListenAddress, limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS, tls?: TlsHooks): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const timeouts = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.idleTimeoutMs };
    let server: Server;
    if (tls) {
      const https = createHttpsServer({ ...tls.options, ...timeouts, handshakeTimeout: limits.headersTimeoutMs }, app);
      // Prepended: it must run before the TLS socket of the connection is made from the server's context.
      if (tls.beforeHandshake) https.prependListener('connection', () => tls.beforeHandshake?.(https));
      if (tls.accept) https.prependListener('secureConnection', (socket: TLSSocket) => tls.accept?.(socket) === false && socket.destroy());
      server = https;
    } else {
      server = createServer(timeouts, app);
    }
    capConnections(server, limits);
    server.listen({ port: address.port, ...(address.host ? { host: address.host } : {}) });
    server.once('listening', () => {
      const bound = server.address() as AddressInfo;
      const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      resolve({ server, url: `${tls ? 'https' : 'http'}://${shownHost}:${bound.port}` });
    });
    server.once('error', (err) => reject(livemigError('LME_LISTEN', `${address.host ?? ''}:${address.port}`, err)));
  });
}

/**
 * Keeps at most `maxConnections` open: a new connection past the cap closes the oldest one that
 * has no response in progress (a half-open or slow client), else the oldest of all. Idle
 * connections that never send a request are closed after `headersTimeoutMs`.
 */
function capConnections(server: Server, limits: ConnectionLimits): void {
  // Insertion order is age order.
  const open = new Map<Socket, { busy: boolean }>();
  server.on('connection', (socket: Socket) => {
    const state = { busy: false };
    open.set(socket, state);
    socket.once('close', () => open.delete(socket));
    // A connection that sends nothing at all is not covered by Node's header timeout. One
    // listener per socket: Node itself re-arms the socket's timer (keepAliveTimeout) after each
    // response, and its timeout then ends an idle connection the same way.
    socket.on('timeout', () => {
      if (!state.busy) socket.destroy();
    });
    socket.setTimeout(limits.headersTimeoutMs);
    while (open.size > limits.maxConnections) {
      const victim = [...open].find(([s, st]) => s !== socket && !st.busy)?.[0] ?? [...open.keys()][0];
      if (!victim || victim === socket) break;
      open.delete(victim);
      victim.destroy();
    }
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = rawSocketOf(req.socket);
    const state = open.get(socket);
    if (!state) return;
    state.busy = true;
    res.once('close', () => {
      state.busy = false;
    });
  });
}

/**
 * The TCP socket a request came on: with TLS, 'connection' gives the TCP socket and a request
 * the TLS socket over it, which keeps it as `_parent` (destroying the TCP socket closes both).
 */
function rawSocketOf(socket: Socket): Socket {
  return (socket as Socket & { _parent?: Socket | null })._parent ?? socket;
}
