/*
 * The Linux guest's memory dirtier (the lab's `stress` role, as dirty.asm is for the bare guest).
 * Reads F and N from the kernel command line (lme.fill=F lme.dirty=N, MiB), fills F MiB once
 * with a non-zero pattern (zero pages are not sent by migration), then writes one word into
 * every 4 KiB page of another N MiB, again and again, forever. Prints "filled" and "dirtying"
 * on their own lines, as dirty.asm does, so the harness waits for the same markers.
 *
 * Built by src/lab/guest/linux.ts with: gcc -static -O2 -o dirty dirty.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)
#define PAGE 4096UL
#define CMDLINE "/proc/cmdline"

/* The value of `key=` on the kernel command line, or -1 when absent or not a number. */
static long cmdline_mib(const char *cmdline, const char *key) {
  size_t len = strlen(key);
  for (const char *p = cmdline; (p = strstr(p, key)) != NULL; p += len) {
    if ((p == cmdline || p[-1] == ' ') && p[len] == '=') {
      char *end;
      errno = 0;
      long value = strtol(p + len + 1, &end, 10);
      if (errno || end == p + len + 1 || (*end != ' ' && *end != '\n' && *end != '\0') || value < 0) return -1;
      return value;
    }
  }
  return -1;
}

static unsigned char *map_mib(long mib, const char *what) {
  if (mib == 0) return NULL;
  void *area = mmap(NULL, (size_t)mib * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) {
    fprintf(stderr, "dirty: cannot map %ld MiB for %s: %s\n", mib, what, strerror(errno));
    exit(1);
  }
  return area;
}

int main(void) {
  static char cmdline[4096];
  FILE *file = fopen(CMDLINE, "r");
  if (!file || !fgets(cmdline, sizeof cmdline, file)) {
    fprintf(stderr, "dirty: cannot read %s: %s\n", CMDLINE, strerror(errno));
    return 1;
  }
  fclose(file);
  long fill = cmdline_mib(cmdline, "lme.fill");
  long dirty = cmdline_mib(cmdline, "lme.dirty");
  if (fill < 0 || dirty < 0) {
    fprintf(stderr, "dirty: %s needs lme.fill=MiB and lme.dirty=MiB: %s", CMDLINE, cmdline);
    return 1;
  }

  unsigned char *filled = map_mib(fill, "lme.fill");
  if (filled) memset(filled, 0xa5, (size_t)fill * MIB);
  printf("filled\n");
  fflush(stdout);

  volatile unsigned long *area = (volatile unsigned long *)map_mib(dirty, "lme.dirty");
  printf("dirtying\n");
  fflush(stdout);
  if (!area) for (;;) pause();
  size_t words_per_page = PAGE / sizeof *area;
  size_t pages = (size_t)dirty * MIB / PAGE;
  for (unsigned long pass = 1;; pass++) {
    for (size_t page = 0; page < pages; page++) area[page * words_per_page] = pass;
  }
}
