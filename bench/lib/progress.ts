import cliProgress from 'cli-progress';

/**
 * One progress bar for the whole run (cli-progress; drawn only on a terminal) and log lines that
 * do not tear it. Without a terminal (CI, the quick test) only the log lines are printed.
 */
export class Progress {
  private readonly multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private total = 0;
  private done = 0;

  constructor(private readonly quiet = false) {
    this.multi = process.stderr.isTTY && !quiet
      ? new cliProgress.MultiBar({
        format: ' {bar} {percentage}% | {value}/{total} | {phase}',
        hideCursor: true, clearOnComplete: false, stream: process.stderr,
      }, cliProgress.Presets.shades_classic)
      : undefined;
  }

  start(total: number, phase = 'starting'): void {
    this.total = total;
    this.done = 0;
    this.bar = this.multi?.create(total, 0, { phase });
  }

  /** Marks one unit done and names what runs next. */
  tick(phase: string): void {
    this.done = Math.min(this.total, this.done + 1);
    this.bar?.update(this.done, { phase });
  }

  phase(phase: string): void {
    this.bar?.update(this.done, { phase });
  }

  log(line: string): void {
    if (this.quiet) return;
    if (this.multi) this.multi.log(line + '\n');
    else process.stderr.write(line + '\n');
  }

  stop(): void {
    this.multi?.stop();
  }
}
