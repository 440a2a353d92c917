// `npm run admin -- RESOURCE ...`: each resource's commands live in the service that owns it
// (offers and packs in inferencer, the rest in billing) and talk to it over gRPC.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const resource = process.argv[2];
if (resource === 'offers' || resource === 'packs') {
  const { run } = require('../../services/inferencer/dist/admin/cli.js');
  run(process.argv.slice(2)).then(
    (result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`),
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
} else {
  require('../../services/billing/dist/admin/cli.js');
}
