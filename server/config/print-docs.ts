// Prints the README's configuration table from the schema: `npm run docs:config`.
import { describeOptions } from './index.js';

const rows = describeOptions().map((o) => `| \`${o.key}\` | \`${o.env}\` | \`${o.def.replace(/\|/g, '\\|')}\` | ${o.description} |`);
process.stdout.write(['| option | environment | default | what it does |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n');
