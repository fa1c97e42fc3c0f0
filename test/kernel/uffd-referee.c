/*
 * uffd-referee: what this machine's kernel does with a signal sent to a thread that waits in
 * handle_userfault() for a page the handler does not fill yet, for four kinds of access:
 *
 *   user-load       a plain load in user mode (FAULT_FLAG_USER | INTERRUPTIBLE: fault_signal_pending()
 *                   lets the signal handler run, the load then re-faults)
 *   kernel-uaccess  pwrite(fd, page): copy_from_user in the kernel (FAULT_FLAG_DEFAULT, not user mode:
 *                   a non-fatal signal wakes the wait but the fault is retried)
 *   gup             process_vm_readv(): get_user_pages_remote without FOLL_INTERRUPTIBLE
 *                   (gup_signal_pending() only sees fatal signals: TASK_KILLABLE)
 *   populate        madvise(MADV_POPULATE_READ): faultin_page_range(), killable only
 *
 * Per kind: SIGUSR1 (a no-op handler, no SA_RESTART) at PRE_MS, a WINDOW_MS window (thread state,
 * its CPU time, whether the handler ran, the UFFD_EVENT_PAGEFAULTs read), then UFFDIO_COPY; then a
 * forked child gets SIGKILL instead. Prints one JSON document on stdout. Build: gcc -O2 -pthread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define PG 4096
#define PRE_MS 150        /* the access is asleep in handle_userfault by then */
#define WINDOW_MS 600     /* signal → fill */
#define SAMPLES 12        /* thread-state samples in the window */
#define KILL_FILL_MS 1500 /* the SIGKILL child fills at this point if it is still alive */
#define MAX_JOIN_MS 2000  /* bound on an access after its fill */

enum kind { USER_LOAD, KERNEL_UACCESS, GUP, POPULATE, KINDS };
static const char *const KIND_NAME[KINDS] = {"user-load", "kernel-uaccess", "gup", "populate"};

struct run {
  enum kind kind;
  int uffd, sink;
  char *page;
  pthread_t worker, pager;
  atomic_int tid, filled, done, stop, honoured;
  atomic_long events;
  long ret;
};
static struct run R;

struct measure {
  int honoured, completed, killed;
  char state, states[SAMPLES + 1];
  double cpu_share, window_ms, kill_ms;
  long events;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void sleep_ms(double ms) {
  struct timespec t = {(time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6)};
  while (nanosleep(&t, &t) && errno == EINTR) {}
}

static void fail(const char *what, int err) {
  struct utsname u;
  uname(&u);
  printf("{\"error\":\"%s: %s\",\"kernel\":\"%s\"}\n", what, strerror(err), u.release);
  exit(2);
}

static void on_alarm(int s) {
  (void)s;
  static const char msg[] = "{\"error\":\"uffd-referee: overall time bound exceeded\"}\n";
  (void)!write(1, msg, sizeof msg - 1);
  _exit(3);
}

/* the SIGUSR1 handler: did it run while the page was still missing? */
static void on_usr1(int s) {
  (void)s;
  if (!atomic_load(&R.filled)) atomic_store(&R.honoured, 1);
}

/* userfaultfd(2), or /dev/userfaultfd when the syscall is refused (vm.unprivileged_userfaultfd=0) */
static int open_uffd(void) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
#ifdef USERFAULTFD_IOC_NEW
  if (fd < 0) {
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK), close(dev);
  }
#endif
  if (fd < 0) fail("userfaultfd unavailable", errno);
  struct uffdio_api api = {.api = UFFD_API};
  if (ioctl(fd, UFFDIO_API, &api)) fail("UFFDIO_API", errno);
  return fd;
}

/* a fresh anonymous page registered MISSING on a fresh uffd */
static void setup(enum kind k) {
  memset(&R, 0, sizeof R);
  R.kind = k;
  R.uffd = open_uffd();
  R.page = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (R.page == MAP_FAILED) fail("mmap", errno);
  struct uffdio_register rg = {.range = {(unsigned long)R.page, PG}, .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(R.uffd, UFFDIO_REGISTER, &rg)) fail("UFFDIO_REGISTER", errno);
  R.sink = memfd_create("uffd-referee", MFD_CLOEXEC);
  if (R.sink < 0) fail("memfd_create", errno);
}

static void teardown(void) {
  close(R.uffd); /* a still-waiting access is released (handle_userfault: ctx->released) */
  close(R.sink);
  munmap(R.page, PG);
}

/* the access that meets the missing page */
static void *worker(void *a) {
  (void)a;
  static char buf[PG];
  atomic_store(&R.tid, (int)gettid());
  struct iovec local = {buf, PG}, remote = {R.page, PG};
  switch (R.kind) {
  case USER_LOAD: R.ret = *(volatile char *)R.page; break;
  case KERNEL_UACCESS: R.ret = pwrite(R.sink, R.page, PG, 0) == PG ? 0 : -1; break;
  case GUP: R.ret = process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == PG ? 0 : -1; break;
  default: R.ret = madvise(R.page, PG, MADV_POPULATE_READ); break;
  }
  atomic_store(&R.done, 1);
  return NULL;
}

/* the handler's reader: counts UFFD_EVENT_PAGEFAULT messages, never fills */
static void *pager(void *a) {
  (void)a;
  struct uffd_msg m[64];
  while (!atomic_load(&R.stop)) {
    struct pollfd p = {R.uffd, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) continue;
    ssize_t n = read(R.uffd, m, sizeof m);
    for (ssize_t i = 0; i < n / (ssize_t)sizeof m[0]; i++)
      if (m[i].event == UFFD_EVENT_PAGEFAULT) atomic_fetch_add(&R.events, 1);
  }
  return NULL;
}

static void fill(void) {
  static char src[PG] __attribute__((aligned(PG)));
  struct uffdio_copy c = {.dst = (unsigned long)R.page, .src = (unsigned long)src, .len = PG};
  if (ioctl(R.uffd, UFFDIO_COPY, &c) && errno != EEXIST) fail("UFFDIO_COPY", errno);
}

/* the state letter of /proc/self/task/TID/stat: R running, S interruptible, D uninterruptible/killable */
static char task_state(int tid) {
  char path[64], b[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  FILE *f = fopen(path, "r");
  if (!f) return '?';
  size_t n = fread(b, 1, sizeof b - 1, f);
  fclose(f);
  b[n] = 0;
  char *p = strrchr(b, ')');
  return p && p[1] && p[2] ? p[2] : '?';
}

static double thread_cpu_ms(pthread_t t) {
  clockid_t c;
  struct timespec ts;
  if (pthread_getcpuclockid(t, &c) || clock_gettime(c, &ts)) return 0;
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char majority(const char *s) {
  int best = 0;
  char who = '?';
  for (const char *a = s; *a; a++) {
    int n = 0;
    for (const char *b = s; *b; b++) n += *b == *a;
    if (n > best) best = n, who = *a;
  }
  return who;
}

static void wait_done(double bound_ms) {
  double end = now_ms() + bound_ms;
  while (!atomic_load(&R.done) && now_ms() < end) sleep_ms(5);
}

/* SIGUSR1 during the stall: what the thread does in the window, then whether the fill completes it */
static void signal_run(enum kind k, struct measure *m) {
  setup(k);
  pthread_create(&R.pager, NULL, pager, NULL);
  pthread_create(&R.worker, NULL, worker, NULL);
  sleep_ms(PRE_MS);
  for (int i = 0; i < 100 && !atomic_load(&R.events); i++) sleep_ms(10); /* the wait has begun */
  int tid = atomic_load(&R.tid);
  long ev0 = atomic_load(&R.events);
  double cpu0 = thread_cpu_ms(R.worker), t0 = now_ms();
  pthread_kill(R.worker, SIGUSR1);
  for (int i = 0; i < SAMPLES; i++) {
    sleep_ms((double)WINDOW_MS / SAMPLES);
    m->states[i] = task_state(tid);
  }
  m->states[SAMPLES] = 0;
  m->window_ms = now_ms() - t0;
  m->cpu_share = (thread_cpu_ms(R.worker) - cpu0) / m->window_ms;
  m->events = atomic_load(&R.events) - ev0;
  atomic_store(&R.filled, 1);
  fill();
  wait_done(MAX_JOIN_MS);
  m->completed = atomic_load(&R.done) && R.ret == 0;
  m->honoured = atomic_load(&R.honoured);
  m->state = majority(m->states);
  atomic_store(&R.stop, 1);
  pthread_join(R.pager, NULL);
  if (!atomic_load(&R.done)) teardown(), pthread_join(R.worker, NULL);
  else pthread_join(R.worker, NULL), teardown();
}

/* the child of kill_run: the same access; it fills at KILL_FILL_MS (telling the parent first) */
static void kill_child(enum kind k, int out) {
  setup(k);
  pthread_create(&R.worker, NULL, worker, NULL);
  sleep_ms(PRE_MS);
  (void)!write(out, "R", 1);
  sleep_ms(KILL_FILL_MS - PRE_MS);
  (void)!write(out, "F", 1);
  fill();
  wait_done(MAX_JOIN_MS);
  _exit(0);
}

/* SIGKILL during the stall: is the child gone before its fill? */
static void kill_run(enum kind k, struct measure *m) {
  int p[2];
  if (pipe(p)) fail("pipe", errno);
  pid_t c = fork();
  if (c < 0) fail("fork", errno);
  if (c == 0) close(p[0]), kill_child(k, p[1]);
  close(p[1]);
  char b = 0;
  struct pollfd pf = {p[0], POLLIN, 0};
  if (poll(&pf, 1, 2000) > 0) (void)!read(p[0], &b, 1);
  double t = now_ms();
  kill(c, SIGKILL);
  int st;
  waitpid(c, &st, 0); /* bounded: the child fills at KILL_FILL_MS, then the pending SIGKILL ends it */
  m->kill_ms = now_ms() - t;
  char rest[8];
  ssize_t n = read(p[0], rest, sizeof rest); /* an 'F' here: the fill came before the death */
  m->killed = b == 'R' && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && n <= 0;
  close(p[0]);
}

static void print_kind(enum kind k, const struct measure *m, int last) {
  printf("    \"%s\": {\"honouredBeforeFill\": %s, \"state\": \"%c\", \"states\": \"%s\", \"cpuShare\": %.3f, "
         "\"eventsInWindow\": %ld, \"windowMs\": %.1f, \"eventsPerSec\": %.1f, \"completedAfterFill\": %s, "
         "\"killedBeforeFill\": %s, \"killToReapMs\": %.1f}%s\n",
         KIND_NAME[k], m->honoured ? "true" : "false", m->state, m->states, m->cpu_share, m->events, m->window_ms,
         m->events / (m->window_ms / 1e3), m->completed ? "true" : "false", m->killed ? "true" : "false", m->kill_ms,
         last ? "" : ",");
}

int main(void) {
  struct utsname u;
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1; /* no SA_RESTART */
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGALRM, on_alarm);
  alarm(20);
  close(open_uffd()); /* fail early, with the error JSON, when userfaultfd is unavailable */
  uname(&u);
  struct measure m[KINDS] = {{0}};
  for (int k = 0; k < KINDS; k++) signal_run((enum kind)k, &m[k]), kill_run((enum kind)k, &m[k]);
  printf("{\n  \"kernel\": \"%s\",\n  \"windowMs\": %d,\n  \"kinds\": {\n", u.release, WINDOW_MS);
  for (int k = 0; k < KINDS; k++) print_kind((enum kind)k, &m[k], k == KINDS - 1);
  printf("  }\n}\n");
  return 0;
}
