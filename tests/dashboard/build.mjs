// Bundles src/harness.jsx into dist/harness.js (run from the folder that holds node_modules).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const [entry, outfile] = process.argv.slice(2);
await build({
    entryPoints: [entry || path.join(here, 'src', 'harness.jsx')],
    outfile: outfile || path.join(process.cwd(), 'dist', 'harness.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    jsx: 'automatic',
    loader: { '.js': 'jsx' },
    define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
    nodePaths: [path.join(process.cwd(), 'node_modules')],
    logLevel: 'warning',
    minify: false,
});
