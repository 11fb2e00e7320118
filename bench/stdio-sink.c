/* stdio-sink.c - minimal SMTP sink on stdin/stdout: the ceiling for stdio
 * workloads.  Speaks enough SMTP for the benchmark (EHLO/HELO, MAIL, RCPT,
 * DATA, RSET, NOOP, QUIT), advertises PIPELINING, discards message data,
 * stores nothing.  Replies are buffered and flushed only when the input
 * buffer is empty (i.e. before it would block), so it is correct for
 * lock-step clients and cheap for pipelining ones.
 *
 *   cc -O2 -o stdio-sink stdio-sink.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char in[1 << 16];
static size_t ilen, ipos;
static char out[1 << 14];
static size_t olen;

static void flush_out(void) {
    size_t o = 0;
    while (o < olen) {
        ssize_t w = write(1, out + o, olen - o);
        if (w < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        o += (size_t)w;
    }
    olen = 0;
}

static void reply(const char *s) {
    size_t l = strlen(s);
    if (olen + l > sizeof out) flush_out();
    memcpy(out + olen, s, l);
    olen += l;
}

/* make sure input is available; flush pending replies before blocking */
static int fill(void) {
    if (ipos < ilen) return 1;
    flush_out();
    ssize_t r;
    do r = read(0, in, sizeof in); while (r < 0 && errno == EINTR);
    if (r <= 0) return 0;
    ilen = (size_t)r;
    ipos = 0;
    return 1;
}

/* read one line (without CRLF) into buf; returns length, -1 on EOF, -2 if too long */
static long get_line(char *buf, size_t cap) {
    size_t n = 0;
    int toolong = 0;
    for (;;) {
        if (!fill()) return -1;
        char *p = in + ipos, *e = in + ilen;
        char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t take = nl ? (size_t)(nl - p + 1) : (size_t)(e - p);
        size_t cp = take;
        if (n + cp > cap) { cp = cap > n ? cap - n : 0; toolong = 1; }
        memcpy(buf + n, p, cp);
        n += cp;
        ipos += take;
        if (nl) break;
    }
    if (toolong) return -2;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = 0;
    return (long)n;
}

/* consume message data up to and including the "." line; returns 0 on EOF */
static int skip_data(unsigned long long *bytes) {
    size_t linelen = 0;
    char pfx[2] = {0, 0};
    for (;;) {
        if (!fill()) return 0;
        char *p = in + ipos, *e = in + ilen;
        char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t take = nl ? (size_t)(nl - p + 1) : (size_t)(e - p);
        for (size_t k = 0; k < take && linelen + k < 2; k++) pfx[linelen + k] = p[k];
        ipos += take;
        *bytes += take;
        linelen += take;
        if (nl) {
            if (pfx[0] == '.' && (linelen == 2 || (linelen == 3 && pfx[1] == '\r'))) return 1;
            linelen = 0;
            pfx[0] = pfx[1] = 0;
        }
    }
}

int main(void) {
    char line[1024];
    int have_mail = 0, have_rcpt = 0;
    unsigned long long bytes = 0, msgs = 0;
    reply("220 stdio-sink ESMTP\r\n");
    for (;;) {
        long n = get_line(line, sizeof line - 1);
        if (n == -1) break;
        if (n == -2) { reply("500 5.5.2 line too long\r\n"); continue; }
        if (!strncasecmp(line, "EHLO", 4)) {
            have_mail = have_rcpt = 0;
            reply("250-stdio-sink\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
        } else if (!strncasecmp(line, "HELO", 4)) {
            have_mail = have_rcpt = 0;
            reply("250 stdio-sink\r\n");
        } else if (!strncasecmp(line, "MAIL", 4)) {
            if (have_mail) reply("503 5.5.1 nested MAIL\r\n");
            else { have_mail = 1; reply("250 2.1.0 OK\r\n"); }
        } else if (!strncasecmp(line, "RCPT", 4)) {
            if (!have_mail) reply("503 5.5.1 need MAIL\r\n");
            else { have_rcpt++; reply("250 2.1.5 OK\r\n"); }
        } else if (!strncasecmp(line, "DATA", 4)) {
            if (!have_rcpt) { reply("503 5.5.1 need RCPT\r\n"); continue; }
            reply("354 go ahead\r\n");
            if (!skip_data(&bytes)) break;
            msgs++;
            have_mail = have_rcpt = 0;
            reply("250 2.0.0 OK discarded\r\n");
        } else if (!strncasecmp(line, "RSET", 4)) {
            have_mail = have_rcpt = 0;
            reply("250 2.0.0 OK\r\n");
        } else if (!strncasecmp(line, "NOOP", 4)) {
            reply("250 2.0.0 OK\r\n");
        } else if (!strncasecmp(line, "QUIT", 4)) {
            reply("221 2.0.0 bye\r\n");
            break;
        } else {
            reply("500 5.5.2 unknown command\r\n");
        }
    }
    flush_out();
    return 0;
}
