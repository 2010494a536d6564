// The environment `hopscope run` gives its command so that common clients send their traffic
// through hopscope and trust its CA: proxy variables in both cases, CA bundles for OpenSSL-based
// tools (curl, Python, git) and for Node, and the Node preload.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { nodeOptionsWithPreload } from './preload-path.js';

export interface RunEnvironmentOptions {
  /** The environment the command would have had. */
  base: NodeJS.ProcessEnv;
  proxyUrl: string;
  /** hopscope's root certificate (PEM). */
  caCertPath: string;
  /** Where to write the CA bundles (a folder that lives as long as the command). */
  workDir: string;
  /** `--import` URL of the preload. */
  preloadUrl: string;
  /**
   * NO_PROXY for the command. Default '': everything, loopback included, goes through hopscope,
   * so that the capture and the allow-list check see every request the command makes.
   */
  noProxy?: string;
}

/** The variables `hopscope run` sets; everything else passes through unchanged. */
export const PROXY_VARIABLES = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'] as const;
export const CA_BUNDLE_VARIABLES = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO'] as const;

/** Where Linux distributions and macOS keep the system roots, first found wins. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

export function runEnvironment(options: RunEnvironmentOptions): NodeJS.ProcessEnv {
  const { base } = options;
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of PROXY_VARIABLES) env[name] = options.proxyUrl;
  env.NO_PROXY = env.no_proxy = options.noProxy ?? '';
  const caPem = readFileSync(options.caCertPath, 'utf8');

  // These variables replace a tool's roots: the bundle keeps the roots it would have used (a bundle
  // the user named, else the system's, else Node's) and adds hopscope's, so hosts that bypass the
  // proxy still verify.
  const bundle = join(options.workDir, 'ca-bundle.pem');
  writeFileSync(bundle, joinPem(baseRoots(base), caPem));
  for (const name of CA_BUNDLE_VARIABLES) env[name] = bundle;

  // NODE_EXTRA_CA_CERTS adds to Node's roots, but names a single file: keep the user's.
  const nodeExtra = join(options.workDir, 'node-extra-ca.pem');
  writeFileSync(nodeExtra, joinPem(readIfExists(base.NODE_EXTRA_CA_CERTS), caPem));
  env.NODE_EXTRA_CA_CERTS = nodeExtra;

  env.NODE_OPTIONS = nodeOptionsWithPreload(base.NODE_OPTIONS, options.preloadUrl);
  return env;
}

function baseRoots(base: NodeJS.ProcessEnv): string {
  for (const path of [base.SSL_CERT_FILE, ...SYSTEM_BUNDLES]) {
    const pem = readIfExists(path);
    if (pem) return pem;
  }
  return tls.rootCertificates.join('\n');
}

function readIfExists(path: string | undefined): string {
  if (!path || !existsSync(path)) return '';
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function joinPem(...parts: string[]): string {
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .join('\n')
    .concat('\n');
}
