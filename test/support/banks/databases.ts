/** Each bank's own database, bank_<name>, on one throwaway PostgreSQL server (postgres.ts). */
import pg from 'pg';
import type { PostgresServer } from '../postgres.js';

/** CREATE DATABASE for each name on the server (bank_<name>); returns their URLs. */
export async function createDatabases(server: PostgresServer, names: string[]): Promise<Record<string, string>> {
  const admin = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'kubetx', database: 'postgres' });
  await admin.connect();
  try {
    for (const n of names) await admin.query(`CREATE DATABASE bank_${n}`);
  } finally {
    await admin.end();
  }
  return Object.fromEntries(names.map((n) => [n, bankDatabaseUrl(server, n)]));
}

export function bankDatabaseUrl(server: PostgresServer, name: string): string {
  return `postgres://kubetx@127.0.0.1:${server.port}/bank_${name}?sslmode=disable`;
}

export function bankPool(server: PostgresServer, name: string): pg.Pool {
  return new pg.Pool({ host: '127.0.0.1', port: server.port, user: 'kubetx', database: `bank_${name}`, max: 2 });
}
