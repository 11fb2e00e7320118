/* fault_shim: an LD_PRELOAD library for the crash-consistency tests. It counts
 * the file-system calls that make up the spool's commit protocol (mkdir, open
 * and openat with O_CREAT, write to a file, fsync, rename, renameat, renameat2) and, at the call
 * numbered SMTPSPOOL_CRASH_AT, kills the process with SIGKILL before the call
 * happens: the state on disk is exactly what a crash at that point leaves.
 * With SMTPSPOOL_FAIL_AT instead, the call numbered so fails without being
 * made, with errno SMTPSPOOL_FAIL_ERRNO (default EIO): a disk error or a full
 * disk at exactly that step. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static long counted;

static long env_number(const char* name, long fallback)
{
    const char* s = getenv(name);
    return s ? atol(s) : fallback;
}

/* 0: make the call; -1: fail it (errno set). */
static int step(void)
{
    static long crash_at = -1, fail_at = -1, fail_errno;
    if (crash_at < 0) {
        crash_at = env_number("SMTPSPOOL_CRASH_AT", 0);
        fail_at = env_number("SMTPSPOOL_FAIL_AT", 0);
        fail_errno = env_number("SMTPSPOOL_FAIL_ERRNO", EIO);
    }
    if (++counted == crash_at) {
        kill(getpid(), SIGKILL);
    }
    if (counted == fail_at) {
        errno = (int)fail_errno;
        return -1;
    }
    return 0;
}

static int is_file(int fd)
{
    struct stat st;
    return fd > 2 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

int mkdir(const char* path, mode_t mode)
{
    static int (*real)(const char*, mode_t);
    if (!real) real = dlsym(RTLD_NEXT, "mkdir");
    if (step()) return -1;
    return real(path, mode);
}

int open(const char* path, int flags, ...)
{
    static int (*real)(const char*, int, ...);
    if (!real) real = dlsym(RTLD_NEXT, "open");
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    if ((flags & O_CREAT) && step()) return -1;
    return real(path, flags, mode);
}

int openat(int dir, const char* path, int flags, ...)
{
    static int (*real)(int, const char*, int, ...);
    if (!real) real = dlsym(RTLD_NEXT, "openat");
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    if ((flags & O_CREAT) && step()) return -1;
    return real(dir, path, flags, mode);
}

ssize_t write(int fd, const void* buf, size_t n)
{
    static ssize_t (*real)(int, const void*, size_t);
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (is_file(fd) && step()) return -1;
    return real(fd, buf, n);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fsync");
    if (step()) return -1;
    return real(fd);
}

int rename(const char* a, const char* b)
{
    static int (*real)(const char*, const char*);
    if (!real) real = dlsym(RTLD_NEXT, "rename");
    if (step()) return -1;
    return real(a, b);
}

int renameat(int da, const char* a, int db, const char* b)
{
    static int (*real)(int, const char*, int, const char*);
    if (!real) real = dlsym(RTLD_NEXT, "renameat");
    if (step()) return -1;
    return real(da, a, db, b);
}

long syscall(long number, ...)
{
    static long (*real)(long, ...);
    if (!real) real = dlsym(RTLD_NEXT, "syscall");
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_renameat2 && step()) return -1;
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* How many calls a run made, for the driver: SMTPSPOOL_CRASH_COUNT=FILE. */
__attribute__((destructor)) static void report(void)
{
    const char* path = getenv("SMTPSPOOL_CRASH_COUNT");
    if (!path) return;
    static int (*real_open)(const char*, int, ...);
    static ssize_t (*real_write)(int, const void*, size_t);
    real_open = dlsym(RTLD_NEXT, "open");
    real_write = dlsym(RTLD_NEXT, "write");
    int fd = real_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    char buf[32];
    int len = 0;
    long v = counted;
    char tmp[32];
    do { tmp[len++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (int i = 0; i < len; ++i) buf[i] = tmp[len - 1 - i];
    real_write(fd, buf, (size_t)len);
    close(fd);
}
