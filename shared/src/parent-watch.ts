/**
 * A child process started by the CLI exits when that parent is gone (even when it was SIGKILLed and
 * could not stop its children): `FAULTLINE_PARENT_PID` names the parent; it is polled.
 */
export function watchParent(onGone: (why: string) => void, env: NodeJS.ProcessEnv = process.env): (() => void) | null {
  const pid = Number(env.FAULTLINE_PARENT_PID);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let fired = false;
  const t = setInterval(() => {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if ((!alive || process.ppid !== pid) && !fired) {
      fired = true;
      clearInterval(t);
      onGone(alive ? `reparented (ppid ${process.ppid}, was ${pid})` : `parent ${pid} exited`);
    }
  }, 500);
  t.unref();
  return () => clearInterval(t);
}
