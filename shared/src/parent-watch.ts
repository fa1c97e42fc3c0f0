/**
 * A child process notices that the process that started it is gone, even when that process was
 * killed with SIGKILL and could not stop its children itself. The launcher (the `faultline` CLI)
 * sets FAULTLINE_PARENT_PID to its own pid in every child's environment; the child polls it.
 *
 * Two checks, as the kernel gives them: when a process exits, exit_notify() (forget_original_parent)
 * reparents its children to the nearest subreaper or to init, so process.ppid stops being the
 * launcher's pid; and kill(pid, 0) fails with ESRCH once the launcher has been reaped.
 */
import { ValidationError } from "./errors.ts";

export const PARENT_PID_ENV = "FAULTLINE_PARENT_PID";
const POLL_MS = 500;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * When env FAULTLINE_PARENT_PID is set, polls every 500 ms (on an unref'd timer, so it never keeps
 * the process alive) whether that pid is still alive and still our parent, and calls `onGone` once
 * when it is not. Returns a function that stops watching, or null when the variable is absent.
 *
 * If the pid is not our parent from the start (the variable was inherited from further up), only
 * its liveness is watched.
 */
export function watchParent(onGone: (why: string) => void, env: NodeJS.ProcessEnv = process.env): (() => void) | null {
  const raw = env[PARENT_PID_ENV];
  if (raw === undefined || raw === "") return null;
  if (!/^[1-9][0-9]*$/.test(raw)) throw new ValidationError("environment", `/${PARENT_PID_ENV}`, `expected a pid, got ${JSON.stringify(raw)}`);
  const pid = Number(raw);
  const parentAtStart = process.ppid === pid;
  let timer: NodeJS.Timeout | null = null;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = null;
  };
  const check = () => {
    let why: string | null = null;
    if (parentAtStart && process.ppid !== pid) why = `parent ${pid} exited (now reparented to ${process.ppid})`;
    else if (!alive(pid)) why = `parent ${pid} no longer exists`;
    if (why === null || timer === null) return;
    stop();
    onGone(why);
  };
  timer = setInterval(check, POLL_MS);
  timer.unref();
  return stop;
}
