// Timing and running jobs on several connections at once, for the close bench's loaders.
import type pg from 'pg';

/** Seconds since `start` (process.hrtime.bigint()). */
export const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** Runs the jobs on the clients at once, each client taking the next job in list order; fails with the first failure once all have stopped. */
export async function onClients<T>(
  clients: readonly pg.ClientBase[],
  jobs: ReadonlyArray<(client: pg.ClientBase) => Promise<T>>,
): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  let failed = false;
  const settled = await Promise.allSettled(
    clients.map(async (client) => {
      while (!failed && next < jobs.length) {
        const i = next++;
        try {
          results[i] = await jobs[i]!(client);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    }),
  );
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
  return results;
}
