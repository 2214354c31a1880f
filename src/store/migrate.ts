// Versioned SQL migrations: numbered files, each applied once in its own transaction, under an advisory lock,
// with a checksum so an edited migration is refused instead of silently diverging. Shipped migrations are never
// edited (test/store/migrations.test.ts pins each one's SQL); a comment or whitespace fix to a shipped file is the
// one change allowed, and databases that applied the earlier text are still accepted (EARLIER_TEXTS).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
const MIGRATION_LOCK = 4_242_001; // pg_advisory_lock key shared by every Accrue process

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** SHA-256 of the file's bytes: what schema_migrations records (every Accrue version reads it so). */
  checksum: string;
  /** SHA-256 of the SQL with comments and whitespace normalised away (normalizeSql): what a pin holds. */
  sqlChecksum: string;
}

/**
 * Earlier texts of shipped migrations that differ from today's file in comments or whitespace only: the SHA-256 of
 * the bytes a database may have recorded, and of their normalised SQL, which must equal the file's (so only a
 * comment or whitespace change is ever accepted). Add the old bytes' checksum here when such a fix is made.
 */
export const EARLIER_TEXTS: Readonly<Record<string, ReadonlyArray<{ checksum: string; sqlChecksum: string; note: string }>>> = {
  '017_claim_keys_by_index.sql': [
    {
      checksum: '4f13e66639571c548221c3942c419a985e1bc94172e100af067fc935153718b8',
      sqlChecksum: '00caa3116f4f2d47cea844b15b56711d20866a1ad3480c5fb64f70096cc73b40',
      note: 'as shipped in 09d617f, before the comment fix of b66bb6f',
    },
  ],
};

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The SQL of a migration with comments (`--` and nested block comments) removed and whitespace normalised: a run of
 * whitespace or comments becomes one space between two word characters and nothing elsewhere. String literals
 * ('…', E'…'), quoted identifiers ("…") are kept byte for byte; dollar-quoted bodies ($$…$$, $fn$…$fn$: function bodies)
 * are normalised the same way, since PL/pgSQL comments are SQL comments.
 */
export function normalizeSql(sql: string): string {
  let out = '';
  let gap = false; // whitespace or a comment since the last character written
  const word = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$]/.test(c);
  const emit = (text: string) => {
    if (gap && word(out[out.length - 1]) && word(text[0])) out += ' ';
    gap = false;
    out += text;
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      gap = true;
      i += 1;
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
      gap = true;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < sql.length && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth += 1;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth -= 1;
          i += 2;
        } else i += 1;
      }
      gap = true;
    } else if (c === "'" || c === '"') {
      const escapes = c === "'" && /[eE]/.test(out[out.length - 1] ?? '') && !word(out[out.length - 2]) && !gap;
      let j = i + 1;
      while (j < sql.length) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j += 1;
      }
      emit(sql.slice(i, j + 1));
      i = j + 1;
    } else if (c === '$' && (gap || !word(out[out.length - 1]))) {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))?.[0];
      if (tag === undefined) {
        emit(c);
        i += 1;
        continue;
      }
      const close = sql.indexOf(tag, i + tag.length);
      const end = close === -1 ? sql.length : close;
      emit(`${tag}${normalizeSql(sql.slice(i + tag.length, end))}${close === -1 ? '' : tag}`);
      i = close === -1 ? sql.length : close + tag.length;
    } else {
      emit(c);
      i += 1;
    }
  }
  return out;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(dir, file), 'utf8');
      return {
        version: Number.parseInt(file.slice(0, 3), 10),
        name: file,
        sql,
        checksum: sha256(sql),
        sqlChecksum: sha256(normalizeSql(sql)),
      };
    });
}

/** Whether a recorded checksum is of this migration's text, or of an earlier text with the same SQL. */
export function sameMigration(migration: Migration, recorded: string): boolean {
  if (recorded === migration.checksum) return true;
  return (EARLIER_TEXTS[migration.name] ?? []).some(
    (earlier) => earlier.checksum === recorded && earlier.sqlChecksum === migration.sqlChecksum,
  );
}

/** Applies pending migrations; safe to run twice and from several processes at once. Returns the versions applied. */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Map<number, string>();
    for (const row of (await client.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations')).rows) {
      done.set(row.version, row.checksum);
    }
    for (const migration of loadMigrations()) {
      const checksum = done.get(migration.version);
      if (checksum !== undefined) {
        if (!sameMigration(migration, checksum))
          throw new Error(`migration ${migration.name} was changed after it was applied; add a new migration instead`);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          migration.checksum,
        ]);
        await client.query('COMMIT');
        applied.push(migration.version);
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
  return applied;
}
