import { useEffect, useState } from 'react';

export type Resource<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; value: T };

/**
 * Loads something for the current selection; moving the selection (a new key) aborts the request
 * in flight. The previous value stays on screen while a refresh for the same key loads.
 */
export function useResource<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Resource<T> {
  const [result, setResult] = useState<{ key: string | null; res: Resource<T> }>({ key: null, res: { state: 'loading' } });
  useEffect(() => {
    if (key === null) return;
    const controller = new AbortController();
    load(controller.signal).then(
      (value) => !controller.signal.aborted && setResult({ key, res: { state: 'ready', value } }),
      (err: Error) => !controller.signal.aborted && setResult({ key, res: { state: 'error', message: err.message } }),
    );
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  const sameItem = result.key !== null && key !== null && result.key.split('@')[0] === key.split('@')[0];
  return result.key === key || sameItem ? result.res : { state: 'loading' };
}
