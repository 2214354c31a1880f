#!/usr/bin/env -S node --max-semi-space-size=64 --initial-old-space-size=256
// Entry point: runs the TypeScript CLI through tsx's loader (Node 20 has no type stripping). A young generation of
// 64 MB a semi-space instead of V8's 16: a batch in flight keeps its thousand events alive across collections, and
// with the default each scavenge copied them (garbage collection 6 µs of an API server's ~25 µs per event, 3 µs with
// this), and an old generation allowed 256 MB before its first full collection: with a young generation that large,
// V8 otherwise began marking the old one every few hundred milliseconds under load (docs/scaling.md, "Memory and
// garbage collection"). Started as `node bin/accrue.js`, pass the flags yourself.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
