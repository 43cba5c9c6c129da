/** Wall time and this process's CPU time of one measured section. */
export interface Timed {
  seconds: number;
  cpuMicros: number;
}

/** Runs `fn` and measures it alone: set-up done before the call is not counted. */
export async function timed(fn: () => unknown): Promise<Timed> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { seconds, cpuMicros: cpu.user + cpu.system };
}
