// HAR timings from the points hopscope measured. The phases are laid end to end from the moment
// the request head was seen, so `time` is their sum as HAR requires; a phase whose end point was
// not measured is -1 and the next one starts from the last point that was.
import type { ExchangeDetail } from '../store/row-types.js';
import type { HarTimings } from './har-types.js';

export interface HarTimingResult {
  timings: HarTimings;
  /** Sum of the phases that were measured (HAR's `time`). */
  time: number;
}

type TimingInput = Pick<
  ExchangeDetail,
  'startedAt' | 'dnsMs' | 'connectMs' | 'tlsMs' | 'requestEndAt' | 'responseStartAt' | 'completedAt'
>;

export function harTimings(ex: TimingInput): HarTimingResult {
  const dns = ex.dnsMs ?? -1;
  // HAR's connect includes the TLS handshake, which is also given alone as `ssl`.
  const connect = ex.connectMs === null ? (ex.tlsMs ?? -1) : ex.connectMs + (ex.tlsMs ?? 0);
  const ssl = ex.tlsMs ?? -1;
  let at = ex.startedAt + Math.max(0, dns) + Math.max(0, connect);
  const phaseTo = (point: number | null): number => {
    if (point === null) return -1;
    const end = Math.max(at, point); // a response may start before the request ended: never negative
    const length = end - at;
    at = end;
    return round(length);
  };
  const send = phaseTo(ex.requestEndAt);
  // An exchange that ended without a response waited until it ended (e.g. a timeout), and has no
  // receive phase.
  const wait = phaseTo(ex.responseStartAt ?? ex.completedAt);
  const receive = ex.responseStartAt === null ? -1 : phaseTo(ex.completedAt);
  const timings: HarTimings = { blocked: -1, dns: round(dns), connect: round(connect), send, wait, receive, ssl: round(ssl) };
  const time = [timings.dns, timings.connect, send, wait, receive].reduce((sum, t) => (t > 0 ? sum + t : sum), 0);
  return { timings, time: round(time) };
}

/** Microsecond precision is what was measured; more digits only make the file bigger. */
function round(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms * 1000) / 1000;
}
