// The one-line live status on a terminal: open connections, exchanges captured, errors.
import type { Hopscope } from '../hopscope.js';

export function startStatusLine(hopscope: Hopscope, out: NodeJS.WriteStream): () => void {
  let exchanges = 0;
  let errors = 0;
  const unsubscribe = hopscope.bus.subscribe((event) => {
    if (event.kind === 'http.request') exchanges++;
    else if (event.kind === 'http.failed' || event.kind === 'tls.failed' || event.kind === 'decode.failed') errors++;
    else if (event.kind === 'conn.closed' && event.error && event.error.reason !== 'reset') errors++;
  });
  let last = '';
  const draw = () => {
    const line = `connections ${hopscope.registry.size} · exchanges ${exchanges} · errors ${errors}`;
    if (line === last) return;
    last = line;
    out.write(`\r\x1b[2K${line}`);
  };
  const timer = setInterval(draw, 250);
  timer.unref();
  draw();
  return () => {
    clearInterval(timer);
    unsubscribe();
    out.write('\r\x1b[2K');
  };
}
