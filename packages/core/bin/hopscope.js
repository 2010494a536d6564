#!/usr/bin/env node
// Entry point installed as `hopscope`; the CLI itself is compiled TypeScript (npm run build).
import('../dist/cli/main.js');
