// Serves the built UI (packages/ui/dist): hashed assets cached for good, index.html never, and a
// plain explanation when the UI was not built.
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/ui/dist, from packages/core/src/inspector (tsx) and packages/core/dist/inspector (built) alike. */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../ui/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

export const NOT_BUILT_MESSAGE = (dir: string) =>
  `The hopscope inspector UI is not built (no ${join(dir, 'index.html')}).\n` +
  `Build it with "npm run build:ui" in the hopscope checkout, then reload this page.\n` +
  `The JSON API is available meanwhile under /api/ (see docs/api.md).\n`;

export function serveStatic(uiDir: string, pathname: string, req: IncomingMessage, res: ServerResponse): void {
  const root = resolve(uiDir);
  const index = join(root, 'index.html');
  if (!existsSync(index)) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(NOT_BUILT_MESSAGE(root));
    return;
  }
  let file: string | null = null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    decoded = '/';
  }
  const candidate = normalize(join(root, decoded));
  if (candidate.startsWith(root + sep) && isFile(candidate)) file = candidate;
  // Client-side routes fall back to the app; a missing asset is a real 404.
  if (!file) {
    if (decoded.startsWith('/assets/')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    file = index;
  }
  const immutable = file.startsWith(join(root, 'assets') + sep);
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
