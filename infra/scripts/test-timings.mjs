// Prints the wall time of each jest project and the ten slowest test files from jest's --json
// report, so the suite's time is recorded with every run instead of nowhere.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const file = process.argv[2] ?? '.atelier/jest-results.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`no jest report at ${file}: ${err.message}`);
  process.exit(0);
}

const root = process.cwd();
/** jest's report does not name a file's project: the rules of jest.config.js, repeated. */
const projectOf = (file) =>
  /\.unit\.test\.ts$/.test(file) || /^services\/[^/]+\/src\//.test(file)
    ? 'unit'
    : /^(gateway|console)\/test\//.test(file)
      ? 'e2e'
      : 'service';
const files = report.testResults.map((r) => ({
  file: relative(root, r.name),
  project: projectOf(relative(root, r.name)),
  seconds: (r.endTime - r.startTime) / 1000,
}));

const byProject = new Map();
for (const f of files) byProject.set(f.project, (byProject.get(f.project) ?? 0) + f.seconds);
const total = ((Date.now() - report.startTime) / 1000).toFixed(1);
console.log(`\njest: ${report.numPassedTests}/${report.numTotalTests} tests passed, ${total} s wall`);
for (const [project, seconds] of byProject) {
  console.log(
    `  ${project.padEnd(8)} ${String(files.filter((f) => f.project === project).length).padStart(3)} files, ${seconds.toFixed(1)} s summed over workers`,
  );
}
console.log('ten slowest files:');
for (const f of files.sort((a, b) => b.seconds - a.seconds).slice(0, 10)) {
  console.log(`  ${f.seconds.toFixed(1).padStart(6)} s  ${f.project.padEnd(8)} ${f.file}`);
}
