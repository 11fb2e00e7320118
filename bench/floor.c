/* floor.c - the durability floor: what committing messages costs with no SMTP.
 *
 * Per message, the commit of smtpspool-spool(5) and nothing else: mkdir
 * tmp/ID, write message.eml (in 64 KiB writes) and envelope.json, fdatasync
 * both, fsync tmp/ID, rename tmp/ID to queue/ID, fsync queue/.
 *
 *   floor [-p LANES] [-e] N SIZE SPOOLDIR
 *
 * N messages of SIZE octets in total. -p: LANES processes at once, sharing the
 * N messages (the concurrent workload). -e: every message in a process of its
 * own, started with posix_spawn (the one-session-per-message workloads: it
 * pays exec and start-up like a server started per connection does).
 * Prints one line: "N SIZE SECONDS MSGS_PER_S MIB_PER_S" (-q: nothing).
 *
 *   cc -O2 -o floor floor.c
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what) { perror(what); exit(1); }

static void write_synced(const char *path, const char *buf, size_t chunk, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) die(path);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < chunk ? n - done : chunk;
        ssize_t w = write(fd, buf, k);
        if (w <= 0) die(path);
        done += (size_t)w;
    }
    if (fdatasync(fd) != 0 || close(fd) != 0) die(path);
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) die(path);
    close(fd);
}

/* n messages in this process; ids are unique by pid and sequence */
static void commit_messages(long n, size_t size, const char *spool)
{
    enum { CHUNK = 65536 };
    static char body[CHUNK];
    char tmp[4096], dst[4096], file[4352], queue[4096];
    const char envelope[] = "{\n  \"version\": 1,\n  \"id\": \"x\",\n  \"mail_from\": \"sender@bench.example\",\n"
                            "  \"recipients\": [\n    {\n      \"address\": \"rcpt@bench.example\",\n"
                            "      \"status\": \"pending\"\n    }\n  ]\n}\n";
    memset(body, 'x', sizeof body);
    snprintf(queue, sizeof queue, "%s/queue", spool);
    for (long i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "%s/tmp/%ld-%ld", spool, (long)getpid(), i);
        if (mkdir(tmp, 0700) != 0) die(tmp);
        snprintf(file, sizeof file, "%s/message.eml", tmp);
        write_synced(file, body, CHUNK, size);
        snprintf(file, sizeof file, "%s/envelope.json", tmp);
        write_synced(file, envelope, sizeof envelope - 1, sizeof envelope - 1);
        fsync_path(tmp);
        snprintf(dst, sizeof dst, "%s/queue/%ld-%ld", spool, (long)getpid(), i);
        if (rename(tmp, dst) != 0) die(dst);
        fsync_path(queue);
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* one lane: n messages, each in a spawned child of its own when each is set */
static void lane(const char *self, long n, size_t size, const char *spool, int each)
{
    if (!each) {
        commit_messages(n, size, spool);
        return;
    }
    char sz[32];
    snprintf(sz, sizeof sz, "%zu", size);
    for (long i = 0; i < n; i++) {
        char *argv[] = {(char *)self, "-q", "1", sz, (char *)spool, NULL};
        pid_t pid;
        int st;
        if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0) die("posix_spawn");
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) die("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "child failed\n"); exit(1); }
    }
}

int main(int argc, char **argv)
{
    int lanes = 1, each = 0, quiet = 0, opt;
    while ((opt = getopt(argc, argv, "p:eq")) != -1) {
        if (opt == 'p') lanes = atoi(optarg);
        else if (opt == 'q') quiet = 1;
        else if (opt == 'e') each = 1;
        else return 2;
    }
    if (argc - optind != 3 || lanes < 1) {
        fprintf(stderr, "usage: %s [-p LANES] [-e] N SIZE SPOOLDIR\n", argv[0]);
        return 2;
    }
    long n = atol(argv[optind]);
    size_t size = (size_t)atol(argv[optind + 1]);
    const char *spool = argv[optind + 2];
    char path[4096];
    mkdir(spool, 0700);
    snprintf(path, sizeof path, "%s/tmp", spool);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/queue", spool);
    mkdir(path, 0700);
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) die("/proc/self/exe");
    self[sl] = 0;

    double t0 = now();
    if (lanes == 1) {
        lane(self, n, size, spool, each);
    } else {
        for (int l = 0; l < lanes; l++) {
            long share = n / lanes + (l < n % lanes ? 1 : 0);
            pid_t pid = fork();
            if (pid < 0) die("fork");
            if (pid == 0) {
                lane(self, share, size, spool, each);
                _exit(0);
            }
        }
        int st, failed = 0;
        while (wait(&st) > 0)
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = 1;
        if (failed) { fprintf(stderr, "a lane failed\n"); return 1; }
    }
    double s = now() - t0;
    if (!quiet)
        printf("%ld %zu %.6f %.2f %.3f\n", n, size, s, (double)n / s, (double)n * (double)size / s / 1048576.0);
    return 0;
}
