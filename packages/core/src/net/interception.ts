// What TLS interception needs, built once per run: the leaf minter, which hosts to decrypt,
// how to verify upstreams, the key log, and the one-time hint when a client rejects our CA.
import tls from 'node:tls';
import { appendFileSync } from 'node:fs';
import { parseHost, type LeafMinter } from '../ca/leaf-minter.js';
import { anyHostGlob } from './host-glob.js';

export interface InterceptionOptions {
  minter: LeafMinter;
  /** Off: every TLS tunnel is relayed blind. */
  enabled: boolean;
  /** When not empty, only matching hosts are intercepted. */
  interceptHosts: string[];
  /** Matching hosts are never intercepted. */
  passthroughHosts: string[];
  /** Extra PEM roots trusted for upstreams, besides Node's own store. */
  upstreamCaPems: Array<string | Buffer>;
  verifyUpstream: boolean;
  /** NSS key-log file for Wireshark, or null. */
  keylogFile: string | null;
  /** Called once per host when a client rejects hopscope's certificate. */
  onCertRejected?: (host: string) => void;
}

export class Interception {
  readonly minter: LeafMinter;
  readonly verifyUpstream: boolean;
  /** One context for all upstream handshakes: building one from ~140 roots costs milliseconds. */
  readonly upstreamContext: tls.SecureContext;
  private readonly intercepts: (host: string) => boolean;
  private readonly passes: (host: string) => boolean;
  private readonly rejectedHosts = new Set<string>();

  constructor(private readonly options: InterceptionOptions) {
    this.minter = options.minter;
    this.verifyUpstream = options.verifyUpstream;
    this.upstreamContext = tls.createSecureContext(
      options.upstreamCaPems.length > 0 ? { ca: [...tls.rootCertificates, ...options.upstreamCaPems] } : {},
    );
    this.intercepts = options.interceptHosts.length > 0 ? anyHostGlob(options.interceptHosts) : () => true;
    this.passes = anyHostGlob(options.passthroughHosts);
  }

  shouldIntercept(host: string): boolean {
    return this.options.enabled && this.intercepts(host) && !this.passes(host);
  }

  canMintFor(host: string): boolean {
    try {
      parseHost(host);
      return true;
    } catch {
      return false;
    }
  }

  watchKeylog(socket: tls.TLSSocket): void {
    const file = this.options.keylogFile;
    if (!file) return;
    // Appended synchronously: lines are short and rare (a handful per handshake).
    socket.on('keylog', (line: Buffer) => appendFileSync(file, line, { mode: 0o600 }));
  }

  onCertRejected(host: string): void {
    if (this.rejectedHosts.has(host)) return;
    this.rejectedHosts.add(host);
    this.options.onCertRejected?.(host);
  }
}
