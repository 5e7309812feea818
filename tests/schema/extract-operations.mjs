// Writes every operation of the persisted-operation manifests in a folder (graphql-codegen's
// { hash: document }, Apollo's persisted-query manifest, Relay's { id: text }) as one
// .graphql file each, for `graphql-inspector validate`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, out] = process.argv.slice(2);
let count = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const manifest = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const documents = manifest.format === 'apollo-persisted-query-manifest'
    ? manifest.operations.map((o) => [o.id, o.body])
    : Object.entries(manifest);
  for (const [id, body] of documents) {
    if (typeof body !== 'string') throw new Error(`${file}: operation ${id} is not a string`);
    writeFileSync(join(out, `${file.replace(/\.json$/, '')}-${String(id).slice(0, 16)}.graphql`), body);
    count++;
  }
}
console.log(`${count} persisted operations from ${dir}`);
