import { useEffect, useState } from 'react';

/** Reloads every `intervalMs` while `live` is true (a WebSocket or connection still open); aborts on change. */
export function usePolling<T>(key: string, load: (signal: AbortSignal) => Promise<T>, live: (value: T) => boolean, intervalMs = 1000) {
  const [state, setState] = useState<{ key: string; value: T | null; error: string | null }>({ key, value: null, error: null });
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const run = () =>
      load(controller.signal).then(
        (value) => {
          if (controller.signal.aborted) return;
          setState({ key, value, error: null });
          if (live(value)) timer = setTimeout(run, intervalMs);
        },
        (err: Error) => !controller.signal.aborted && setState({ key, value: null, error: err.message }),
      );
    run();
    return () => {
      controller.abort();
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state.key === key ? state : { key, value: null, error: null };
}
