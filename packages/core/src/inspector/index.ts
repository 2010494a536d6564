// The web inspector: JSON API, live WebSocket hub and the built UI, on loopback (docs/api.md).
export { startInspector, type Inspector, type InspectorOptions } from './start-inspector.js';
export type * from './protocol.js';
