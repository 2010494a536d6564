// Where the preload is, as the URL to give `node --import`. A built hopscope has it compiled next
// to this file. Running from the TypeScript sources (development, tests) it is transpiled once per
// version of the sources into the temp folder, because the user's Node processes must not be made
// to load a TypeScript loader.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The preload's modules, register first. */
const MODULES = ['register', 'tunnel-agent', 'no-proxy'];

export async function preloadImportUrl(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  let entry = join(dirname(here), 'register.js');
  if (!existsSync(entry)) entry = await transpiledSources(dirname(here));
  const url = pathToFileURL(entry);
  const undici = resolveUndici();
  if (undici) url.searchParams.set('undici', undici);
  return url.href;
}

/** `NODE_OPTIONS` with the preload added to what the user already had. */
export function nodeOptionsWithPreload(existing: string | undefined, importUrl: string): string {
  // File URLs percent-encode spaces and quotes, so the value needs no quoting.
  return [existing?.trim(), `--import=${importUrl}`].filter(Boolean).join(' ');
}

function resolveUndici(): string | null {
  try {
    return createRequire(import.meta.url).resolve('undici');
  } catch {
    return null;
  }
}

async function transpiledSources(sourceDir: string): Promise<string> {
  const sources = MODULES.map((name) => readFileSync(join(sourceDir, `${name}.ts`), 'utf8'));
  const hash = createHash('sha256').update(sources.join('\0')).digest('hex').slice(0, 16);
  const outDir = join(tmpdir(), `hopscope-preload-${hash}`);
  const entry = join(outDir, 'register.js');
  if (existsSync(entry)) return entry;
  const ts = (await import('typescript')).default;
  // Written aside and renamed into place, so a concurrent run never sees half a preload.
  const staging = mkdtempSync(join(tmpdir(), 'hopscope-preload-staging-'));
  writeFileSync(join(staging, 'package.json'), '{"type":"module"}\n');
  MODULES.forEach((name, i) => {
    const { outputText } = ts.transpileModule(sources[i], {
      fileName: `${name}.ts`,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    writeFileSync(join(staging, `${name}.js`), outputText);
  });
  try {
    renameSync(staging, outDir);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another run put the same files there first
  }
  return entry;
}
