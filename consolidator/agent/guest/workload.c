/*
 * Consolidator guest workload generator (static; runs as the guest's only program).
 *
 * CPU: tasks arrive as a Poisson process; each needs an exponential amount of CPU time
 * (mean wl.task_ms); arrival rate = load / mean, so one busy thread is loaded `load` of the time.
 * Memory: `dirty` MiB/s of page writes, spread evenly in time, to pages drawn uniformly at random
 * from a working set of wl.wws_mib MiB. Every write stamps the page with (index, sequence, mix)
 * and the generator remembers each page's last sequence, so `check` finds any page that lost its
 * last write (e.g. a page a migration failed to transfer).
 *
 * Parameters: key=value words from /proc/cmdline, then from argv (same syntax):
 *   wl.wws_mib (0: MemAvailable - 24 MiB)  wl.load (0..1)  wl.dirty (MiB/s)  wl.task_ms  wl.seed
 *   wl.ctl (control device, default /dev/ttyS1)
 * Control channel, one line per command, one line per answer:
 *   ping -> pong | set load=X dirty=Y -> ok ... | check -> check bad=N pages=M
 *   stats -> stats pages= written= tasks= busy_s= uptime_s= memfree_kib=
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

static double g_load, g_dirty_mib_s, g_task_s = 0.02;
static uint64_t g_rng = 88172645463325252ull;
static uint64_t *g_mem;
static uint32_t *g_expect;
static size_t g_pages;
static uint64_t g_written, g_tasks;
static double g_busy_s, g_t0, g_next_arrival;

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

static void command(int fd, char *line) {
    char out[256];
    if (strncmp(line, "ping", 4) == 0) {
        snprintf(out, sizeof out, "pong\n");
    } else if (strncmp(line, "set", 3) == 0) {
        double load = param(line, "load", g_load);
        if (load != g_load && load > 0) g_next_arrival = now_s() + expo(g_task_s / load); /* new rate now */
        g_load = load;
        g_dirty_mib_s = param(line, "dirty", g_dirty_mib_s);
        snprintf(out, sizeof out, "ok load=%.4f dirty=%.3f\n", g_load, g_dirty_mib_s);
    } else if (strncmp(line, "check", 5) == 0) {
        snprintf(out, sizeof out, "check bad=%zu pages=%zu\n", check_pages(), g_pages);
    } else if (strncmp(line, "scribble", 8) == 0) { /* test aid: corrupt n pages behind check's back */
        size_t n = (size_t)param(line, "n", 1), i;
        for (i = 0; i < n && i < g_pages; i++) g_mem[i * WORDS + 1] ^= 0x5a5a5a5aull;
        snprintf(out, sizeof out, "scribbled n=%zu\n", i);
    } else if (strncmp(line, "stats", 5) == 0) {
        snprintf(out, sizeof out,
                 "stats pages=%zu written=%llu tasks=%llu busy_s=%.3f uptime_s=%.3f memfree_kib=%zu\n",
                 g_pages, (unsigned long long)g_written, (unsigned long long)g_tasks, g_busy_s,
                 now_s() - g_t0, meminfo_kib("MemFree:", 0));
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

/* Memory: the page writes owed since the last pass; a long stall (pause, migration) is forgiven. */
static void dirty_pages(double t, double *t_last, double *owed) {
    *owed += (t - *t_last) * g_dirty_mib_s * 256.0;
    *t_last = t;
    if (*owed > g_dirty_mib_s * 256.0 * 0.1) *owed = g_dirty_mib_s * 256.0 * 0.1;
    for (; *owed >= 1.0; *owed -= 1.0, g_written++) stamp((size_t)(rnd() % g_pages));
}

/* CPU: Poisson arrivals add work, served for up to 1 ms at a time; backlog beyond 5 s is unserved
 * demand and dropped. Returns how long the main loop may wait for input (ms). */
static int serve_tasks(double *backlog_s) {
    double t = now_s();
    while (g_load > 0 && g_next_arrival <= t) {
        *backlog_s += expo(g_task_s);
        g_tasks++;
        g_next_arrival += expo(g_task_s / g_load);
    }
    if (*backlog_s > 5.0) *backlog_s = 5.0;
    if (*backlog_s > 0) {
        double end = t + (*backlog_s < 0.001 ? *backlog_s : 0.001), s;
        while ((s = now_s()) < end) {}
        g_busy_s += s - t;
        *backlog_s -= s - t;
        return 0;
    }
    if (g_dirty_mib_s > 0) return 1;
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
    double t_dirty = g_t0, owed_pages = 0, backlog_s = 0;
    g_next_arrival = g_t0 + (g_load > 0 ? expo(g_task_s / g_load) : 0.0);
    for (;;) {
        dirty_pages(now_s(), &t_dirty, &owed_pages);
        int wait_ms = serve_tasks(&backlog_s);
        ctl = poll_ctl(ctl, wait_ms, ctl_buf, &ctl_len, sizeof ctl_buf);
    }
}
