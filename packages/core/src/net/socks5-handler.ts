// A SOCKS5 client on a recorded connection (RFC 1928, RFC 1929): method negotiation, optional
// username/password, then CONNECT. The upstream leg is dialled first so a failure becomes the
// reply code the client reads; once it is up the tunnel goes through the same detection as an
// HTTP CONNECT tunnel (TLS intercepted, HTTP decoded, WebSocket, h2).
import type { Socket } from 'node:net';
import type { Failure } from '../capture/events.js';
import { credentialsMatch } from './proxy-auth.js';
import { formatAuthority } from './authority.js';
import { failureFromError } from './failure.js';
import type { ConnectionRecord } from './connection-registry.js';
import type { ProxyContext } from './proxy-context.js';
import { startTunnel, type TlsHandler } from './tunnel.js';
import { dialTunnelUpstream } from './tunnel-dial.js';
import {
  Socks5Command,
  Socks5Error,
  Socks5Method,
  Socks5Reader,
  Socks5Reply,
  SOCKS4_REJECTED,
  encodeAuthStatus,
  encodeMethodChoice,
  encodeReply,
  type Socks5Request,
} from './socks5-messages.js';

type Phase = 'greeting' | 'credentials' | 'request' | 'done';

/**
 * Runs the handshake on `socket`, starting with `first` (the bytes the front door read to know
 * it is SOCKS5). The socket may be paused; this takes over reading.
 */
export function serveSocks5(ctx: ProxyContext, record: ConnectionRecord, socket: Socket, first: Buffer, onTls?: TlsHandler): void {
  const auth = ctx.config.proxyAuth ?? null;
  const reader = new Socks5Reader();
  let phase: Phase = 'greeting';
  let user: string | null = null;

  // The whole handshake is three short messages; a client that has not sent them within the
  // time an upstream gets to connect has stalled (or is holding a slot open), so it is closed.
  const handshakeTimer = setTimeout(() => {
    refuse(null, { reason: 'timeout', message: `SOCKS5 handshake not finished within ${ctx.config.connectTimeoutMs} ms (stalled in ${phase})` });
  }, ctx.config.connectTimeoutMs);
  const stopReading = () => {
    clearTimeout(handshakeTimer);
    socket.removeListener('data', onData);
  };
  socket.once('close', stopReading);

  /** Answers (when there is an answer), records why, and closes. */
  const refuse = (answer: Buffer | null, failure: Failure) => {
    phase = 'done';
    stopReading();
    record.error ??= failure;
    closeWith(socket, answer, ctx.config.connectTimeoutMs);
  };

  const advance = () => {
    for (;;) {
      if (phase === 'greeting') {
        const greeting = reader.readGreeting();
        if (!greeting) return;
        const wanted = auth ? Socks5Method.userPass : Socks5Method.noAuth;
        if (!greeting.methods.includes(wanted)) {
          const offered = greeting.methods.map((m) => `0x${m.toString(16).padStart(2, '0')}`).join(', ') || 'none';
          const needed = auth ? 'username/password (0x02), which --proxy-auth requires' : 'no authentication (0x00)';
          return refuse(encodeMethodChoice(Socks5Method.noneAcceptable), {
            reason: 'bad-request',
            message: `SOCKS5 client did not offer ${needed}; it offered ${offered}`,
            code: 'no-acceptable-method',
          });
        }
        socket.write(encodeMethodChoice(wanted));
        phase = auth ? 'credentials' : 'request';
      } else if (phase === 'credentials') {
        const credentials = reader.readCredentials();
        if (!credentials) return;
        if (!auth || !credentialsMatch(auth, credentials.user, credentials.pass)) {
          return refuse(encodeAuthStatus(false), {
            reason: 'bad-request',
            message: `SOCKS5 username/password rejected for user "${credentials.user}"`,
            code: 'auth-failed',
          });
        }
        user = credentials.user;
        socket.write(encodeAuthStatus(true));
        phase = 'request';
      } else if (phase === 'request') {
        const request = reader.readRequest();
        if (!request) return;
        phase = 'done';
        stopReading();
        socket.pause(); // what the client sends next waits for the tunnel
        return onRequest(request, reader.takeRest());
      } else {
        return;
      }
    }
  };

  function onData(chunk: Buffer) {
    try {
      reader.push(chunk);
      advance();
    } catch (err) {
      if (!(err instanceof Socks5Error)) throw err;
      refuse(answerToGarbage(phase, err), { reason: 'bad-request', message: err.message, code: err.code });
    }
  }

  const onRequest = (request: Socks5Request, rest: Buffer) => {
    if (request.command !== Socks5Command.connect) {
      const name = request.command === Socks5Command.bind ? 'BIND' : request.command === Socks5Command.udpAssociate ? 'UDP ASSOCIATE' : `command 0x${request.command.toString(16)}`;
      return refuse(encodeReply(Socks5Reply.commandNotSupported), {
        reason: 'bad-request',
        message: `SOCKS5 ${name} to ${formatAuthority(request.host, request.port)} is not supported (CONNECT only)`,
        code: 'command-not-supported',
      });
    }
    const target = { host: request.host, port: request.port };
    ctx.bus.emit({
      kind: 'conn.tunnel',
      connId: record.id,
      host: target.host,
      port: target.port,
      via: 'socks5',
      user,
      target: formatAuthority(target.host, target.port),
      headers: [],
    });
    dialTunnelUpstream(ctx, record, target, () => socket.destroyed).then(
      (dial) => {
        if (!dial) return;
        const local = dial.socket.localAddress ? { address: dial.socket.localAddress, port: dial.socket.localPort ?? 0 } : null;
        socket.write(encodeReply(Socks5Reply.succeeded, local));
        // Resuming takes effect on the next tick, after the tunnel has its listeners (or has paused again).
        socket.resume();
        startTunnel({ ctx, record, client: socket, server: dial.socket, target }, rest, onTls);
      },
      (err) => {
        const failure = failureFromError(err, 'internal');
        const reply = replyForFailure(failure);
        // The capture says what the client was told, not only why.
        refuse(encodeReply(reply), { ...failure, message: `${failure.message} (SOCKS5 reply 0x${reply.toString(16).padStart(2, '0')})` });
      },
    );
  };

  socket.on('data', onData);
  onData(first);
  if ((phase as Phase) !== 'done') socket.resume(); // (the request, or a refusal, leaves reading to others)
}

/** The SOCKS5 reply code for a failed upstream dial. */
export function replyForFailure(failure: Failure): number {
  switch (failure.reason) {
    case 'refused':
      return Socks5Reply.connectionRefused;
    case 'dns':
      return Socks5Reply.hostUnreachable;
    case 'unreachable':
      return failure.code === 'ENETUNREACH' ? Socks5Reply.networkUnreachable : Socks5Reply.hostUnreachable;
    case 'timeout':
      // 0x06 "TTL expired" names an ICMP time-exceeded that a proxy never sees; a connect with no
      // answer is what 0x04 tells a client (curl prints "Host unreachable"), so timeouts get 0x04.
      return Socks5Reply.hostUnreachable;
    default:
      return Socks5Reply.generalFailure;
  }
}

/** What a client that sent garbage in `phase` gets before the close. */
function answerToGarbage(phase: Phase, err: Socks5Error): Buffer | null {
  switch (phase) {
    case 'greeting':
      return encodeMethodChoice(Socks5Method.noneAcceptable);
    case 'credentials':
      return encodeAuthStatus(false);
    case 'request':
      return encodeReply(err.code === 'bad-address-type' ? Socks5Reply.addressTypeNotSupported : Socks5Reply.generalFailure);
    default:
      return null;
  }
}

/** A SOCKS4 client (first byte 0x04): its own "rejected" answer, the reason in the capture, and a close. */
export function refuseSocks4(record: ConnectionRecord, socket: Socket, lingerMs: number): void {
  record.error ??= { reason: 'bad-request', message: 'SOCKS4 is not supported: use SOCKS5 (socks5:// or socks5h://)', code: 'socks4' };
  closeWith(socket, SOCKS4_REJECTED, lingerMs);
}

/**
 * Sends the last answer and half-closes; what the client still sends is read and dropped so its
 * close arrives, and a client that never closes is cut off after `lingerMs`.
 */
export function closeWith(socket: Socket, answer: Buffer | null, lingerMs: number): void {
  if (!answer || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  socket.once('close', () => clearTimeout(timer));
  socket.on('data', () => {});
  socket.resume();
  socket.end(answer);
}
