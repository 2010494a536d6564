// Public library surface of @hopscope/core.
export { startHopscope, type Hopscope, type HopscopeOptions } from './hopscope.js';
export type * from './capture/events.js';
export { startInspector, type Inspector, type InspectorOptions } from './inspector/start-inspector.js';
export { exportHarFile } from './export/har-file.js';
export { writeHar } from './export/har-writer.js';
export { openStore } from './store/open-store.js';
export * from './store/queries.js';
