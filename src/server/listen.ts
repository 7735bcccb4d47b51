import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { livemigError } from '../errors.js';
import type { ListenAddress } from './listen-address.js';

/** Listens on the address; resolves with the server and its base URL (e.g. http://127.0.0.1:10027). */
export function listen(app: RequestListener, address: ListenAddress): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.listen({ port: address.port, ...(address.host ? { host: address.host } : {}) });
    server.once('listening', () => {
      const bound = server.address() as AddressInfo;
      const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      resolve({ server, url: `http://${shownHost}:${bound.port}` });
    });
    server.once('error', (err) => reject(livemigError('LME_LISTEN', `${address.host ?? ''}:${address.port}`, err)));
  });
}
