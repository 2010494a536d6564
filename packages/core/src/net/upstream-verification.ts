// Node verifies an upstream's certificate (OpenSSL's chain check, then checkServerIdentity) and,
// when it refuses one, frees the connection before its 'error' can be read: the refused chain, what
// a person most needs to see, is gone. The upstream legs hopscope records therefore connect with
// rejectUnauthorized off and refuse here, at 'secureConnect', with the chain still readable. Node's
// checks run exactly as before; only who acts on their verdict moves.
import tls, { type PeerCertificate, type TLSSocket } from 'node:tls';

/** OpenSSL's words for the verification results Node reports by code (as its own errors say them). */
const VERIFY_MESSAGES: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_HAS_EXPIRED: 'certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  CERT_CHAIN_TOO_LONG: 'certificate chain too long',
  CERT_REVOKED: 'certificate revoked',
  INVALID_CA: 'invalid CA certificate',
  PATH_LENGTH_EXCEEDED: 'path length constraint exceeded',
  INVALID_PURPOSE: 'unsupported certificate purpose',
  CERT_UNTRUSTED: 'certificate not trusted',
  CERT_REJECTED: 'certificate rejected',
  HOSTNAME_MISMATCH: 'hostname mismatch',
};

export interface DeferredVerification {
  /** Spread into tls.connect's options. */
  options: { rejectUnauthorized: false; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined };
  /** Call at 'secureConnect': why the certificate must be refused, or null when it is accepted. */
  refusal(socket: TLSSocket): Error | null;
  /**
   * The chain Node built for the identity check (when the chain verified), to describe it without
   * building it again (~0.3 ms).
   */
  presented(): PeerCertificate | undefined;
}

/** `verify` false (--upstream-insecure) accepts every certificate, as rejectUnauthorized: false did. */
export function deferVerification(verify: boolean): DeferredVerification {
  let identityError: Error | undefined;
  let presented: PeerCertificate | undefined;
  return {
    options: {
      rejectUnauthorized: false,
      checkServerIdentity: (host, cert) => {
        presented = cert;
        return (identityError = tls.checkServerIdentity(host, cert));
      },
    },
    presented: () => presented,
    refusal(socket) {
      if (!verify || socket.authorized) return null;
      if (identityError) return identityError;
      const code = String(socket.authorizationError ?? 'CERT_REJECTED');
      return Object.assign(new Error(VERIFY_MESSAGES[code] ?? code.toLowerCase().replace(/_/g, ' ')), { code });
    },
  };
}
