/**
 * Builds the Java example participant's runnable jar (examples/bank-java) for a
 * test, once per source state: `bash hack/test-java.sh --build-only` (the SDK
 * installed into the local Maven repository without its tests, then the shaded
 * jar), copied into a cache directory outside the repository under a key made of
 * a hash of the sources (sdk/java's and the example's pom.xml and src/ trees),
 * `java -version` and `mvn -version`. A second run with unchanged sources finds
 * the jar and does not call Maven at all.
 *
 * The first build downloads the Maven plugins and dependencies from Maven
 * Central into ~/.m2 (a minute or two on a cold repository): give the caller's
 * hook the time.
 *
 * Cache: $KUBETX_JAVA_JAR_CACHE, else $XDG_CACHE_HOME/kubetx/java-jar, else
 * ~/.cache/kubetx/java-jar. The jar is copied to a temporary name and renamed
 * into place, so two test processes building at once never see half a file.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './testenv-paths.js';

const run = promisify(execFile);

export interface JavaJar {
  path: string;
  /** True when this call ran Maven, false when the cached jar was used. */
  built: boolean;
  /** The source hash in the cache key. */
  hash: string;
}

function cacheRoot(): string {
  if (process.env.KUBETX_JAVA_JAR_CACHE) return process.env.KUBETX_JAVA_JAR_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kubetx', 'java-jar');
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'target') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, out);
    else out.push(path);
  }
  return out;
}

async function toolVersions(): Promise<string> {
  try {
    const java = await run('java', ['-version']);
    const mvn = await run('mvn', ['-B', '-version']);
    return java.stderr + java.stdout + mvn.stdout.split('\n').slice(0, 3).join('\n');
  } catch (err) {
    throw new Error(`java or mvn not found or not working (${(err as Error).message}): install a JDK 17+ and Maven to run this test`);
  }
}

/** The runnable jar of examples/bank-java, built if its sources (or the SDK's) changed. */
export async function bankJavaJar(opts: { timeoutMs?: number } = {}): Promise<JavaJar> {
  const hash = createHash('sha256');
  hash.update(await toolVersions());
  for (const dir of ['sdk/java', 'examples/bank-java']) {
    const files = [join(repoRoot, dir, 'pom.xml'), ...sourceFiles(join(repoRoot, dir, 'src'))].sort();
    for (const file of files) {
      hash.update(`${relative(repoRoot, file)}\n`);
      hash.update(readFileSync(file));
    }
  }
  const digest = hash.digest('hex').slice(0, 16);
  const path = join(cacheRoot(), `bank-java-${digest}`, 'bank-java.jar');
  if (existsSync(path)) return { path, built: false, hash: digest };

  try {
    await run('bash', ['hack/test-java.sh', '--build-only'], { cwd: repoRoot, timeout: opts.timeoutMs ?? 480_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`building examples/bank-java failed: ${e.stderr || ''}${e.stdout || ''}${e.message}`);
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    copyFileSync(join(repoRoot, 'examples/bank-java/target/bank-java.jar'), tmp);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { path, built: true, hash: digest };
}
