// The layers the build enforces (docs/ARCHITECTURE.md). The pipeline's stages, in order, sit over a pure domain
// core and a foundation (store, audit, observe, catalog); a stage imports only the domain, the foundation and
// earlier stages; adapters (api, cli, stream, connectors, dashboard, demo) sit at the edge and no stage imports one.
const STAGES = ['ingest', 'meter', 'map', 'rate', 'invoice', 'post', 'settle', 'reconcile', 'close', 'explain', 'disputes', 'controls'];
const FOUNDATION = ['store', 'observe', 'audit', 'catalog'];
const ADAPTERS = ['api', 'cli', 'stream', 'connectors', 'dashboard', 'demo'];
const one = (names) => `^src/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means two modules are one; split what both need into a third.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'domain-is-pure',
      severity: 'error',
      comment: 'The domain core imports nothing outside itself but libraries (no store, no stage, no adapter).',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: '^src/domain/' },
    },
    {
      name: 'foundation-below-stages',
      severity: 'error',
      comment: 'The store, audit log, observability and catalog serve every stage and import none.',
      from: { path: one(FOUNDATION) },
      to: { path: one([...STAGES, ...ADAPTERS]) },
    },
    ...STAGES.map((stage, i) => ({
      name: `${stage}-imports-earlier-stages-only`,
      severity: 'error',
      comment: `${stage} may import the domain, the foundation and the stages before it (${STAGES.slice(0, i).join(', ') || 'none'}).`,
      from: { path: `^src/${stage}/` },
      to: { path: one([...STAGES.slice(i + 1), ...ADAPTERS]) },
    })),
    {
      name: 'routes-go-through-use-cases',
      severity: 'error',
      comment: 'A route validates, calls a use case and answers; SQL lives in the stages\' store modules.',
      from: { path: '^src/api/routes/' },
      to: { path: '^src/store/|^node_modules/pg/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/api/client/schema\\.d\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
