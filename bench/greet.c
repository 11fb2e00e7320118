/* greet.c - start-up time of a stdio SMTP server: from posix_spawn to the
 * first octet of its 220 greeting on a pipe, then QUIT and wait for its exit.
 *
 *   greet COUNT CMD [ARGS...]
 *
 * Prints "median_ms min_ms max_ms p90_ms" over COUNT starts; exits 1 if a
 * greeting does not start with "220" or the server does not exit 0.
 *
 *   cc -O2 -o greet greet.c
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s COUNT CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[1]);
    double *ms = calloc((size_t)count, sizeof *ms);
    for (int i = 0; i < count; i++) {
        int in[2], out[2];
        if (pipe(in) != 0 || pipe(out) != 0) { perror("pipe"); return 1; }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, in[0]);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        posix_spawn_file_actions_addclose(&fa, out[1]);
        pid_t pid;
        double t0 = now();
        if (posix_spawnp(&pid, argv[2], &fa, NULL, argv + 2, environ) != 0) { perror(argv[2]); return 1; }
        close(in[0]);
        close(out[1]);
        char buf[512];
        ssize_t n;
        do n = read(out[0], buf, sizeof buf); while (n < 0 && errno == EINTR);
        ms[i] = (now() - t0) * 1000.0;
        if (n < 3 || memcmp(buf, "220", 3) != 0) { fprintf(stderr, "no 220 greeting from %s\n", argv[2]); return 1; }
        if (write(in[1], "QUIT\r\n", 6) != 6) { perror("write"); return 1; }
        close(in[1]); /* half-close right after QUIT, as MTA clients do */
        while ((n = read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        }
        close(out[0]);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "%s failed\n", argv[2]); return 1; }
        posix_spawn_file_actions_destroy(&fa);
    }
    qsort(ms, (size_t)count, sizeof *ms, cmp);
    printf("%.4f %.4f %.4f %.4f\n", ms[count / 2], ms[0], ms[count - 1], ms[(count * 9) / 10]);
    return 0;
}
