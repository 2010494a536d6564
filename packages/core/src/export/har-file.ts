// A capture file to a HAR file (or an already open stream such as stdout): what `hopscope har`
// and `hopscope run --har` do.
import { createWriteStream, openSync, rmSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { openStore } from '../store/open-store.js';
import { writeHar, type WriteHarOptions, type WriteHarResult } from './har-writer.js';

/**
 * Exports the capture at `capturePath` (opened read-only, so a live capture can be exported while
 * hopscope writes it) to `output`: a file path, replaced when it exists and removed again if the
 * export fails, or a stream that is left open.
 */
export async function exportHarFile(
  capturePath: string,
  output: string | Writable,
  options: WriteHarOptions = {},
): Promise<WriteHarResult> {
  const { db } = openStore(capturePath, { readonly: true });
  try {
    if (typeof output !== 'string') return await writeHar(db, output, options);
    // Opened here so that a path that cannot be written fails at once, with its own message.
    const file = createWriteStream(output, { fd: openSync(output, 'w') });
    file.on('error', () => {}); // surfaced by writeHar (out.errored) or by finished() below
    try {
      const result = await writeHar(db, file, options);
      file.end();
      await finished(file);
      return result;
    } catch (err) {
      file.destroy();
      rmSync(output, { force: true });
      throw err;
    }
  } finally {
    db.close();
  }
}
