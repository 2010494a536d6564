// Turns socket and DNS errors into the capture's failure taxonomy and into the status code and
// plain-text message a client gets from the proxy.
import type { Failure, FailureReason } from '../capture/events.js';

const REASON_BY_CODE: Record<string, FailureReason> = {
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
  EAI_NODATA: 'dns',
  ECONNREFUSED: 'refused',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ETIMEDOUT: 'timeout',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'aborted',
  ERR_STREAM_PREMATURE_CLOSE: 'aborted',
};

export function failureFromError(err: unknown, fallback: FailureReason = 'internal'): Failure {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  // Only our own errors carry a reason of the taxonomy: OpenSSL's have `reason` too, as free text.
  const own = err instanceof ProxyError ? err.reason : undefined;
  const reason = own ?? (code ? REASON_BY_CODE[code] : undefined) ?? fallback;
  return { reason, message: e?.message ?? String(err), ...(code ? { code } : {}) };
}

/** An error that already knows its place in the taxonomy. */
export class ProxyError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The HTTP status a client gets when the upstream leg fails this way. */
export function statusForFailure(reason: FailureReason): number {
  switch (reason) {
    case 'timeout':
      return 504;
    case 'bad-request':
      return 400;
    case 'headers-too-large':
      return 431;
    case 'internal':
      return 500;
    default:
      return 502;
  }
}

/** One line a person can act on, e.g. "could not resolve host api.test (ENOTFOUND)". */
export function describeUpstreamFailure(failure: Failure, host: string, port: number): string {
  // A failure of the upstream proxy (--upstream-proxy) already names that proxy, not the target.
  if (failure.message.startsWith('upstream proxy ')) return failure.message;
  const code = failure.code ? ` (${failure.code})` : '';
  switch (failure.reason) {
    case 'dns':
      return `could not resolve host ${host}${code}`;
    case 'refused':
      return `connection refused by ${host}:${port}${code}`;
    case 'unreachable':
      return `${host}:${port} is unreachable${code}`;
    case 'timeout':
      return `${host}:${port} did not answer in time${code}`;
    case 'reset':
      return `${host}:${port} reset the connection${code}`;
    case 'upstream-cert':
      return `the certificate of ${host} was rejected: ${failure.message}`;
    default:
      return `${host}:${port} failed: ${failure.message}`;
  }
}

/** Verification failures of an upstream's certificate (OpenSSL and Node codes). */
const CERT_ERROR_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

/** A failure during the TLS handshake with an upstream: its certificate, or the handshake itself. */
export function upstreamTlsFailure(err: Error): Failure {
  const code = (err as NodeJS.ErrnoException).code;
  if (code && CERT_ERROR_CODES.has(code)) return { reason: 'upstream-cert', message: err.message, code };
  const failure = failureFromError(err, 'tls');
  return failure.reason === 'internal' ? { ...failure, reason: 'tls' } : failure;
}
