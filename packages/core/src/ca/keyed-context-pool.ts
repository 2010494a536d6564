// TLS SecureContexts that already hold hopscope's leaf key, made ahead while the proxy is idle.
// Building one from scratch costs about a millisecond here (OpenSSL 3 sets up the SSL_CTX and
// decodes the key), on the path of every first connection to a new host. Taken from the pool, a
// context only needs its certificate (about a quarter of that). The pool refills a little later,
// not in the same turn, so that the handshake that just took one is not held up by the refill.
import tls from 'node:tls';

/** The native handle behind a tls.SecureContext: what tls.createSecureContext itself calls. */
const REFILL_DELAY_MS = 5;

interface NativeContext {
  setCert(pem: string): void;
}

export class KeyedContextPool {
  private readonly ready: tls.SecureContext[] = [];
  private refilling = false;

  /** `options` hold the key (and cipher settings); each context gets its certificate on `take`. */
  constructor(
    private readonly options: tls.SecureContextOptions,
    private readonly size = 8,
  ) {
    this.scheduleRefill();
  }

  /** A context with the key and `certPem` (leaf first, then its chain). */
  take(certPem: string): tls.SecureContext {
    const context = this.ready.pop();
    this.scheduleRefill();
    const native = (context as { context?: Partial<NativeContext> } | undefined)?.context;
    if (!context || typeof native?.setCert !== 'function') {
      return tls.createSecureContext({ ...this.options, cert: certPem });
    }
    native.setCert(certPem);
    return context;
  }

  /** Contexts waiting (for tests and diagnostics). */
  get readyCount(): number {
    return this.ready.length;
  }

  /** One context at a time, a few milliseconds apart, so filling never holds up traffic for long. */
  private scheduleRefill(): void {
    if (this.refilling || this.ready.length >= this.size) return;
    this.refilling = true;
    setTimeout(() => {
      this.refilling = false;
      this.ready.push(tls.createSecureContext(this.options));
      this.scheduleRefill();
    }, REFILL_DELAY_MS).unref();
  }
}
