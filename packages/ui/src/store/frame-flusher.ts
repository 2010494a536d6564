// Applies queued store input once per animation frame, with a timer as well because background
// tabs get no animation frames (and the server waits for acknowledgements).
export interface FrameFlusher {
  /** Ask for a flush at the next frame (or the fallback timer, whichever comes first). */
  request(): void;
  dispose(): void;
}

export function createFrameFlusher(flush: () => void, fallbackMs = 250): FrameFlusher {
  let raf: number | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const hasRaf = typeof requestAnimationFrame === 'function';
  const run = () => {
    if (raf !== null && hasRaf) cancelAnimationFrame(raf);
    if (timer !== null) clearTimeout(timer);
    raf = null;
    timer = null;
    flush();
  };
  return {
    request() {
      if (timer !== null) return;
      if (hasRaf) raf = requestAnimationFrame(run);
      timer = setTimeout(run, fallbackMs);
    },
    dispose() {
      if (raf !== null && hasRaf) cancelAnimationFrame(raf);
      if (timer !== null) clearTimeout(timer);
      raf = null;
      timer = null;
    },
  };
}
