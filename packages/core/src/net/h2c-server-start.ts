// An h2c server sends its SETTINGS as soon as the connection is up, without waiting for the
// client's preface. Server bytes that start like that must not make the detector give up on a
// tunnel whose client may be about to send the HTTP/2 preface: the client's bytes decide.
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const SETTINGS = 0x4;
/** Server bytes held at most while waiting for the client (a SETTINGS frame is far smaller). */
const MAX_HELD = 1024;

export function mayBeH2cServerStart(fromServer: Buffer[], fromClient: Buffer[]): boolean {
  const server = fromServer.length === 1 ? fromServer[0] : Buffer.concat(fromServer);
  if (server.length < FRAME_HEADER || server.length > MAX_HELD) return false;
  const length = server.readUIntBE(0, 3);
  const isSettings = server[3] === SETTINGS && server[4] === 0 && server.readUInt32BE(5) === 0 && length % 6 === 0;
  if (!isSettings) return false;
  const client = Buffer.concat(fromClient);
  const n = Math.min(client.length, H2_PREFACE.length);
  return client.compare(H2_PREFACE, 0, n, 0, n) === 0;
}
