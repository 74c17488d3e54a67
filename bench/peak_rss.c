/* Peak resident set size of a command and the processes it waits for:
 *
 *   peak_rss COMMAND [ARG...]      prints the peak in KiB on stdout
 *
 * Linked statically and tiny on purpose: the kernel counts the pre-exec
 * image of the forked child in its peak (exec records the old image's
 * high-water mark), so a large launcher (python, a C++ harness) would
 * measure itself. The child's own stdout goes to /dev/null. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: peak_rss COMMAND [ARG...]\n");
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execvp(argv[1], argv + 1);
    _exit(127);
  }
  int status = 0;
  struct rusage usage;
  if (wait4(pid, &status, 0, &usage) != pid) return 2;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "peak_rss: %s did not exit with 0\n", argv[1]);
    return 1;
  }
  printf("%ld\n", usage.ru_maxrss);
  return 0;
}
