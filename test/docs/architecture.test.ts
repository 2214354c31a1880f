// docs/ARCHITECTURE.md matches the tree: every folder of src (two levels deep) is named in its tree, every folder it
// names exists, and its stage order is the one dependency-cruiser enforces.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');
const tree = doc.slice(doc.indexOf('## The tree'));
const block = tree.slice(tree.indexOf('```') + 3, tree.indexOf('```', tree.indexOf('```') + 3));

const named = new Set([...block.matchAll(/^(src\/[a-z0-9/-]+\/)\s/gm)].map((m) => m[1]!));
const folders = (dir: string, depth: number): string[] =>
  readdirSync(join(root, dir))
    .filter((name) => statSync(join(root, dir, name)).isDirectory())
    .flatMap((name) => {
      const path = `${dir}/${name}`;
      return depth > 1 ? [`${path}/`, ...folders(path, depth - 1)] : [`${path}/`];
    });

describe('docs/ARCHITECTURE.md', () => {
  it('names every folder of src, two levels deep', () => {
    const missing = folders('src', 2).filter((f) => !named.has(f));
    assert.deepEqual(missing, [], `folders the tree in docs/ARCHITECTURE.md does not name: ${missing.join(', ')}`);
  });

  it('names no folder that is gone', () => {
    const gone = [...named].filter((f) => {
      try {
        return !statSync(join(root, f)).isDirectory();
      } catch {
        return true;
      }
    });
    assert.deepEqual(gone, [], `docs/ARCHITECTURE.md names folders that do not exist: ${gone.join(', ')}`);
  });

  it('orders the stages as the dependency rules do', () => {
    const row = doc.split('\n').find((line) => line.startsWith('| stages, in order |'));
    assert.ok(row, 'the layer table has a "stages, in order" row');
    const documented = [...row.split('|')[2]!.matchAll(/`src\/([a-z]+)\/`/g)].map((m) => m[1]);
    const config = createRequire(import.meta.url)(join(root, '.dependency-cruiser.cjs')) as {
      forbidden: Array<{ name: string }>;
    };
    const enforced = config.forbidden.map((r) => /^([a-z]+)-imports-earlier-stages-only$/.exec(r.name)?.[1]).filter(Boolean);
    assert.deepEqual(documented, enforced);
  });
});
