// Where a bench step's time goes: CPU seconds from /proc, for this process, the embedded Postgres, a local
// nats-server and the bench's API server processes (bench:ingest, bench:stream and bench:single print them beside
// their figures).
import { readdirSync, readFileSync } from 'node:fs';

// CPU seconds spent so far by this process (all its threads), the embedded Postgres (postmaster and its children) and
// a local nats-server, from /proc: where the time of each step goes. Undefined where it cannot be seen.
export interface Cpu {
  node: number;
  postgres?: number;
  nats?: number;
  /** The processes given as `servers` to cpuNow (the bench's API servers). */
  servers?: number;
}
export function cpuNow(postmasterPidFile: string | undefined, natsLocal: boolean, servers: readonly number[] = []): Cpu {
  const usage = process.cpuUsage();
  const cpu: Cpu = { node: (usage.user + usage.system) / 1e6 };
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return cpu;
  }
  let postmaster: string | undefined;
  try {
    postmaster = postmasterPidFile ? readFileSync(postmasterPidFile, 'utf8').split('\n')[0]!.trim() : undefined;
  } catch {
    postmaster = undefined;
  }
  const ticks = 100; // USER_HZ on Linux
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / ticks;
    // The postmaster's cutime/cstime hold what its exited children (closed connections, autovacuum workers) spent.
    const reaped = (Number(fields[13]) + Number(fields[14])) / ticks;
    if (postmaster && pid === postmaster) cpu.postgres = (cpu.postgres ?? 0) + seconds + reaped;
    if (postmaster && fields[1] === postmaster) cpu.postgres = (cpu.postgres ?? 0) + seconds;
    if (natsLocal && comm === 'nats-server') cpu.nats = (cpu.nats ?? 0) + seconds;
    if (servers.includes(Number(pid))) cpu.servers = (cpu.servers ?? 0) + seconds;
  }
  return cpu;
}
export function cpuSpent(from: Cpu, to: Cpu, events: number): string {
  const each = (what: string, a?: number, b?: number) =>
    a === undefined || b === undefined ? [] : [`${what} ${(b - a).toFixed(1)} s (${(((b - a) / events) * 1e6).toFixed(0)} µs/event)`];
  return [
    ...each('node', from.node, to.node),
    ...each('API servers', from.servers, to.servers),
    ...each('postgres', from.postgres, to.postgres),
    ...each('nats-server', from.nats, to.nats),
  ].join(', ');
}
