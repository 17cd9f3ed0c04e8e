// Shared by the bin/ launchers: runs a compiled entry point from dist/, or,
// when dist/ has not been built (a fresh checkout), says so in one line and
// exits 2 instead of failing with ERR_MODULE_NOT_FOUND.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * @param {string} name the command, for messages
 * @param {string} entry the compiled module, relative to the package root (e.g. "dist/src/main.js")
 * @returns {Promise<unknown | undefined>} the module's namespace, or undefined when it could not be loaded
 */
export async function launch(name, entry) {
  const url = new URL(`../${entry}`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    process.stderr.write(`${name}: not built (${entry} is missing); run make build (or npm run build)\n`);
    process.exitCode = 2;
    return undefined;
  }
  try {
    return await import(url.href);
  } catch (err) {
    const e = /** @type {{ code?: string, message?: string, stack?: string }} */ (err);
    if (e && e.code === 'ERR_MODULE_NOT_FOUND') {
      // dist/ is there but something it imports is not: dependencies not installed, or a partial build.
      process.stderr.write(`${name}: ${e.message}; run npm ci, then make build (or npm run build)\n`);
    } else {
      process.stderr.write(`${name}: ${e && e.stack ? e.stack : String(err)}\n`);
    }
    process.exitCode = 2;
    return undefined;
  }
}
