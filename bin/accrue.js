#!/usr/bin/env -S node --max-semi-space-size=64
// Entry point: runs the TypeScript CLI through tsx's loader (Node 20 has no type stripping). A young generation of
// 64 MB a semi-space instead of V8's 16: a batch in flight keeps its thousand events alive across collections, and
// with the default each scavenge copied them (garbage collection 6 µs of an API server's ~25 µs per event, 3 µs with
// this; docs/scaling.md, "Memory and garbage collection"). Started as `node bin/accrue.js`, pass the flag yourself.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
