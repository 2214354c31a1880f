// Progress for long work: a bar on a terminal, plain lines elsewhere (CI, pipes), nothing with --json.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, note?: string): void;
  stop(): void;
}

export function progress(label: string, options: { quiet?: boolean } = {}): Progress {
  if (options.quiet) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} {note}`, stream: process.stderr, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, note = '') {
        if (!started) {
          bar.start(total, done, { note });
          started = true;
        } else {
          bar.setTotal(total);
          bar.update(done, { note });
        }
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastPercent = -10;
  return {
    update(done, total, note = '') {
      const percent = total > 0 ? Math.floor((done * 100) / total) : 100;
      if (percent >= lastPercent + 10 || done === total) {
        if (percent === lastPercent) return;
        lastPercent = percent;
        process.stderr.write(`${label}: ${percent}% (${done}/${total})${note ? ` ${note}` : ''}\n`);
      }
    },
    stop() {},
  };
}

/** Progress of work in phases (rate, then finalize): one bar or line series per phase, named by the phase's note. */
export function phasedProgress(label: string, options: { quiet?: boolean } = {}): Progress {
  let phase: { note: string; bar: Progress } | undefined;
  return {
    update(done, total, note = '') {
      if (phase?.note !== note) {
        phase?.bar.stop();
        phase = { note, bar: progress(note ? `${label} (${note})` : label, options) };
      }
      phase.bar.update(done, total);
    },
    stop() {
      phase?.bar.stop();
    },
  };
}
