// Worker thread that owns the capture file's writing connection (see remote-writer.ts).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { BatchWriter } from './batch-writer.js';
import { decodeBatch, type EncodedBatch } from './batch-codec.js';

const db = new Database((workerData as { path: string }).path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 5000');
let writer: BatchWriter | null = null;

parentPort!.on('message', (message: { id: number; batch: EncodedBatch } | { close: true }) => {
  if ('close' in message) {
    db.close();
    parentPort!.close();
    return;
  }
  const eventErrors: string[] = [];
  try {
    writer ??= new BatchWriter(db);
    const touched = writer.write(decodeBatch(message.batch), (err) => eventErrors.push((err as Error)?.message ?? String(err)));
    parentPort!.postMessage({ id: message.id, touched, eventErrors });
  } catch (err) {
    parentPort!.postMessage({ id: message.id, touched: null, error: (err as Error)?.message ?? String(err), eventErrors });
  }
});
