// Public library surface of @hopscope/core.
export { startHopscope, type Hopscope, type HopscopeOptions } from './hopscope.js';
export type * from './capture/events.js';
