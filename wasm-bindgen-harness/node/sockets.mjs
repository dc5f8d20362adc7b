// The `connect()` of Workers-style runtimes (cloudflare:sockets), for Node: a TCP or TLS socket
// as a pair of web streams. node-server.mjs hands it to the handler (useSockets), so the edge
// build's byte-stream steps (LDAP) run under Node exactly as they do in a Workers runtime.
//
//   connect({ hostname, port }, { secureTransport: 'on' | 'off' })
//     -> { readable, writable, opened, closed, close() }
//
// TLS verifies the server's certificate for `hostname` against Node's CA store, to which
// NODE_EXTRA_CA_CERTS adds (the tests' CA).

import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';

export function connect(address, options = {}) {
  const { hostname, port } = address;
  const secure = options.secureTransport === 'on';
  const socket = secure
    ? tls.connect({ host: hostname, port, servername: net.isIP(hostname) ? undefined : hostname })
    : net.connect({ host: hostname, port });
  socket.setNoDelay(true);
  const opened = new Promise((resolve, reject) => {
    socket.once(secure ? 'secureConnect' : 'connect', () => resolve({}));
    socket.once('error', reject);
  });
  const closed = new Promise((resolve) => socket.once('close', () => resolve()));
  // An error is reported through the streams (and `opened`); never an unhandled rejection.
  opened.catch(() => {});
  const { readable, writable } = Duplex.toWeb(socket);
  return {
    readable,
    writable,
    opened,
    closed,
    close() {
      socket.destroy();
      return closed;
    },
  };
}
