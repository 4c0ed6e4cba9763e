/*
 * Consolidator guest workload generator (static; runs as the guest's only program).
 *
 * CPU, work-conserving: tasks arrive as a Poisson process at rate load / wl.task_ms, each needing an
 * exponential amount of the VM's CPU (mean wl.task_ms; the simulator's sim.workload draws the same).
 * A task that cannot run at once waits in a FIFO (a ring of arrival times and work, QCAP tasks; an
 * arrival that finds it full is counted as dropped) and the head task is served until its work is
 * done: issued = done + queued + dropped.
 * Work is the VM's own CPU, not wall time: the generator spins reading the clock and counts only
 * the short steps between reads; a step longer than GAP_S is time its vCPU did not run (host CPU
 * quota, other processes, a postcopy fault) and does no work. The VM's "100 %" is its host quota
 * (wl.quota cores): one second of real running is 1 / quota seconds of the VM's CPU.
 * Per finished task: delay = completion - arrival - its work (the wait beyond its own work,
 * clamped at 0), kept as count, sum, max and a histogram (`hist`).
 * Memory: with load > 0 the tasks write the pages, dirty / load MiB per second of VM CPU, so a
 * guest writes `dirty` MiB/s while it is served its load and less when starved (queued tasks keep
 * that intensity if the load is then set to 0); with load 0 it writes `dirty` MiB/s of wall time. Pages are drawn uniformly at random from a working set of
 * wl.wws_mib MiB. Every write stamps the page with (index, sequence, mix) and the generator
 * remembers each page's last sequence, so `check` finds any page that lost its last write (e.g. a
 * page a migration failed to transfer).
 *
 * Parameters: key=value words from /proc/cmdline, then from argv (same syntax):
 *   wl.wws_mib (0: MemAvailable - 24 MiB)  wl.load (0..1)  wl.dirty (MiB/s)  wl.task_ms  wl.seed
 *   wl.quota (host cores that are the VM's 100 %, default 1)  wl.ctl (control device, /dev/ttyS1)
 * Control channel, one line per command, one line per answer:
 *   ping -> pong | set load=X dirty=Y -> ok ... | check -> check bad=N pages=M
 *   stats -> stats pages= written= tasks= busy_s= uptime_s= memfree_kib= done= queued= dropped=
 *            backlog_s= delay_sum_s= delay_max_s=
 *            b=K:C,...  (tasks: issued; busy_s: VM CPU served; backlog_s: work waiting, VM CPU
 *            seconds; b: the delay histogram, as `hist` gives it)
 *   hist -> hist done=N b=K:C,K:C,...  (non-empty delay bins: bin 0 < 1 ms, bin k >= 1 holds
 *            delays in [2^((k-1)/4), 2^(k/4)) ms, the last bin everything above)
 *   scribble n=N -> scribbled n=N (test aid: corrupts N pages so that check must find them)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8u)

#define QCAP 65536u      /* queued tasks (a power of two) */
#define GAP_S 0.0002     /* a clock step longer than this: the vCPU did not run */
#define SLICE_S 0.001    /* serve at most this much real running between control polls */
#define NBINS 96         /* delay histogram: bin 0 < 1 ms, then 4 bins per octave (last: the rest) */

static double g_load, g_dirty_mib_s, g_task_s = 0.02, g_quota = 1.0;
static uint64_t g_rng = 88172645463325252ull;
static uint64_t *g_mem;
static uint32_t *g_expect;
static size_t g_pages;
static uint64_t g_written, g_tasks;
static double g_busy_s, g_t0, g_next_arrival;

/* the FIFO of waiting tasks: arrival times and work (VM CPU s); the head task has g_head_done_s
 * of its work done; g_backlog_s = queued work not yet done */
static double g_queue[QCAP], g_qwork[QCAP];
static size_t g_qhead, g_qlen;
static double g_head_done_s, g_backlog_s, g_owed_pages;
static double g_pages_per_work_s; /* page writes per second of VM CPU, from the last load > 0 */
static uint64_t g_done, g_dropped, g_hist[NBINS];
static double g_delay_sum_s, g_delay_max_s;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static double expo(double mean) {
    double u = ((double)(rnd() >> 11) + 1.0) / 9007199254740993.0;
    return -mean * log(u);
}

static uint64_t mix(uint64_t idx, uint64_t seq) {
    uint64_t x = (idx << 32) ^ seq ^ 0x9e3779b97f4a7c15ull;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static void stamp(size_t idx) {
    uint64_t *p = g_mem + idx * WORDS;
    uint32_t seq = ++g_expect[idx];
    uint64_t m = mix(idx, seq);
    p[0] = idx;
    p[1] = seq;
    p[2] = m;
    p[WORDS / 2] = ~m;
    p[WORDS - 1] = m ^ idx;
}

/* Writes per unit of work change only with a load > 0: queued tasks keep the intensity they were
 * issued with when the load drops to 0. */
static void set_intensity(void) {
    if (g_load > 0) g_pages_per_work_s = g_dirty_mib_s / g_load * 256.0;
}

static void finish_head(double t) {
    double delay = t - g_queue[g_qhead] - g_qwork[g_qhead];
    if (delay < 0) delay = 0;
    int bin = delay < 0.001 ? 0 : 1 + (int)floor(4.0 * log2(delay * 1000.0));
    if (bin >= NBINS) bin = NBINS - 1;
    g_hist[bin]++;
    g_delay_sum_s += delay;
    if (delay > g_delay_max_s) g_delay_max_s = delay;
    g_done++;
    g_qhead = (g_qhead + 1) & (QCAP - 1);
    g_qlen--;
}

static void arrive(double t) {
    double work = expo(g_task_s);
    g_tasks++;
    if (g_qlen == QCAP) {
        g_dropped++;
        return;
    }
    g_queue[(g_qhead + g_qlen) & (QCAP - 1)] = t;
    g_qwork[(g_qhead + g_qlen) & (QCAP - 1)] = work;
    g_backlog_s += work;
    g_qlen++;
}

static size_t check_pages(void) {
    size_t bad = 0;
    for (size_t i = 0; i < g_pages; i++) {
        const uint64_t *p = g_mem + i * WORDS;
        uint64_t m = mix(i, g_expect[i]);
        if (p[0] != i || p[1] != g_expect[i] || p[2] != m || p[WORDS / 2] != ~m || p[WORDS - 1] != (m ^ i))
            bad++;
    }
    return bad;
}

static double param(const char *text, const char *key, double dflt) {
    const char *p = text;
    size_t n = strlen(key);
    double v = dflt;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == text || p[-1] == ' ' || p[-1] == '\n') && p[n] == '=')
            v = strtod(p + n + 1, NULL);
        p += n;
    }
    return v;
}

static const char *param_str(const char *text, const char *key, char *out, size_t cap, const char *dflt) {
    const char *p = strstr(text, key);
    size_t n = strlen(key), i = 0;
    snprintf(out, cap, "%s", dflt);
    if (p && p[n] == '=') {
        for (p += n + 1; *p && *p != ' ' && *p != '\n' && i + 1 < cap; p++) out[i++] = *p;
        out[i] = 0;
    }
    return out;
}

static size_t meminfo_kib(const char *field, size_t dflt) {
    char buf[4096];
    FILE *f = fopen("/proc/meminfo", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *p = strstr(buf, field);
    return p ? (size_t)strtoull(p + strlen(field), NULL, 10) : dflt;
}

static int open_ctl(const char *path) {
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    struct termios t;
    if (fd >= 0 && tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        t.c_cflag |= CLOCAL | CREAD;
        cfsetspeed(&t, B115200);
        tcsetattr(fd, TCSANOW, &t);
    }
    return fd;
}

static void reply(int fd, const char *line) {
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w > 0) off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR) return;
        else usleep(200);
    }
}

/* Replaces the line's final newline by " b=K:C,K:C,...\n" (the non-empty delay bins). */
static void hist_words(char *out, size_t cap) {
    size_t n = strlen(out) - 1;
    n += (size_t)snprintf(out + n, cap - n, " b=");
    for (int k = 0; k < NBINS && n + 32 < cap; k++)
        if (g_hist[k]) n += (size_t)snprintf(out + n, cap - n, "%d:%llu,", k, (unsigned long long)g_hist[k]);
    snprintf(out + n, cap - n, "\n");
}

static void command(int fd, char *line) {
    char out[2048];
    if (strncmp(line, "ping", 4) == 0) {
        snprintf(out, sizeof out, "pong\n");
    } else if (strncmp(line, "set", 3) == 0) {
        double load = param(line, "load", g_load);
        if (load != g_load && load > 0) g_next_arrival = now_s() + expo(g_task_s / load); /* new rate now */
        g_load = load;
        g_dirty_mib_s = param(line, "dirty", g_dirty_mib_s);
        set_intensity();
        snprintf(out, sizeof out, "ok load=%.4f dirty=%.3f\n", g_load, g_dirty_mib_s);
    } else if (strncmp(line, "check", 5) == 0) {
        snprintf(out, sizeof out, "check bad=%zu pages=%zu\n", check_pages(), g_pages);
    } else if (strncmp(line, "scribble", 8) == 0) { /* test aid: corrupt n pages behind check's back */
        size_t n = (size_t)param(line, "n", 1), i;
        for (i = 0; i < n && i < g_pages; i++) g_mem[i * WORDS + 1] ^= 0x5a5a5a5aull;
        snprintf(out, sizeof out, "scribbled n=%zu\n", i);
    } else if (strncmp(line, "stats", 5) == 0) {
        double backlog = g_qlen ? g_backlog_s : 0.0;
        snprintf(out, sizeof out,
                 "stats pages=%zu written=%llu tasks=%llu busy_s=%.4f uptime_s=%.4f memfree_kib=%zu done=%llu "
                 "queued=%zu dropped=%llu backlog_s=%.4f delay_sum_s=%.4f delay_max_s=%.4f\n",
                 g_pages, (unsigned long long)g_written, (unsigned long long)g_tasks, g_busy_s,
                 now_s() - g_t0, meminfo_kib("MemFree:", 0), (unsigned long long)g_done, g_qlen,
                 (unsigned long long)g_dropped, backlog, g_delay_sum_s, g_delay_max_s);
        hist_words(out, sizeof out);
    } else if (strncmp(line, "hist", 4) == 0) {
        snprintf(out, sizeof out, "hist done=%llu\n", (unsigned long long)g_done);
        hist_words(out, sizeof out);
    } else {
        snprintf(out, sizeof out, "error unknown command\n");
    }
    reply(fd, out);
}

static void read_ctl(int fd, char *buf, size_t *len, size_t cap) {
    ssize_t r;
    while ((r = read(fd, buf + *len, cap - 1 - *len)) > 0) {
        *len += (size_t)r;
        buf[*len] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = 0;
            if (nl > buf && nl[-1] == '\r') nl[-1] = 0;
            if (*buf) command(fd, buf);
            memmove(buf, nl + 1, *len - (size_t)(nl + 1 - buf) + 1);
            *len -= (size_t)(nl + 1 - buf);
        }
        if (*len >= cap - 1) *len = 0; /* overlong garbage line: drop it */
    }
}

/* Parameters from the kernel command line and argv; memory allocated and stamped; returns the ctl fd. */
static int setup(int argc, char **argv) {
    static char cmdline[4096], ctl_path[128];
    FILE *f = fopen("/proc/cmdline", "r");
    size_t n = f ? fread(cmdline, 1, sizeof cmdline - 1, f) : 0;
    if (f) fclose(f);
    for (int i = 1; i < argc && n + strlen(argv[i]) + 2 < sizeof cmdline; i++)
        n += (size_t)snprintf(cmdline + n, sizeof cmdline - n, " %s", argv[i]);

    double wws_mib = param(cmdline, "wl.wws_mib", 0);
    if (wws_mib <= 0) wws_mib = (double)meminfo_kib("MemAvailable:", 65536) / 1024.0 - 24.0;
    if (wws_mib < 1) wws_mib = 1;
    g_load = param(cmdline, "wl.load", 0);
    g_dirty_mib_s = param(cmdline, "wl.dirty", 0);
    g_task_s = param(cmdline, "wl.task_ms", 20) / 1000.0;
    g_quota = param(cmdline, "wl.quota", 1.0);
    set_intensity();
    if (g_quota <= 0) g_quota = 1.0;
    g_rng ^= (uint64_t)param(cmdline, "wl.seed", 1) * 0x9e3779b97f4a7c15ull;
    param_str(cmdline, "wl.ctl", ctl_path, sizeof ctl_path, "/dev/ttyS1");

    g_pages = (size_t)(wws_mib * 1024 * 1024) / PAGE;
    g_mem = mmap(NULL, g_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    g_expect = calloc(g_pages, sizeof *g_expect);
    if (g_mem == MAP_FAILED || !g_expect) {
        perror("workload: memory");
        exit(1);
    }
    for (size_t i = 0; i < g_pages; i++) stamp(i);
    int ctl = open_ctl(ctl_path);
    if (ctl < 0) perror("workload: control channel");
    return ctl;
}

/* Memory by wall time (load 0 only): the page writes owed since the last pass; a long stall
 * (pause, migration) is forgiven. */
static void dirty_pages(double t, double *t_last) {
    double owed_max = g_dirty_mib_s * 256.0 * 0.1;
    if (g_load <= 0) g_owed_pages += (t - *t_last) * g_dirty_mib_s * 256.0;
    *t_last = t;
    if (g_owed_pages > owed_max) g_owed_pages = owed_max;
    for (; g_owed_pages >= 1.0; g_owed_pages -= 1.0, g_written++) stamp((size_t)(rnd() % g_pages));
}

/* `work_s` of VM CPU was served: the head task advances (and may finish) and writes its pages. */
static void do_work(double t, double work_s) {
    g_busy_s += work_s;
    g_head_done_s += work_s;
    g_backlog_s -= work_s;
    if (g_head_done_s >= g_qwork[g_qhead]) {
        g_head_done_s -= g_qwork[g_qhead];
        finish_head(t);
        if (g_qlen == 0) g_head_done_s = g_backlog_s = 0;
    }
    if (g_pages_per_work_s > 0) {
        g_owed_pages += work_s * g_pages_per_work_s;
        for (; g_owed_pages >= 1.0; g_owed_pages -= 1.0, g_written++) stamp((size_t)(rnd() % g_pages));
    }
}

/* CPU: queue the Poisson arrivals due, then serve the queue for up to SLICE_S of real running
 * (counting only clock steps shorter than GAP_S). Returns how long the main loop may wait (ms). */
static int serve_tasks(void) {
    double t = now_s();
    while (g_load > 0 && g_next_arrival <= t) {
        arrive(g_next_arrival);
        g_next_arrival += expo(g_task_s / g_load);
    }
    if (g_qlen > 0) {
        double last = t, ran = 0, s;
        while (g_qlen > 0 && ran < SLICE_S && (s = now_s()) - t < 2 * SLICE_S) {
            double step = s - last;
            last = s;
            if (step > 0 && step < GAP_S) {
                ran += step;
                do_work(s, step / g_quota);
            }
        }
        return 0;
    }
    if (g_load <= 0 && g_dirty_mib_s > 0) return 1;
    double gap = g_load > 0 ? g_next_arrival - t : 0.05;
    return gap > 0.05 ? 50 : (int)(gap * 1000.0) + 1;
}

/* Wait up to wait_ms for commands; returns the fd, or -1 once the channel is gone. */
static int poll_ctl(int ctl, int wait_ms, char *buf, size_t *len, size_t cap) {
    if (ctl < 0) {
        if (wait_ms > 0) usleep((useconds_t)wait_ms * 1000u);
        return ctl;
    }
    struct pollfd pfd = {.fd = ctl, .events = POLLIN};
    if (poll(&pfd, 1, wait_ms) > 0) {
        if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) { /* run on without it */
            close(ctl);
            return -1;
        }
        read_ctl(ctl, buf, len, cap);
    }
    return ctl;
}

int main(int argc, char **argv) {
    static char ctl_buf[512];
    size_t ctl_len = 0;
    int ctl = setup(argc, argv);
    char hello[128];
    snprintf(hello, sizeof hello, "ready pages=%zu\n", g_pages);
    fputs(hello, stdout);
    fflush(stdout);
    if (ctl >= 0) reply(ctl, hello);

    g_t0 = now_s();
    double t_dirty = g_t0;
    g_next_arrival = g_t0 + (g_load > 0 ? expo(g_task_s / g_load) : 0.0);
    for (;;) {
        dirty_pages(now_s(), &t_dirty);
        int wait_ms = serve_tasks();
        ctl = poll_ctl(ctl, wait_ms, ctl_buf, &ctl_len, sizeof ctl_buf);
    }
}
