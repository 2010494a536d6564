// Loads a detail resource (a WebSocket's messages, a connection's HTTP/2 frames) and loads it
// again whenever `version` changes: the live row the hub pushed after the store committed more
// of it. No timers: an idle WebSocket costs nothing, a busy one refreshes as its rows arrive.
// A change that lands while a load is in flight is picked up right after it.
import { useEffect, useRef, useState } from 'react';

export function useLiveResource<T>(key: string, load: (signal: AbortSignal) => Promise<T>, version: unknown) {
  const [state, setState] = useState<{ key: string; value: T | null; error: string | null }>({ key, value: null, error: null });
  const inFlight = useRef<{ key: string; again: boolean; controller: AbortController } | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const current = inFlight.current;
    if (current && current.key === key) {
      current.again = true; // the running load finishes first, then one more
      return;
    }
    current?.controller.abort();
    const run = () => {
      const flight = { key, again: false, controller: new AbortController() };
      inFlight.current = flight;
      loadRef.current(flight.controller.signal).then(
        (value) => {
          if (flight.controller.signal.aborted) return;
          setState({ key, value, error: null });
          if (flight.again) run();
          else inFlight.current = null;
        },
        (err: Error) => {
          if (flight.controller.signal.aborted) return;
          inFlight.current = null;
          setState({ key, value: null, error: err.message });
        },
      );
    };
    run();
  }, [key, version]);

  useEffect(() => () => inFlight.current?.controller.abort(), []);
  return state.key === key ? state : { key, value: null, error: null };
}
