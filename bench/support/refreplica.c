/*
 * The reference replica of fullsync-throughput: the least a user-space receiver does for a Kvrocks
 * full sync, in C (compiled at bench time by bench/support/reference.ts when `cc` exists).
 *
 *   refreplica <port> <dir>   → prints {"ms":…,"bytes":…,"files":…} once every file is in place
 *
 * The same work as `kvr replica --once` into an empty directory, nothing else: `_fetch_meta` on
 * its own connection; W workers (1 for ≤ 20 files, else 4; worker i takes files i, i + W, …), each
 * with its own connection and one `_fetch_file a,b,c`; per file the size line, then recv() into
 * one reused 1 MiB buffer per worker, write() to <name>.tmp, fsync, close, rename (CURRENT stays
 * CURRENT.tmp); after all workers: fsync of the directory, rename of CURRENT, fsync again.
 * No deadlines, no stop, no progress: blocking sockets and plain threads. ms is measured from the
 * first connect to the last directory fsync, as kvr's own sync time is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)
#define MAX_FILES 65536

static int port;
static const char *dir;
static char *names[MAX_FILES];
static int nfiles;
static int workers;

static void die(const char *what) {
  fprintf(stderr, "refreplica: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int dial(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  return s;
}

static void send_all(int s, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(s, p, n, 0);
    if (w < 0) die("send");
    p += w;
    n -= (size_t)w;
  }
}

/* A RESP command of one or two arguments. */
static void command(int s, const char *a, const char *b) {
  size_t la = strlen(a), lb = b ? strlen(b) : 0;
  char *out = malloc(la + lb + 64);
  int n = b ? sprintf(out, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n", la, a, lb) : sprintf(out, "*1\r\n$%zu\r\n%s\r\n", la, a);
  send_all(s, out, (size_t)n);
  if (b) {
    send_all(s, b, lb);
    send_all(s, "\r\n", 2);
  }
  free(out);
}

/* A receive buffer: bytes [pos, len) are received and not yet used. */
struct rbuf {
  int s;
  char *b;
  size_t cap, pos, len;
};

/* One line (CRLF stripped), NUL-terminated in the buffer; grows the buffer for a long meta line. */
static char *read_line(struct rbuf *r) {
  for (;;) {
    char *nl = memchr(r->b + r->pos, '\n', r->len - r->pos);
    if (nl) {
      char *line = r->b + r->pos;
      size_t end = (size_t)(nl - line);
      r->pos += end + 1;
      if (end > 0 && line[end - 1] == '\r') end--;
      line[end] = 0;
      return line;
    }
    if (r->pos > 0) {
      memmove(r->b, r->b + r->pos, r->len - r->pos);
      r->len -= r->pos;
      r->pos = 0;
    }
    if (r->len == r->cap) {
      r->cap *= 2;
      if (!(r->b = realloc(r->b, r->cap))) die("realloc");
    }
    ssize_t n = recv(r->s, r->b + r->len, r->cap - r->len, 0);
    if (n <= 0) die("recv (line)");
    r->len += (size_t)n;
  }
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) die("write");
    p += w;
    n -= (size_t)w;
  }
}

static void fsync_dir(void) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0 || fsync(fd) < 0) die("fsync dir");
  close(fd);
}

static long long fetch_meta(void) {
  int s = dial();
  command(s, "_fetch_meta", NULL);
  struct rbuf r = {s, malloc(BUF), BUF, 0, 0};
  char *line = read_line(&r);
  if (line[0] == '-') {
    fprintf(stderr, "refreplica: _fetch_meta refused: %s\n", line);
    exit(1);
  }
  for (char *tok = strtok(line, ","); tok && nfiles < MAX_FILES; tok = strtok(NULL, ",")) names[nfiles++] = strdup(tok);
  close(s);
  free(r.b);
  return 0;
}

struct worker {
  int index;
  long long bytes;
};

static void *fetch_worker(void *arg) {
  struct worker *w = arg;
  size_t list_len = 0;
  for (int i = w->index; i < nfiles; i += workers) list_len += strlen(names[i]) + 1;
  if (list_len == 0) return NULL;
  char *list = calloc(1, list_len);
  for (int i = w->index; i < nfiles; i += workers) {
    if (list[0]) strcat(list, ",");
    strcat(list, names[i]);
  }
  int s = dial();
  command(s, "_fetch_file", list);
  struct rbuf r = {s, malloc(BUF), BUF, 0, 0};
  char tmp[4096], final[4096];
  for (int i = w->index; i < nfiles; i += workers) {
    char *line = read_line(&r);
    if (line[0] == '-') {
      fprintf(stderr, "refreplica: _fetch_file %s refused: %s\n", names[i], line);
      exit(1);
    }
    long long left = atoll(line);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, names[i]);
    snprintf(final, sizeof final, "%s/%s", dir, names[i]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) die(tmp);
    w->bytes += left;
    /* Bytes that came in with the size line first, then straight from the socket. */
    size_t have = r.len - r.pos;
    size_t use = (long long)have < left ? have : (size_t)left;
    write_all(fd, r.b + r.pos, use);
    r.pos += use;
    left -= (long long)use;
    if (r.pos == r.len) r.pos = r.len = 0;
    while (left > 0) {
      size_t want = left < BUF ? (size_t)left : BUF;
      ssize_t n = recv(s, r.b, want, 0);
      if (n <= 0) die("recv (file)");
      write_all(fd, r.b, (size_t)n);
      left -= n;
    }
    if (fsync(fd) < 0) die("fsync");
    close(fd);
    if (strcmp(names[i], "CURRENT") != 0 && rename(tmp, final) < 0) die("rename");
  }
  close(s);
  free(r.b);
  free(list);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: refreplica <port> <dir>\n");
    return 2;
  }
  port = atoi(argv[1]);
  dir = argv[2];
  double t0 = now_ms();
  fetch_meta();
  workers = nfiles <= 20 ? 1 : 4;
  pthread_t th[4];
  struct worker ws[4] = {{0}};
  for (int i = 0; i < workers; i++) {
    ws[i].index = i;
    if (pthread_create(&th[i], NULL, fetch_worker, &ws[i]) != 0) die("pthread_create");
  }
  long long bytes = 0;
  for (int i = 0; i < workers; i++) {
    pthread_join(th[i], NULL);
    bytes += ws[i].bytes;
  }
  fsync_dir();
  for (int i = 0; i < nfiles; i++) {
    if (strcmp(names[i], "CURRENT") != 0) continue;
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/CURRENT.tmp", dir);
    snprintf(final, sizeof final, "%s/CURRENT", dir);
    if (rename(tmp, final) < 0) die("rename CURRENT");
    fsync_dir();
  }
  printf("{\"ms\":%.3f,\"bytes\":%lld,\"files\":%d}\n", now_ms() - t0, bytes, nfiles);
  return 0;
}
